/**
 * The mailbox at size: listings paged by cursor, full-text search (FTS5), the
 * counters, the schema's V5 migration, and the query plans that keep them from
 * growing with the mailbox. The timings are in tests/bench/mailbox_bench.ts.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { SqliteDatabase } from "../bindings/durable.ts";
import { UserInputError } from "../app/core/errors.ts";
import type { MessageSummary } from "../app/core/mailbox.ts";
import { insertMessage } from "../app/core/message_rows.ts";
import type { MailContent } from "../app/core/protocol/messages.ts";
import { MIGRATIONS } from "../app/core/store/schema.ts";
import { DATABASE_FILE } from "../app/services/relaymail.ts";
import { carry, makeNode, pair, type TestNode } from "./helpers.ts";

const T0 = Date.UTC(2024, 0, 1);

function mail(n: number, sentAt: number, extra: Partial<MailContent> = {}): MailContent {
  return {
    messageId: crypto.randomUUID(),
    threadId: crypto.randomUUID(),
    inReplyTo: "",
    sentAt: new Date(sentAt),
    subject: `Message ${n}`,
    body: `Body of message number ${n}.`,
    recipients: [],
    attachments: [],
    ...extra,
  };
}

/**
 * Stores `count` received messages through the store's write path, sent in an
 * order unlike their arrival and several in the same millisecond.
 */
function fill(node: TestNode, count: number, first = 0, sender = "0" + "ab".repeat(32)): void {
  const db = node.node.ctx.db;
  db.transaction(() => {
    for (let n = first; n < first + count; n++) {
      const sentAt = T0 + ((n * 7919) % 1500) * 1000 + (n % 3 === 0 ? 0 : n % 5);
      insertMessage(db, sender, "inbox", mail(n, sentAt), sentAt, T0 + n);
    }
  });
}

/** The order listings had before they were paged: by sending time, then by row. */
function expectedOrder(node: TestNode, folder = "inbox"): string[] {
  return node.node.ctx.db.all<{ message_id: string }>(
    "SELECT message_id FROM messages WHERE folder = ? ORDER BY sent_at DESC, id DESC",
    folder,
  ).map((row) => row.message_id);
}

async function withNode(fn: (node: TestNode) => Promise<void> | void): Promise<void> {
  const node = await makeNode("Alice");
  try {
    await fn(node);
  } finally {
    await node.close();
  }
}

Deno.test("folderPage() pages past 1,000 messages: each exactly once, in order", async () => {
  await withNode((alice) => {
    fill(alice, 2_345);
    for (const limit of [1, 100, 1_000]) {
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const page = alice.node.mailbox.folderPage("inbox", { limit, cursor });
        assert.ok(page.messages.length <= limit);
        seen.push(...page.messages.map((m) => m.id));
        cursor = page.next;
        pages++;
      } while (cursor !== null);
      assert.deepEqual(seen, expectedOrder(alice), `pages of ${limit}`);
      assert.equal(pages, Math.ceil(2_345 / limit));
    }
    assert.equal(alice.node.mailbox.list("inbox").length, 1_000, "list() keeps its default");
  });
});

Deno.test("folderPage() stays put while mail arrives between pages", async () => {
  await withNode((alice) => {
    fill(alice, 1_200);
    const first = alice.node.mailbox.folderPage("inbox", { limit: 500 });
    const before = new Set(expectedOrder(alice));
    fill(alice, 300, 5_000); // newer and older than the page boundary
    const rest: string[] = [];
    for (let cursor = first.next; cursor !== null;) {
      const page = alice.node.mailbox.folderPage("inbox", { limit: 250, cursor });
      rest.push(...page.messages.map((m) => m.id));
      cursor = page.next;
    }
    const all = [...first.messages.map((m) => m.id), ...rest];
    assert.equal(new Set(all).size, all.length, "no message twice");
    for (const id of before) assert.ok(all.includes(id), "no message skipped");
    const boundary = expectedOrder(alice).indexOf(first.messages.at(-1)!.id);
    assert.deepEqual(rest, expectedOrder(alice).slice(boundary + 1), "the rest, in order");
  });
});

Deno.test("folderPage() refuses a cursor it did not make, and a page of no messages", async () => {
  await withNode((alice) => {
    for (const cursor of ["page 2", "1e9", "99999999999999999999", "-"]) {
      assert.throws(
        () => alice.node.mailbox.folderPage("inbox", { cursor }),
        UserInputError,
        cursor,
      );
    }
    assert.throws(() => alice.node.mailbox.folderPage("inbox", { limit: 0 }), RangeError);
  });
});

Deno.test("searchPage() finds mail by subject, body, sender name and attachment name", async () => {
  const alice = await makeNode("Alice");
  const bob = await makeNode("Bob");
  try {
    await pair(alice, bob);
    await bob.node.mailbox.send({
      to: ["Alice"],
      subject: "Plans for Saturday",
      body: "Bring the tent; we leave at dawn.",
      attachments: [{ fileName: "quarterly-report.pdf", content: new Uint8Array([1, 2, 3]) }],
    });
    await bob.node.mailbox.send({ to: ["Alice"], subject: "Other", body: "Nothing here." });
    await carry(bob.node, alice.node);
    await alice.node.mailbox.send({ to: ["Bob"], subject: "Re: Plans", body: "Tent packed." });
    const subjects = (text: string) =>
      alice.node.mailbox.searchPage(text).messages.map((m: MessageSummary) => m.subject);

    assert.deepEqual(subjects("saturday"), ["Plans for Saturday"], "by subject");
    assert.deepEqual(subjects("DAWN"), ["Plans for Saturday"], "by body, any case");
    assert.deepEqual(subjects("tent"), ["Re: Plans", "Plans for Saturday"], "newest first");
    assert.deepEqual(subjects("quarterly report"), ["Plans for Saturday"], "by attachment");
    assert.deepEqual(subjects("quart*"), ["Plans for Saturday"], "by a word's start");
    assert.deepEqual(subjects("quart"), [], "whole words otherwise");
    assert.deepEqual(subjects("bob"), ["Other", "Plans for Saturday"], "by sender");
    assert.deepEqual(subjects("bob tent"), ["Plans for Saturday"], "every word must match");
    assert.deepEqual(subjects("alice"), ["Re: Plans"], "by this endpoint's own name");
    assert.deepEqual(
      alice.node.mailbox.searchPage("tent", { folder: "inbox" }).messages.map((m) => m.subject),
      ["Plans for Saturday"],
      "in one folder",
    );

    alice.node.contacts.rename("Bob", "Robert Plant");
    assert.deepEqual(subjects("robert"), ["Other", "Plans for Saturday"], "by the new name");
    assert.deepEqual(subjects("plant tent"), ["Plans for Saturday"]);
    assert.deepEqual(subjects("bob"), [], "not by the old one");
  } finally {
    await alice.close();
    await bob.close();
  }
});

Deno.test("searchPage() takes any text: FTS5 syntax is searched as words", async () => {
  await withNode((alice) => {
    const db = alice.node.ctx.db;
    insertMessage(
      db,
      "0" + "cd".repeat(32),
      "inbox",
      {
        ...mail(1, T0),
        subject: 'He said "foo"bar AND left',
        body: "NEAR(x) {subject} col:val ^start -minus; a naïve Café, ＡＢＣ",
      },
      T0,
      T0,
    );
    const found = (text: string) => alice.node.mailbox.searchPage(text).messages.length;
    for (
      const text of [
        'foo"bar',
        "AND",
        "near(x)",
        "{subject}",
        "col:val",
        "^start",
        "-minus",
        '"foo',
        "naive",
        "CAFÉ",
        "ａｂｃ",
        "café\u0000",
      ]
    ) assert.equal(found(text), 1, text);
    for (
      const text of [
        "*",
        '"',
        "",
        "   ",
        "()",
        "OR",
        "NOT",
        "a*b*",
        "**",
        "x".repeat(5000),
        ":",
        "\u0000",
        "a\u0000b*",
      ]
    ) {
      assert.doesNotThrow(() => alice.node.mailbox.searchPage(text), text);
    }
    assert.equal(found("*"), 0, "no word, nothing found");
    assert.throws(
      () => alice.node.mailbox.searchPage(Array(33).fill("w").join(" ")),
      UserInputError,
    );
  });
});

Deno.test("searchPage() pages past 1,000 matches by cursor, newest first", async () => {
  await withNode((alice) => {
    fill(alice, 1_500);
    const seen: string[] = [];
    for (let cursor: string | null = null, first = true; first || cursor !== null; first = false) {
      const page = alice.node.mailbox.searchPage("body number", { limit: 400, cursor });
      seen.push(...page.messages.map((m) => m.id));
      cursor = page.next;
    }
    assert.deepEqual(seen, expectedOrder(alice));
  });
});

Deno.test("counts() and unreadCount() follow inserts, reads and deletes", async () => {
  await withNode((alice) => {
    fill(alice, 40);
    const db = alice.node.ctx.db;
    insertMessage(db, alice.node.identity.id, "sent", mail(99, T0), T0, T0);
    const mailbox = alice.node.mailbox;
    assert.deepEqual(mailbox.counts(), { inbox: 40, sent: 1, archive: 0, outbox: 0, unread: 40 });
    mailbox.read(mailbox.list("inbox")[3].id);
    mailbox.thread(mailbox.list("inbox")[5].id, { markRead: true });
    assert.equal(mailbox.unreadCount(), 38);
    // Whatever code deletes a message, the counters and the index follow.
    const gone = mailbox.list("inbox")[0];
    db.run("DELETE FROM messages WHERE message_id = ?", gone.id);
    assert.deepEqual(mailbox.counts(), { inbox: 39, sent: 1, archive: 0, outbox: 0, unread: 37 });
    assert.equal(mailbox.searchPage(gone.subject.split(" ")[1]).messages.length, 0);
    const truth = db.get<{ n: number }>(
      "SELECT count(*) AS n FROM messages WHERE folder = 'inbox' AND read_at IS NULL",
    )!.n;
    assert.equal(mailbox.unreadCount(), truth);
  });
});

Deno.test("migration V5 keys, indexes and counts the mail of an older database", async () => {
  const dir = await Deno.makeTempDir({ prefix: "relaymail-v5-" });
  const bob = "0" + "b0".repeat(32);
  const old = SqliteDatabase.open(join(dir, DATABASE_FILE), { migrations: MIGRATIONS.slice(0, 4) });
  old.run(
    `INSERT INTO contacts (id, name, state, created_at, last_activity_at)
     VALUES (?, 'Bob Dylan', 'active', 0, 0)`,
    bob,
  );
  for (let n = 0; n < 30; n++) {
    const sentAt = T0 + (n % 4) * 1000; // several in each millisecond
    insertMessage(
      old,
      bob,
      "inbox",
      mail(n, sentAt, {
        attachments: n === 7
          ? [{ fileName: "lyrics.txt", mediaType: "text/plain", content: new Uint8Array(1) }]
          : [],
      }),
      sentAt,
      T0 + n,
    );
  }
  old.run("UPDATE messages SET read_at = 1 WHERE id <= 10");
  old.close();

  const alice = await makeNode("Alice", { dir });
  try {
    const db = alice.node.ctx.db;
    assert.equal(
      db.get<{ v: number }>("SELECT user_version AS v FROM pragma_user_version")?.v,
      MIGRATIONS.length,
    );
    const mailbox = alice.node.mailbox;
    const paged = [
      ...mailbox.folderPage("inbox", { limit: 16 }).messages,
      ...mailbox.folderPage("inbox", {
        limit: 16,
        cursor: mailbox.folderPage("inbox", { limit: 16 }).next,
      }).messages,
    ];
    assert.deepEqual(paged.map((m) => m.id), expectedOrder(alice), "keyed in the old order");
    assert.deepEqual(mailbox.counts(), { inbox: 30, sent: 0, archive: 0, outbox: 0, unread: 20 });
    assert.equal(mailbox.searchPage("lyrics").messages.length, 1, "attachment names indexed");
    assert.equal(mailbox.searchPage("dylan").messages.length, 30, "senders indexed");
    assert.equal(mailbox.searchPage("number 12").messages[0].subject, "Message 12");
    fill(alice, 5, 100, bob); // new mail after the migration joins the same order
    assert.deepEqual(mailbox.list("inbox").map((m) => m.id), expectedOrder(alice));
  } finally {
    await alice.close();
  }
});

Deno.test("over 1,024 messages sent in one millisecond all get a place, old or new", async () => {
  const dir = await Deno.makeTempDir({ prefix: "relaymail-v5-" });
  const sender = "0" + "ee".repeat(32);
  const burst = (db: SqliteDatabase, from: number) =>
    db.transaction(() => {
      insertMessage(db, sender, "inbox", mail(from, T0 + 1), T0 + 1, T0);
      for (let n = from + 1; n < from + 1_100; n++) {
        insertMessage(db, sender, "inbox", mail(n, T0), T0, T0);
      }
    });
  const old = SqliteDatabase.open(join(dir, DATABASE_FILE), { migrations: MIGRATIONS.slice(0, 4) });
  burst(old, 0);
  old.close();
  const alice = await makeNode("Alice", { dir });
  try {
    burst(alice.node.ctx.db, 10_000);
    const keys = alice.node.ctx.db.all<{ list_key: number }>("SELECT list_key FROM messages");
    assert.equal(new Set(keys.map((k) => k.list_key)).size, 2_200);
    const seen: string[] = [];
    for (let cursor: string | null = null, first = true; first || cursor; first = false) {
      const page = alice.node.mailbox.folderPage("inbox", { limit: 300, cursor });
      seen.push(...page.messages.map((m) => m.id));
      cursor = page.next;
    }
    assert.equal(new Set(seen).size, 2_200, "each listed once");
  } finally {
    await alice.close();
  }
});

Deno.test("listings, search and counts read indexes: no scan, and no sort but the outbox's", async () => {
  await withNode((alice) => {
    fill(alice, 200);
    const db = alice.node.ctx.db;
    const archived = alice.node.mailbox.list("inbox", { limit: 30 }).filter((_, i) => i % 3 === 0);
    for (const m of archived) alice.node.mailbox.archive(m.id);
    const ran: { sql: string; params: unknown[] }[] = [];
    // The messenger's own database, noting the queries it is asked.
    const spied = new Proxy(db, {
      get(target, name) {
        const value = Reflect.get(target, name, target);
        if (typeof value !== "function") return value;
        return (...args: unknown[]) => {
          if (name === "all" || name === "get") {
            ran.push({ sql: args[0] as string, params: args.slice(1) });
          }
          return value.apply(target, args);
        };
      },
    });
    (alice.node.ctx as { db: SqliteDatabase }).db = spied;
    const mailbox = alice.node.mailbox;
    const page = mailbox.folderPage("inbox", { limit: 10 });
    mailbox.folderPage("inbox", { limit: 10, cursor: page.next });
    mailbox.folderPage("outbox", { limit: 10 });
    const archive = mailbox.folderPage("archive", { limit: 4 });
    assert.equal(archive.messages.length, 4);
    mailbox.folderPage("archive", { limit: 4, cursor: archive.next });
    mailbox.searchPage("body", { limit: 10, folder: "archive" });
    mailbox.searchPage("body", { limit: 10 });
    mailbox.searchPage("number", { limit: 10, folder: "inbox", cursor: page.next });
    mailbox.unreadCount();
    mailbox.counts();
    (alice.node.ctx as { db: SqliteDatabase }).db = db;
    const mail = ran.filter(({ sql }) => /messages|message_counts|deliveries/.test(sql))
      .filter(({ sql }) => !/FROM (attachments|deliveries) WHERE message = \?/.test(sql));
    assert.ok(mail.length >= 10);
    for (const { sql, params } of mail) {
      const plan = db.all<{ detail: string }>(`EXPLAIN QUERY PLAN ${sql}`, ...params as never[])
        .map((row) => row.detail);
      // The outbox is read from the deliveries in flight, and sorted: they stay few.
      const outbox = plan.some((step) => step.includes("deliveries_by_state"));
      for (const step of plan) {
        assert.doesNotMatch(step, /^SCAN (m|messages)\b/, `${sql}\n${plan}`);
        if (!outbox) assert.doesNotMatch(step, /TEMP B-TREE/, `${sql}\n${plan}`);
      }
    }
  });
});
