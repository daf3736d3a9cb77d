/**
 * Reading what a request says: a JSON object and its fields, each checked for
 * its type before anything uses it, so that a mistake is refused with a sentence
 * naming the field rather than failing later (or, worse, being stored as
 * `[object Object]`).
 *
 * @module
 */
import { HttpError } from "./errors.ts";

/** A JSON request body: an object of fields. */
export type JsonFields = Readonly<Record<string, unknown>>;

/** The request's body as a JSON object; a 400 if it is not one. */
export async function jsonFields(request: { json(): Promise<unknown> }): Promise<JsonFields> {
  let body: unknown;
  try {
    body = await request.json();
  } catch (error) {
    throw new HttpError(400, "The request body must be JSON, e.g. {}", { cause: error });
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new HttpError(400, `The request body must be a JSON object, not ${kindOf(body)}`);
  }
  return body as JsonFields;
}

/** Options of {@linkcode textField}. */
export interface TextFieldOptions {
  /** When false, a missing field (or null, or "") is a 400 (default: true, it gives undefined). */
  readonly optional?: boolean;
}

/**
 * The text field `name` of `fields`: undefined when it is missing, null or ""
 * (unless required), a 400 naming the field when it is anything but text.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { textField } from "./input.ts";
 *
 * assert.equal(textField({ name: "Bob" }, "name"), "Bob");
 * assert.equal(textField({ name: "" }, "name"), undefined);
 * ```
 */
export function textField(
  fields: JsonFields,
  name: string,
  options: TextFieldOptions = {},
): string | undefined {
  const value = fields[name];
  if (value === undefined || value === null || value === "") {
    if (options.optional === false) throw new HttpError(400, `Give "${name}"`);
    return undefined;
  }
  if (typeof value !== "string") {
    throw new HttpError(400, `"${name}" must be text, not ${kindOf(value)}`);
  }
  return value;
}

/** The required text field `name` of `fields`. */
export function requiredText(fields: JsonFields, name: string): string {
  return textField(fields, name, { optional: false })!;
}

/** What a JSON value is, in words: "a number", "an object", "null". */
export function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  switch (typeof value) {
    case "object":
      return "an object";
    case "undefined":
      return "nothing";
    case "string":
      return "text";
    default:
      return `a ${typeof value}`;
  }
}
