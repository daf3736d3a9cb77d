/**
 * What the web app answers when a request fails. A person's mistake (a missing
 * or mistyped field, an unknown contact, a damaged invitation, a directory that
 * is not one) comes back as a 4xx whose `error` is a sentence they can act on,
 * and is not logged. Only the app's own failures are a 500, logged with their
 * stack.
 *
 * Statuses come from the one table of faults (`app/runtime/faults.ts`), which
 * the CLI's exit codes share. Routes mark what the user caused either by
 * throwing {@linkcode HttpError} themselves or by running a messenger call on
 * the user's input through {@linkcode fromUser}: the messenger reports bad
 * arguments as `RangeError`/`TypeError` (std's convention), which elsewhere
 * would be our own bug.
 *
 * @module
 */
import { HTTPException } from "hono/http-exception";
import { faultOf, httpStatusOf } from "../runtime/faults.ts";

/** An answer other than 2xx that a route chose, with the sentence to show. */
export class HttpError extends Error {
  /**
   * @param status A 4xx when the request is at fault, a 5xx when something else is.
   * @param message What to show the person, starting with a capital.
   */
  constructor(readonly status: number, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "HttpError";
  }
}

/**
 * Runs `fn`, a messenger call on what the user gave in the request's body,
 * turning the messenger's refusals of that input into a 400 (413 for a
 * message over the size limit).
 *
 * @example
 * ```ts ignore
 * const contact = await fromUser(() => node.contacts.rename(id, name));
 * ```
 */
export async function fromUser<T>(fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    const fault = faultOf(error, { inputBoundary: true });
    if (fault === "input" || fault === "not-found" || fault === "usage") {
      // A reference the person typed that matches nothing is their mistake too: a 400.
      const status = Math.min(httpStatusOf(error, { inputBoundary: true }), 413);
      throw new HttpError(status === 404 ? 400 : status, (error as Error).message, {
        cause: error,
      });
    }
    throw error;
  }
}

/** The status that answers `error`. */
export function errorStatus(error: unknown): number {
  if (error instanceof HttpError) return error.status;
  if (error instanceof HTTPException) return error.status;
  // A message or contact named in the address that does not exist is a 404.
  return httpStatusOf(error);
}

/**
 * The JSON answer to `error`, logging it through `log` unless the request was at
 * fault: with its stack for a 500, in one line for a failure it names (a full
 * disk, a gateway that cannot be reached).
 */
export function errorAnswer(
  error: unknown,
  request: { method: string; path: string },
  log: (line: string) => void,
): { status: number; body: { error: string } } {
  const status = errorStatus(error);
  const message = error instanceof Error ? error.message : String(error);
  if (status === 500) {
    const detail = error instanceof Error ? error.stack ?? message : message;
    log(`web: ${request.method} ${request.path} failed: ${detail}`);
    return {
      status,
      body: { error: `Relaymail failed to do this (${message}); its log has the details` },
    };
  }
  if (status > 500) log(`web: ${request.method} ${request.path}: ${message}`);
  return { status, body: { error: message } };
}
