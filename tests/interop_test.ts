/**
 * Interoperability test: a third-party app ("Carol's app") written only from
 * docs/protocol.md, with relaynet-core, asn1js and built-ins — no Relaymail code —
 * accepts a Relaymail invitation, pairs, sends mail with an attachment, and reads
 * Relaymail's pairing accept and delivery receipts.
 *
 * Alice is a real Relaymail data directory, driven only through app/services/relaymail.ts.
 */
import assert from "node:assert/strict";
import { Relaymail } from "../app/services/relaymail.ts";
import {
  CarolApp,
  type CarolMail,
  collectFor,
  DAY_MS,
  decodeReceipt,
  encodeMail,
  implicitConstructed,
  implicitPrimitive,
  type Opened,
  type ParsedInvitation,
  parseInvitation,
  TYPE_RECEIPT,
  utf8,
} from "./fixtures/third_party_app.ts";

// ---------------------------------------------------------------------------------------------

Deno.test("a third-party app built from docs/protocol.md pairs with Relaymail and delivers mail", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "relaymail-interop-" });
  const alice = await Relaymail.open(dir);
  try {
    await alice.identity.create("Alice");
    const aliceId = alice.identity.id;
    const carol = await CarolApp.create();
    let invitation!: ParsedInvitation;

    await t.step("Carol parses and checks Alice's invitation line (§2)", async () => {
      const created = await alice.pairing.createInvitation({ contactName: "Carol" });
      assert.match(created.text, /^relaymail-invite:2:[A-Z2-7]+$/);
      // Mail clients fold long lines: readers must strip whitespace (§2).
      const folded = created.text.replace(/(.{76})/g, "$1\r\n ");
      invitation = await parseInvitation(folded, new Date());
      assert.equal(invitation.inviterId, aliceId);
      assert.equal(invitation.nameHint, "Alice");
      assert.equal(invitation.params.internetGatewayAddress, "");
      assert.equal(invitation.params.deliveryAuth.certificateAuthorities.length, 1);
      assert.equal(invitation.expiresAt.getTime(), created.expiresAt.getTime());
      assert.ok(invitation.expiresAt.getTime() > Date.now() + 6 * DAY_MS, "default 7 days");
    });

    let pairingAccept!: Opened & { key: string };
    await t.step(
      "Alice accepts Carol's pairing request and adds her as a contact (§3.2)",
      async () => {
        const request = await carol.makePairingRequest(invitation);
        const outcome = await alice.receiveParcel(request, { binding: "test" });
        await alice.flush(); // as a binding does after a batch: owed parcels are built
        assert.deepEqual(outcome, { status: "accepted" });

        const contacts = alice.contacts.list();
        assert.equal(contacts.length, 1);
        assert.equal(contacts[0].id, carol.id);
        assert.equal(contacts[0].name, "Carol");
        assert.equal(contacts[0].nameHint, "Carol (third-party app)");
        assert.equal(contacts[0].state, "active");
        // §1.2: the first 32 hex digits of the id after its leading "0", in groups of four.
        assert.equal(contacts[0].fingerprint, carol.id.slice(1, 33).match(/.{4}/g)!.join(" "));

        // The invitation is good for one pairing request only.
        const again = await alice.receiveParcel(await carol.makePairingRequest(invitation), {
          binding: "test",
        });
        assert.equal(again.status, "refused");
        assert.equal(again.status === "refused" && again.code, "invitation-used");

        const forCarol = await collectFor(alice, carol, aliceId);
        assert.equal(forCarol.length, 1, "exactly one parcel (the pairing accept) for Carol");
        pairingAccept = forCarol[0];
      },
    );

    await t.step(
      "Carol reads Alice's pairing accept and her connection parameters (§3.3)",
      async () => {
        const nameHint = await carol.takePairingAccept(pairingAccept.message, aliceId);
        assert.equal(nameHint, "Alice");
        await alice.parcelHandedOver(pairingAccept.key, { binding: "test", toRecipient: true });
        assert.equal((await collectFor(alice, carol, aliceId)).length, 0);
      },
    );

    const attachment = new Uint8Array(4096).map((_, i) => (i * 7 + 3) % 256);
    const sentAt = new Date(Date.now() - 1234);
    const mail: CarolMail = {
      messageId: crypto.randomUUID(),
      threadId: "",
      inReplyTo: "",
      sentAt,
      subject: "Hello from another implementation — ünïcödé ✓",
      body: "Hi Alice,\n\nthis came from an app that only read docs/protocol.md.\n\n— Carol",
      recipients: [aliceId],
      attachments: [{
        fileName: "report.bin",
        mediaType: "application/octet-stream",
        content: attachment,
      }],
    };
    mail.threadId = mail.messageId;
    let mailParcel!: Uint8Array;

    await t.step("Alice takes Carol's mail into her inbox (§4)", async () => {
      mailParcel = await carol.makeMailParcel(aliceId, encodeMail(mail));
      const outcome = await alice.receiveParcel(mailParcel, { binding: "test" });
      await alice.flush(); // as a binding does after a batch: owed parcels are built
      assert.deepEqual(outcome, { status: "accepted" });

      const inbox = alice.mailbox.list("inbox");
      assert.equal(inbox.length, 1);
      const summary = inbox[0];
      assert.equal(summary.id, mail.messageId);
      assert.equal(summary.threadId, mail.messageId);
      assert.equal(summary.from.id, carol.id);
      assert.equal(summary.from.name, "Carol");
      assert.equal(summary.from.isMe, false);
      assert.deepEqual(summary.to.map((p) => p.id), [aliceId]);
      assert.equal(summary.sentAt.getTime(), sentAt.getTime());
      assert.deepEqual(summary.attachments, [
        { fileName: "report.bin", mediaType: "application/octet-stream", size: attachment.length },
      ]);

      const detail = alice.mailbox.read(mail.messageId);
      assert.equal(detail.subject, mail.subject);
      assert.equal(detail.body, mail.body);
      const attachments = alice.mailbox.attachments(mail.messageId);
      assert.equal(attachments.length, 1);
      assert.equal(attachments[0].fileName, "report.bin");
      assert.equal(attachments[0].mediaType, "application/octet-stream");
      assert.deepEqual(new Uint8Array(attachments[0].content), attachment);
    });

    await t.step("Alice's receipt reaches Carol and names her message (§5)", async () => {
      const forCarol = await collectFor(alice, carol, aliceId);
      const receipts = forCarol.filter((p) => p.message.type === TYPE_RECEIPT);
      assert.equal(receipts.length, 1, "one receipt for Carol");
      const receipt = decodeReceipt(new Uint8Array(receipts[0].message.content));
      assert.deepEqual(receipt.messageIds, [mail.messageId]);
      assert.ok(Math.abs(receipt.receivedAt.getTime() - Date.now()) < DAY_MS);
      assert.equal(
        receipts[0].keyId,
        carol.lastOwnKeyId,
        "encrypted for the newest session key Carol sent: the one her mail parcel carried (§7)",
      );
      await alice.parcelHandedOver(receipts[0].key, { binding: "test", toRecipient: true });
    });

    await t.step(
      "the same mail parcel again is a duplicate, stored once, receipted again (§1.4, §4, §5)",
      async () => {
        const outcome = await alice.receiveParcel(mailParcel, { binding: "test" });
        await alice.flush(); // as a binding does after a batch: owed parcels are built
        assert.deepEqual(outcome, { status: "duplicate" });
        const inbox = alice.mailbox.list("inbox");
        assert.equal(inbox.length, 1);
        assert.equal(inbox[0].id, mail.messageId);
        assert.equal(alice.mailbox.attachments(mail.messageId).length, 1);

        // "and again whenever the same mail parcel arrives a second time" (§5).
        const receipts = (await collectFor(alice, carol, aliceId))
          .filter((p) => p.message.type === TYPE_RECEIPT);
        assert.equal(receipts.length, 1, "a fresh receipt for the repeated parcel");
        assert.deepEqual(
          decodeReceipt(new Uint8Array(receipts[0].message.content)).messageIds,
          [mail.messageId],
        );
        await alice.parcelHandedOver(receipts[0].key, { binding: "test", toRecipient: true });
      },
    );

    await t.step(
      "Alice ignores Mail and Attachment fields with unknown tags (§1.1) in a reply (§4)",
      async () => {
        const reply: CarolMail = {
          messageId: crypto.randomUUID(),
          threadId: mail.messageId,
          inReplyTo: mail.messageId,
          sentAt: new Date(Math.floor(Date.now() / 1000) * 1000), // no fraction this time
          subject: "Re: future fields",
          body: "This Mail carries fields [8] and, in its attachment, [3] from a later version.",
          recipients: [aliceId],
          attachments: [{
            fileName: "note.txt",
            mediaType: "text/plain",
            content: utf8.encode("hi"),
          }],
        };
        const content = encodeMail(reply, {
          mail: [
            implicitPrimitive(8, utf8.encode("some future field")),
            implicitConstructed(9, [implicitPrimitive(0, utf8.encode("x"))]),
          ],
          attachment: [implicitPrimitive(3, utf8.encode("a future attachment field"))],
        });
        const outcome = await alice.receiveParcel(await carol.makeMailParcel(aliceId, content), {
          binding: "test",
        });
        await alice.flush(); // as a binding does after a batch: owed parcels are built
        assert.deepEqual(outcome, { status: "accepted" });
        const detail = alice.mailbox.read(reply.messageId);
        assert.equal(detail.from.id, carol.id);
        assert.equal(detail.threadId, mail.messageId);
        assert.equal(detail.inReplyTo, mail.messageId);
        assert.equal(detail.sentAt.getTime(), reply.sentAt.getTime());
        assert.equal(detail.subject, reply.subject);
        assert.equal(detail.body, reply.body);
        const attachments = alice.mailbox.attachments(reply.messageId);
        assert.equal(attachments.length, 1);
        assert.equal(attachments[0].fileName, "note.txt");
        assert.equal(attachments[0].mediaType, "text/plain");
        assert.deepEqual(new Uint8Array(attachments[0].content), utf8.encode("hi"));
        assert.equal(alice.mailbox.list("inbox").length, 2);

        const receipts = (await collectFor(alice, carol, aliceId))
          .filter((p) => p.message.type === TYPE_RECEIPT);
        assert.equal(receipts.length, 1);
        assert.deepEqual(
          decodeReceipt(new Uint8Array(receipts[0].message.content)).messageIds,
          [reply.messageId],
        );
        // The session keys ratchet: the receipt uses the key Carol's reply parcel carried.
        assert.equal(receipts[0].keyId, carol.lastOwnKeyId);
      },
    );
  } finally {
    alice.close();
    await Deno.remove(dir, { recursive: true });
  }
});
