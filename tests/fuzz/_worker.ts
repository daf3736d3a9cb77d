/**
 * A fuzzing worker: runs the targets it is asked for, one request after another,
 * writing each case's index to shared memory before the case starts, so that the
 * main thread's watchdog can name a case that hangs and end the worker (a message
 * per case would cost more than many cases).
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { FuzzFailure, runTarget, type Target } from "./_harness.ts";

/** What the main thread asks for. */
export interface WorkerRequest {
  readonly module: string;
  readonly target: string;
  readonly seed: number;
  readonly cases: number;
  readonly first: number;
  /** `[0]`: the case running now (-1 while setting up). */
  readonly progress: Int32Array;
}

self.onmessage = async (event: MessageEvent<WorkerRequest>) => {
  const request = event.data;
  try {
    const module = await import(request.module) as { targets: Target[]; regressions?: Target[] };
    const target = [...module.targets, ...module.regressions ?? []].find((t) =>
      t.name === request.target
    );
    if (!target) throw new Error(`No fuzz target ${request.target} in ${request.module}`);
    const report = await runTarget(target, {
      seed: request.seed,
      cases: request.cases,
      first: request.first,
      onCase: (index) => Atomics.store(request.progress, 0, index),
    });
    self.postMessage({ kind: "done", report });
  } catch (error) {
    if (error instanceof FuzzFailure) {
      self.postMessage({
        kind: "failed",
        index: error.index,
        input: error.input,
        inputFile: error.inputFile,
        cause: errorFields(error.cause),
      });
    } else {
      self.postMessage({ kind: "crashed", error: errorFields(error) });
    }
  }
};

/** An error as plain fields, which survive `postMessage`. */
export interface ErrorFields {
  readonly name: string;
  readonly message: string;
  readonly stack: string;
}

function errorFields(error: unknown): ErrorFields {
  if (!(error instanceof Error)) return { name: "non-error", message: String(error), stack: "" };
  // The causes' stacks too: an UnexpectedError's own stack says little.
  let stack = error.stack ?? "";
  for (
    let cause = error.cause, depth = 0;
    cause instanceof Error && depth < 5;
    cause = cause.cause, depth++
  ) {
    stack += `\nCaused by ${cause.stack ?? cause.message}`;
  }
  return { name: error.name, message: error.message, stack };
}
