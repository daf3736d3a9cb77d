/**
 * Time, injected everywhere expiry, TTLs or clock drift matter, so that tests can
 * run months of delay in milliseconds.
 *
 * @module
 */

/** Returns the current time. */
export type Clock = () => Date;

/** The machine's clock. */
export const systemClock: Clock = () => new Date();

/** A clock running `offsetMs` ahead of (or, when negative, behind) the machine's. */
export function offsetClock(offsetMs: number): Clock {
  return () => new Date(Date.now() + offsetMs);
}

const UNITS: Record<string, number> = {
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
};

/**
 * Parses a duration such as `90s`, `15m`, `2h`, `7d` or `-181d` into milliseconds.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseDuration } from "./clock.ts";
 *
 * assert.equal(parseDuration("7d"), 604_800_000);
 * assert.equal(parseDuration("-90s"), -90_000);
 * assert.throws(() => parseDuration("soon"), /Cannot parse duration "soon"/);
 * ```
 */
export function parseDuration(text: string): number {
  const match = /^([+-]?\d+(?:\.\d+)?)\s*([smhdw])$/.exec(text.trim());
  if (!match) {
    throw new TypeError(
      `Cannot parse duration "${text}": use a number followed by s, m, h, d or w (e.g. 7d)`,
    );
  }
  return Math.round(Number(match[1]) * UNITS[match[2]]);
}
