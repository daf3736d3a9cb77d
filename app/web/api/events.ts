/**
 * Events: `GET /api/events` (server-sent events, JSON data).
 *
 * @module
 */
import type { Progress } from "./activity.ts";
import type { ChannelChanged } from "./channels.ts";
import type { DaemonState, State } from "./state.ts";

/** The data of each event the page follows. */
export interface PushEvents {
  /** First on every stream. */
  readonly hello: State;
  /** A message arrived: the page's toast and desktop notification name its sender. */
  readonly "mail-received": MailReceived;
  readonly "delivery-changed": unknown;
  readonly "contact-changed": unknown;
  readonly "parcel-refused": unknown;
  readonly "outbox-changed": unknown;
  readonly "gateway-changed": unknown;
  /** A message was archived or unarchived, marked read or unread, or deleted. */
  readonly "message-changed": { readonly id: string };
  /** A draft was saved, deleted or sent. */
  readonly "drafts-changed": null;
  /** A post arrived, was made or expired, or a channel was created, followed or changed. */
  readonly "channel-changed": ChannelChanged;
  /** A mesh peer came or went: the page reads the state again. */
  readonly peers: null;
  /** The daemon's state changed. */
  readonly status: DaemonState;
  /** The daemon (re)started, or the web app is stopping. */
  readonly daemon: DaemonState | { readonly stopping: true };
  readonly progress: Progress;
  /** The session ended: the stream ends after it. */
  readonly session: { readonly ended: true };
}

/** The data of `mail-received`. */
export interface MailReceived {
  /** The message's id. */
  readonly id: string;
  readonly from: { readonly id: string; readonly name: string };
  readonly subject: string;
}

/** An event's name. */
export type PushEventName = keyof PushEvents;
