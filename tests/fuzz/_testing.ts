/**
 * `Deno.test` for fuzz targets: one test per file whose steps are its targets, run
 * in a pool of workers (kept for the whole test: loading the code under test is
 * what costs a worker time) under the watchdog, with the seed and scale of
 * `FUZZ_SEED` and `FUZZ_CASES`. Each step prints its count, time and the known
 * bugs it hit.
 *
 * @module
 */
import { configFromEnv, type RunReport, type Target } from "./_harness.ts";
import { runIsolated, WorkerPool } from "./_isolate.ts";

/** Registers a test named `name` with one step per target. */
export function fuzzTests(name: string, targets: readonly Target[]): void {
  Deno.test(name, async (t) => {
    const config = configFromEnv();
    const pool = new WorkerPool();
    try {
      for (const target of targets) {
        const marks = (target.knownBugs ?? []).map((bug) => `[KNOWN BUG ${bug.id}] `).join("");
        await t.step(`${marks}${target.name}: ${target.property}`, async () => {
          printReport(await runIsolated(target, config, { pool }), target);
        });
      }
    } finally {
      pool.close();
    }
  });
}

/** Prints what a run did, known bugs first and loud. */
export function printReport(report: RunReport, target: Target): void {
  console.log(
    `  ${report.target}: ${report.cases} cases in ${
      Math.round(report.ms)
    } ms (FUZZ_SEED=${report.seed})`,
  );
  for (const [id, entry] of Object.entries(report.knownBugs)) {
    const bug = target.knownBugs?.find((b) => b.id === id);
    console.warn(
      `  KNOWN BUG ${id} (${bug?.summary}): hit by ${entry.hits} of ${report.cases} cases; ` +
        `first case ${entry.firstCase}: ${entry.firstError}`,
    );
  }
}
