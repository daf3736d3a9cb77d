/**
 * `deno task test`: every test file and doc test, in two invocations of `deno test`.
 * First the files that can share the machine, `--parallel` (`DENO_JOBS` workers,
 * default one more than the CPUs); then, one at a time, those that cannot (tests/_test_sets.ts
 * says which and why). Both run even if the first fails; the exit code is non-zero
 * if either did. Arguments are passed to both (e.g. `deno task test --filter pairing`).
 * A SIGINT or SIGTERM stops the `deno test` running and the run.
 *
 * @module
 */
import { join } from "node:path";
import { TEST_ROOTS, testSets } from "./_test_sets.ts";

const ROOT = join(import.meta.dirname!, "..");

/** The `deno test` running now, and the signal that stopped the run, if one did. */
let running: Deno.ChildProcess | undefined;
let stoppedBy: Deno.Signal | undefined;
// Stopping the run stops the `deno test` it is waiting for (which would otherwise
// run on, orphaned), and no further one starts.
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => {
    // A test may keep the process up on SIGTERM (a daemon shutting down): the
    // second signal kills it.
    const again = stoppedBy !== undefined;
    stoppedBy = signal;
    try {
      running?.kill(again ? "SIGKILL" : signal);
    } catch {
      // It has just ended.
    }
  });
}

/**
 * Workers of the parallel run: `DENO_JOBS` if set, else one more than the CPUs, as
 * many test files spend part of their time waiting on timers or subprocesses (on
 * two cores, 3 workers ran the parallel set in 15 min where 2 took 18).
 */
const JOBS = Deno.env.get("DENO_JOBS") ?? String(navigator.hardwareConcurrency + 1);

async function denoTest(args: string[], env: Record<string, string> = {}): Promise<number> {
  if (stoppedBy) return 1;
  const started = Date.now();
  running = new Deno.Command(Deno.execPath(), {
    args: ["test", "--allow-all", "--doc", ...args],
    cwd: ROOT,
    env,
    stdin: "inherit",
  }).spawn();
  const { code } = await running.status;
  running = undefined;
  console.log(
    `deno test --allow-all --doc ${args.join(" ")}: exit code ${code} in ${elapsed(started)}`,
  );
  return code;
}

function elapsed(since: number): string {
  const seconds = Math.round((Date.now() - since) / 1000);
  return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, "0")}s`;
}

const started = Date.now();
const sets = await testSets(ROOT);
console.log(
  `Running ${sets.parallel.length} test files in parallel (${JOBS} at a time), ` +
    `then ${sets.serial.length} alone:`,
);
for (const { path, reason } of sets.serial) console.log(`  ${path} (${reason})`);

const alone = sets.serial.map((file) => file.path);
const ignore = alone.length > 0 ? [`--ignore=${alone.join(",")}`] : [];
const codes = [
  await denoTest(["--parallel", ...ignore, ...Deno.args, ...TEST_ROOTS], { DENO_JOBS: JOBS }),
];
if (alone.length > 0) codes.push(await denoTest([...Deno.args, ...alone]));

const failed = stoppedBy !== undefined || codes.some((code) => code !== 0);
const outcome = stoppedBy ? `stopped by ${stoppedBy}` : failed ? "FAILED" : "ok";
console.log(`deno task test: ${outcome} in ${elapsed(started)}`);
Deno.exit(failed ? 1 : 0);
