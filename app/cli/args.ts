/**
 * Parsing of command-line values that several commands share.
 *
 * @module
 */
import { UserInputError } from "../core/errors.ts";

/** Commander's way to take an option more than once: each value joins the list. */
export function collect(value: string, all: string[] = []): string[] {
  return [...all, value];
}

/** A `--limit` value: a whole number (the operation checks its range). */
export function limit(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n)) throw new UserInputError(`--limit takes a whole number, not "${text}"`);
  return n;
}
