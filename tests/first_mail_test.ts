/**
 * The first mail rides with the pairing request (issue 12; docs/protocol.md
 * §3.4): whoever accepts an invitation can write at once, and that mail reaches
 * the inviter in the same trip as the pairing request, by USB stick or over the
 * mesh; its receipt comes back with the pairing accept. An older inviter, which
 * ignores the mail in a request, still gets it once the answer is back, exactly
 * once; and nobody without a usable invitation gets anything in this way.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import {
  generateRSAKeyPair,
  issueDeliveryAuthorization,
  issueEndpointCertificate,
  Parcel,
  ServiceMessage,
  SessionEnvelopedData,
  SessionKeyPair,
} from "@relaycorp/relaynet-core";
import { exportParcels, importParcels } from "../bindings/sneakernet/sneakernet.ts";
import { toArrayBuffer } from "../bindings/validation.ts";
import { decodeInvitation } from "../app/core/protocol/invitation.ts";
import {
  decodePairing,
  encodeMail,
  encodePairing,
  MessageType,
} from "../app/core/protocol/messages.ts";
import { Daemon } from "../app/services/daemon.ts";
import { Relaymail } from "../app/services/relaymail.ts";
import { deserializeSessionEnvelope } from "../app/services/receiver.ts";
import { relaymail } from "./_cli.ts";
import {
  carry,
  DAY,
  makeNode,
  randomBytes,
  statuses,
  type TestNode,
  waitFor,
  withNodes,
} from "./helpers.ts";

/** One trip of a USB stick from `from` to `to`; returns what the import reported. */
async function byStick(from: TestNode, to: TestNode) {
  const stick = await Deno.makeTempDir({ prefix: "relaymail-stick-" });
  try {
    await exportParcels(from.node, stick);
    return await importParcels(to.node, stick);
  } finally {
    await Deno.remove(stick, { recursive: true });
  }
}

function inbox(node: TestNode): string[] {
  return node.node.mailbox.list("inbox").map((m) => m.subject).reverse(); // oldest first
}

function deliveryStates(node: TestNode, subject: string): string[] {
  const sent = node.node.mailbox.list("sent").find((m) => m.subject === subject);
  assert.ok(sent, `${node.node.identity.name} sent "${subject}"`);
  return sent.deliveries.map((d) => d.state);
}

/** Kinds of the parcels waiting to leave `node`. */
function waitingKinds(node: TestNode): string[] {
  return node.node.outbox.list().filter((p) => p.state === "queued").map((p) => p.kind);
}

/** Alice invites Bob, who accepts; returns the invitation's text. */
async function invite(alice: TestNode, bob: TestNode): Promise<string> {
  const { text } = await alice.node.pairing.createInvitation({ contactName: "Bob" });
  const contact = await bob.node.pairing.acceptInvitation(text, { name: "Alice" });
  assert.equal(contact.state, "pairing");
  return text;
}

Deno.test("first mail by USB stick: one trip carries it with the pairing request, and it comes back delivered with the answer", async () => {
  await withNodes(["Alice", "Bob"], async (alice, bob) => {
    await invite(alice, bob);
    // Bob writes at once, twice, before anything has travelled.
    const first = await bob.node.mailbox.send({ to: ["Alice"], subject: "First", body: "Hi!" });
    await bob.node.mailbox.send({
      to: ["Alice"],
      subject: "Second",
      body: "With a photo",
      attachments: [{ fileName: "a.jpg", mediaType: "image/jpeg", content: randomBytes(20_000) }],
    });
    assert.deepEqual(first.deliveries.map((d) => d.state), ["queued"]);
    // Both ride in the one request: nothing else waits to leave.
    assert.deepEqual(waitingKinds(bob), ["pairing-request"]);

    const there = await byStick(bob, alice);
    assert.equal(there.accepted, 1, "one parcel: the request, with the mail in it");
    assert.equal(alice.node.contacts.find("Bob").state, "active");
    assert.deepEqual(inbox(alice), ["First", "Second"], "in the order written");
    const photo = alice.node.mailbox.list("inbox").find((m) => m.subject === "Second")!;
    assert.equal(alice.node.mailbox.attachments(photo.id)[0].content.byteLength, 20_000);
    assert.equal(alice.node.mailbox.list("inbox")[0].from.name, "Bob");
    assert.deepEqual(deliveryStates(bob, "First"), ["sent"], "left on the stick");

    // The answer and the receipt travel back together.
    assert.deepEqual(waitingKinds(alice).sort(), ["pairing-accept", "receipt"]);
    await byStick(alice, bob);
    assert.equal(bob.node.contacts.find("Alice").state, "active");
    assert.deepEqual(deliveryStates(bob, "First"), ["delivered"]);
    assert.deepEqual(deliveryStates(bob, "Second"), ["delivered"]);
    assert.deepEqual(waitingKinds(bob), [], "no copy of the mail has to go again");

    // The same request read again (the stick goes round): nothing twice.
    const again = await byStick(bob, alice);
    assert.equal(again.accepted, 0);
    assert.deepEqual(inbox(alice), ["First", "Second"]);
  });
});

Deno.test("first mail: once the request has left, later mail waits for the answer and then goes, in order", async () => {
  await withNodes(["Alice", "Bob"], async (alice, bob) => {
    await invite(alice, bob);
    await bob.node.mailbox.send({ to: ["Alice"], subject: "Rides", body: "1" });
    const stick = await Deno.makeTempDir({ prefix: "relaymail-stick-" });
    try {
      await exportParcels(bob.node, stick); // the request is on the stick now
      const late = await bob.node.mailbox.send({ to: ["Alice"], subject: "Waits", body: "2" });
      assert.deepEqual(late.deliveries.map((d) => d.state), ["waiting"]);
      await importParcels(alice.node, stick);
    } finally {
      await Deno.remove(stick, { recursive: true });
    }
    assert.deepEqual(inbox(alice), ["Rides"]);
    await byStick(alice, bob);
    assert.deepEqual(deliveryStates(bob, "Rides"), ["delivered"]);
    assert.deepEqual(deliveryStates(bob, "Waits"), ["queued"]);
    await byStick(bob, alice);
    assert.deepEqual(inbox(alice), ["Rides", "Waits"]);
  });
});

Deno.test("first mail when pairing again: mail that waited for a lapsed contact rides in the request", async () => {
  await withNodes(["Alice", "Bob"], async (alice, bob) => {
    await invite(alice, bob);
    await byStick(bob, alice);
    await byStick(alice, bob);
    for (const node of [alice, bob]) {
      node.clock.advance(3 * 365 * DAY); // past the horizon: the contact lapses (§6.2)
      await node.node.maintain();
    }
    assert.equal(bob.node.contacts.find("Alice").state, "lapsed");
    await bob.node.mailbox.send({ to: ["Alice"], subject: "While lapsed", body: "" });
    assert.deepEqual(deliveryStates(bob, "While lapsed"), ["waiting"]);

    const repair = await alice.node.pairing.repairInvitation("Bob");
    await bob.node.pairing.acceptInvitation(repair.text);
    assert.deepEqual(deliveryStates(bob, "While lapsed"), ["queued"], "it rides now");
    await bob.node.mailbox.send({ to: ["Alice"], subject: "After accepting", body: "" });
    assert.deepEqual(waitingKinds(bob), ["pairing-request"]);

    await byStick(bob, alice);
    assert.deepEqual(inbox(alice), ["While lapsed", "After accepting"]);
    await byStick(alice, bob);
    assert.deepEqual(deliveryStates(bob, "While lapsed"), ["delivered"]);
    assert.deepEqual(deliveryStates(bob, "After accepting"), ["delivered"]);
  });
});

Deno.test("first mail: what would take the request past the mail limit waits, and every later mail with it", async () => {
  await withNodes(["Alice", "Bob"], async (alice, bob) => {
    await invite(alice, bob);
    const file = (mb: number) => [{ fileName: `${mb}.bin`, content: randomBytes(mb * 1_000_000) }];
    await bob.node.mailbox.send({ to: ["Alice"], subject: "1", body: "", attachments: file(5) });
    const big = await bob.node.mailbox.send({
      to: ["Alice"],
      subject: "2",
      body: "",
      attachments: file(4),
    });
    const small = await bob.node.mailbox.send({ to: ["Alice"], subject: "3", body: "" });
    assert.deepEqual(big.deliveries.map((d) => d.state), ["waiting"], "5 + 4 MB do not fit");
    assert.deepEqual(small.deliveries.map((d) => d.state), ["waiting"], "kept behind it");
    await byStick(bob, alice);
    assert.deepEqual(inbox(alice), ["1"]);
    await byStick(alice, bob);
    await byStick(bob, alice);
    assert.deepEqual(inbox(alice), ["1", "2", "3"]);
  });
});

Deno.test("first mail: the invitation kept to build the request again is sealed under the passphrase", async () => {
  await withNodes(["Alice"], async (alice) => {
    const bob = await makeNode("Bob", { passphrase: "correct horse" });
    try {
      const text = await invite(alice, bob);
      bob.node.close();
      // Neither the invitation nor the key K in it is anywhere in the clear.
      const slice = text.slice(-64);
      for (const file of ["relaymail.sqlite", "relaymail.sqlite-wal"]) {
        const bytes = await Deno.readFile(join(bob.dir, file)).catch(() => new Uint8Array());
        assert.ok(!new TextDecoder("latin1").decode(bytes).includes(slice), file);
      }
      const reopened = await Relaymail.open(bob.dir, { passphrase: "correct horse" });
      try {
        const sent = await reopened.mailbox.send({ to: ["Alice"], subject: "Sealed", body: "" });
        assert.deepEqual(sent.deliveries.map((d) => d.state), ["queued"], "it still rides");
        await carry(reopened, alice.node);
        assert.deepEqual(inbox(alice), ["Sealed"]);
      } finally {
        reopened.close();
      }
    } finally {
      await Deno.remove(bob.dir, { recursive: true });
    }
  });
});

Deno.test("first mail over the mesh: it arrives with the pairing, and is shown delivered once the answer is back", async () => {
  await withNodes(["Alice", "Bob"], async (alice, bob) => {
    await invite(alice, bob);
    await bob.node.mailbox.send({ to: ["Alice"], subject: "Over the mesh", body: "Hello" });
    const options = { listen: ["/ip4/127.0.0.1/tcp/0"], mdns: false, log: () => {} };
    const first = await Daemon.start(alice.node, options);
    try {
      const second = await Daemon.start(bob.node, { ...options, peers: first.mesh.addresses });
      try {
        await waitFor(
          "the mail to be delivered",
          () => deliveryStates(bob, "Over the mesh")[0] === "delivered",
          60_000,
        );
      } finally {
        await second.stop();
      }
    } finally {
      await first.stop();
    }
    assert.equal(bob.node.contacts.find("Alice").state, "active");
    assert.deepEqual(inbox(alice), ["Over the mesh"], "once");
  });
});

/**
 * What an older inviter makes of `request`: it ignores fields it does not know,
 * so it reads the request as if the mail were not there. The request is opened
 * with the invitation's session key (Alice's), its `Pairing` written again
 * without the mail, and the parcel sealed and signed again as Bob's was, with the
 * invitation key K.
 */
async function asOlderInviterSeesIt(
  alice: TestNode,
  invitationText: string,
  request: Uint8Array,
): Promise<Uint8Array> {
  const invitation = await decodeInvitation(invitationText, alice.clock.now());
  const parcel = await Parcel.deserialize(toArrayBuffer(request));
  const envelope = deserializeSessionEnvelope(new Uint8Array(parcel.payloadSerialized));
  const sessionKey = await alice.node.ctx.keys.privateKeyStore.retrieveSessionKey(
    envelope.getRecipientKeyId(),
    alice.node.identity.id,
    invitation.invitationId,
  );
  const message = ServiceMessage.deserialize(await envelope.decrypt(sessionKey));
  const pairing = decodePairing(new Uint8Array(message.content));
  assert.equal(pairing.mail?.length, 1, "Bob's request carries his mail");
  assert.ok(pairing.proof, "and its proof (§3.2)");
  // An older inviter ignores both fields: it sees the request without them.
  const stripped = new ServiceMessage(
    message.type,
    Buffer.from(encodePairing({ ...pairing, mail: [], proof: undefined })),
  );
  const { envelopedData } = await SessionEnvelopedData.encrypt(
    stripped.serialize(),
    invitation.connectionParams.sessionKey,
  );
  const again = new Parcel(
    parcel.recipient,
    parcel.senderCertificate,
    Buffer.from(envelopedData.serialize()),
    {
      id: crypto.randomUUID(),
      creationDate: parcel.creationDate,
      ttl: parcel.ttl,
      senderCaCertificateChain: parcel.senderCaCertificateChain,
    },
  );
  return new Uint8Array(await again.serialize(invitation.invitationKey));
}

Deno.test("first mail to an older inviter: ignored in the request, it goes again once the answer is back, and arrives exactly once", async () => {
  await withNodes(["Alice", "Bob"], async (alice, bob) => {
    const text = await invite(alice, bob);
    await bob.node.mailbox.send({ to: ["Alice"], subject: "Hello", body: "From Bob" });
    const [pending] = await bob.node.outgoingParcels();
    const original = (await pending.read())!;
    const older = await asOlderInviterSeesIt(alice, text, original);

    const taken = await alice.node.receiveParcel(older, { binding: "test" });
    await alice.node.flush();
    await bob.node.parcelHandedOver(pending.key, { binding: "test", toRecipient: true });
    assert.equal(taken.status, "accepted");
    assert.deepEqual(inbox(alice), [], "the older inviter saw no mail");
    assert.deepEqual(waitingKinds(alice), ["pairing-accept"], "and owes no receipt");

    await carry(alice.node, bob.node); // the answer
    assert.deepEqual(deliveryStates(bob, "Hello"), ["queued"], "goes again, as ordinary mail");
    assert.deepEqual(waitingKinds(bob), ["mail"]);
    // The request as Bob sent it, arriving late by another path, adds nothing.
    const late = await alice.node.receiveParcel(original, { binding: "test" });
    assert.equal(late.status === "refused" && late.code, "invitation-used");
    assert.deepEqual(inbox(alice), []);

    await carry(bob.node, alice.node);
    assert.deepEqual(inbox(alice), ["Hello"]);
    await carry(alice.node, bob.node);
    assert.deepEqual(deliveryStates(bob, "Hello"), ["delivered"]);
    assert.deepEqual(inbox(alice), ["Hello"], "exactly once");
  });
});

Deno.test("first mail: a revoked or expired invitation refuses the request and the mail in it", async () => {
  await withNodes(["Alice", "Bob", "Carol"], async (alice, bob, carol) => {
    const revoked = await alice.node.pairing.createInvitation();
    await bob.node.pairing.acceptInvitation(revoked.text, { name: "Alice" });
    await bob.node.mailbox.send({ to: ["Alice"], subject: "Revoked", body: "" });
    alice.node.pairing.revokeInvitation(revoked.id);
    assert.deepEqual(statuses(await carry(bob.node, alice.node)), ["refused:unauthorized"]);

    const expiring = await alice.node.pairing.createInvitation({ ttlMs: DAY });
    await carol.node.pairing.acceptInvitation(expiring.text, { name: "Alice" });
    await carol.node.mailbox.send({ to: ["Alice"], subject: "Expired", body: "" });
    alice.clock.advance(DAY + 60_000);
    assert.deepEqual(statuses(await carry(carol.node, alice.node)), ["refused:invitation-expired"]);
    // Carol, past the expiry too, has nothing left for her mail to ride in, and
    // forgets the invitation she kept for that.
    carol.clock.advance(DAY + 60_000);
    const late = await carol.node.mailbox.send({ to: ["Alice"], subject: "Too late", body: "" });
    assert.deepEqual(late.deliveries.map((d) => d.state), ["waiting"]);
    const kept = carol.node.ctx.db.get(
      "SELECT 1 AS found FROM meta WHERE key LIKE 'pairing-request.%'",
    );
    assert.equal(kept, undefined);

    assert.deepEqual(inbox(alice), []);
    assert.deepEqual(alice.node.contacts.list(), []);
    assert.deepEqual(waitingKinds(alice), [], "no answer, no receipt");
  });
});

Deno.test("first mail: a used invitation, or none at all, writes nothing", async () => {
  await withNodes(["Alice", "Bob", "Mallory"], async (alice, bob, mallory) => {
    // Mallory copied the invitation Bob got, and uses it after him.
    const text = await invite(alice, bob);
    await bob.node.mailbox.send({ to: ["Alice"], subject: "From Bob", body: "" });
    await mallory.node.pairing.acceptInvitation(text, { name: "Alice" });
    await mallory.node.mailbox.send({ to: ["Alice"], subject: "Cheap watches", body: "" });
    assert.deepEqual(statuses(await carry(bob.node, alice.node)), ["accepted"]);
    assert.deepEqual(statuses(await carry(mallory.node, alice.node)), [
      "refused:invitation-used",
    ]);

    // Without any invitation: a pairing request with mail, signed with her own
    // key under a "PDA" she issued herself.
    const forged = await forgedRequest(alice.node.identity.id, mallory.node.identity.id);
    const outcome = await alice.node.receiveParcel(forged, { binding: "test" });
    assert.equal(outcome.status === "refused" && outcome.code, "unauthorized");

    assert.deepEqual(inbox(alice), ["From Bob"]);
    assert.deepEqual(alice.node.contacts.list().map((c) => c.name), ["Bob"]);
  });
});

/** Mallory's pairing request with mail for `recipientId`, authorised by nobody. */
async function forgedRequest(recipientId: string, malloryId: string): Promise<Uint8Array> {
  const keys = await generateRSAKeyPair();
  const end = new Date(Date.now() + DAY);
  const certificate = await issueEndpointCertificate({
    issuerPrivateKey: keys.privateKey,
    subjectPublicKey: keys.publicKey,
    validityEndDate: end,
  });
  const pda = await issueDeliveryAuthorization({
    issuerCertificate: certificate,
    issuerPrivateKey: keys.privateKey,
    subjectPublicKey: keys.publicKey,
    validityEndDate: end,
  });
  const mail = encodeMail({
    messageId: crypto.randomUUID(),
    threadId: "",
    inReplyTo: "",
    sentAt: new Date(),
    subject: "Cheap watches",
    body: "",
    recipients: [recipientId],
    attachments: [],
  });
  const content = encodePairing({
    connectionParams: new Uint8Array(8),
    nameHint: malloryId,
    mail: [mail],
  });
  const { envelopedData } = await SessionEnvelopedData.encrypt(
    new ServiceMessage(MessageType.PAIRING_REQUEST, Buffer.from(content)).serialize(),
    (await SessionKeyPair.generate()).sessionKey,
  );
  const parcel = new Parcel({ id: recipientId }, pda, Buffer.from(envelopedData.serialize()), {
    ttl: 86_400,
    creationDate: new Date(Date.now() - 60_000),
    senderCaCertificateChain: [certificate],
  });
  return new Uint8Array(await parcel.serialize(keys.privateKey));
}

Deno.test("relaymail accept, then send at once: the mail rides with the request on the stick", async () => {
  const root = await Deno.makeTempDir({ prefix: "relaymail-first-mail-" });
  const run = async (dir: string, args: string[]) => {
    const result = await relaymail(dir, ["--json", ...args]);
    assert.equal(result.code, 0, `relaymail ${args.join(" ")}: ${result.stderr}`);
    return JSON.parse(result.stdout);
  };
  try {
    const [alice, bob, stick] = ["alice", "bob", "stick"].map((name) => join(root, name));
    await Deno.mkdir(stick);
    await run(alice, ["identity", "create", "--name", "Alice"]);
    await run(bob, ["identity", "create", "--name", "Bob"]);
    const { text } = await run(alice, ["invite", "--name", "Bob"]);
    await run(bob, ["accept", text, "--name", "Alice"]);
    const sent = await run(bob, ["send", "--to", "Alice", "--subject", "Hi", "--body", "At once"]);
    assert.deepEqual(sent.deliveries.map((d: { state: string }) => d.state), ["queued"]);

    await run(bob, ["sneakernet", "export", stick]);
    const imported = await run(alice, ["sneakernet", "import", stick]);
    assert.equal(imported.accepted, 1);
    const inboxed = await run(alice, ["inbox"]);
    assert.deepEqual(inboxed.map((m: { subject: string }) => m.subject), ["Hi"]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
