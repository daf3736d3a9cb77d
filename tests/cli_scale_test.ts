/**
 * The mailbox at size through the CLI, one process per command as a person
 * runs it, on a data directory of 2,500 messages built by tests/_mailbox_fixture.ts
 * (plus one older than all, from a contact who sent nothing else): `inbox` and
 * `sent` followed page by page with `--before` to the oldest message, each
 * message once and in the database's order; the `--json` shapes; `status`'s
 * counts; `search` by a word of the subject, the body, an attachment's name and
 * the sender's name (again after a rename), past 1,000 matches; and bad
 * `--limit` and `--before` values refused as usage errors. Checked against the
 * database's rows, read without the full-text index or the counters.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type CliRun, relaymail } from "./_cli.ts";
import {
  addNeedle,
  aliceIn,
  fillMailbox,
  folderOrder,
  messagesWithWord,
  type Needle,
  RARE,
  unreadInInbox,
} from "./_mailbox_fixture.ts";

const SIZE = 2_500;

/** The data directory of a mailbox of SIZE messages and the needle, and what its rows say. */
interface Mailbox {
  readonly dir: string;
  readonly needle: Needle;
  readonly inbox: string[];
  readonly sent: string[];
  readonly unread: number;
  /** Messages holding each word searched, from the rows; computed once the mailbox is built. */
  readonly matches: (word: string) => string[];
}

async function buildMailbox(root: string): Promise<Mailbox> {
  const { alice } = await aliceIn(join(root, "alice"));
  try {
    fillMailbox(alice.node, SIZE);
    const needle = await addNeedle(alice);
    const found = new Map<string, string[]>();
    for (const word of [RARE, "the", needle.subjectWord, needle.bodyWord, needle.attachmentWord]) {
      found.set(word, messagesWithWord(alice.node, word));
    }
    return {
      dir: alice.dir,
      needle,
      inbox: folderOrder(alice.node, "inbox"),
      sent: folderOrder(alice.node, "sent"),
      unread: unreadInInbox(alice.node),
      matches: (word) => found.get(word)!,
    };
  } finally {
    alice.node.close(); // the data directory stays, for the commands
  }
}

/** Runs a command that must succeed; returns its output. */
async function ok(dir: string, ...args: string[]): Promise<CliRun> {
  const run = await relaymail(dir, args);
  assert.equal(run.code, 0, `relaymail ${args.join(" ")}: ${run.stderr}`);
  return run;
}

/** A page as `--json` prints it once `--limit` or `--before` asks for pages. */
interface JsonPage {
  messages: { id: string; [field: string]: unknown }[];
  next: string | null;
}

async function jsonPage(dir: string, ...args: string[]): Promise<JsonPage> {
  const page = JSON.parse((await ok(dir, ...args, "--json")).stdout);
  assert.deepEqual(Object.keys(page).sort(), ["messages", "next"], `the shape of ${args}`);
  assert.ok(Array.isArray(page.messages));
  assert.ok(page.next === null || /^\d+$/.test(page.next), `a cursor: ${page.next}`);
  return page;
}

/** Every page of `args` (a listing or a search), following `next`; the ids, and how many pages. */
async function allPages(
  dir: string,
  args: string[],
  limit: number,
): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let pages = 0;
  let cursor: string | null = null;
  do {
    const page: JsonPage = await jsonPage(
      dir,
      ...args,
      "--limit",
      String(limit),
      ...(cursor ? ["--before", cursor] : []),
    );
    assert.ok(page.messages.length <= limit, `a page of ${page.messages.length}`);
    assert.ok(page.messages.length > 0 || pages === 0, "no empty page after a cursor");
    ids.push(...page.messages.map((m) => m.id));
    cursor = page.next;
    pages++;
  } while (cursor !== null);
  return { ids, pages };
}

/** The ids (their first 8 characters) of a printed message table, and its `more:` cursor. */
function printedPage(stdout: string): { ids: string[]; more: string | null } {
  const lines = stdout.trimEnd().split("\n");
  assert.match(lines[0], /^ID\s+DATE/, stdout);
  const more = /^more: --before (\d+)$/.exec(lines.at(-1) ?? "")?.[1] ?? null;
  const rows = lines.slice(1, more ? -1 : undefined);
  return { ids: rows.map((line) => line.slice(1, 9)), more };
}

const short = (ids: string[]) => ids.map((id) => id.slice(0, 8));

Deno.test("CLI at 2,500 messages: pages to the oldest, counts, search", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "relaymail-cli-scale-" });
  try {
    const box = await buildMailbox(root);
    const { dir, needle } = box;
    assert.ok(box.inbox.length > 2_000 && box.inbox.at(-1) === needle.id, "the needle is oldest");

    await t.step("inbox --limit --before --json follows `next` to the oldest", async () => {
      const { ids, pages } = await allPages(dir, ["inbox"], 1_000);
      assert.equal(new Set(ids).size, ids.length, "no message twice");
      assert.deepEqual(ids, box.inbox, "every message, in order: no gap");
      assert.equal(pages, Math.ceil(box.inbox.length / 1_000));
    });

    await t.step("a page's messages say who, what, when and what is attached", async () => {
      const cursor = await cursorBefore(dir, box.inbox, box.inbox.length - 1);
      const last = await jsonPage(dir, "inbox", "--limit", "5", "--before", cursor);
      assert.equal(last.next, null, "the last page has no next");
      assert.deepEqual(last.messages.map((m) => m.id), [needle.id]);
      const message = last.messages[0] as any;
      assert.equal(message.folder, "inbox");
      assert.equal(message.from.name, needle.sender);
      assert.equal(message.from.id, needle.senderId);
      assert.equal(message.subject, `Harbour ${needle.subjectWord}`);
      assert.equal(message.sentAt, "2019-06-01T09:30:00.000Z");
      assert.equal(message.read, false);
      assert.deepEqual(message.attachments.map((a: any) => a.fileName), [needle.attachmentName]);
      assert.equal(message.body, undefined, "a listing carries no bodies");
    });

    await t.step("bare --json prints the newest page as a list", async () => {
      const list = JSON.parse((await ok(dir, "inbox", "--json")).stdout);
      assert.ok(Array.isArray(list));
      assert.deepEqual(list.map((m: any) => m.id), box.inbox.slice(0, 100));
    });

    await t.step(
      "the table prints the cursor of the next page, and the last page none",
      async () => {
        const first = printedPage((await ok(dir, "inbox", "--limit", "3")).stdout);
        assert.deepEqual(first.ids, short(box.inbox.slice(0, 3)));
        assert.ok(first.more, "a cursor for the next page");
        const second = printedPage(
          (await ok(dir, "inbox", "--limit", "3", "--before", first.more!)).stdout,
        );
        assert.deepEqual(second.ids, short(box.inbox.slice(3, 6)));
        const cursor = await cursorBefore(dir, box.inbox, box.inbox.length - 2);
        const last = await ok(dir, "inbox", "--limit", "2", "--before", cursor);
        const printed = printedPage(last.stdout);
        assert.deepEqual(printed.ids, short(box.inbox.slice(-2)));
        assert.equal(printed.more, null, last.stdout);
        assert.match(last.stdout, new RegExp(`\\*${needle.id.slice(0, 8)}.*${needle.sender}`));
      },
    );

    await t.step("sent pages to the oldest too", async () => {
      const { ids } = await allPages(dir, ["sent"], 100);
      assert.deepEqual(ids, box.sent);
    });

    await t.step("status counts what the database holds", async () => {
      const status = JSON.parse((await ok(dir, "status", "--json")).stdout);
      assert.equal(status.mail.inbox, box.inbox.length);
      assert.equal(status.mail.sent, box.sent.length);
      assert.equal(status.mail.unread, box.unread);
      assert.equal(status.unread, box.unread);
      assert.equal(status.mail.outbox, 0);
    });

    await t.step("search finds by subject, body, attachment name and sender", async () => {
      for (
        const word of [needle.subjectWord, needle.bodyWord, needle.attachmentWord, needle.sender]
      ) {
        const found = JSON.parse((await ok(dir, "search", word, "--json")).stdout);
        assert.deepEqual(found.map((m: any) => m.id), [needle.id], `search ${word}`);
      }
      const rare = JSON.parse((await ok(dir, "search", RARE, "--json")).stdout);
      assert.ok(box.matches(RARE).length >= 10);
      assert.deepEqual(rare.map((m: any) => m.id), box.matches(RARE), `search ${RARE}`);
      const page = await jsonPage(dir, "search", needle.bodyWord, "--limit", "5");
      assert.deepEqual(page.messages.map((m) => m.id), [needle.id]);
      assert.equal(page.next, null);
    });

    await t.step("search pages past 1,000 matches to the oldest", async () => {
      const expected = box.matches("the");
      assert.ok(expected.length > 2_000 && expected.at(-1) === needle.id);
      const { ids, pages } = await allPages(dir, ["search", "the"], 1_000);
      assert.equal(new Set(ids).size, ids.length, "no message twice");
      assert.deepEqual(ids, expected);
      assert.equal(pages, Math.ceil(expected.length / 1_000));
    });

    await t.step("a renamed sender is found by the new name, not the old", async () => {
      await ok(dir, "contacts", "rename", needle.sender, "Zelda");
      const renamed = JSON.parse((await ok(dir, "search", "zelda", "--json")).stdout);
      assert.deepEqual(renamed.map((m: any) => m.id), [needle.id]);
      assert.equal(renamed[0].from.name, "Zelda");
      const old = JSON.parse((await ok(dir, "search", needle.sender, "--json")).stdout);
      assert.deepEqual(old, []);
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

/** The cursor whose page starts at `order[index]` (the `next` of the page of those before). */
async function cursorBefore(dir: string, order: string[], index: number): Promise<string> {
  const page = await jsonPage(dir, "inbox", "--limit", String(index));
  assert.equal(page.messages.at(-1)?.id, order[index - 1]);
  return page.next!;
}

Deno.test("CLI listings and search refuse a bad --limit or --before as usage errors", async () => {
  const root = await Deno.makeTempDir({ prefix: "relaymail-cli-scale-usage-" });
  try {
    const { alice } = await aliceIn(join(root, "alice"));
    fillMailbox(alice.node, 20, { bodyWords: 10 });
    alice.node.close();
    const bad: [string[], RegExp][] = [
      [["inbox", "--limit", "abc"], /--limit.*"abc"/],
      [["inbox", "--limit", "1.5"], /--limit.*"1\.5"/],
      [["inbox", "--limit", "0"], /limit.*1 to/i],
      [["sent", "--limit", "-5"], /limit.*1 to/i],
      [["inbox", "--limit", "2000000"], /limit.*1 to/i],
      [["inbox", "--before", "page2"], /[Cc]ursor "page2"/],
      [["sent", "--before", "1e9"], /[Cc]ursor "1e9"/],
      [["search", "the", "--before", "zz"], /[Cc]ursor "zz"/],
      [["search", "the", "--limit", "x"], /--limit.*"x"/],
    ];
    for (const [args, message] of bad) {
      const run = await relaymail(alice.dir, args);
      assert.equal(run.code, 2, `relaymail ${args.join(" ")} exits 2: ${run.stderr}`);
      assert.equal(run.stdout, "", "prints nothing else");
      assert.match(run.stderr, message, args.join(" "));
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("CLI search with no result says so plainly", async () => {
  const root = await Deno.makeTempDir({ prefix: "relaymail-cli-scale-none-" });
  try {
    const { alice } = await aliceIn(join(root, "alice"));
    fillMailbox(alice.node, 20, { bodyWords: 10 });
    alice.node.close();
    const none = await relaymail(alice.dir, ["search", "nonexistentword"]);
    assert.equal(none.code, 0, none.stderr);
    assert.match(none.stdout, /no (message|match)|nothing/i, none.stdout);
    assert.deepEqual(
      JSON.parse((await relaymail(alice.dir, ["search", "x", "--json"])).stdout),
      [],
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
