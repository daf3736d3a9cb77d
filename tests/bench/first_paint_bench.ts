/**
 * From a cold `relaymail start` to the first paint of the inbox, at 1,000 and at
 * 100,000 messages. Each run starts `deno run -A app/main.ts start` on a data
 * directory prepared by tests/_mailbox_fixture.ts (no process of it running
 * before), waits for the address it prints, opens that address in a fresh
 * context of headless Chromium (no cache, no cookies) and waits until the
 * inbox's first rows have been painted: a script the page runs before its own
 * watches for the first `tr.message-row`, then takes the time after the frame
 * that shows it (a `requestAnimationFrame`, then a task). Then the process is
 * stopped. One run of each size is a warm-up, not counted (Deno's module
 * cache).
 *
 * Printed for each size, the median of the runs: `start` (the process spawned
 * until the address is printed), `page` (the page asked for until its first
 * rows are painted) and their sum, the aim's figure: under 1 s, and within 3×
 * the same at 1,000 messages. The page's own requests are broken down beside
 * (`/api/session`, `/api/state`, `/api/messages`: from the request sent to the
 * last byte received), as is the time from the address printed to the page
 * asked for (Chromium's, not counted).
 *
 * Part of `deno task bench`; run alone with
 * `deno run -A tests/bench/first_paint_bench.ts [--sizes 1000,100000] [--runs 5]
 * [--fixtures DIR]` (the mailboxes are kept in DIR and reused; the same DIR as
 * mailbox_bench.ts's `--fixtures` shares them).
 */
import "../../app/_quiet.ts";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { mailboxOf } from "../_mailbox_fixture.ts";
import { CHROMIUM, haveChromium, launchChromium } from "../web/_browser.ts";

const MAIN = join(import.meta.dirname!, "..", "..", "app", "main.ts");
const AIM_MS = 1000;
const AIM_RATIO = 3;
/** The page's requests broken down, by the start of their path. */
const REQUESTS = ["/api/session", "/api/state", "/api/messages"] as const;

/** One run's figures, in ms. */
type Figures = Record<string, number>;

/**
 * Watches for the inbox's first row and notes when it was put in the page and
 * when the frame showing it was done (epoch ms, high resolution). Runs in the
 * page, before its own scripts.
 */
function watchFirstRows(): void {
  const w = globalThis as any;
  const now = () => performance.timeOrigin + performance.now();
  const observer = new w.MutationObserver(() => {
    if (!w.document.querySelector("tr.message-row")) return;
    observer.disconnect();
    w.__firstRowAdded = now();
    w.requestAnimationFrame(() => setTimeout(() => (w.__firstRowPainted = now())));
  });
  observer.observe(w.document, { childList: true, subtree: true });
}

/** Starts `relaymail start` on `dataDir`; resolves with the printed address and when. */
async function start(dataDir: string): Promise<{
  child: Deno.ChildProcess;
  spawned: number;
  printed: number;
  url: string;
  output: () => string;
}> {
  const spawned = performance.timeOrigin + performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "-A",
      MAIN,
      "-d",
      dataDir,
      "start",
      "--port",
      "0",
      "--no-mdns",
      "--listen",
      "/ip4/127.0.0.1/tcp/0",
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  let printed = 0;
  const address = Promise.withResolvers<string>();
  const decoder = new TextDecoder();
  const pump = async (stream: ReadableStream<Uint8Array>, stdout: boolean) => {
    for await (const chunk of stream) {
      text += decoder.decode(chunk, { stream: true });
      const url = stdout && !printed && /(http:\/\/127\.0\.0\.1:\d+\/#key=\S+)\s/.exec(text)?.[1];
      if (url) {
        printed = performance.timeOrigin + performance.now();
        address.resolve(url);
      }
    }
    address.reject(new Error(`relaymail start printed no address:\n${text}`));
  };
  pump(child.stdout, true).catch(() => {});
  pump(child.stderr, false).catch(() => {});
  const timer = setTimeout(
    () => address.reject(new Error(`No address after 60 s:\n${text}`)),
    60_000,
  );
  const url = await address.promise.catch((error) => {
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
    throw error;
  }).finally(() => clearTimeout(timer));
  return { child, spawned, printed, url, output: () => text };
}

/** One cold start on `dataDir`, to the inbox's first rows painted; then the process stopped. */
export async function run(browser: Browser, dataDir: string): Promise<Figures> {
  const app = await start(dataDir);
  let figures: Figures;
  try {
    figures = await measure(browser, app);
  } finally {
    try {
      app.child.kill("SIGTERM");
    } catch { /* gone */ }
  }
  const { code } = await app.child.status;
  if (code !== 0) throw new Error(`relaymail start ended with ${code}:\n${app.output()}`);
  return figures;
}

/** The page of `app` opened in a fresh context until its first rows are painted. */
async function measure(
  browser: Browser,
  app: { spawned: number; printed: number; url: string },
): Promise<Figures> {
  const context = await browser.newContext({ viewport: { width: 1200, height: 820 } });
  try {
    await context.addInitScript(watchFirstRows);
    const page = await context.newPage();
    const asked = performance.timeOrigin + performance.now();
    await page.goto(app.url);
    await page.waitForFunction(() => (globalThis as any).__firstRowPainted, null, {
      timeout: 60_000,
      polling: 10,
    });
    const seen = await page.evaluate((paths) => {
      const w = globalThis as any;
      const requests = (performance.getEntriesByType("resource") as any[])
        .map((e: any) => ({
          path: new URL(e.name).pathname,
          took: e.responseEnd - e.requestStart,
        }));
      return {
        painted: w.__firstRowPainted as number,
        added: w.__firstRowAdded as number,
        requests: paths.map((path) => requests.find((r) => r.path.startsWith(path))?.took ?? NaN),
      };
    }, [...REQUESTS]);
    const figures: Figures = {
      start: app.printed - app.spawned,
      page: seen.painted - asked,
      total: app.printed - app.spawned + seen.painted - asked,
      "(to Chromium)": asked - app.printed,
      "row to paint": seen.painted - seen.added,
    };
    REQUESTS.forEach((path, i) => (figures[path] = seen.requests[i]));
    return figures;
  } finally {
    await context.close();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

function flag(name: string): string | undefined {
  const at = Deno.args.indexOf(`--${name}`);
  return at === -1 ? undefined : Deno.args[at + 1];
}

async function main(): Promise<void> {
  if (!haveChromium) throw new Error(`This bench needs Debian's chromium at ${CHROMIUM}`);
  const sizes = (flag("sizes") ?? "1000,100000").split(",").map(Number);
  const runs = Number(flag("runs") ?? 5);
  const kept = flag("fixtures");
  const fixtures = kept ?? await Deno.makeTempDir({ prefix: "relaymail-first-paint-bench-" });
  const results: Figures[] = [];
  const browser = await launchChromium();
  try {
    for (const size of sizes) {
      const alice = await mailboxOf(size, fixtures);
      const dataDir = alice.dir;
      alice.node.close(); // the data directory stays: `start` opens it
      await run(browser, dataDir); // warm-up
      const all: Figures[] = [];
      for (let i = 0; i < runs; i++) all.push(await run(browser, dataDir));
      results.push(Object.fromEntries(
        Object.keys(all[0]).map((name) => [name, median(all.map((f) => f[name]))]),
      ));
    }
  } finally {
    await browser.close();
    if (!kept) await Deno.remove(fixtures, { recursive: true });
  }
  const base = results[0];
  const last = results[results.length - 1];
  const heads = ["step", ...sizes.map((s) => `p50 at ${s.toLocaleString("en")}`), "ratio", "aim"];
  const rows = Object.keys(base).map((name) => {
    const ratio = last[name] / base[name];
    const ok = last[name] < AIM_MS && ratio <= AIM_RATIO;
    return [
      name,
      ...results.map((r) => `${r[name].toFixed(1)} ms`),
      `${ratio.toFixed(2)}×`,
      name === "total" ? (ok ? "met" : "MISSED") : "",
    ];
  });
  const widths = heads.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd();
  console.log(
    `Cold start to the inbox's first paint (median of ${runs} runs; aim: total < ${AIM_MS} ms ` +
      `and ≤ ${AIM_RATIO}× the first size)`,
  );
  console.log(line(heads));
  for (const row of rows) console.log(line(row));
}

if (import.meta.main) await main();
