/**
 * Runs fuzz targets in workers under a watchdog: a case that makes no progress for
 * the target's stall time is a hang, reported with its seed and input like any
 * other failure (a synchronous infinite loop cannot be stopped from its own
 * thread). A hang that is a known bug is counted, and the run goes on from the
 * next case in a new worker.
 *
 * Workers are kept in a {@linkcode WorkerPool} and reused from target to target:
 * loading the code under test (relaynet-core above all) takes a worker seconds.
 *
 * @module
 */
import {
  casesAt,
  type FuzzConfig,
  FuzzFailure,
  HangError,
  knownBugOf,
  type RunReport,
  showCase,
  type Target,
} from "./_harness.ts";
import type { ErrorFields, WorkerRequest } from "./_worker.ts";

/** Default time one case may take before the watchdog calls it a hang. */
export const DEFAULT_STALL_MS = 10_000;
/** Workers a pool holds, and so shards a target is split into: CI has two cores. */
export const DEFAULT_WORKERS = 2;
/** Time a worker may take to load its target and set it up. */
const SETUP_MS = 120_000;

/** Options of {@linkcode runIsolated}. */
export interface IsolatedOptions {
  /** Cases to run (default: the target's count at the config's scale). */
  readonly cases?: number;
  /** First case (default 0). */
  readonly first?: number;
  /** Default: the target's, else {@linkcode DEFAULT_STALL_MS}. */
  readonly stallMs?: number;
  /** Workers to run in (default: a pool of {@linkcode DEFAULT_WORKERS} made for this run). */
  readonly pool?: WorkerPool;
}

type WorkerMessage =
  | { kind: "done"; report: RunReport }
  | { kind: "failed"; index: number; input: string; inputFile: string | null; cause: ErrorFields }
  | { kind: "crashed"; error: ErrorFields };

type Segment =
  | { kind: "done"; report: RunReport }
  | { kind: "hang"; index: number }
  | { kind: "failed"; failure: FuzzFailure }
  | { kind: "aborted" };

/** One worker, started when first needed and again after it is ended. */
class WorkerSlot {
  #worker: Worker | null = null;
  /** `[0]`: the case the worker is running (-1 while it sets up). */
  readonly #progress = new Int32Array(new SharedArrayBuffer(4));

  /**
   * Runs cases `first … first + cases - 1` of `target`; resolves with how that
   * ended. A hang, a crash or an abort ends the worker.
   */
  run(
    target: Target,
    seed: number,
    first: number,
    cases: number,
    stallMs: number,
    signal: AbortSignal,
  ): Promise<Segment> {
    const worker = this.#worker ??= new Worker(new URL("./_worker.ts", import.meta.url), {
      type: "module",
    });
    const progress = this.#progress;
    Atomics.store(progress, 0, -1);
    const { promise, resolve } = Promise.withResolvers<Segment>();
    const current = () => Math.max(Atomics.load(progress, 0), first);
    // The watchdog: the case index must move within stallMs (SETUP_MS before the first).
    let seen = -1;
    let since = performance.now();
    const watchdog = setInterval(() => {
      const index = Atomics.load(progress, 0);
      const now = performance.now();
      if (index !== seen) {
        seen = index;
        since = now;
      } else if (now - since > (index < 0 ? SETUP_MS : stallMs)) {
        settle({ kind: "hang", index: current() }, true);
      }
    }, Math.min(500, stallMs / 4));
    const onAbort = () => settle({ kind: "aborted" }, true);
    const settle = (segment: Segment, end: boolean) => {
      clearInterval(watchdog);
      signal.removeEventListener("abort", onAbort);
      worker.onmessage = worker.onerror = null;
      if (end) this.end();
      resolve(segment);
    };
    // Another shard failed: this one's work is moot.
    signal.addEventListener("abort", onAbort);
    const failure = (index: number, input: string, file: string | null, cause: Error) =>
      new FuzzFailure(target.name, seed, index, input, file, cause);
    worker.onmessage = (event: MessageEvent<WorkerMessage>) => {
      const message = event.data;
      switch (message.kind) {
        case "done":
          settle({ kind: "done", report: message.report }, false);
          break;
        case "failed": {
          const cause = remoteError(message.cause);
          const { index, input, inputFile } = message;
          settle({ kind: "failed", failure: failure(index, input, inputFile, cause) }, false);
          break;
        }
        case "crashed": {
          const cause = remoteError(message.error);
          settle(
            { kind: "failed", failure: failure(current(), "(the run crashed)", null, cause) },
            true,
          );
        }
      }
    };
    worker.onerror = (event) => {
      event.preventDefault();
      const cause = event.error ?? new Error(event.message);
      settle(
        { kind: "failed", failure: failure(current(), "(the worker died)", null, cause) },
        true,
      );
    };
    const request: WorkerRequest = {
      module: target.module,
      target: target.name,
      seed,
      cases,
      first,
      progress,
    };
    worker.postMessage(request);
    return promise;
  }

  /** Ends the worker, if any; the next run starts a new one. */
  end(): void {
    this.#worker?.terminate();
    this.#worker = null;
  }
}

/** Workers kept from one run to the next; {@linkcode close} ends them. */
export class WorkerPool {
  readonly slots: readonly WorkerSlot[];

  constructor(size = DEFAULT_WORKERS) {
    this.slots = Array.from({ length: Math.max(1, size) }, () => new WorkerSlot());
  }

  close(): void {
    for (const slot of this.slots) slot.end();
  }
}

/**
 * Runs `target` split between the pool's workers, under the watchdog; throws
 * {@linkcode FuzzFailure} on a failing case.
 */
export async function runIsolated(
  target: Target,
  config: FuzzConfig,
  options: IsolatedOptions = {},
): Promise<RunReport> {
  const started = performance.now();
  const pool = options.pool ?? new WorkerPool();
  const total = options.cases ?? casesAt(target, config.scale);
  const first = options.first ?? 0;
  const slots = pool.slots.slice(0, Math.max(1, Math.ceil(total / 100)));
  const stallMs = options.stallMs ?? target.stallMs ?? DEFAULT_STALL_MS;
  const abort = new AbortController();
  let shards: RunReport["knownBugs"][];
  try {
    shards = await Promise.all(slots.map((slot, i) => {
      const from = first + Math.floor((total * i) / slots.length);
      const to = first + Math.floor((total * (i + 1)) / slots.length);
      return runRange(slot, target, config.seed, from, to, stallMs, abort.signal);
    }));
  } finally {
    abort.abort();
    if (!options.pool) pool.close();
  }
  const knownBugs: RunReport["knownBugs"] = {};
  for (const shard of shards) mergeKnownBugs(knownBugs, shard);
  return {
    target: target.name,
    seed: config.seed,
    cases: total,
    ms: performance.now() - started,
    knownBugs,
  };
}

function mergeKnownBugs(into: RunReport["knownBugs"], from: RunReport["knownBugs"]): void {
  for (const [id, entry] of Object.entries(from)) {
    const mine = into[id];
    if (!mine) into[id] = { ...entry };
    else {
      mine.hits += entry.hits;
      if (entry.firstCase < mine.firstCase) {
        mine.firstCase = entry.firstCase;
        mine.firstError = entry.firstError;
      }
    }
  }
}

/** Cases `from … to - 1` in one slot, past known-bug hangs (each in a new worker). */
async function runRange(
  slot: WorkerSlot,
  target: Target,
  seed: number,
  from: number,
  to: number,
  stallMs: number,
  signal: AbortSignal,
): Promise<RunReport["knownBugs"]> {
  const knownBugs: RunReport["knownBugs"] = {};
  while (from < to) {
    const segment = await slot.run(target, seed, from, to - from, stallMs, signal);
    if (segment.kind === "failed") throw segment.failure;
    if (segment.kind === "aborted") break;
    if (segment.kind === "done") {
      mergeKnownBugs(knownBugs, segment.report.knownBugs);
      break;
    }
    const hang = new HangError(stallMs);
    const bug = knownBugOf(target, hang);
    if (!bug) {
      const input = await showCase(target, seed, segment.index).catch((error) =>
        `(cannot regenerate the input: ${error})`
      );
      throw FuzzFailure.make(target.name, seed, segment.index, input, hang);
    }
    const firstError = `${hang.name}: ${hang.message}`;
    mergeKnownBugs(knownBugs, { [bug.id]: { hits: 1, firstCase: segment.index, firstError } });
    from = segment.index + 1;
  }
  return knownBugs;
}

function remoteError(fields: ErrorFields): Error {
  const error = new Error(fields.message);
  error.name = fields.name;
  error.stack = fields.stack;
  return error;
}
