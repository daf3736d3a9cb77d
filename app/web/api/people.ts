/**
 * Contacts and pairing: `/api/contacts`, `/api/invitations`, `/api/accept`.
 *
 * @module
 */
import type { IsoDate } from "./common.ts";

/**
 * Where a pairing stands: `lapsed` when every authorisation one side gave the
 * other has expired (a silence longer than the horizon, docs/protocol.md §6), so
 * that they must pair again (`POST /api/contacts/:id/repair`).
 */
export type ContactState = "pairing" | "active" | "lapsed" | "blocked";

/**
 * A contact: `GET /api/contacts` lists them; renaming, blocking, unblocking
 * (`POST /api/contacts/:id/…`) and `POST /api/accept` answer with one.
 */
export interface Contact {
  readonly id: string;
  /** The name the user gave them. */
  readonly name: string;
  /** The name they gave themselves: a hint only. */
  readonly nameHint: string;
  readonly fingerprint: string;
  readonly state: ContactState;
  readonly createdAt: IsoDate;
  readonly lastActivityAt: IsoDate;
  /** When the last authorisation we gave them runs out: they can write to us until then. */
  readonly authorizationExpiresAt: IsoDate | null;
  /** When the last authorisation they gave us runs out: we can write to them until then. */
  readonly writableUntil: IsoDate | null;
}

/** `POST /api/contacts/:id/rename`. */
export interface RenameRequest {
  readonly name: string;
}

/** An invitation: `GET /api/invitations` lists them, newest first. */
export interface Invitation {
  readonly id: string;
  readonly contactName: string | null;
  readonly createdAt: IsoDate;
  readonly expiresAt: IsoDate;
  readonly state: "pending" | "used" | "revoked" | "expired";
  readonly usedAt: IsoDate | null;
  readonly usedBy: string | null;
}

/**
 * `POST /api/invitations`: `name` is the local name of whoever accepts; `format` the
 * text's (2, the default, fits one QR code; 1 is for Relaymail older than version 2
 * invitations).
 */
export interface InvitationRequest {
  readonly name?: string;
  readonly format?: 1 | 2;
}

/**
 * The answer to `POST /api/invitations`, to `POST /api/contacts/:id/repair` (an
 * invitation only that contact can use, to pair again), and to
 * `GET /api/invitations/:id` (a pending invitation's text again; 409 once it is
 * used, revoked or expired): the text to hand over, whole and as QR codes.
 */
export interface CreatedInvitation extends Invitation {
  readonly text: string;
  /** The text as the QR codes hold it: the whole text (version 2), or its parts. */
  readonly parts: readonly string[];
  /** One `data:image/svg+xml` URL per part: just one for a version 2 text. */
  readonly qrCodes: readonly string[];
}

/** `POST /api/accept`: an invitation someone gave the user; answers with the new contact. */
export interface AcceptRequest {
  readonly text: string;
  readonly name?: string;
}
