import assert from "node:assert/strict";
import { PassphraseRequiredError } from "../app/core/keys/key_stores.ts";
import { WrongPassphraseError } from "../app/core/keys/sealing.ts";
import { MAX_MAIL_LENGTH, MessageTooLargeError } from "../app/core/mailbox.ts";
import { makeParcel } from "../app/core/outbox.ts";
import { InvalidInvitationError } from "../app/core/protocol/invitation.ts";
import { encodeMail, MessageType } from "../app/core/protocol/messages.ts";
import { Relaymail } from "../app/services/relaymail.ts";
import { forgeParcel } from "./fixtures/forge_parcel.ts";
import {
  carry,
  DAY,
  HOUR,
  makeNode,
  pair,
  pendingBytes,
  statuses,
  type TestNode,
  withNodes,
} from "./helpers.ts";

/** Sends a message and returns the bytes of the parcel it made. */
async function sendAndTake(
  from: TestNode,
  options: Parameters<TestNode["node"]["mailbox"]["send"]>[0],
) {
  const before = new Set((await from.node.outgoingParcels()).map((p) => p.key));
  await from.node.mailbox.send(options);
  const made = (await from.node.outgoingParcels()).filter((p) => !before.has(p.key));
  assert.equal(made.length, 1);
  return (await made[0].read())!;
}

Deno.test("pairing: an invitation makes both sides contacts that can write to each other", async () => {
  await withNodes(["Alice", "Bob"], async (alice, bob) => {
    const invitation = await alice.node.pairing.createInvitation({ contactName: "Bobby" });
    const contact = await bob.node.pairing.acceptInvitation(invitation.text);
    assert.equal(contact.state, "pairing");
    assert.match(
      contact.name,
      /^Alice \([0-9a-f]{4} [0-9a-f]{4}\)$/,
      "default name shows the fingerprint",
    );
    assert.deepEqual(statuses(await carry(bob.node, alice.node)), ["accepted"]);
    const bobAtAlice = alice.node.contacts.find("Bobby");
    assert.equal(bobAtAlice.state, "active");
    assert.equal(bobAtAlice.id, bob.node.identity.id);
    assert.equal(bobAtAlice.nameHint, "Bob");
    assert.deepEqual(statuses(await carry(alice.node, bob.node)), ["accepted"]);
    assert.equal(bob.node.contacts.get(alice.node.identity.id)!.state, "active");
    assert.equal(alice.node.pairing.getInvitation(invitation.id)!.state, "used");
  });
});

Deno.test("mail: flows both ways with an attachment, a threaded reply and receipts", async () => {
  await withNodes(["Alice", "Bob"], async (alice, bob) => {
    await pair(alice, bob);
    const photo = crypto.getRandomValues(new Uint8Array(50_000));
    const sent = await alice.node.mailbox.send({
      to: ["Bob"],
      subject: "Camp photos",
      body: "Here they are.",
      attachments: [{ fileName: "photo.jpg", mediaType: "image/jpeg", content: photo }],
    });
    assert.deepEqual(sent.deliveries.map((d) => d.state), ["queued"]);
    await carry(alice.node, bob.node);
    assert.deepEqual(alice.node.mailbox.read(sent.id).deliveries.map((d) => d.state), ["sent"]);

    const [received] = bob.node.mailbox.list("inbox");
    assert.equal(received.subject, "Camp photos");
    assert.equal(received.from.name, "Alice");
    assert.equal(received.read, false);
    assert.equal(bob.node.mailbox.read(received.id).body, "Here they are.");
    assert.deepEqual(bob.node.mailbox.attachments(received.id)[0].content, photo);

    const reply = await bob.node.mailbox.send({
      replyTo: received.id.slice(0, 8),
      body: "Lovely!",
    });
    assert.equal(reply.subject, "Re: Camp photos");
    assert.equal(reply.threadId, sent.threadId);
    assert.deepEqual(reply.to.map((p) => p.name), ["Alice"]);
    await carry(bob.node, alice.node); // reply and receipt
    await carry(alice.node, bob.node); // receipt for the reply

    assert.deepEqual(alice.node.mailbox.read(sent.id).deliveries.map((d) => d.state), [
      "delivered",
    ]);
    assert.deepEqual(bob.node.mailbox.read(reply.id).deliveries.map((d) => d.state), ["delivered"]);
    assert.deepEqual(alice.node.mailbox.thread(sent.id).map((m) => m.subject), [
      "Camp photos",
      "Re: Camp photos",
    ]);
    assert.equal(alice.node.mailbox.list("outbox").length, 0);
  });
});

Deno.test("mail: one message to several people travels as one parcel each", async () => {
  await withNodes(["Alice", "Bob", "Carol"], async (alice, bob, carol) => {
    await pair(alice, bob);
    await pair(alice, carol);
    const before = (await alice.node.outgoingParcels()).length;
    const sent = await alice.node.mailbox.send({
      to: ["Bob", "Carol"],
      subject: "Meeting",
      body: "At noon",
    });
    assert.equal((await alice.node.outgoingParcels()).length - before, 2);
    await carry(alice.node, bob.node);
    await carry(alice.node, carol.node);
    assert.deepEqual(bob.node.mailbox.list("inbox")[0].to.map((p) => p.name).sort(), [
      "Bob",
      `unknown (${carol.node.identity.info().fingerprint.slice(0, 9)})`,
    ]);
    await carry(bob.node, alice.node);
    assert.deepEqual(
      alice.node.mailbox.read(sent.id).deliveries.map((d) => [d.name, d.state]),
      [["Bob", "delivered"], ["Carol", "sent"]],
    );
  });
});

Deno.test("mail: written before the pairing answer arrives, it rides with the pairing request", async () => {
  await withNodes(["Alice", "Bob"], async (alice, bob) => {
    const invitation = await alice.node.pairing.createInvitation();
    await bob.node.pairing.acceptInvitation(invitation.text, { name: "Alice" });
    const early = await bob.node.mailbox.send({
      to: ["Alice"],
      subject: "Hi",
      body: "Got your invitation",
    });
    assert.deepEqual(early.deliveries.map((d) => d.state), ["queued"]);
    await carry(bob.node, alice.node); // the request, with the mail in it
    assert.deepEqual(alice.node.mailbox.list("inbox").map((m) => m.subject), ["Hi"]);
    await carry(alice.node, bob.node); // the answer, and the receipt
    assert.deepEqual(bob.node.mailbox.read(early.id).deliveries.map((d) => d.state), [
      "delivered",
    ]);
  });
});

Deno.test("receiving: a message reaches the inbox once, however many times its parcel arrives", async () => {
  await withNodes(["Alice", "Bob"], async (alice, bob) => {
    await pair(alice, bob);
    await bob.node.mailbox.send({ to: ["Alice"], subject: "Once", body: "only once" });
    const [bytes] = await pendingBytes(bob.node);
    const outcomes = [];
    for (const via of ["mesh", "sneakernet", "gateway"]) {
      outcomes.push((await alice.node.receiveParcel(bytes, { binding: via })).status);
    }
    assert.deepEqual(outcomes, ["accepted", "duplicate", "duplicate"]);
    assert.equal(alice.node.mailbox.list("inbox").length, 1);
    const [refusal] = alice.node.refusals.list();
    assert.equal(refusal.code, "duplicate");
    assert.equal(refusal.count, 2, "repeats of one parcel are counted on one log entry");

    // The same mail inside another parcel (a resend) does not duplicate it either.
    const original = bob.node.mailbox.list("sent")[0];
    const channel =
      (await (await bob.node.identity.endpoint()).getChannel(alice.node.identity.id, ""))!;
    const again = await makeParcel(
      bob.node.ctx,
      channel,
      "mail",
      MessageType.MAIL,
      encodeMail({
        messageId: original.id,
        threadId: original.threadId,
        inReplyTo: "",
        sentAt: original.sentAt,
        subject: original.subject,
        body: "only once",
        recipients: [alice.node.identity.id],
        attachments: [],
      }),
    );
    assert.equal(
      (await alice.node.receiveParcel(again.bytes, { binding: "test" })).status,
      "accepted",
    );
    assert.equal(alice.node.mailbox.list("inbox").length, 1);
  });
});

Deno.test("receiving: Mallory, never invited, gets nothing into the inbox", async () => {
  await withNodes(["Alice", "Bob"], async (alice, bob) => {
    await pair(alice, bob);
    const aliceId = alice.node.identity.id;
    // Mallory's own "PDA", self-issued, with Alice's id as its common name.
    const outcome = await alice.node.receiveParcel(await forgeParcel(aliceId), {
      binding: "test",
    });
    assert.equal(outcome.status, "refused");
    assert.equal(outcome.status === "refused" && outcome.code, "unauthorized");
    assert.equal(alice.node.mailbox.list("inbox").length, 0);
    assert.equal(alice.node.refusals.list()[0].code, "unauthorized");
  });
});

Deno.test("receiving: one flipped byte anywhere in a parcel gets it refused", async () => {
  await withNodes(["Alice", "Bob"], async (alice, bob) => {
    await pair(alice, bob);
    await bob.node.mailbox.send({ to: ["Alice"], subject: "Intact", body: "x".repeat(200) });
    const [bytes] = await pendingBytes(bob.node);
    for (const position of [10, Math.floor(bytes.length / 2), bytes.length - 20]) {
      const tampered = bytes.slice();
      tampered[position] ^= 0x01;
      const outcome = await alice.node.receiveParcel(tampered, { binding: "test" });
      assert.equal(outcome.status, "refused", `flip at ${position} was not refused`);
      // A flip in the signed fields breaks the signature; one in the (unsigned)
      // certificate set breaks the sender's authorisation instead.
      assert.ok(
        outcome.status === "refused" &&
          ["bad-signature", "malformed", "unauthorized"].includes(outcome.code),
        `flip at ${position}: ${JSON.stringify(outcome)}`,
      );
    }
    assert.equal(alice.node.mailbox.list("inbox").length, 0);
    assert.equal((await alice.node.receiveParcel(bytes, { binding: "test" })).status, "accepted");
  });
});

Deno.test("receiving: expired parcels are refused, and so are ones dated beyond the drift tolerance", async () => {
  await withNodes(["Alice", "Bob"], async (alice, bob) => {
    await pair(alice, bob);
    await bob.node.mailbox.send({ to: ["Alice"], subject: "Late", body: "months late" });
    const [late] = await pendingBytes(bob.node);
    alice.clock.advance(181 * DAY);
    const expired = await alice.node.receiveParcel(late, { binding: "test" });
    assert.equal(expired.status === "refused" && expired.code, "expired");
    alice.clock.advance(-181 * DAY);

    bob.clock.advance(3 * HOUR); // Bob's clock runs 3 hours fast
    const future = await sendAndTake(bob, {
      to: ["Alice"],
      subject: "Future",
      body: "from the future",
    });
    const refused = await alice.node.receiveParcel(future, { binding: "test" });
    assert.equal(refused.status === "refused" && refused.code, "future-dated");

    bob.clock.advance(-2 * HOUR); // now 1 hour fast: within the tolerance
    const drift = await sendAndTake(bob, { to: ["Alice"], subject: "Drift", body: "a bit fast" });
    assert.equal((await alice.node.receiveParcel(drift, { binding: "test" })).status, "accepted");
    assert.deepEqual(alice.node.mailbox.list("inbox").map((m) => m.subject), ["Drift"]);
    assert.deepEqual(alice.node.refusals.list().map((r) => r.code).sort(), [
      "expired",
      "future-dated",
    ]);
  });
});

Deno.test("receiving: a blocked contact's parcels are refused until unblocked", async () => {
  await withNodes(["Alice", "Bob"], async (alice, bob) => {
    await pair(alice, bob);
    alice.node.contacts.block("Bob");
    await bob.node.mailbox.send({ to: ["Alice"], subject: "Let me in", body: "please" });
    assert.deepEqual(statuses(await carry(bob.node, alice.node)), ["refused:blocked"]);
    assert.equal(alice.node.mailbox.list("inbox").length, 0);
    await assert.rejects(alice.node.mailbox.send({ to: ["Bob"], body: "x" }), /blocked/);
    assert.deepEqual(alice.node.refusals.list().map((r) => r.code), ["blocked"]);
    alice.node.contacts.unblock("Bob");
    await bob.node.mailbox.send({ to: ["Alice"], subject: "Friends again", body: "hi" });
    // The refused parcel never left Bob's outbox, so it is offered again and now taken.
    assert.deepEqual(statuses(await carry(bob.node, alice.node)), ["accepted", "accepted"]);
    assert.deepEqual(alice.node.mailbox.list("inbox").map((m) => m.subject).sort(), [
      "Friends again",
      "Let me in",
    ]);
  });
});

Deno.test("receiving: refusals never touch the inbox, the outbox or the replay records", async () => {
  await withNodes(["Alice", "Bob"], async (alice, bob) => {
    await pair(alice, bob);
    await bob.node.mailbox.send({ to: ["Alice"], subject: "Keep me", body: "important" });
    const [good] = await pendingBytes(bob.node);
    assert.equal((await alice.node.receiveParcel(good, { binding: "test" })).status, "accepted");
    await alice.node.flush();
    const outboxBefore = alice.node.outbox.list().length;
    for (let i = 0; i < 30; i++) {
      const junk = crypto.getRandomValues(new Uint8Array(100 + i));
      assert.equal((await alice.node.receiveParcel(junk, { binding: "flood" })).status, "refused");
    }
    await alice.node.maintain();
    assert.deepEqual(alice.node.mailbox.list("inbox").map((m) => m.subject), ["Keep me"]);
    assert.equal(alice.node.outbox.list().length, outboxBefore);
    assert.equal((await alice.node.receiveParcel(good, { binding: "test" })).status, "duplicate");
  }, { refusalLogLimit: 10 });
});

Deno.test("invitations: single use, expiring, revocable", async () => {
  await withNodes(["Alice", "Bob", "Carol"], async (alice, bob, carol) => {
    const invitation = await alice.node.pairing.createInvitation({
      contactName: "Bob",
      ttlMs: HOUR,
    });
    await bob.node.pairing.acceptInvitation(invitation.text);
    await carol.node.pairing.acceptInvitation(invitation.text); // Carol got hold of the same line
    assert.deepEqual(statuses(await carry(bob.node, alice.node)), ["accepted"]);
    assert.deepEqual(statuses(await carry(carol.node, alice.node)), ["refused:invitation-used"]);
    assert.match(alice.node.refusals.list()[0].reason, /already used/);
    assert.deepEqual(alice.node.contacts.list().map((c) => c.name), ["Bob"]);
    await assert.rejects(bob.node.pairing.acceptInvitation(invitation.text), /already accepted/);

    const short = await alice.node.pairing.createInvitation({ ttlMs: HOUR });
    carol.clock.advance(2 * HOUR);
    await assert.rejects(carol.node.pairing.acceptInvitation(short.text), InvalidInvitationError);
    carol.clock.advance(-2 * HOUR);
    const dave = await makeNode("Dave");
    try {
      await dave.node.pairing.acceptInvitation(short.text);
      alice.clock.advance(2 * HOUR);
      assert.deepEqual(statuses(await carry(dave.node, alice.node)), [
        "refused:invitation-expired",
      ]);
      alice.clock.advance(-2 * HOUR);

      const revoked = await alice.node.pairing.createInvitation();
      alice.node.pairing.revokeInvitation(revoked.id.slice(1, 9));
      const erin = await makeNode("Erin");
      try {
        await erin.node.pairing.acceptInvitation(revoked.text);
        const [outcome] = await carry(erin.node, alice.node);
        assert.equal(
          outcome.status === "refused" && outcome.reason,
          `Invitation ${revoked.id.slice(1, 13)} was revoked`,
        );
      } finally {
        await erin.close();
      }
    } finally {
      await dave.close();
    }
  });
});

Deno.test("invitations: a damaged or altered line is refused with a reason", async () => {
  await withNodes(["Alice", "Bob"], async (alice, bob) => {
    const { text } = await alice.node.pairing.createInvitation();
    await assert.rejects(
      bob.node.pairing.acceptInvitation(text.slice(0, 200)),
      /damaged or truncated/,
    );
    await assert.rejects(bob.node.pairing.acceptInvitation("hello"), /Not a Relaymail invitation/);
    await assert.rejects(
      bob.node.pairing.acceptInvitation(text.replace(":2:", ":9:")),
      /version 9/,
    );
    await assert.rejects(alice.node.pairing.acceptInvitation(text), /your own invitation/);
    // Folded by a mail client: still readable.
    const folded = text.match(/.{1,76}/g)!.join("\n ");
    assert.equal((await bob.node.pairing.acceptInvitation(folded)).state, "pairing");
  });
});

Deno.test("sending: a message too large for one parcel is refused before it is queued", async () => {
  await withNodes(["Alice", "Bob"], async (alice, bob) => {
    await pair(alice, bob);
    const queued = (await alice.node.outgoingParcels()).length;
    const big = new Uint8Array(MAX_MAIL_LENGTH);
    await assert.rejects(
      alice.node.mailbox.send({
        to: ["Bob"],
        body: "",
        attachments: [{ fileName: "big.bin", content: big }],
      }),
      (error: Error) =>
        error instanceof MessageTooLargeError && error.message.includes(String(MAX_MAIL_LENGTH)),
    );
    assert.equal((await alice.node.outgoingParcels()).length, queued);
    assert.equal(alice.node.mailbox.list("sent").length, 0);

    // Just under the limit goes through, and arrives.
    const fits = new Uint8Array(MAX_MAIL_LENGTH - 2048);
    await alice.node.mailbox.send({
      to: ["Bob"],
      body: "",
      attachments: [{ fileName: "fits.bin", content: fits }],
    });
    assert.deepEqual(statuses(await carry(alice.node, bob.node)), ["accepted"]);
  });
});

Deno.test("forward secrecy: session keys a contact moved past are deleted", async () => {
  await withNodes(["Alice", "Bob"], async (alice, bob) => {
    const sessionKeys = (n: TestNode) =>
      n.node.ctx.db.get<{ n: number }>(
        "SELECT count(*) AS n FROM private_keys WHERE kind = 'session'",
      )!.n;
    const invitation = await alice.node.pairing.createInvitation();
    assert.equal(sessionKeys(alice), 1);
    await bob.node.pairing.acceptInvitation(invitation.text);
    await carry(bob.node, alice.node);
    await carry(alice.node, bob.node);
    for (let round = 0; round < 6; round++) {
      // RAMF dates have whole seconds, and a peer adopts a newer session key only
      // from a later-dated parcel: space the messages as people would.
      alice.clock.advance(2000);
      bob.clock.advance(2000);
      await alice.node.mailbox.send({ to: [bob.node.identity.id], body: `ping ${round}` });
      await carry(alice.node, bob.node);
      await bob.node.mailbox.send({ to: [alice.node.identity.id], body: `pong ${round}` });
      await carry(bob.node, alice.node);
      await alice.node.maintain();
      await bob.node.maintain();
    }
    // Without deletion each side would hold a key per parcel it sent (20+).
    assert.ok(sessionKeys(alice) <= 4, `Alice holds ${sessionKeys(alice)} session keys`);
    assert.ok(sessionKeys(bob) <= 4, `Bob holds ${sessionKeys(bob)} session keys`);
    const invitationKey = alice.node.ctx.db.get(
      "SELECT 1 FROM private_keys WHERE peer_id = ?",
      invitation.id,
    );
    assert.equal(invitationKey, undefined, "the invitation's session key outlived its use");
    assert.equal(alice.node.mailbox.list("inbox").length, 6);
  }, { sessionKeyGraceMs: 0 });
});

Deno.test("renewal: certificates and authorisations are renewed before they expire", async () => {
  await withNodes(["Alice", "Bob"], async (alice, bob) => {
    await pair(alice, bob);
    const firstExpiry = alice.node.identity.info().certificateExpiresAt;
    const step = async (days: number) => {
      alice.clock.advance(days * DAY);
      bob.clock.advance(days * DAY);
      await alice.node.maintain();
      await bob.node.maintain();
      await carry(alice.node, bob.node);
      await carry(bob.node, alice.node);
    };
    await step(100); // 80 days left on the certificate: renewed
    assert.ok(alice.node.identity.info().certificateExpiresAt > firstExpiry);
    await step(30); // 50 days left on the PDAs: renewed and exchanged
    assert.ok(
      alice.node.contacts.find("Bob").authorizationExpiresAt! >
        new Date(firstExpiry.getTime() + 50 * DAY),
    );
    await step(70); // day 200: every original certificate and PDA has expired
    await bob.node.mailbox.send({ to: ["Alice"], subject: "Still here", body: "after 200 days" });
    assert.deepEqual(statuses(await carry(bob.node, alice.node)), ["accepted"]);
    assert.deepEqual(alice.node.mailbox.list("inbox").map((m) => m.subject), ["Still here"]);
  });
});

Deno.test("storage: keys sealed under a passphrase need it, and a wrong one is a clear error", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const first = await Relaymail.open(dir, { passphrase: "correct horse" });
    await first.identity.create("Alice");
    const id = first.identity.id;
    const raw = first.ctx.db.all<{ sealed: number }>("SELECT sealed FROM private_keys");
    assert.ok(raw.length > 0 && raw.every((r) => r.sealed === 1));
    first.close();

    await assert.rejects(Relaymail.open(dir), PassphraseRequiredError);
    await assert.rejects(Relaymail.open(dir, { passphrase: "wrong" }), WrongPassphraseError);
    const again = await Relaymail.open(dir, { passphrase: "correct horse" });
    assert.equal((await again.identity.endpoint()).id, id);
    again.setPassphrase(null);
    again.close();
    const open = await Relaymail.open(dir);
    assert.equal((await open.identity.endpoint()).id, id);
    open.setPassphrase("battery staple");
    open.close();
    await assert.rejects(
      Relaymail.open(dir, { passphrase: "correct horse" }),
      WrongPassphraseError,
    );
    (await Relaymail.open(dir, { passphrase: "battery staple" })).close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("storage: contacts, channels and mail survive closing and reopening", async () => {
  const bob = await makeNode("Bob");
  const aliceDir = await Deno.makeTempDir();
  try {
    let alice = { node: await Relaymail.open(aliceDir) };
    await alice.node.identity.create("Alice");
    await pair(alice, bob);
    alice.node.close();
    alice = { node: await Relaymail.open(aliceDir) };
    await alice.node.mailbox.send({ to: ["Bob"], subject: "After restart", body: "still works" });
    assert.deepEqual(statuses(await carry(alice.node, bob.node)), ["accepted"]);
    alice.node.close();
  } finally {
    await bob.close();
    await Deno.remove(aliceDir, { recursive: true });
  }
});
