/**
 * What every answer shares: dates as text, the error body, and what the server may send.
 *
 * @module
 */
/** A date as JSON carries it: ISO 8601 text, e.g. `2025-03-01T12:00:00.000Z`. */
export type IsoDate = string;

/** The body of every answer with an error status. */
export interface ErrorBody {
  /** What went wrong, for people. */
  readonly error: string;
}

/**
 * What the server may hand to `c.json()` to answer with a `T`: the same shape,
 * with a `Date` wherever `T` has text (JSON turns dates into ISO strings).
 */
export type Sendable<T> = T extends string ? string | Date
  : T extends readonly (infer U)[] ? readonly Sendable<U>[]
  : T extends object ? { readonly [K in keyof T]: Sendable<T[K]> }
  : T;
