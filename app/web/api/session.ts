/**
 * Sessions: `POST /api/session`, `POST /api/tickets`.
 *
 * @module
 */
import type { IsoDate } from "./common.ts";

/** `POST /api/session`: trades the secret of the printed address for a session. */
export interface SessionRequest {
  readonly secret: string;
}

/** The answer to `POST /api/session`. */
export interface Session {
  /** Sent as `Authorization: Bearer <token>`. */
  readonly token: string;
  readonly expiresAt: IsoDate;
  /** How long the session lasts unused. */
  readonly idleMs: number;
}

/** `POST /api/tickets`: a single-use ticket for a download (a plain navigation has no header). */
export interface TicketRequest {
  /** An attachment or `.eml` export path. */
  readonly path: string;
}

/** The answer to `POST /api/tickets`. */
export interface Ticket {
  /** `path` with its ticket, to open as a navigation. */
  readonly url: string;
}
