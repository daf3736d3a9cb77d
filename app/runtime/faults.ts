/**
 * The one table from an error to whose fault it is, and from that to the CLI's
 * exit code and the web API's HTTP status. The CLI, the web app and the control
 * API all answer through it, so a failure means the same everywhere.
 *
 * @module
 */
import { ForeignFileError, StorageFullError } from "../../bindings/durable.ts";
import { ContactLookupError } from "../core/contacts.ts";
import { type Fault, FaultError, FAULTS } from "../core/errors.ts";
import { NoIdentityError } from "../core/identity.ts";
import { CurrentPassphraseWrongError, TooManyGuessesError } from "../core/passphrase_guard.ts";
import { PassphraseRequiredError } from "../core/keys/key_stores.ts";
import { WrongPassphraseError } from "../core/keys/sealing.ts";
import { MessageLookupError, MessageTooLargeError } from "../core/mailbox.ts";
import { MalformedStructureError } from "../core/protocol/der.ts";
import { InvalidInvitationError } from "../core/protocol/invitation.ts";

export type { Fault };

/**
 * Whose fault `error` is.
 *
 * `inputBoundary` is for errors raised while acting on what a person gave: there
 * the messenger reports bad arguments as `RangeError`/`TypeError` (std's
 * convention), and the file system refuses paths they named, which elsewhere
 * would be our own bug.
 */
export function faultOf(error: unknown, options: { inputBoundary?: boolean } = {}): Fault {
  if (error instanceof FaultError) return FAULTS.includes(error.fault) ? error.fault : "bug";
  if (error instanceof ContactLookupError || error instanceof MessageLookupError) {
    return "not-found";
  }
  if (
    error instanceof InvalidInvitationError || error instanceof MessageTooLargeError ||
    error instanceof WrongPassphraseError || error instanceof PassphraseRequiredError ||
    error instanceof MalformedStructureError || error instanceof NoIdentityError
  ) return "input";
  if (error instanceof StorageFullError) return "transient";
  if (error instanceof ForeignFileError) return "input";
  // A full disk or quota, however the runtime reports it, passes when there is room.
  const code = (error as { code?: unknown } | null)?.code;
  if (code === "ENOSPC" || code === "EDQUOT") return "transient";
  if (error instanceof Deno.errors.ConnectionRefused || error instanceof Deno.errors.TimedOut) {
    return "transient";
  }
  if (options.inputBoundary) {
    if (error instanceof RangeError || error instanceof TypeError) return "input";
    // A file or directory the person named that is missing or not one we may use.
    if (error instanceof Deno.errors.NotFound) return "not-found";
    if (code === "EROFS") return "input"; // a read-only stick they named
    if (
      error instanceof Deno.errors.PermissionDenied || error instanceof Deno.errors.NotADirectory ||
      error instanceof Deno.errors.IsADirectory || error instanceof Deno.errors.AlreadyExists
    ) return "input";
  }
  return "bug";
}

/** The CLI's exit code for each fault: 2 for usage, as Unix tools do; sysexits for the rest. */
export const EXIT_CODES: Readonly<Record<Fault, number>> = {
  usage: 2,
  input: 1,
  "not-found": 1,
  conflict: 1,
  /** EX_TEMPFAIL: try again later. */
  transient: 75,
  /** EX_SOFTWARE: an internal error. */
  bug: 70,
};

/** The exit code for `error`, raised by a command acting on the person's input. */
export function exitCodeOf(error: unknown): number {
  return EXIT_CODES[faultOf(error, { inputBoundary: true })] ?? EXIT_CODES.bug;
}

/** The HTTP status for `error`, given whether it was raised acting on the request's input. */
export function httpStatusOf(error: unknown, options: { inputBoundary?: boolean } = {}): number {
  if (error instanceof MessageTooLargeError) return 413;
  if (error instanceof CurrentPassphraseWrongError) return 403;
  if (error instanceof TooManyGuessesError) return 429;
  if (error instanceof StorageFullError) return 507;
  switch (faultOf(error, options)) {
    case "usage":
    case "input":
      return 400;
    case "not-found":
      return 404;
    case "conflict":
      return 409;
    case "transient":
      return 503;
    case "bug":
      return 500;
  }
}
