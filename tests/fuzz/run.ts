/**
 * The long fuzz run: every target for many more cases than CI runs, one target
 * after another, each split between workers under the watchdog.
 *
 * ```sh
 * deno run -A tests/fuzz/run.ts [--cases N] [--seed S] [--target NAME]... [--case I] [--jobs J]
 * ```
 *
 * - `--cases N`: a target that runs 10 000 cases in CI runs N (slower ones
 *   proportionally fewer); default 100 000, ten times CI.
 * - `--seed S`: base seed (default `FUZZ_SEED`, else the CI seed).
 * - `--target NAME` (repeatable, or a prefix ending in `*`): only these targets.
 * - `--case I`: replay case I alone (with `--target`), printing its input.
 * - `--jobs J`: workers per target (default 2).
 *
 * It prints per-target counts, times and known-bug hits, and exits 1 on a failure.
 *
 * @module
 */
import { parseArgs } from "node:util";
import {
  BASE_CASES,
  casesAt,
  configFromEnv,
  type FuzzConfig,
  FuzzFailure,
  parseSeed,
  type RunReport,
  showCase,
  type Target,
} from "./_harness.ts";
import { runIsolated, WorkerPool } from "./_isolate.ts";
import { printReport } from "./_testing.ts";
import { allTargets } from "./targets/mod.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    cases: { type: "string", short: "n" },
    seed: { type: "string", short: "s" },
    target: { type: "string", short: "t", multiple: true },
    case: { type: "string" },
    jobs: { type: "string" },
  },
});

const env = configFromEnv();
const config: FuzzConfig = {
  seed: args.seed === undefined ? env.seed : parseSeed(args.seed),
  scale: (args.cases === undefined ? 10 * BASE_CASES : Number(args.cases)) / BASE_CASES,
};
if (!(config.scale > 0)) {
  throw new RangeError(`--cases must be a positive number: got ${args.cases}`);
}
const jobs = Number(args.jobs ?? 2);
const pool = new WorkerPool(jobs);

const wanted = args.target ?? [];
let failures = 0;
const loaded = await allTargets();
for (const [name, error] of Object.entries(loaded.broken)) {
  failures++;
  console.error(`Cannot load the targets of ${name}: ${error}`);
}
const targets = loaded.targets.filter((t) =>
  wanted.length === 0 ||
  wanted.some((w) => w.endsWith("*") ? t.name.startsWith(w.slice(0, -1)) : t.name === w)
);
if (targets.length === 0) {
  console.error(`No target matches ${wanted.join(", ")}`);
  Deno.exit(2);
}

if (args.case !== undefined) {
  const index = Number(args.case);
  for (const target of targets) {
    console.log(`${target.name} case ${index} (seed ${config.seed}) input:`);
    console.log(await showCase(target, config.seed, index));
    await runOne(target, { cases: 1, first: index });
  }
  pool.close();
  Deno.exit(failures ? 1 : 0);
}

console.log(
  `Fuzzing ${targets.length} targets, seed ${config.seed}, ${jobs} workers each, ` +
    `${Math.round(config.scale * BASE_CASES)} cases per full-budget target`,
);
const started = performance.now();
const reports: RunReport[] = [];
for (const target of targets) {
  const report = await runOne(target, { cases: casesAt(target, config.scale) });
  if (report) reports.push(report);
}

console.log("\n target                          cases      time   cases/s  known bug hits");
for (const target of targets) {
  const report = reports.find((r) => r.target === target.name);
  if (!report) {
    console.log(` ${target.name.padEnd(30)} FAILED`);
    continue;
  }
  const hits = Object.entries(report.knownBugs).map(([id, e]) => `${id} ×${e.hits}`).join(", ");
  console.log(
    ` ${target.name.padEnd(30)} ${String(report.cases).padStart(7)} ${
      (report.ms / 1000).toFixed(1).padStart(8)
    } s ${String(Math.round(report.cases / (report.ms / 1000))).padStart(8)}  ${hits}`,
  );
}
pool.close();
console.log(`\n${failures} failed, in ${((performance.now() - started) / 1000).toFixed(1)} s`);
Deno.exit(failures ? 1 : 0);

async function runOne(
  target: Target,
  options: { cases: number; first?: number },
): Promise<RunReport | null> {
  try {
    const report = await runIsolated(target, config, { ...options, pool });
    printReport(report, target);
    return report;
  } catch (error) {
    failures++;
    console.error(error instanceof FuzzFailure ? error.message : error);
    if (error instanceof FuzzFailure && error.cause instanceof Error && error.cause.stack) {
      console.error(error.cause.stack);
    }
    return null;
  }
}
