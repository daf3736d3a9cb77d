/**
 * Errors that say whose fault they are. Each carries a {@linkcode Fault}, which
 * the interfaces turn into an exit code or an HTTP status in one place
 * (`app/runtime/faults.ts`): a person's mistake is told plainly and not logged,
 * a transient failure asks them to try again, and anything else is our bug.
 *
 * @module
 */

/**
 * Whose fault a failure is:
 * - `usage`: the command line was wrong (an unknown option, a missing argument);
 * - `input`: what the person gave cannot be used (a bad name, a damaged invitation);
 * - `not-found`: what they named does not exist;
 * - `conflict`: it cannot be done in the current state (already running, already exists);
 * - `transient`: the machine or the network failed for now (a full disk, a gateway down);
 * - `bug`: Relaymail's own failure.
 */
export type Fault = "usage" | "input" | "not-found" | "conflict" | "transient" | "bug";

/** Every fault; a fault named anywhere else (an answer from another version, say) is read as a bug. */
export const FAULTS: readonly Fault[] = [
  "usage",
  "input",
  "not-found",
  "conflict",
  "transient",
  "bug",
];

/** An error that knows its {@linkcode Fault}. */
export class FaultError extends Error {
  constructor(readonly fault: Fault, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "FaultError";
  }
}

/** What the person gave cannot be used; the message says why and what to do. */
export class UserInputError extends FaultError {
  constructor(message: string, options?: ErrorOptions) {
    super("input", message, options);
    this.name = "UserInputError";
  }
}

/** What the person named does not exist. */
export class NotFoundError extends FaultError {
  constructor(message: string, options?: ErrorOptions) {
    super("not-found", message, options);
    this.name = "NotFoundError";
  }
}

/** The request cannot be done in the current state. */
export class ConflictError extends FaultError {
  constructor(message: string, options?: ErrorOptions) {
    super("conflict", message, options);
    this.name = "ConflictError";
  }
}

/** Something outside Relaymail failed for now; the same request may work later. */
export class TransientError extends FaultError {
  constructor(message: string, options?: ErrorOptions) {
    super("transient", message, options);
    this.name = "TransientError";
  }
}
