/**
 * What every part of the messenger shares: the database, the key stores, the
 * clock and the settings. Passed in explicitly; there are no global singletons.
 *
 * @module
 */
import type { SqliteDatabase } from "../../bindings/durable.ts";
import type { Clock } from "./clock.ts";
import type { SqliteKeyStoreSet } from "./keys/key_stores.ts";

const MINUTE = 60_000;
const DAY = 86_400_000;

/** Tunable behaviour; every field has a default in {@linkcode DEFAULT_TUNABLES}. */
export interface Tunables {
  /** How far in the future an incoming parcel may be dated (RS-001 allows up to 2 h). */
  readonly clockDriftToleranceMs: number;
  /** How far back outgoing parcels are dated, so receivers with slow clocks accept them. */
  readonly parcelBackdateMs: number;
  /** Lifetime of outgoing parcels: mail may take months. */
  readonly parcelTtlMs: number;
  /** Default lifetime of an invitation. */
  readonly invitationTtlMs: number;
  /**
   * Lifetime of each of this endpoint's self-issued certificates. RS-002 caps every
   * certificate at 180 days.
   */
  readonly identityCertificateValidityMs: number;
  /** Lifetime of each PDA issued to a contact (RS-002: at most 180 days, like any certificate). */
  readonly pdaValidityMs: number;
  /**
   * How far apart successive certificates (ours and the PDAs we issue) start, so that
   * each overlaps the next: RS-002 asks for rotation once half the validity has elapsed.
   */
  readonly certificateRotationMs: number;
  /**
   * How far ahead of the clock this endpoint keeps certificates and contacts' PDAs
   * issued (each within the caps above, starting one rotation after the other): a
   * contact that received them can still write after a silence this long
   * (docs/protocol.md §6).
   */
  readonly authorizationHorizonMs: number;
  /**
   * How long a session key the peer has moved past is kept before deletion, for
   * parcels still travelling by slower paths. Zero deletes it at once.
   */
  readonly sessionKeyGraceMs: number;
  /** The refusal log keeps this many most recent entries. */
  readonly refusalLogLimit: number;
  /**
   * How long after a parcel arrives the parcels it calls for (receipts, pairing
   * answers) are built, so that a burst of arrivals is answered in one go.
   */
  readonly followUpDelayMs: number;
  /** Most posts the app keeps per channel; past it, the earliest dated go (docs/broadcast.md §9). */
  readonly channelPostLimit: number;
}

/** Relaymail's defaults. */
export const DEFAULT_TUNABLES: Tunables = {
  clockDriftToleranceMs: 2 * 60 * MINUTE,
  parcelBackdateMs: 5 * MINUTE,
  parcelTtlMs: 180 * DAY,
  invitationTtlMs: 7 * DAY,
  identityCertificateValidityMs: 180 * DAY,
  pdaValidityMs: 180 * DAY,
  certificateRotationMs: 90 * DAY,
  // Two years of silence, and a quarter to spare for the parcels that carried them.
  authorizationHorizonMs: (2 * 365 + 90) * DAY,
  sessionKeyGraceMs: 7 * DAY,
  refusalLogLimit: 10_000,
  followUpDelayMs: 250,
  channelPostLimit: 5_000,
};

/** The shared state of one open data directory. */
export interface NodeContext {
  readonly dataDir: string;
  readonly db: SqliteDatabase;
  readonly keys: SqliteKeyStoreSet;
  readonly now: Clock;
  readonly tunables: Tunables;
  /** Dispatches {@linkcode RelaymailEvent}s for live views. */
  readonly events: EventTarget;
}

/** Names of the events the messenger dispatches on `context.events`. */
export type RelaymailEventName =
  | "mail-received"
  | "delivery-changed"
  | "contact-changed"
  | "parcel-refused"
  | "outbox-changed"
  | "gateway-changed"
  | "message-changed"
  | "drafts-changed"
  /** Detail `{ channelId, key? }`: a post arrived, was made or expired, or a channel changed. */
  | "channel-changed";

/**
 * The messenger's event target: a listener that throws is reported on stderr and
 * affects neither the code that emitted the event nor the other listeners (a plain
 * EventTarget reports it as an uncaught error, which ends a Deno process).
 */
export class MessengerEvents extends EventTarget {
  readonly #wrapped = new WeakMap<EventListenerOrEventListenerObject, EventListener>();

  override addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void {
    if (!listener) return;
    let wrapped = this.#wrapped.get(listener);
    if (!wrapped) {
      wrapped = (event) => {
        try {
          // (Two declarations of Event are in scope, Deno's and Node's: call untyped.)
          if (typeof listener === "function") (listener as (e: unknown) => void).call(this, event);
          else (listener as { handleEvent(e: unknown): void }).handleEvent(event);
        } catch (error) {
          console.error(
            `A listener of "${event.type}" failed: ${(error as Error)?.stack ?? error}`,
          );
        }
      };
      this.#wrapped.set(listener, wrapped);
    }
    super.addEventListener(type, wrapped, options);
  }

  override removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void {
    const wrapped = listener && this.#wrapped.get(listener);
    if (wrapped) super.removeEventListener(type, wrapped, options);
  }
}

/**
 * Dispatches a named event whose `detail` is `detail`, once the transaction it is
 * part of commits (never if it rolls back); a listener that throws is reported
 * and does not affect the emitter.
 */
export function emit(ctx: NodeContext, name: RelaymailEventName, detail: unknown = null): void {
  ctx.db.afterCommit(() => ctx.events.dispatchEvent(new CustomEvent(name, { detail })));
}
