/**
 * `deno task test`: every test file and doc test, in three invocations of `deno test`
 * (tests/_test_sets.ts says which file goes where, and why):
 *
 * 1. the files that can share a process, `--parallel` (`DENO_JOBS` workers, default
 *    one more than the CPUs), at a lowered CPU priority (`nice`), and at the same
 *    time, at the normal priority, those that need a process of their own but not a
 *    quiet machine, one at a time. That second run's output is kept in a file (its
 *    path is printed) and printed once both have ended;
 * 2. then, one at a time, those that need a quiet machine.
 *
 * All run even if one fails; the exit code is non-zero if any did. Arguments are
 * passed to each (e.g. `deno task test --filter pairing`). A SIGINT or SIGTERM stops
 * the `deno test` runs going on and the run.
 *
 * @module
 */
import { join } from "node:path";
import { TEST_ROOTS, testSets } from "./_test_sets.ts";

const ROOT = join(import.meta.dirname!, "..");

/** The `deno test` runs going on now, and the signal that stopped the run, if one did. */
const running = new Set<Deno.ChildProcess>();
let stoppedBy: Deno.Signal | undefined;
// Stopping the run stops the `deno test` runs it is waiting for (which would
// otherwise run on, orphaned), and no further one starts.
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => {
    // A test may keep the process up on SIGTERM (a daemon shutting down): the
    // second signal kills it.
    const again = stoppedBy !== undefined;
    stoppedBy = signal;
    for (const child of running) {
      try {
        child.kill(again ? "SIGKILL" : signal);
      } catch {
        // It has just ended.
      }
    }
  });
}

/**
 * Workers of the parallel run: `DENO_JOBS` if set, else one more than the CPUs, as
 * many test files spend part of their time waiting on timers or subprocesses (on
 * two cores, 3 workers ran the parallel set in 15 min where 2 took 18).
 */
const JOBS = Deno.env.get("DENO_JOBS") ?? String(navigator.hardwareConcurrency + 1);

/**
 * The niceness of the parallel run. It keeps both cores busy, while the files run
 * beside it mostly wait (on timers, daemons, Chromium) and have deadlines: at 10,
 * the CPU scheduler gives a runnable process of normal priority about nine times
 * the share of one of the parallel run's, so they run as on a quiet machine, and
 * the parallel run takes the rest.
 */
const PARALLEL_NICENESS = 10;

/** Whether `nice` is there to lower the parallel run's priority. */
const haveNice = (() => {
  try {
    return new Deno.Command("nice", { args: ["true"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();

interface DenoTestOptions {
  /** Environment variables besides ours. */
  env?: Record<string, string>;
  /** A niceness to run at (default: ours). */
  niceness?: number;
  /** A file to write its output to (default: ours). */
  output?: string;
}

/** Runs `deno test --allow-all --doc ...args` and returns its exit code. */
async function denoTest(args: string[], options: DenoTestOptions = {}): Promise<number> {
  if (stoppedBy) return 1;
  const started = Date.now();
  const testArgs = ["test", "--allow-all", "--doc", ...args];
  const nice = options.niceness !== undefined && haveNice;
  const file = options.output === undefined
    ? undefined
    : await Deno.open(options.output, { write: true, create: true, truncate: true });
  const child = new Deno.Command(nice ? "nice" : Deno.execPath(), {
    args: nice ? ["-n", String(options.niceness), Deno.execPath(), ...testArgs] : testArgs,
    cwd: ROOT,
    env: options.env,
    stdin: file ? "null" : "inherit",
    stdout: file ? "piped" : "inherit",
    stderr: file ? "piped" : "inherit",
  }).spawn();
  running.add(child);
  let code: number;
  try {
    if (file) {
      // One writer per stream: each chunk is written whole before the next.
      const pump = async (stream: ReadableStream<Uint8Array>) => {
        for await (const chunk of stream) {
          for (let at = 0; at < chunk.length;) at += await file.write(chunk.subarray(at));
        }
      };
      const [{ code: exit }] = await Promise.all([
        child.status,
        pump(child.stdout),
        pump(child.stderr),
      ]);
      code = exit;
    } else {
      code = (await child.status).code;
    }
  } finally {
    running.delete(child);
    file?.close();
  }
  const line = `deno test --allow-all --doc ${args.join(" ")}: exit code ${code} in ${
    elapsed(started)
  }`;
  if (options.output === undefined) console.log(line);
  else await Deno.writeTextFile(options.output, `${line}\n`, { append: true });
  return code;
}

function elapsed(since: number): string {
  const seconds = Math.round((Date.now() - since) / 1000);
  return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, "0")}s`;
}

const started = Date.now();
const sets = await testSets(ROOT);
const beside = sets.beside.map((file) => file.path);
const alone = sets.serial.map((file) => file.path);
const besideLog = beside.length > 0
  ? await Deno.makeTempFile({ prefix: "relaymail-test-beside-", suffix: ".log" })
  : undefined;
console.log(
  `Running ${sets.parallel.length} test files in parallel (${JOBS} at a time` +
    `${haveNice ? `, at niceness ${PARALLEL_NICENESS}` : ""}), ` +
    `and meanwhile ${beside.length} one at a time beside them` +
    `${besideLog ? ` (their output goes to ${besideLog}, printed after the parallel set's)` : ""}:`,
);
for (const { path, reason } of sets.beside) console.log(`  ${path} (${reason})`);
console.log(`then ${alone.length} alone:`);
for (const { path, reason } of sets.serial) console.log(`  ${path} (${reason})`);

const others = [...beside, ...alone];
const ignore = others.length > 0 ? [`--ignore=${others.join(",")}`] : [];
const [parallelCode, besideCode] = await Promise.all([
  denoTest(["--parallel", ...ignore, ...Deno.args, ...TEST_ROOTS], {
    env: { DENO_JOBS: JOBS },
    niceness: PARALLEL_NICENESS,
  }),
  beside.length > 0 ? denoTest([...Deno.args, ...beside], { output: besideLog }) : 0,
]);
const codes = [parallelCode, besideCode];
if (besideLog) {
  console.log(`----- the ${beside.length} files run beside the parallel set -----`);
  const log = await Deno.open(besideLog);
  await log.readable.pipeTo(Deno.stdout.writable, { preventClose: true });
  await Deno.remove(besideLog);
  console.log(`----- end of the files run beside the parallel set -----`);
}
if (alone.length > 0) codes.push(await denoTest([...Deno.args, ...alone]));

const failed = stoppedBy !== undefined || codes.some((code) => code !== 0);
const outcome = stoppedBy ? `stopped by ${stoppedBy}` : failed ? "FAILED" : "ok";
console.log(`deno task test: ${outcome} in ${elapsed(started)}`);
Deno.exit(failed ? 1 : 0);
