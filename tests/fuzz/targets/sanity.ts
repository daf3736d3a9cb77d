/**
 * Toy targets with planted bugs, for harness_test.ts to check that the harness
 * catches what it must: an error of an unexpected type, a hang, and a known bug.
 * Not part of run.ts.
 *
 * @module
 */
import { expectOnly, HangError, type KnownBug, type Target } from "../_harness.ts";
import { hex, type Rng } from "../_rng.ts";

/** Octets that trigger the planted bug. */
export const TRIGGER = [0xab, 0xcd];

/** Whether `bytes` triggers the planted bug. */
export function triggers(bytes: Uint8Array): boolean {
  return bytes[0] === TRIGGER[0] && bytes[1] === TRIGGER[1];
}

/** A toy decoder: RangeError on short input (expected), TypeError on the trigger (a bug). */
export function decodeToy(bytes: Uint8Array): number {
  if (bytes.length < 2) throw new RangeError("Too short");
  if (triggers(bytes)) throw new TypeError("Planted bug");
  return bytes[0] + bytes[1];
}

/** The same, looping for ever on the trigger. */
export function decodeToyHanging(bytes: Uint8Array): number {
  if (bytes.length < 2) throw new RangeError("Too short");
  // deno-lint-ignore no-empty
  while (triggers(bytes)) {}
  return bytes[0] + bytes[1];
}

/** Inputs that trigger about one case in six. */
export function toyInput(rng: Rng): Uint8Array {
  return new Uint8Array([rng.pick([0xab, 0x00]), rng.pick([0xcd, 0x11, 0x22]), rng.int(256)])
    .subarray(0, 1 + rng.int(3));
}

const PLANTED: KnownBug = {
  id: "planted",
  summary: "the planted TypeError",
  matches: (error) => error instanceof Error && error.cause instanceof TypeError,
};

const PLANTED_HANG: KnownBug = {
  id: "planted-hang",
  summary: "the planted infinite loop",
  matches: (error) => error instanceof HangError,
};

const module = import.meta.url;
const common = { module, cases: 200, generate: toyInput, show: hex };

export const targets: Target[] = [
  {
    ...common,
    name: "sanity-unexpected-error",
    property: "decodeToy() throws only RangeError",
    check: (bytes: Uint8Array) => void expectOnly(() => decodeToy(bytes), [RangeError]),
  },
  {
    ...common,
    name: "sanity-known-bug",
    property: "decodeToy() throws only RangeError, the planted TypeError being known",
    knownBugs: [PLANTED],
    check: (bytes: Uint8Array) => void expectOnly(() => decodeToy(bytes), [RangeError]),
  },
  {
    ...common,
    name: "sanity-hang",
    property: "decodeToyHanging() returns",
    stallMs: 500,
    check: (bytes: Uint8Array) => void expectOnly(() => decodeToyHanging(bytes), [RangeError]),
  },
  {
    ...common,
    name: "sanity-known-hang",
    property: "decodeToyHanging() returns, the planted loop being known",
    cases: 40,
    stallMs: 500,
    knownBugs: [PLANTED_HANG],
    check: (bytes: Uint8Array) => void expectOnly(() => decodeToyHanging(bytes), [RangeError]),
  },
];
