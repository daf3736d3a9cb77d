/**
 * Parsing of command-line values that several commands share.
 *
 * @module
 */
import { FaultError } from "../core/errors.ts";

/** Commander's way to take an option more than once: each value joins the list. */
export function collect(value: string, all: string[] = []): string[] {
  return [...all, value];
}

/** The most a `--limit` may ask for. */
export const MAX_LIMIT = 1_000_000;

/** A `--limit` value: a whole number from 1 to {@linkcode MAX_LIMIT}, else a usage error. */
export function limit(text: string): number {
  const n = /^\s*\d+\s*$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < 1 || n > MAX_LIMIT) {
    throw new FaultError(
      "usage",
      `--limit takes a whole number from 1 to ${MAX_LIMIT}, not "${text}"`,
    );
  }
  return n;
}

/** A `--before` value: a cursor as a page printed it ("more: --before N"), else a usage error. */
export function cursor(text: string): string {
  if (!/^[1-9]\d{0,15}$/.test(text)) {
    throw new FaultError(
      "usage",
      `--before: cursor "${text}" is not one a page printed (the number after "more: --before")`,
    );
  }
  return text;
}
