/**
 * What the web API's routes share: the runtime and messenger they act on, and
 * the web app's own parts they answer through.
 *
 * @module
 */
import type { MiddlewareHandler } from "hono";
import type { MessageDetail as ApiMessageDetail, Sendable, State } from "../api_types.ts";
import type { MessageDetail } from "../../core/mailbox.ts";
import type { Runtime } from "../../runtime/runtime.ts";
import type { Relaymail } from "../../services/relaymail.ts";
import type { PushEvent } from "../events.ts";
import type { PassphraseGuard } from "../../core/passphrase_guard.ts";

/** The web app, as its routes see it. */
export interface RouteContext {
  readonly runtime: Runtime;
  /** The messenger (`runtime.messenger`). */
  readonly node: Relaymail;
  /** Middleware that limits a JSON body to a few KiB. */
  readonly small: MiddlewareHandler;
  readonly passphrases: PassphraseGuard;
  /** Tells the open pages that `event` happened. */
  push(event: PushEvent, data: unknown): void;
  /** What the page shows at the top: identity, counts, daemon, peers. */
  state(): Sendable<State>;
  /** A message with, for each delivery, the path its parcel took. */
  detail(message: MessageDetail): Sendable<ApiMessageDetail>;
}

/**
 * `value`, checked against the API type `T` the page expects (`api_types.ts`),
 * so that server and page cannot drift apart unnoticed.
 */
export function answer<T>(value: Sendable<T>): Sendable<T> {
  return value;
}
