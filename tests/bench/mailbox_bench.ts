/**
 * The mailbox at 1,000 and at 100,000 messages: listing (the first page and a
 * page 90% deep), searching (a word in nearly every message, a word in ten),
 * the unread count and `status`. Each figure is the median of many runs, beside
 * the same at 1,000 messages; the aim is under 50 ms and within 3× of the
 * 1,000-message figure. Part of `deno task bench`; run alone with
 * `deno run -A tests/bench/mailbox_bench.ts [--sizes 1000,100000] [--runs 200]
 * [--fixtures DIR]`.
 *
 * Each mailbox is built once, in a temporary directory (or in `--fixtures DIR`,
 * kept there and reused by later runs), through the store's own write path:
 * `insertMessage`, which taking in mail uses, so that the rows, the list keys,
 * the full-text index and the counters are written by the same code (and
 * triggers) as in use. Only the parcels' cryptography is skipped. Messages are
 * about 2 KB of text drawn from a Zipf-distributed vocabulary, from two
 * contacts; one in ten is sent mail, one in twenty has an attachment, one in
 * three of the received ones is unread.
 */
import "../../app/_quiet.ts";
import { join } from "node:path";
import { insertMessage } from "../../app/core/message_rows.ts";
import type { MailContent } from "../../app/core/protocol/messages.ts";
import { STATUS_OPERATIONS } from "../../app/runtime/operations/status.ts";
import type { OperationContext } from "../../app/runtime/types.ts";
import { makeNode, pair, type TestNode } from "../helpers.ts";

/** The word in nearly every message, and the word in ten of them. */
const COMMON = "the";
const RARE = "zanzibar";
/** A word's start, which reads every word it starts: outside the aim. */
const PREFIX = "meet*";
const BODY_WORDS = 330; // about 2 KB
const PAGE = 50;
const AIM_MS = 50;
const AIM_RATIO = 3;

interface Fixture {
  readonly size: number;
  readonly alice: TestNode;
  /** Where the page 90% deep into the inbox starts. */
  readonly deepCursor: string;
}

/** A small deterministic random source (mulberry32). */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A vocabulary of made-up words, most common first, and a Zipf sampler over it. */
function vocabulary(next: () => number): () => string {
  const syllables = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "zu", "pe", "da", "gi"];
  const words = [COMMON, "and", "of", "to", "a", "in", "meeting", "mail", "stick", "mesh"];
  while (words.length < 20_000) {
    const n = 2 + Math.floor(next() * 3);
    let word = "";
    for (let i = 0; i < n; i++) word += syllables[Math.floor(next() * syllables.length)];
    words.push(word + words.length.toString(36));
  }
  const cumulative: number[] = [];
  let total = 0;
  for (let rank = 1; rank <= words.length; rank++) cumulative.push(total += 1 / rank);
  return () => {
    const target = next() * total;
    let low = 0;
    let high = cumulative.length - 1;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (cumulative[middle] < target) low = middle + 1;
      else high = middle;
    }
    return words[low];
  };
}

async function nodes(dir: string): Promise<TestNode> {
  const aliceDir = join(dir, "alice");
  const fresh = !await Deno.stat(aliceDir).then(() => true, () => false);
  await Deno.mkdir(aliceDir, { recursive: true });
  const alice = await makeNode("Alice", { dir: aliceDir });
  if (fresh) {
    for (const name of ["Bob", "Carol"]) {
      const other = await makeNode(name);
      await pair(alice, other);
      await other.close();
    }
  }
  return alice;
}

async function build(size: number, fixtures: string): Promise<Fixture> {
  const dir = join(fixtures, String(size));
  const done = join(dir, "built");
  const reuse = await Deno.stat(done).then(() => true, () => false);
  const alice = await nodes(dir);
  const db = alice.node.ctx.db;
  if (!reuse) {
    const started = performance.now();
    const next = random(size);
    const word = vocabulary(next);
    const me = alice.node.identity.id;
    const contacts = alice.node.contacts.list().map((c) => c.id);
    const start = Date.UTC(2020, 0, 1);
    const step = (5 * 365 * 86_400_000) / size; // five years of mail
    const BATCH = 1000;
    for (let first = 0; first < size; first += BATCH) {
      db.transaction(() => {
        for (let i = first; i < Math.min(size, first + BATCH); i++) {
          const words = Array.from({ length: BODY_WORDS }, word);
          if (i % (size / 10) === 7) words[Math.floor(next() * BODY_WORDS)] = RARE;
          const sent = i % 10 === 3;
          const sentAt = Math.round(start + i * step + next() * step);
          const mail: MailContent = {
            messageId: crypto.randomUUID(),
            threadId: crypto.randomUUID(),
            inReplyTo: "",
            sentAt: new Date(sentAt),
            subject: Array.from({ length: 6 }, word).join(" "),
            body: words.join(" "),
            recipients: sent ? [contacts[i % 2]] : [me],
            attachments: i % 20 === 5
              ? [{
                fileName: `${word()}-${i}.pdf`,
                mediaType: "application/pdf",
                content: new Uint8Array(64),
              }]
              : [],
          };
          const rowId = insertMessage(
            db,
            sent ? me : contacts[i % 2],
            sent ? "sent" : "inbox",
            mail,
            sentAt,
            sentAt + 60_000,
          );
          if (!sent && i % 3 !== 0) {
            db.run("UPDATE messages SET read_at = ? WHERE id = ?", 1, rowId);
          }
        }
      });
    }
    db.exec("PRAGMA optimize");
    await Deno.writeTextFile(done, String(size));
    console.error(
      `built ${size} messages in ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
  }
  const inbox = alice.node.mailbox.counts().inbox;
  const deepCursor = db.get<{ cursor: string }>(
    `SELECT CAST(list_key AS TEXT) AS cursor FROM messages WHERE folder = 'inbox'
     ORDER BY list_key DESC LIMIT 1 OFFSET ?`,
    Math.floor(inbox * 0.9),
  )!.cursor;
  return { size, alice, deepCursor };
}

/** The median time of `fn`, in ms, after a warm-up. */
function p50(fn: () => unknown, runs: number): number {
  for (let i = 0; i < 5; i++) fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    fn();
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

/** The cases measured, each checked for giving what it should. */
function cases(f: Fixture): Record<string, () => unknown> {
  const mailbox = f.alice.node.mailbox;
  const context = { messenger: f.alice.node } as unknown as OperationContext;
  const full = (page: { messages: unknown[] }) => {
    if (page.messages.length !== PAGE) throw new Error(`A page of ${page.messages.length}`);
  };
  return {
    "list inbox, first page": () => full(mailbox.folderPage("inbox", { limit: PAGE })),
    "list inbox, page 90% deep": () =>
      full(mailbox.folderPage("inbox", { limit: PAGE, cursor: f.deepCursor })),
    [`search "${COMMON}" (nearly all)`]: () => full(mailbox.searchPage(COMMON, { limit: PAGE })),
    [`search "${RARE}" (10 messages)`]: () => {
      const found = mailbox.searchPage(RARE, { limit: PAGE }).messages.length;
      if (found < 9 || found > 10) throw new Error(`${RARE} found ${found} times`);
    },
    [`search "${PREFIX}" (word starts: reads every match)`]: () =>
      full(mailbox.searchPage(PREFIX, { limit: PAGE })),
    "unread count": () => mailbox.unreadCount(),
    "status": () => STATUS_OPERATIONS["status.show"](context),
  };
}

function flag(name: string): string | undefined {
  const at = Deno.args.indexOf(`--${name}`);
  return at === -1 ? undefined : Deno.args[at + 1];
}

async function main(): Promise<void> {
  const sizes = (flag("sizes") ?? "1000,100000").split(",").map(Number);
  const runs = Number(flag("runs") ?? 200);
  const kept = flag("fixtures");
  const fixtures = kept ?? await Deno.makeTempDir({ prefix: "relaymail-mailbox-bench-" });
  const results: Record<string, number>[] = [];
  try {
    for (const size of sizes) {
      const fixture = await build(size, fixtures);
      const measured: Record<string, number> = {};
      for (const [name, fn] of Object.entries(cases(fixture))) measured[name] = p50(fn, runs);
      results.push(measured);
      fixture.alice.node.close();
    }
  } finally {
    if (!kept) await Deno.remove(fixtures, { recursive: true });
  }
  const base = results[0];
  const last = results[results.length - 1];
  const heads = ["case", ...sizes.map((s) => `p50 at ${s.toLocaleString("en")}`), "ratio", "aim"];
  const rows = Object.keys(base).map((name) => {
    const ratio = last[name] / base[name];
    const ok = last[name] < AIM_MS && ratio <= AIM_RATIO;
    return [
      name,
      ...results.map((r) => `${r[name].toFixed(3)} ms`),
      `${ratio.toFixed(2)}×`,
      name.includes(PREFIX) ? "(none)" : ok ? "met" : "MISSED",
    ];
  });
  const widths = heads.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join("  ");
  console.log(
    `Mailbox (page of ${PAGE}; aim: p50 < ${AIM_MS} ms and ≤ ${AIM_RATIO}× the first size)`,
  );
  console.log(line(heads));
  for (const row of rows) console.log(line(row));
}

if (import.meta.main) await main();
