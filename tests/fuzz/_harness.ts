/**
 * The fuzz harness: targets, their seeded case loop, the "only these errors"
 * check, known bugs, and the report a failure prints so that it can be replayed.
 *
 * - `FUZZ_SEED` (decimal or `0x` hex) replaces the default fixed seed.
 * - `FUZZ_CASES=N` scales every target: a target that runs 10 000 cases in CI runs
 *   N, and a slower one (fewer cases in CI) runs proportionally more or fewer.
 *
 * Case `i` of target `t` draws everything from `new Rng(caseSeed(seed, t, i))`, so
 * one case replays alone: `deno run -A tests/fuzz/run.ts --seed S --target t --case i`.
 *
 * @module
 */
import { caseSeed, Rng } from "./_rng.ts";

/** The seed used when `FUZZ_SEED` is not set. */
export const DEFAULT_SEED = 0x5eed2026;

/** Cases a full-budget target runs at scale 1 (what `FUZZ_CASES` is measured against). */
export const BASE_CASES = 10_000;

/** Seed and scale of a run. */
export interface FuzzConfig {
  readonly seed: number;
  /** Multiplies every target's case count (1 in CI). */
  readonly scale: number;
}

/** Parses a seed given in decimal or `0x` hex; throws on anything else. */
export function parseSeed(text: string): number {
  const value = /^0x[0-9a-f]+$/i.test(text)
    ? parseInt(text, 16)
    : /^\d+$/.test(text)
    ? Number(text)
    : NaN;
  if (!(value <= 0xffffffff)) {
    throw new RangeError(`A fuzz seed must be an integer in [0, 2^32): got "${text}"`);
  }
  return value;
}

/** The run's configuration from `FUZZ_SEED` and `FUZZ_CASES`. */
export function configFromEnv(): FuzzConfig {
  const seed = Deno.env.get("FUZZ_SEED");
  const cases = Deno.env.get("FUZZ_CASES");
  const count = cases === undefined ? BASE_CASES : Number(cases);
  if (!(count > 0)) throw new RangeError(`FUZZ_CASES must be a positive number: got "${cases}"`);
  return { seed: seed === undefined ? DEFAULT_SEED : parseSeed(seed), scale: count / BASE_CASES };
}

/** A constructor of errors a decoder is allowed to throw. */
// deno-lint-ignore no-explicit-any
export type ErrorClass = abstract new (...args: any[]) => Error;

/** A bug found and reported but not fixed yet: its hits are counted, not failed. */
export interface KnownBug {
  /** Short stable name, e.g. `wire-utf8-typeerror`. */
  readonly id: string;
  /** What goes wrong, and where it is written down. */
  readonly summary: string;
  /** Whether a case's failure is this bug (for a hang: `error` is a {@linkcode HangError}). */
  readonly matches: (error: unknown) => boolean;
}

/** One fuzz target: a generator of inputs and a property every input must keep. */
// deno-lint-ignore no-explicit-any
export interface Target<I = any, C = any> {
  /** Stable name: part of every case's seed. */
  readonly name: string;
  /** The module that exports it (its `import.meta.url`), so a worker can load it. */
  readonly module: string;
  /** What the property says, for test names. */
  readonly property: string;
  /** Cases at scale 1 (CI). */
  readonly cases: number;
  /** Longest a case may take before the watchdog calls it a hang (default 10 s). */
  readonly stallMs?: number;
  /** Bugs this target's property is known to find; see {@linkcode KnownBug}. */
  readonly knownBugs?: readonly KnownBug[];
  /** Once per run: fixtures and such, handed to every case. */
  setup?(): C | Promise<C>;
  teardown?(context: C): void | Promise<void>;
  /** The input of one case, drawn from `rng` only. */
  generate(rng: Rng, context: C): I | Promise<I>;
  /** Throws if the property does not hold for `input`. */
  check(input: I, context: C): void | Promise<void>;
  /** The input, for a failure report (hex for octets). */
  show(input: I): string;
}

/** Raised by {@linkcode expectOnly} when a decoder throws an error of another type. */
export class UnexpectedError extends Error {
  constructor(readonly thrown: unknown, allowed: readonly ErrorClass[]) {
    super(
      `Threw ${describeError(thrown)}; only ${
        allowed.map((c) => c.name).join(" or ")
      } may be thrown`,
      { cause: thrown },
    );
    this.name = "UnexpectedError";
  }
}

/** The watchdog's verdict on a case that stopped making progress. */
export class HangError extends Error {
  constructor(readonly stallMs: number) {
    super(`No progress for ${stallMs} ms: the case hangs (or is pathologically slow)`);
    this.name = "HangError";
  }
}

/** What a call under {@linkcode expectOnly} did. */
export type Outcome<T> = { readonly ok: true; readonly value: T } | {
  readonly ok: false;
  readonly error: Error;
};

/** Calls `fn`: its value, or the error it threw if that is one of `allowed`; else throws {@linkcode UnexpectedError}. */
export function expectOnly<T>(fn: () => T, allowed: readonly ErrorClass[]): Outcome<T> {
  try {
    return { ok: true, value: fn() };
  } catch (error) {
    if (allowed.some((c) => error instanceof c)) return { ok: false, error: error as Error };
    throw new UnexpectedError(error, allowed);
  }
}

/** {@linkcode expectOnly} for an async function. */
export async function expectOnlyAsync<T>(
  fn: () => Promise<T>,
  allowed: readonly ErrorClass[],
): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await fn() };
  } catch (error) {
    if (allowed.some((c) => error instanceof c)) return { ok: false, error: error as Error };
    throw new UnexpectedError(error, allowed);
  }
}

/** `Name: message` of anything thrown. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return `non-error ${typeof error} ${String(error)}`;
}

/** Longest input shown inline in a failure message; longer ones go to a file. */
const INLINE_INPUT_CHARS = 4096;

/** A case that broke its target's property, with all it takes to replay it. */
export class FuzzFailure extends Error {
  constructor(
    readonly target: string,
    readonly seed: number,
    readonly index: number,
    readonly input: string,
    readonly inputFile: string | null,
    cause: unknown,
  ) {
    super(
      [
        `Fuzz target ${target} failed at case ${index} (FUZZ_SEED=${seed}, case seed ${
          caseSeed(seed, target, index)
        }): ${describeError(cause)}`,
        `  replay: deno run -A tests/fuzz/run.ts --seed ${seed} --target ${target} --case ${index}`,
        inputFile === null ? `  input: ${input}` : `  input (${input.length} chars): ${inputFile}`,
      ].join("\n"),
      { cause },
    );
    this.name = "FuzzFailure";
  }

  /** A failure with its input written to a file when too long to show inline. */
  static make(target: string, seed: number, index: number, input: string, cause: unknown) {
    let file: string | null = null;
    if (input.length > INLINE_INPUT_CHARS) {
      file = Deno.makeTempFileSync({ prefix: `fuzz-${target}-${seed}-${index}-`, suffix: ".txt" });
      Deno.writeTextFileSync(file, input + "\n");
    }
    return new FuzzFailure(target, seed, index, input, file, cause);
  }
}

/** Options of {@linkcode runTarget}. */
export interface RunOptions {
  readonly seed: number;
  /** Cases to run, from `first` (default 0). */
  readonly cases: number;
  readonly first?: number;
  /** Called before each case (the watchdog's heartbeat). */
  readonly onCase?: (index: number) => void;
}

/** What a run did. */
export interface RunReport {
  readonly target: string;
  readonly seed: number;
  readonly cases: number;
  readonly ms: number;
  /** Hits per known bug id, with the first case that hit it. */
  readonly knownBugs: Record<string, { hits: number; firstCase: number; firstError: string }>;
}

/** Cases of `target` at `scale`, at least one. */
export function casesAt(target: Target, scale: number): number {
  return Math.max(1, Math.round(target.cases * scale));
}

/** The known bug `error` is, if any. */
export function knownBugOf(target: Target, error: unknown): KnownBug | undefined {
  return target.knownBugs?.find((bug) => {
    try {
      return bug.matches(error);
    } catch {
      return false;
    }
  });
}

/**
 * Runs cases `first … first + cases - 1` of `target` in this thread; throws a
 * {@linkcode FuzzFailure} at the first case that breaks the property and is not a
 * known bug.
 */
export async function runTarget(target: Target, options: RunOptions): Promise<RunReport> {
  const started = performance.now();
  const context = await target.setup?.();
  const knownBugs: RunReport["knownBugs"] = {};
  const first = options.first ?? 0;
  try {
    for (let index = first; index < first + options.cases; index++) {
      options.onCase?.(index);
      const rng = new Rng(caseSeed(options.seed, target.name, index));
      let input: unknown = undefined;
      try {
        input = await target.generate(rng, context);
        await target.check(input, context);
      } catch (error) {
        const bug = knownBugOf(target, error);
        if (!bug) {
          throw FuzzFailure.make(target.name, options.seed, index, safeShow(target, input), error);
        }
        const entry = knownBugs[bug.id] ??= {
          hits: 0,
          firstCase: index,
          firstError: describeError(error),
        };
        entry.hits++;
      }
    }
  } finally {
    await target.teardown?.(context);
  }
  return {
    target: target.name,
    seed: options.seed,
    cases: options.cases,
    ms: performance.now() - started,
    knownBugs,
  };
}

function safeShow(target: Target, input: unknown): string {
  try {
    return input === undefined ? "(the generator itself threw)" : target.show(input);
  } catch (error) {
    return `(cannot show the input: ${describeError(error)})`;
  }
}

/** The input of case `index`, shown (for a case that hung and so could not report it). */
export async function showCase(target: Target, seed: number, index: number): Promise<string> {
  const context = await target.setup?.();
  try {
    const rng = new Rng(caseSeed(seed, target.name, index));
    return safeShow(target, await target.generate(rng, context));
  } finally {
    await target.teardown?.(context);
  }
}
