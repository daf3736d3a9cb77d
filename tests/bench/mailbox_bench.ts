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
 * kept there and reused by later runs), by tests/_mailbox_fixture.ts through
 * the store's own write path: about 2 KB of text a message, from two contacts;
 * one in ten is sent mail, one in twenty has an attachment, one in three of the
 * received ones is unread.
 */
import "../../app/_quiet.ts";
import { STATUS_OPERATIONS } from "../../app/runtime/operations/status.ts";
import type { OperationContext } from "../../app/runtime/types.ts";
import type { TestNode } from "../helpers.ts";
import { COMMON, mailboxOf, RARE } from "../_mailbox_fixture.ts";

/** A word's start, which reads every word it starts: outside the aim. */
const PREFIX = "meet*";
const PAGE = 50;
const AIM_MS = 50;
const AIM_RATIO = 3;

interface Fixture {
  readonly size: number;
  readonly alice: TestNode;
  /** Where the page 90% deep into the inbox starts. */
  readonly deepCursor: string;
}

async function build(size: number, fixtures: string): Promise<Fixture> {
  const alice = await mailboxOf(size, fixtures);
  const inbox = alice.node.mailbox.counts().inbox;
  const deepCursor = alice.node.ctx.db.get<{ cursor: string }>(
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
