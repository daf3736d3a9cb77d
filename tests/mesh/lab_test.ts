/**
 * The mesh between real hosts: Relaymail daemons in network namespaces joined by
 * veth links (tests/lab/netns.ts). Needs root; CI runs as root.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { readDaemonStatus } from "../../app/runtime/client.ts";
import { randomBytes } from "../helpers.ts";
import { type Host, type Lab, labTest, waitFor } from "../lab/netns.ts";
import {
  addressOf,
  deliveryStates,
  pairOffline,
  person,
  startDaemon,
  withMail,
  withMeshStore,
} from "../lab/people.ts";

const MALLORY = join(import.meta.dirname!, "..", "fixtures", "mallory_mesh.ts");

/** Octets `host` has sent out of `iface` so far, by the kernel's count. */
async function txBytes(host: Host, iface: string): Promise<number> {
  const args = ["-json", "-statistics", "link", "show", "dev", iface];
  const [link] = JSON.parse(await host.exec("ip", args));
  return link.stats64.tx.bytes;
}

labTest("mesh: two hosts find each other by mDNS, pair and mail both ways", async (lab) => {
  const [hostA, hostB] = [await lab.host("a"), await lab.host("b")];
  const link = await lab.link(hostA, hostB);
  await lab.multicast(hostA, link.aInterface);
  await lab.multicast(hostB, link.bInterface);
  const alice = await person(lab, hostA, "Alice");
  const bob = await person(lab, hostB, "Bob");
  // Pairing itself crosses the mesh: Bob's request, Alice's answer.
  const invitation = await withMail(
    alice,
    (n) => n.pairing.createInvitation({ contactName: "Bob" }),
  );
  await withMail(bob, (n) => n.pairing.acceptInvitation(invitation.text, { name: "Alice" }));
  startDaemon(alice, { mdns: true });
  startDaemon(bob, { mdns: true });

  await waitFor(
    "pairing over the mesh",
    async () =>
      (await withMail(alice, (n) => n.contacts.find("Bob").state)) === "active" &&
      (await withMail(bob, (n) => n.contacts.find("Alice").state)) === "active",
  );
  await withMail(
    alice,
    (n) => n.mailbox.send({ to: ["Bob"], subject: "From Alice", body: "Hi Bob" }),
  );
  await withMail(
    bob,
    (n) => n.mailbox.send({ to: ["Alice"], subject: "From Bob", body: "Hi Alice" }),
  );
  await waitFor("mail both ways, delivered", async () => {
    const a = await withMail(
      alice,
      (n) => [n.mailbox.list("inbox").map((m) => m.subject), deliveryStates(n)],
    );
    const b = await withMail(
      bob,
      (n) => [n.mailbox.list("inbox").map((m) => m.subject), deliveryStates(n)],
    );
    return JSON.stringify([a, b]) ===
      JSON.stringify([[["From Bob"], ["delivered"]], [["From Alice"], ["delivered"]]]);
  });
  const log = await alice.daemon!.log();
  assert.match(log, /peer found/);
  assert.doesNotMatch(log, /--peer/);
});

labTest(
  "mesh: a line A — B — C carries mail from A to C store-and-forward, and the receipt back",
  async (lab) => {
    const [hostA, hostB, hostC] = [await lab.host("a"), await lab.host("b"), await lab.host("c")];
    const ab = await lab.link(hostA, hostB);
    const bc = await lab.link(hostB, hostC);
    const alice = await person(lab, hostA, "Alice");
    const bob = await person(lab, hostB, "Bob"); // a stranger who relays
    const carol = await person(lab, hostC, "Carol");
    await pairOffline(alice, carol);
    const sent = await withMail(
      alice,
      (n) => n.mailbox.send({ to: ["Carol"], subject: "Via Bob", body: "Hello C" }),
    );

    startDaemon(bob);
    const bobFromA = await addressOf(bob, ab.bAddress);
    const bobFromC = bobFromA.replace(ab.bAddress, bc.aAddress);
    startDaemon(alice, { peers: [bobFromA] });
    await waitFor(
      "Alice's mail handed to a relay",
      () => withMail(alice, (n) => n.mailbox.read(sent.id).deliveries[0].via === "mesh relay"),
    );
    const leaving = await alice.daemon!.stop(); // Alice leaves: SIGTERM
    assert.equal(leaving.code, 0, "the daemon did not stop cleanly on SIGTERM");
    assert.match(await alice.daemon!.log(), /stopping \(SIGTERM\)[\s\S]*stopped/);

    startDaemon(carol, { peers: [bobFromC] });
    await waitFor(
      "Carol receiving Alice's mail",
      () => withMail(carol, (n) => n.mailbox.list("inbox").some((m) => m.id === sent.id)),
    );
    assert.equal(
      await withMail(alice, (n) => n.mailbox.read(sent.id).deliveries[0].state),
      "sent",
    );

    startDaemon(alice, { peers: [bobFromA] }); // Alice comes back near Bob
    await waitFor(
      "Carol's receipt back at Alice",
      () => withMail(alice, (n) => n.mailbox.read(sent.id).deliveries[0].state === "delivered"),
    );
    await waitFor("Bob's copies purged", () => withMeshStore(bob, (s) => s.list().length === 0));
    const carolLog = await carol.daemon!.log();
    const alicePeerId = (await readDaemonStatus(alice.dir))!.peerId;
    assert.ok(!carolLog.includes(alicePeerId), "Carol heard Alice directly");
  },
);

/**
 * Alice on host A and Bob on host B, paired, linked by a link A sends on at
 * `rate`; Alice's mail to Bob with an attachment of `size` octets waits to go.
 */
async function bigMailOverThrottledLink(lab: Lab, rate: string, size: number) {
  const [hostA, hostB] = [await lab.host("a"), await lab.host("b")];
  const link = await lab.link(hostA, hostB);
  await lab.throttle(hostA, link.aInterface, rate);
  const alice = await person(lab, hostA, "Alice");
  const bob = await person(lab, hostB, "Bob");
  await pairOffline(alice, bob);
  const attachment = randomBytes(size);
  const sent = await withMail(alice, (n) =>
    n.mailbox.send({
      to: ["Bob"],
      subject: "Big",
      body: "A large attachment",
      attachments: [{ fileName: "big.bin", content: attachment }],
    }));
  return { hostA, link, alice, bob, attachment, sent };
}

labTest("mesh: a link that goes down mid-transfer loses and duplicates nothing", async (lab) => {
  // ~6 s at 4 Mbit/s.
  const { hostA, link, alice, bob, attachment, sent } = await bigMailOverThrottledLink(
    lab,
    "4mbit",
    3 * 1024 * 1024,
  );
  // A short stall timeout, so that the outage outlives the connection and the
  // parcel must go again over a new one.
  startDaemon(bob, { stallTimeoutMs: 4000 });
  startDaemon(alice, { peers: [await addressOf(bob, link.bAddress)], stallTimeoutMs: 4000 });
  await waitFor(
    "the transfer to start",
    async () => (await bob.daemon!.log()).includes("peer found"),
  );
  // Mid-transfer: 1 MB of the 3 MiB attachment's parcel has crossed the link.
  await waitFor(
    "1 MB of the transfer across the link",
    async () => await txBytes(hostA, link.aInterface) >= 1_000_000,
  );
  await lab.setLink(hostA, link.aInterface, false);
  // A duration, not a wait: the outage must outlast the 4 s stall timeout.
  await new Promise((r) => setTimeout(r, 7000));
  await lab.setLink(hostA, link.aInterface, true);

  await waitFor(
    "delivery after the link came back",
    () => withMail(alice, (n) => n.mailbox.read(sent.id).deliveries[0].state === "delivered"),
    90_000,
  );
  await withMail(bob, (n) => {
    const inbox = n.mailbox.list("inbox");
    assert.equal(inbox.length, 1);
    assert.deepEqual(n.mailbox.attachments(inbox[0].id)[0].content, attachment);
  });
  assert.match(
    await alice.daemon!.log(),
    /Transfer to a peer failed/,
    "the outage did not interrupt the transfer",
  );
});

labTest("mesh: a slow link carries a large parcel without being taken for dead", async (lab) => {
  // 1 Mbit/s, ~17 s for the parcel: pings wait seconds behind it, so two in a row may
  // go unanswered; the frames arriving keep the peer alive instead.
  const { link, alice, bob, attachment, sent } = await bigMailOverThrottledLink(
    lab,
    "1mbit",
    2 * 1024 * 1024,
  );
  startDaemon(bob);
  startDaemon(alice, { peers: [await addressOf(bob, link.bAddress)] });
  await waitFor(
    "delivery over the slow link",
    () => withMail(alice, (n) => n.mailbox.read(sent.id).deliveries[0].state === "delivered"),
    90_000,
  );
  await withMail(bob, (n) => {
    assert.deepEqual(n.mailbox.attachments(n.mailbox.list("inbox")[0].id)[0].content, attachment);
  });
  for (const person of [alice, bob]) {
    const log = await person.daemon!.log();
    assert.doesNotMatch(log, /stopped answering pings/, `${person.name}'s log`);
    assert.doesNotMatch(log, /Transfer (to|from) a peer failed/, `${person.name}'s log`);
  }
});

labTest(
  "mesh: Mallory's unauthorised parcel is refused by the first relay, which stores nothing",
  async (lab) => {
    const [hostM, hostB] = [await lab.host("m"), await lab.host("b")];
    const link = await lab.link(hostM, hostB);
    const bob = await person(lab, hostB, "Bob");
    const aliceId = "0" + "ab".repeat(32); // Mallory targets someone who never invited her
    startDaemon(bob);
    const relay = await addressOf(bob, link.bAddress);
    const output = await hostM.exec(Deno.execPath(), ["run", "-A", MALLORY, relay, aliceId]);
    const { key, reply } = JSON.parse(output.trim().split("\n").at(-1)!);
    assert.equal(reply.type, "refuse");
    assert.equal(reply.code, "unauthorized");
    assert.equal(reply.transient, false);
    await waitFor(
      "the refusal in Bob's log",
      async () => (await bob.daemon!.log()).includes("unauthorized"),
    );
    withMeshStore(bob, (store) => {
      assert.equal(store.knows(key), null);
      assert.equal(store.list().length, 0);
    });
  },
);

labTest("mesh: a relay killed mid-transfer keeps every parcel it acknowledged", async (lab) => {
  const [hostA, hostB, hostC] = [await lab.host("a"), await lab.host("b"), await lab.host("c")];
  const ab = await lab.link(hostA, hostB);
  const bc = await lab.link(hostB, hostC);
  await lab.throttle(hostA, ab.aInterface, "2mbit");
  const alice = await person(lab, hostA, "Alice");
  const bob = await person(lab, hostB, "Bob");
  const carol = await person(lab, hostC, "Carol");
  await pairOffline(alice, carol);
  const ids: string[] = [];
  for (let i = 0; i < 10; i++) {
    const body = `Message ${i}\n` + "x".repeat(150_000); // ~0.6 s each at 2 Mbit/s
    ids.push(
      (await withMail(alice, (n) => n.mailbox.send({ to: ["Carol"], subject: `M${i}`, body }))).id,
    );
  }
  startDaemon(bob);
  const bobFromA = await addressOf(bob, ab.bAddress);
  const bobId = bobFromA.split("/p2p/")[1];
  startDaemon(alice, { peers: [bobFromA] });

  const handedToBob = () =>
    withMeshStore(
      alice,
      (store) =>
        store.list().filter((p) => store.handover(p.key)?.peer === bobId).map((p) => p.key),
    );
  await waitFor("a few parcels acknowledged by Bob", () => handedToBob().length >= 3, 60_000);
  await bob.daemon!.stop("SIGKILL");
  const acknowledged = handedToBob();
  assert.ok(acknowledged.length < 10, "the kill came after the whole transfer");

  startDaemon(bob);
  await addressOf(bob, ab.bAddress);
  withMeshStore(bob, (bobStore) => {
    for (const key of acknowledged) {
      assert.ok(bobStore.knows(key), `Bob lost acknowledged parcel ${key}`);
    }
  });
  startDaemon(carol, { peers: [bobFromA.replace(ab.bAddress, bc.aAddress)] });
  await waitFor(
    "all ten messages at Carol",
    () => withMail(carol, (n) => n.mailbox.list("inbox").length === 10),
    120_000,
  );
  await withMail(
    carol,
    (n) => assert.deepEqual(n.mailbox.list("inbox").map((m) => m.id).sort(), [...ids].sort()),
  );
});
