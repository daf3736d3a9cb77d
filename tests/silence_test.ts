/**
 * Silence drills (issue 12, "Contacts survive silence"): two contacts who write
 * nothing for 200 days or 2 years can still write to each other, by USB stick and
 * over the mesh, in both directions; past the horizon (3 years) both sides show the
 * contact as lapsed, and pairing again restores the same contact. The clock is
 * injected (`Relaymail.open({ now })`, `RELAYMAIL_CLOCK_OFFSET` for the CLI), so
 * years pass in seconds. docs/protocol.md §6 says which silences survive and why.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { exportParcels, importParcels } from "../bindings/sneakernet/sneakernet.ts";
import type { Contact } from "../app/core/contacts.ts";
import { Daemon } from "../app/services/daemon.ts";
import { DAY, makeNode, type TestNode, waitFor } from "./helpers.ts";
import { startWeb } from "./web/_web.ts";
import { CarolApp, collectFor, parseInvitation } from "./fixtures/third_party_app.ts";
import { decodePairing } from "../app/core/protocol/messages.ts";

const LOOPBACK = ["/ip4/127.0.0.1/tcp/0"];

/** A way for parcels to travel between two nodes. */
interface Transport {
  readonly name: string;
  /** Carries parcels both ways until `done()` holds. */
  exchange(a: TestNode, b: TestNode, done: () => boolean): Promise<void>;
}

/** A fresh, empty folder standing for the stick on one trip. */
async function emptyStick(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "relaymail-stick-" });
}

/** One trip of a USB stick: everything waiting at `from` is written, then read by `to`. */
async function byStick(from: TestNode, to: TestNode): Promise<void> {
  const stick = await emptyStick();
  try {
    await exportParcels(from.node, stick);
    await importParcels(to.node, stick);
  } finally {
    await Deno.remove(stick, { recursive: true });
  }
}

const usbStick: Transport = {
  name: "USB stick",
  async exchange(a, b, done) {
    for (let trip = 0; trip < 6 && !done(); trip++) {
      await byStick(a, b);
      await byStick(b, a);
    }
    assert.ok(done(), "the stick carried everything within six round trips");
  },
};

const mesh: Transport = {
  name: "the mesh",
  async exchange(a, b, done) {
    const options = { listen: LOOPBACK, mdns: false, log: () => {} };
    const first = await Daemon.start(a.node, options);
    try {
      const second = await Daemon.start(b.node, { ...options, peers: first.mesh.addresses });
      try {
        await waitFor("the mesh to carry everything", done, 60_000);
      } finally {
        await second.stop();
      }
    } finally {
      await first.stop();
    }
  },
};

/** Moves both clocks on to `day` days after the drill started. */
function setDay(day: number, ...nodes: (TestNode & { day?: number })[]): void {
  for (const node of nodes) {
    node.clock.advance((day - (node.day ?? 0)) * DAY);
    node.day = day;
  }
}

function contactOf(node: TestNode, name: string): Contact {
  return node.node.contacts.find(name);
}

/** The state of the contact named `name`, if there is one yet. */
function stateOf(node: TestNode, name: string): string | undefined {
  return node.node.contacts.list().find((c) => c.name === name)?.state;
}

function subjects(node: TestNode): string[] {
  return node.node.mailbox.list("inbox").map((m) => m.subject);
}

function deliveryStates(node: TestNode, subject: string): string[] {
  const sent = node.node.mailbox.list("sent").find((m) => m.subject === subject);
  assert.ok(sent, `${node.node.identity.name} sent "${subject}"`);
  return sent.deliveries.map((d) => d.state);
}

/** The refusals that would mean an authorisation was missing. */
function authorisationRefusals(node: TestNode): string[] {
  return node.node.refusals.list()
    .filter((r) => r.code === "unauthorized" || r.code === "undecryptable")
    .map((r) => `${r.code}: ${r.reason}`);
}

/** Alice invites Bob; the pairing travels by `transport`. */
async function pairBy(transport: Transport, alice: TestNode, bob: TestNode): Promise<void> {
  const invitation = await alice.node.pairing.createInvitation({ contactName: "Bob" });
  await bob.node.pairing.acceptInvitation(invitation.text, { name: "Alice" });
  await transport.exchange(
    alice,
    bob,
    () => stateOf(alice, "Bob") === "active" && stateOf(bob, "Alice") === "active",
  );
}

/** Each writes to the other, and `transport` carries the mail and the receipts. */
async function mailBothWays(
  transport: Transport,
  alice: TestNode,
  bob: TestNode,
  label: string,
): Promise<void> {
  const fromAlice = `${label}: from Alice`;
  const fromBob = `${label}: from Bob`;
  await alice.node.mailbox.send({ to: ["Bob"], subject: fromAlice, body: "Still there?" });
  await bob.node.mailbox.send({ to: ["Alice"], subject: fromBob, body: "Still here." });
  // Neither waits for an authorisation: each parcel is built at once.
  assert.deepEqual(deliveryStates(alice, fromAlice), ["queued"]);
  assert.deepEqual(deliveryStates(bob, fromBob), ["queued"]);
  await transport.exchange(
    alice,
    bob,
    () =>
      subjects(bob).includes(fromAlice) && subjects(alice).includes(fromBob) &&
      deliveryStates(alice, fromAlice)[0] === "delivered" &&
      deliveryStates(bob, fromBob)[0] === "delivered",
  );
}

async function withPair(fn: (alice: TestNode, bob: TestNode) => Promise<void>): Promise<void> {
  const alice = await makeNode("Alice");
  const bob = await makeNode("Bob");
  try {
    await fn(alice, bob);
  } finally {
    await alice.close();
    await bob.close();
  }
}

const SCENARIOS = [
  { name: "one mail from Bob at day 100, nothing back", mailAtDay100: true },
  { name: "total silence", mailAtDay100: false },
];

for (const transport of [usbStick, mesh]) {
  for (const days of [200, 730]) {
    for (const scenario of SCENARIOS) {
      Deno.test(
        `silence drill: ${scenario.name}; at day ${days} mail flows both ways by ${transport.name}`,
        () =>
          withPair(async (alice, bob) => {
            await pairBy(transport, alice, bob);
            if (scenario.mailAtDay100) {
              setDay(100, alice, bob);
              await bob.node.maintain(); // what a command or the daemon does first
              await bob.node.mailbox.send({ to: ["Alice"], subject: "Day 100", body: "Hello?" });
              await byStick(bob, alice); // and nothing goes back
              await alice.node.maintain();
              assert.deepEqual(subjects(alice), ["Day 100"]);
            }

            setDay(days, alice, bob);
            await alice.node.maintain();
            await bob.node.maintain();
            const now = alice.clock.now();
            for (const [node, peer] of [[alice, "Bob"], [bob, "Alice"]] as const) {
              const contact = contactOf(node, peer);
              assert.equal(contact.state, "active", `${peer} is still active after ${days} days`);
              assert.ok(contact.writableUntil! > now, `${peer}'s authorisation is still valid`);
              assert.ok(contact.authorizationExpiresAt! > now);
            }

            await mailBothWays(transport, alice, bob, `Day ${days}`);
            assert.deepEqual(authorisationRefusals(alice), []);
            assert.deepEqual(authorisationRefusals(bob), []);
            // The renewals that left with that mail reach two years past today again.
            const renewedUntil = alice.clock.now().getTime() + 2 * 365 * DAY;
            assert.ok(contactOf(alice, "Bob").writableUntil!.getTime() > renewedUntil);
            assert.ok(contactOf(bob, "Alice").writableUntil!.getTime() > renewedUntil);
          }),
      );
    }
  }
}

Deno.test("lapse drill: after 3 years of silence both sides show the contact lapsed, and pairing again restores it", async (t) => {
  const carol = await makeNode("Carol");
  try {
    await withPair(async (alice, bob) => {
      await pairBy(usbStick, alice, bob);
      setDay(3 * 365, alice, bob, carol);
      await alice.node.maintain();
      await bob.node.maintain();

      await t.step("both sides show it, and mail written meanwhile waits", async () => {
        const now = alice.clock.now();
        for (const [node, peer] of [[alice, "Bob"], [bob, "Alice"]] as const) {
          const contact = contactOf(node, peer);
          assert.equal(contact.state, "lapsed", `${peer} lapsed`);
          assert.ok(contact.writableUntil! <= now);
        }
        await bob.node.mailbox.send({ to: ["Alice"], subject: "Written while lapsed", body: "?" });
        assert.deepEqual(deliveryStates(bob, "Written while lapsed"), ["waiting"]);
        // Nothing is issued to a contact that could not receive it.
        assert.equal((await bob.node.maintain()).authorizationsRenewed, 0);
      });

      let repairText = "";
      await t.step(
        "the web API shows it lapsed and makes an invitation to pair again",
        async () => {
          const { web, base, bearer } = await startWeb(alice.node);
          try {
            const contacts = await (await fetch(`${base}/api/contacts`, { headers: bearer() }))
              .json();
            assert.deepEqual(contacts.map((c: Contact) => [c.name, c.state]), [["Bob", "lapsed"]]);
            const response = await fetch(`${base}/api/contacts/${contacts[0].id}/repair`, {
              method: "POST",
              headers: { ...bearer(), "content-type": "application/json" },
              body: "{}",
            });
            assert.equal(response.status, 200);
            const invitation = await response.json();
            assert.equal(invitation.contactName, "Bob");
            assert.ok(invitation.qrCodes.length > 0);
            repairText = invitation.text;
          } finally {
            await web.stop();
          }
        },
      );

      await t.step("only Bob can use that invitation", async () => {
        await carol.node.maintain();
        await carol.node.pairing.acceptInvitation(repairText, { name: "Alice" });
        await byStick(carol, alice);
        const [refusal] = alice.node.refusals.list();
        assert.equal(refusal.code, "unauthorized");
        assert.match(refusal.reason, /made to pair again with Bob only/);
        assert.deepEqual(alice.node.contacts.list().map((c) => c.name), ["Bob"]);
      });

      await t.step(
        "Bob accepts: the same contact, active again, and the waiting mail leaves",
        async () => {
          const contact = await bob.node.pairing.acceptInvitation(repairText);
          assert.deepEqual([contact.name, contact.state], ["Alice", "pairing"]);
          await usbStick.exchange(
            alice,
            bob,
            () =>
              subjects(alice).includes("Written while lapsed") &&
              stateOf(bob, "Alice") === "active",
          );
          assert.deepEqual(alice.node.contacts.list().map((c) => [c.name, c.state]), [
            ["Bob", "active"],
          ]);
          assert.deepEqual(bob.node.contacts.list().map((c) => [c.name, c.state]), [
            ["Alice", "active"],
          ]);
          await mailBothWays(usbStick, alice, bob, "After pairing again");
        },
      );
    });
  } finally {
    await carol.close();
  }
});

Deno.test("a contact whose pairing predates PDAs issued ahead (another implementation) gets one starting at once every rotation", async () => {
  const alice = await makeNode("Alice");
  try {
    const carol = await CarolApp.create(); // pairs as docs/protocol.md said before §6's ladder
    const created = await alice.node.pairing.createInvitation({ contactName: "Carol" });
    const request = await carol.makePairingRequest(await parseInvitation(created.text, new Date()));
    assert.equal((await alice.node.receiveParcel(request, { binding: "test" })).status, "accepted");
    await alice.node.flush();
    const [accept] = await collectFor(alice.node, carol, alice.node.identity.id);
    assert.deepEqual(decodePairing(new Uint8Array(accept.message.content)).authorizations, []);
    await alice.node.parcelHandedOver(accept.key, { binding: "test", toRecipient: true });
    const first = contactOf(alice, "Carol").authorizationExpiresAt!.getTime();
    assert.ok(first <= alice.clock.now().getTime() + 180 * DAY, "one PDA, not a ladder");

    alice.clock.advance(60 * DAY); // 120 days left: not due
    assert.equal((await alice.node.maintain()).authorizationsRenewed, 0);
    alice.clock.advance(40 * DAY); // 80 days left: a new one, starting now
    assert.equal((await alice.node.maintain()).authorizationsRenewed, 1);
    const renewed = contactOf(alice, "Carol").authorizationExpiresAt!.getTime();
    const now = alice.clock.now().getTime();
    assert.ok(renewed > first && renewed <= now + 180 * DAY);
    const sent = alice.node.outbox.list().filter((p) => p.recipientId === carol.id);
    assert.deepEqual(sent.map((p) => p.kind).sort(), ["pairing-accept", "pda-path"]);
  } finally {
    await alice.close();
  }
});

// ---------------------------------------------------------------------------------------------
// The issue's own measurement: the CLI with RELAYMAIL_CLOCK_OFFSET.

const MAIN = join(import.meta.dirname!, "..", "app", "main.ts");

async function relaymail(dataDir: string, offset: string, ...args: string[]) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "-A", MAIN, ...args],
    env: { RELAYMAIL_DATA_DIR: dataDir, NO_COLOR: "1", RELAYMAIL_CLOCK_OFFSET: offset },
    stdin: "null",
  }).output();
  const run = {
    code: output.code,
    stdout: new TextDecoder().decode(output.stdout),
    stderr: new TextDecoder().decode(output.stderr),
  };
  assert.equal(run.code, 0, `relaymail ${args.join(" ")} (clock ${offset}) failed: ${run.stderr}`);
  return run;
}

async function json(dataDir: string, offset: string, ...args: string[]) {
  return JSON.parse((await relaymail(dataDir, offset, "--json", ...args)).stdout);
}

Deno.test("silence drill in the CLI: 200 days on mail flows both ways; past the horizon, contacts repair", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "relaymail-silence-cli-" });
  const alice = join(root, "alice");
  const bob = join(root, "bob");
  let trips = 0;
  /** One trip of the stick, from `from` to `to`, with both clocks at `offset`. */
  const stick = async (from: string, to: string, offset: string) => {
    const dir = join(root, `stick-${trips++}`);
    await Deno.mkdir(dir);
    await relaymail(from, offset, "sneakernet", "export", dir);
    return await json(to, offset, "sneakernet", "import", dir);
  };
  const states = async (dir: string, offset: string) =>
    (await json(dir, offset, "contacts")).map((c: Contact) => [c.name, c.state]);
  try {
    await t.step("paired at day 0", async () => {
      await json(alice, "0d", "identity", "create", "--name", "Alice");
      await json(bob, "0d", "identity", "create", "--name", "Bob");
      const invitation = await json(alice, "0d", "invite", "--name", "Bob");
      await json(bob, "0d", "accept", invitation.text, "--name", "Alice");
      await stick(bob, alice, "0d");
      await stick(alice, bob, "0d");
      assert.deepEqual(await states(alice, "0d"), [["Bob", "active"]]);
      assert.deepEqual(await states(bob, "0d"), [["Alice", "active"]]);
    });

    await t.step("one mail from Bob at day 100, nothing back", async () => {
      await json(bob, "100d", "send", "--to", "Alice", "--subject", "Day 100", "--body", "Hi");
      assert.equal((await stick(bob, alice, "100d")).refused.length, 0);
    });

    await t.step("day 200: both write, nothing waits, both mails arrive", async () => {
      const fromBob = await json(
        bob,
        "200d",
        "send",
        "--to",
        "Alice",
        "--subject",
        "Day 200 B",
        "--body",
        "x",
      );
      const fromAlice = await json(
        alice,
        "200d",
        "send",
        "--to",
        "Bob",
        "--subject",
        "Day 200 A",
        "--body",
        "y",
      );
      assert.deepEqual(fromBob.deliveries.map((d: { state: string }) => d.state), ["queued"]);
      assert.deepEqual(fromAlice.deliveries.map((d: { state: string }) => d.state), ["queued"]);
      const atAlice = await stick(bob, alice, "200d");
      const atBob = await stick(alice, bob, "200d");
      assert.deepEqual([atAlice.refused, atBob.refused], [[], []]);
      const inbox = async (dir: string) =>
        (await json(dir, "200d", "inbox")).map((m: { subject: string }) => m.subject).sort();
      assert.deepEqual(await inbox(alice), ["Day 100", "Day 200 B"]);
      assert.deepEqual(await inbox(bob), ["Day 200 A"]);
      assert.deepEqual(await states(alice, "200d"), [["Bob", "active"]]);
      assert.deepEqual(await states(bob, "200d"), [["Alice", "active"]]);
    });

    // The last parcels crossed at day 200: authorisations reach day 200 + 2 years and 90 days.
    const lapsedAt = "1100d";
    await t.step("past the horizon both show the contact lapsed, and say what to do", async () => {
      assert.deepEqual(await states(alice, lapsedAt), [["Bob", "lapsed"]]);
      assert.deepEqual(await states(bob, lapsedAt), [["Alice", "lapsed"]]);
      const text = (await relaymail(alice, lapsedAt, "contacts")).stdout;
      assert.match(text, /Bob\s+\S.*lapsed/);
      assert.match(text, /relaymail contacts repair Bob/);
    });

    await t.step("contacts repair: Bob accepts, the same contacts are active again", async () => {
      const invitation = await json(alice, lapsedAt, "contacts", "repair", "Bob");
      assert.equal(invitation.contactName, "Bob");
      await json(bob, lapsedAt, "accept", invitation.text);
      await stick(bob, alice, lapsedAt);
      await stick(alice, bob, lapsedAt);
      assert.deepEqual(await states(alice, lapsedAt), [["Bob", "active"]]);
      assert.deepEqual(await states(bob, lapsedAt), [["Alice", "active"]]);
      await json(bob, lapsedAt, "send", "--to", "Alice", "--subject", "Again", "--body", "z");
      await stick(bob, alice, lapsedAt);
      const inbox = await json(alice, lapsedAt, "inbox");
      assert.ok(inbox.some((m: { subject: string }) => m.subject === "Again"));
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
