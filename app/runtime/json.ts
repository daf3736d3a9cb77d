/**
 * The JSON of the control API, which keeps what plain JSON loses: dates come
 * back as `Date`s and bytes as `Uint8Array`s. Operations run in this process
 * pass through it too, so a command renders the same whichever process ran it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fromJson, toJson } from "./json.ts";
 *
 * const value = { at: new Date(0), bytes: new Uint8Array([1, 2]), text: "x" };
 * assert.deepEqual(fromJson(toJson(value)), value);
 * ```
 *
 * @module
 */
import { Buffer } from "node:buffer";

/** `value` as control-API JSON. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, function (this: Record<string, unknown>, key, converted) {
    const original = this[key];
    if (original instanceof Date) return { $date: original.toISOString() };
    if (original instanceof Uint8Array) {
      return { $bytes: Buffer.from(original).toString("base64") };
    }
    return converted;
  });
}

/** The value `text` (control-API JSON) holds. */
export function fromJson(text: string): unknown {
  return JSON.parse(text, (_key, value) => {
    if (value && typeof value === "object" && !Array.isArray(value)) {
      const keys = Object.keys(value);
      if (keys.length === 1 && typeof value.$date === "string") return new Date(value.$date);
      if (keys.length === 1 && typeof value.$bytes === "string") {
        return new Uint8Array(Buffer.from(value.$bytes, "base64"));
      }
    }
    return value;
  });
}

/** `value` as it comes out of a trip through the control API. */
export function roundTrip<T>(value: T): T {
  return value === undefined ? value : fromJson(toJson(value)) as T;
}
