/**
 * What the operations share: checks on what they are given, and the names of
 * contacts for views that name people. Operations take plain data from the CLI
 * or over the control API; a value of the wrong kind is the caller's mistake,
 * told in words rather than met later as a `TypeError` deep inside.
 *
 * @module
 */
import { UserInputError } from "../../core/errors.ts";
import type { OperationContext } from "../types.ts";

/** `value`, which must be a string, named `name` in the error if not. */
export function text(value: unknown, name: string): string {
  if (typeof value !== "string") throw new UserInputError(`${name} must be text`);
  return value;
}

/** `value` when it is a string; undefined when absent. */
export function optionalText(value: unknown, name: string): string | undefined {
  return value === undefined || value === null ? undefined : text(value, name);
}

/** `value`, a whole number from `min` (0 unless said) to `max`, or `fallback` when absent. */
export function count(
  value: unknown,
  name: string,
  fallback: number,
  max = 1_000_000,
  min = 0,
): number {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new UserInputError(`${name} takes a whole number from ${min} to ${max}, not ${value}`);
  }
  return value;
}

/** The local names of the contacts among `ids`, by id: for views that name people. */
export function contactNames(
  context: OperationContext,
  ids: Iterable<string | null>,
): Record<string, string> {
  const names: Record<string, string> = {};
  for (const id of ids) {
    const name = id === null ? undefined : context.messenger.contacts.get(id)?.name;
    if (name !== undefined) names[id!] = name;
  }
  return names;
}
