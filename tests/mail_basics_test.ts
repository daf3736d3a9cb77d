/**
 * The basics of mail: archive and unarchive, read and unread, delete (purging
 * attachments and the parcels no recipient needs), forward with attachments,
 * and drafts; the counts and search kept right through each; the schema's V6
 * migration; and the same through the web API of a running app.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { SqliteDatabase } from "../bindings/durable.ts";
import { MAX_DRAFTS } from "../app/core/drafts.ts";
import { type MessageDetail, MessageLookupError } from "../app/core/mailbox.ts";
import { insertMessage } from "../app/core/message_rows.ts";
import { MIGRATIONS } from "../app/core/store/schema.ts";
import { DATABASE_FILE } from "../app/services/relaymail.ts";
import type * as api from "../app/web/api_types.ts";
import { carry, makeNode, pair, type TestNode } from "./helpers.ts";
import { startWeb } from "./web/_web.ts";

const text = (s: string) => new TextEncoder().encode(s);

/** Alice and Bob, paired; Bob has sent Alice a message with two attachments. */
async function withPair(
  fn: (alice: TestNode, bob: TestNode, received: string) => Promise<void> | void,
): Promise<void> {
  const alice = await makeNode("Alice");
  const bob = await makeNode("Bob");
  try {
    await pair(alice, bob);
    const sent = await bob.node.mailbox.send({
      to: ["Alice"],
      subject: "Holiday photos",
      body: "Here they are.\nMore soon.",
      attachments: [
        { fileName: "beach.jpg", mediaType: "image/jpeg", content: text("beach bytes") },
        { fileName: "notes.txt", mediaType: "text/plain", content: text("notes bytes") },
      ],
    });
    await carry(bob.node, alice.node);
    await fn(alice, bob, sent.id);
  } finally {
    await alice.close();
    await bob.close();
  }
}

/** Each folder's counts, checked against a count of the rows themselves. */
function checkedCounts(node: TestNode) {
  const counts = node.node.mailbox.counts();
  const truth = (where: string) =>
    node.node.ctx.db.get<{ n: number }>(`SELECT count(*) AS n FROM messages WHERE ${where}`)!.n;
  assert.equal(counts.inbox, truth("folder = 'inbox' AND archived = 0"));
  assert.equal(counts.sent, truth("folder = 'sent' AND archived = 0"));
  assert.equal(counts.archive, truth("archived = 1"));
  assert.equal(counts.unread, truth("folder = 'inbox' AND archived = 0 AND read_at IS NULL"));
  assert.equal(node.node.mailbox.unreadCount(), counts.unread);
  return counts;
}

/** What a search finds: each result's id and folder. */
function found(node: TestNode, words: string, folder?: api.Folder) {
  return node.node.mailbox.searchPage(words, { folder }).messages.map((m) => [m.id, m.folder]);
}

Deno.test("archive() moves mail out of its folder and back, with counts and search", async () => {
  await withPair(async (alice, _bob, received) => {
    const mailbox = alice.node.mailbox;
    const reply = await mailbox.send({ replyTo: received, body: "Lovely photos" });
    assert.deepEqual(checkedCounts(alice), {
      inbox: 1,
      sent: 1,
      archive: 0,
      outbox: 1,
      unread: 1,
    });

    const archived = mailbox.archive(received);
    assert.equal(archived.folder, "archive");
    assert.equal(archived.archived, true);
    assert.deepEqual(mailbox.list("inbox"), []);
    assert.deepEqual(mailbox.list("archive").map((m) => m.id), [received]);
    assert.deepEqual(checkedCounts(alice), {
      inbox: 0,
      sent: 1,
      archive: 1,
      outbox: 1,
      unread: 0,
    });
    assert.deepEqual(found(alice, "photos"), [[reply.id, "sent"], [received, "archive"]]);
    assert.deepEqual(found(alice, "photos", "archive"), [[received, "archive"]]);
    assert.deepEqual(found(alice, "photos", "inbox"), []);
    // Archiving again changes nothing; so does unarchiving what is not archived.
    assert.equal(mailbox.archive(received).folder, "archive");
    assert.equal(mailbox.archive(reply.id, false).folder, "sent");

    mailbox.archive(reply.id);
    assert.deepEqual(mailbox.list("sent"), []);
    assert.equal(mailbox.list("outbox")[0].id, reply.id, "the outbox shows it while undelivered");
    assert.equal(checkedCounts(alice).archive, 2);

    assert.equal(mailbox.archive(received, false).folder, "inbox");
    assert.equal(mailbox.archive(reply.id, false).folder, "sent");
    assert.deepEqual(checkedCounts(alice), {
      inbox: 1,
      sent: 1,
      archive: 0,
      outbox: 1,
      unread: 1,
    });
    assert.deepEqual(found(alice, "photos"), [[reply.id, "sent"], [received, "inbox"]]);
    assert.throws(() => mailbox.archive("ffffffff"), MessageLookupError);
  });
});

Deno.test("markRead() marks mail read and unread, in the counts too", async () => {
  await withPair((alice, _bob, received) => {
    const mailbox = alice.node.mailbox;
    assert.equal(mailbox.markRead(received).read, true);
    assert.equal(checkedCounts(alice).unread, 0);
    assert.equal(mailbox.markRead(received, false).read, false);
    assert.equal(mailbox.markRead(received, false).read, false);
    assert.equal(checkedCounts(alice).unread, 1);
    mailbox.archive(received);
    assert.equal(checkedCounts(alice).unread, 0, "archived mail is not unread in the inbox");
    mailbox.markRead(received);
    mailbox.archive(received, false);
    assert.equal(checkedCounts(alice).unread, 0);
  });
});

Deno.test("delete() purges a message's attachments, index entry and count", async () => {
  await withPair((alice, _bob, received) => {
    const mailbox = alice.node.mailbox;
    const db = alice.node.ctx.db;
    assert.equal(found(alice, "beach").length, 1);
    const result = mailbox.delete(received.slice(0, 8));
    assert.deepEqual(result, {
      deleted: received,
      attachments: 2,
      parcels: 0,
      cancelled: [],
      riding: [],
    });
    assert.equal(db.get<{ n: number }>("SELECT count(*) AS n FROM attachments")!.n, 0);
    assert.deepEqual(found(alice, "beach"), []);
    assert.deepEqual(found(alice, "photos"), []);
    assert.deepEqual(checkedCounts(alice), {
      inbox: 0,
      sent: 0,
      archive: 0,
      outbox: 0,
      unread: 0,
    });
    assert.throws(() => mailbox.delete(received), MessageLookupError, "deleting twice");
    assert.throws(() => mailbox.read(received), MessageLookupError);
  });
});

Deno.test("delete() of archived mail takes it out of the archive's count", async () => {
  await withPair((alice, _bob, received) => {
    alice.node.mailbox.archive(received);
    alice.node.mailbox.delete(received);
    assert.equal(checkedCounts(alice).archive, 0);
  });
});

Deno.test("delete() cancels copies that have not left: their parcels are dropped", async () => {
  await withPair(async (alice, bob, received) => {
    const mailbox = alice.node.mailbox;
    const db = alice.node.ctx.db;
    const queued = await mailbox.send({ replyTo: received, body: "Answer" });
    const key = queued.deliveries[0].parcelKey!;
    const keys = async () => (await alice.node.outgoingParcels()).map((p) => p.key);
    assert.ok((await keys()).includes(key));

    const result = mailbox.delete(queued.id);
    assert.equal(result.parcels, 1);
    assert.deepEqual(result.cancelled.map((p) => p.name), ["Bob"]);
    assert.equal(db.get("SELECT 1 AS x FROM outgoing_parcels WHERE key = ?", key), undefined);
    assert.equal(db.get("SELECT 1 AS x FROM deliveries"), undefined);
    assert.ok(!(await keys()).includes(key), "no binding is offered it");
    // A binding that held the parcel's key can no longer hand it over, nor record a path.
    await alice.node.parcelHandedOver(key, { binding: "test", toRecipient: true });
    assert.equal(db.get("SELECT 1 AS x FROM handovers WHERE parcel_key = ?", key), undefined);
    assert.deepEqual(checkedCounts(alice), {
      inbox: 1,
      sent: 0,
      archive: 0,
      outbox: 0,
      unread: 1,
    });
    await carry(alice.node, bob.node);
    assert.deepEqual(bob.node.mailbox.list("inbox"), [], "nothing reached Bob");
  });
});

Deno.test("delete() keeps a parcel that left; drops the record of one delivered", async () => {
  await withPair(async (alice, bob, received) => {
    const mailbox = alice.node.mailbox;
    const db = alice.node.ctx.db;
    const relayed = await mailbox.send({ replyTo: received, body: "With a relay" });
    const relayedKey = relayed.deliveries[0].parcelKey!;
    await alice.node.parcelHandedOver(relayedKey, { binding: "test", toRecipient: false });
    const delivered = await mailbox.send({ replyTo: received, body: "Delivered" });
    const deliveredKey = delivered.deliveries[0].parcelKey!;
    const parcel = (await alice.node.outgoingParcels()).find((p) => p.key === deliveredKey)!;
    await bob.node.receiveParcel((await parcel.read())!, { binding: "test" });
    await alice.node.parcelHandedOver(deliveredKey, { binding: "test", toRecipient: true });

    assert.deepEqual(mailbox.delete(relayed.id), {
      deleted: relayed.id,
      attachments: 0,
      parcels: 0,
      cancelled: [],
      riding: [],
    });
    const kept = db.get<{ state: string }>(
      "SELECT state FROM outgoing_parcels WHERE key = ?",
      relayedKey,
    );
    assert.equal(kept?.state, "sent", "the relay may still carry it on");
    assert.equal(mailbox.delete(delivered.id).parcels, 0);
    assert.equal(
      db.get("SELECT 1 AS x FROM outgoing_parcels WHERE key = ?", deliveredKey),
      undefined,
    );
    assert.equal(
      db.get("SELECT 1 AS x FROM handovers WHERE parcel_key = ?", deliveredKey),
      undefined,
    );
    assert.equal(bob.node.mailbox.list("inbox").length, 1);
  });
});

Deno.test("delete() cancels a copy waiting for a contact, and keeps the pairing going", async () => {
  const alice = await makeNode("Alice");
  const carol = await makeNode("Carol");
  try {
    const invitation = await alice.node.pairing.createInvitation({ contactName: "Carol" });
    await carol.node.pairing.acceptInvitation(invitation.text, { name: "Alice" });
    const requests = () =>
      carol.node.ctx.db.all("SELECT key FROM outgoing_parcels WHERE kind = 'pairing-request'");
    assert.equal(requests().length, 1);
    // Written at once, the first mail waits for Alice's answer, or rides in the
    // pairing request: then it goes with the request, which is not dropped.
    const first = await carol.node.mailbox.send({ to: ["Alice"], body: "First" });
    const rides = first.deliveries[0].state === "queued";
    const dropped = carol.node.mailbox.delete(first.id);
    assert.equal(dropped.parcels, 0);
    assert.deepEqual(dropped.cancelled.map((p) => p.name), rides ? [] : ["Alice"]);
    assert.equal(requests().length, 1, "the pairing request is kept");
    await carry(carol.node, alice.node);

    // Written before the answer, once the request has left: it waits.
    const waiting = await carol.node.mailbox.send({ to: ["Alice"], body: "Second" });
    assert.equal(waiting.deliveries[0].state, "waiting");
    const result = carol.node.mailbox.delete(waiting.id);
    assert.deepEqual(result.cancelled.map((p) => p.name), ["Alice"]);
    assert.equal(result.parcels, 0);
    await carry(alice.node, carol.node);
    assert.equal(carol.node.contacts.find("Alice").state, "active", "the pairing completed");
    assert.equal(await carol.node.mailbox.flushWaiting(alice.node.identity.id), 0);
    await carry(carol.node, alice.node);
    const bodies = alice.node.mailbox.list("inbox").map((m) => alice.node.mailbox.read(m.id).body);
    assert.ok(!bodies.includes("Second"), "the cancelled copy never left");
  } finally {
    await alice.close();
    await carol.close();
  }
});

Deno.test("forward() carries the attachments, quotes the original, says Fwd", async () => {
  await withPair(async (alice, bob, received) => {
    const forwarded = await alice.node.mailbox.forward(received.slice(0, 6), {
      to: ["Bob"],
      body: "Look at these",
      attachments: [{ fileName: "mine.txt", content: text("mine") }],
    });
    assert.equal(forwarded.subject, "Fwd: Holiday photos");
    assert.match(forwarded.body, /^Look at these\n\n> ---------- Forwarded message/);
    assert.match(forwarded.body, /\n> From: Bob \(/);
    assert.match(forwarded.body, /\n> Here they are\.\n> More soon\.$/);
    assert.notEqual(forwarded.threadId, bob.node.mailbox.list("sent")[0].threadId);
    assert.deepEqual(
      forwarded.attachments.map((a) => a.fileName),
      ["beach.jpg", "notes.txt", "mine.txt"],
    );
    await carry(alice.node, bob.node);
    const [arrived] = bob.node.mailbox.list("inbox");
    assert.equal(arrived.id, forwarded.id);
    const files = bob.node.mailbox.attachments(arrived.id);
    assert.deepEqual(files.map((a) => new TextDecoder().decode(a.content)), [
      "beach bytes",
      "notes bytes",
      "mine",
    ]);
    // A forward of a forward keeps one "Fwd:".
    const again = await alice.node.mailbox.forward(forwarded.id, { to: ["Bob"] });
    assert.equal(again.subject, "Fwd: Holiday photos");
  });
});

Deno.test("send() with forward carries the attachments picked, and refuses one not there", async () => {
  await withPair(async (alice, _bob, received) => {
    const mailbox = alice.node.mailbox;
    const sent = await mailbox.send({
      to: ["Bob"],
      subject: "Fwd: only the notes",
      body: "",
      forward: received,
      forwardAttachments: [1],
    });
    assert.deepEqual(sent.attachments.map((a) => a.fileName), ["notes.txt"]);
    await assert.rejects(
      mailbox.send({ to: ["Bob"], body: "", forward: received, forwardAttachments: [2] }),
      /Cannot forward attachment 2 of message .*: it has 2, numbered 0 to 1/,
    );
    await assert.rejects(
      mailbox.send({ to: ["Bob"], body: "", forward: "ffffffff" }),
      MessageLookupError,
    );
    assert.equal(mailbox.list("sent").length, 1);
  });
});

Deno.test("drafts: saved cheaply and idempotently, listed, bounded, deleted", async () => {
  await withPair((alice, bob, received) => {
    const drafts = alice.node.mailbox.drafts;
    const changes: unknown[] = [];
    alice.node.events.addEventListener("drafts-changed", (e) => changes.push(e.type));
    const first = drafts.create({ to: ["Bob"], subject: "Plans", body: "Sat" });
    assert.deepEqual(first.to, [bob.node.identity.id]);
    alice.clock.advance(1000);
    const second = drafts.create({ replyTo: received.slice(0, 6), forward: null });
    assert.equal(second.replyTo, received);
    assert.deepEqual(drafts.list().map((d) => d.id), [second.id, first.id]);

    alice.clock.advance(1000);
    const typed = drafts.update(first.id, { body: "Saturday" });
    assert.equal(typed.subject, "Plans", "what is not given stays");
    assert.equal(typed.body, "Saturday");
    assert.ok(typed.updatedAt > first.updatedAt);
    assert.deepEqual(drafts.list().map((d) => d.id), [first.id, second.id]);
    const events = changes.length;
    alice.clock.advance(1000);
    const same = drafts.update(first.id.slice(0, 8), { body: "Saturday", to: ["Bob"] });
    assert.deepEqual(same, typed, "the same save again writes nothing");
    assert.equal(changes.length, events);

    assert.throws(
      () => drafts.update(first.id, { subject: "x".repeat(1000) }),
      /subject exceeds/,
    );
    assert.throws(() => drafts.create({ to: ["Nobody"] }), /No contact/);
    assert.throws(() => drafts.update("ffffffff", {}), /No draft "ffffffff"/);
    assert.equal(drafts.delete(second.id), second.id);
    assert.throws(() => drafts.delete(second.id), /No draft/);
    assert.deepEqual(drafts.list().map((d) => d.id), [first.id]);
  });
});

Deno.test("drafts: at most MAX_DRAFTS are kept", async () => {
  const alice = await makeNode("Alice");
  try {
    const db = alice.node.ctx.db;
    db.transaction(() => {
      for (let n = 1; n < MAX_DRAFTS; n++) {
        db.run(
          "INSERT INTO drafts (id, recipients, subject, body, updated_at) VALUES (?, '[]', '', '', ?)",
          crypto.randomUUID(),
          n,
        );
      }
    });
    alice.node.mailbox.drafts.create({ body: "the last one" });
    assert.throws(
      () => alice.node.mailbox.drafts.create({ body: "one too many" }),
      /Cannot save another draft: there are 1000, the most kept/,
    );
  } finally {
    await alice.close();
  }
});

Deno.test("sendDraft() sends a draft once and deletes it; a failed send keeps it", async () => {
  await withPair(async (alice, bob, received) => {
    const mailbox = alice.node.mailbox;
    const empty = mailbox.drafts.create({ subject: "No one yet" });
    await assert.rejects(mailbox.sendDraft(empty.id), /give at least one recipient/);
    assert.deepEqual(mailbox.drafts.list().map((d) => d.id), [empty.id], "kept");

    const draft = mailbox.drafts.create({ to: ["Bob"], body: "FYI", forward: received });
    const [sent, twice] = await Promise.allSettled([
      mailbox.sendDraft(draft.id),
      mailbox.send({ to: ["Bob"], body: "FYI", draft: draft.id }),
    ]);
    assert.equal(sent.status, "fulfilled");
    assert.equal(twice.status, "rejected");
    assert.match(String(twice.reason), /No draft/);
    const message = (sent as PromiseFulfilledResult<MessageDetail>).value;
    assert.deepEqual(message.attachments.map((a) => a.fileName), ["beach.jpg", "notes.txt"]);
    assert.deepEqual(mailbox.drafts.list().map((d) => d.id), [empty.id]);
    assert.equal(mailbox.list("sent").length, 1);
    await carry(alice.node, bob.node);
    assert.equal(bob.node.mailbox.list("inbox")[0].subject, "");
  });
});

Deno.test("message-changed follows archive, read state and delete, after commit", async () => {
  await withPair((alice, _bob, received) => {
    const seen: unknown[] = [];
    alice.node.events.addEventListener("message-changed", (e) => {
      seen.push((e as CustomEvent).detail);
    });
    const mailbox = alice.node.mailbox;
    mailbox.archive(received);
    mailbox.archive(received); // no change: no event
    mailbox.markRead(received);
    mailbox.delete(received);
    assert.deepEqual(seen, [{ id: received }, { id: received }, { id: received }]);
  });
});

Deno.test("migration V6 counts an older database's mail, and archives it after", async () => {
  const dir = await Deno.makeTempDir({ prefix: "relaymail-v6-" });
  const old = SqliteDatabase.open(join(dir, DATABASE_FILE), { migrations: MIGRATIONS.slice(0, 5) });
  const sender = "0" + "cd".repeat(32);
  for (let n = 0; n < 12; n++) {
    insertMessage(
      old,
      sender,
      "inbox",
      {
        messageId: crypto.randomUUID(),
        threadId: crypto.randomUUID(),
        inReplyTo: "",
        sentAt: new Date(1_700_000_000_000 + n),
        subject: `Old ${n}`,
        body: "kept",
        recipients: [],
        attachments: [],
      },
      1_700_000_000_000 + n,
      1_700_000_000_000 + n,
    );
  }
  old.run("UPDATE messages SET read_at = 1 WHERE id <= 4");
  old.close();
  const alice = await makeNode("Alice", { dir });
  try {
    const mailbox = alice.node.mailbox;
    assert.deepEqual(checkedCounts(alice), {
      inbox: 12,
      sent: 0,
      archive: 0,
      outbox: 0,
      unread: 8,
    });
    for (const m of mailbox.list("inbox").slice(0, 5)) mailbox.archive(m.id);
    assert.deepEqual(checkedCounts(alice), {
      inbox: 7,
      sent: 0,
      archive: 5,
      outbox: 0,
      unread: 3,
    });
    assert.equal(mailbox.searchPage("kept", { folder: "archive" }).messages.length, 5);
  } finally {
    await alice.close();
  }
});

Deno.test("web API: archive, read, delete, forward and drafts as the page calls them", async () => {
  await withPair(async (alice, _bob, received) => {
    const { web, base, bearer } = await startWeb(alice.node);
    const call = async (method: string, path: string, body?: unknown) => {
      const response = await fetch(`${base}${path}`, {
        method,
        headers: {
          ...bearer(),
          ...(body === undefined || body instanceof FormData
            ? {}
            : { "content-type": "application/json" }),
        },
        body: body instanceof FormData
          ? body
          : body === undefined
          ? undefined
          : JSON.stringify(body),
      });
      return { status: response.status, json: await response.json() };
    };
    try {
      const archived = await call("POST", `/api/messages/${received}/archive`, { archived: true });
      assert.equal(archived.status, 200);
      assert.equal((archived.json as api.MessageSummary).folder, "archive");
      assert.equal((archived.json as api.MessageSummary).archived, true);
      const page = (await call("GET", "/api/messages?folder=archive")).json as api.MessagePage;
      assert.deepEqual(page.messages.map((m) => m.id), [received]);
      assert.deepEqual((await call("GET", "/api/messages")).json.messages, []);
      const search = (await call("GET", "/api/messages?q=photos")).json as api.MessagePage;
      assert.deepEqual(search.messages.map((m) => m.folder), ["archive"]);
      const back = await call("POST", `/api/messages/${received}/archive`, { archived: false });
      assert.equal((back.json as api.MessageSummary).folder, "inbox");
      assert.equal((await call("POST", `/api/messages/${received}/archive`, {})).status, 400);
      assert.match(
        (await call("POST", `/api/messages/${received}/read`, { read: "yes" })).json.error,
        /"read" must be true or false, not text/,
      );
      assert.equal(
        (await call("POST", `/api/messages/${received}/read`, { read: true })).json.read,
        true,
      );
      const unread = await call("POST", `/api/messages/${received}/read`, { read: false });
      assert.equal((unread.json as api.MessageSummary).read, false);
      assert.equal(
        (await call("POST", "/api/messages/ffffffff/archive", { archived: true })).status,
        404,
      );

      // Drafts
      const created = await call("POST", "/api/drafts", {
        to: ["Bob"],
        subject: "Fwd: Holiday photos",
      });
      assert.equal(created.status, 200);
      const draft = created.json as api.Draft;
      assert.deepEqual(draft.to, [alice.node.contacts.find("Bob").id]);
      const saved = await call("PUT", `/api/drafts/${draft.id}`, {
        body: "See these",
        forward: received,
      });
      assert.equal((saved.json as api.Draft).forward, received);
      assert.equal((saved.json as api.Draft).subject, "Fwd: Holiday photos");
      const again = await call("PUT", `/api/drafts/${draft.id}`, { body: "See these" });
      assert.deepEqual(again.json, saved.json);
      assert.equal((await call("PUT", "/api/drafts/ffffffff", { body: "x" })).status, 404);
      assert.equal((await call("PUT", `/api/drafts/${draft.id}`, { to: "Bob" })).status, 400);
      const list = (await call("GET", "/api/drafts")).json as api.Draft[];
      assert.deepEqual(list.map((d) => d.id), [draft.id]);

      // Forward, sent from the draft: one attachment of the original, one new file.
      const form = new FormData();
      form.append("to", "Bob");
      form.append("subject", "Fwd: Holiday photos");
      form.append("body", "See these");
      form.append("forward", received);
      form.append("forwardAttachment", "1");
      form.append("draft", draft.id);
      form.append("attachments", new File([text("new")], "new.txt", { type: "text/plain" }));
      const sent = await call("POST", "/api/send", form);
      assert.equal(sent.status, 200, JSON.stringify(sent.json));
      const message = sent.json as api.MessageDetail;
      assert.deepEqual(message.attachments.map((a) => a.fileName), ["notes.txt", "new.txt"]);
      assert.deepEqual((await call("GET", "/api/drafts")).json, []);
      const resent = await call("POST", "/api/send", form);
      assert.equal(resent.status, 400, "the draft was sent: not twice");
      assert.match(resent.json.error, /No draft/);

      const bad = new FormData();
      bad.append("to", "Bob");
      bad.append("forward", received);
      bad.append("forwardAttachment", "seven");
      assert.equal((await call("POST", "/api/send", bad)).status, 400);

      // Delete: the queued forward is cancelled and its parcel dropped.
      const deleted = await call("DELETE", `/api/messages/${message.id}`);
      assert.deepEqual(deleted.json, {
        deleted: message.id,
        attachments: 2,
        parcels: 1,
        riding: [],
      });
      assert.equal((await call("DELETE", `/api/messages/${message.id}`)).status, 404);
      const other = (await call("POST", "/api/drafts", {})).json as api.Draft;
      assert.deepEqual((await call("DELETE", `/api/drafts/${other.id}`)).json, {
        deleted: other.id,
      });
      assert.equal((await call("DELETE", `/api/drafts/${other.id}`)).status, 404);
    } finally {
      await web.stop();
    }
  });
});
