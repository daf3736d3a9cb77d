import assert from "node:assert/strict";
import PostalMime from "postal-mime";
import { messageToEml, threadToEml } from "../app/core/eml.ts";
import { carry, makeNode, pair } from "./helpers.ts";

Deno.test("messageToEml() and threadToEml() write mail an ordinary client reads back", async () => {
  const alice = await makeNode("Alice");
  const bob = await makeNode("Bob");
  try {
    await pair(alice, bob);
    const pdf = crypto.getRandomValues(new Uint8Array(3000));
    const first = await alice.node.mailbox.send({
      to: ["Bob"],
      subject: "Ünïcode & attachments",
      body: "Première ligne\nSecond line — with dashes.",
      attachments: [{ fileName: "plan.pdf", mediaType: "application/pdf", content: pdf }],
    });
    await carry(alice.node, bob.node);
    const reply = await bob.node.mailbox.send({ replyTo: first.id, body: "Got it." });
    await carry(bob.node, alice.node);

    const exportable = (id: string) => alice.node.mailbox.exportable(id);
    const parsed = await PostalMime.parse(await messageToEml(exportable(first.id)));
    assert.equal(parsed.subject, "Ünïcode & attachments");
    assert.equal(parsed.text?.trim(), "Première ligne\nSecond line — with dashes.");
    assert.equal(parsed.from?.name, "Alice");
    assert.equal(parsed.from?.address, `${alice.node.identity.id}@relaymail.invalid`);
    assert.deepEqual(parsed.to?.map((a) => a.name), ["Bob"]);
    assert.equal(parsed.messageId, `<${first.id}@relaymail.invalid>`);
    assert.equal(
      new Date(parsed.date!).getTime(),
      Math.floor(first.sentAt.getTime() / 1000) * 1000,
    );
    assert.equal(parsed.attachments.length, 1);
    assert.equal(parsed.attachments[0].filename, "plan.pdf");
    assert.equal(parsed.attachments[0].mimeType, "application/pdf");
    assert.deepEqual(new Uint8Array(parsed.attachments[0].content as ArrayBuffer), pdf);

    const parsedReply = await PostalMime.parse(await messageToEml(exportable(reply.id)));
    assert.equal(parsedReply.inReplyTo, `<${first.id}@relaymail.invalid>`);
    assert.equal(parsedReply.references, `<${first.id}@relaymail.invalid>`);

    const thread = await PostalMime.parse(
      await threadToEml(
        alice.node.mailbox.thread(first.id).map((m) => exportable(m.id)),
        { ...alice.node.identity.info(), isMe: true },
        new Date(),
      ),
    );
    assert.equal(thread.subject, "Conversation: Ünïcode & attachments");
    const inner = thread.attachments.filter((a) => a.mimeType === "message/rfc822");
    assert.equal(inner.length, 2);
    const second = await PostalMime.parse(inner[1].content as ArrayBuffer);
    assert.equal(second.subject, "Re: Ünïcode & attachments");
    assert.equal(second.text?.trim(), "Got it.");
  } finally {
    await alice.close();
    await bob.close();
  }
});
