/**
 * What is happening: `GET /api/refused`, `POST /api/sneakernet/:direction`.
 *
 * @module
 */
import type { IsoDate } from "./common.ts";

/** Why a parcel was refused, in a stable form (`docs/protocol.md` §1.3). */
export type RefusalCode =
  | "too-large"
  | "malformed"
  | "bad-signature"
  | "expired"
  | "future-dated"
  | "unauthorized"
  | "blocked"
  | "duplicate"
  | "invitation-used"
  | "invitation-expired"
  | "undecryptable"
  | "bad-content"
  | "quota"
  | "rate-limited";

/** Refusals of alike parcels, counted together. */
export interface Refusal {
  readonly id: number;
  readonly at: IsoDate;
  readonly lastAt: IsoDate;
  readonly count: number;
  /** The binding that carried the parcel, and its previous hop. */
  readonly via: string;
  readonly hop: string | null;
  readonly code: RefusalCode;
  /** Why, for people. */
  readonly reason: string;
  readonly parcelId: string | null;
  readonly senderId: string | null;
  readonly recipientId: string | null;
  readonly size: number;
}

/** The answer to `GET /api/refused`. */
export interface Refused {
  /** The latest refusals (500 at most), extra copies of received parcels left out. */
  readonly refusals: readonly Refusal[];
  /** How many extra copies of parcels already received were dropped. */
  readonly copies: number;
}

/** The directions of `POST /api/sneakernet/:direction`. */
export type Direction = "export" | "import";

/** `POST /api/sneakernet/:direction`. */
export interface SneakernetRequest {
  /** The directory of the stick, e.g. `/media/usb`. */
  readonly directory: string;
}

/** The answer to `POST /api/sneakernet/export`. */
export interface ExportReport {
  readonly written: number;
  readonly alreadyThere: number;
  readonly bytes: number;
}

/** The answer to `POST /api/sneakernet/import`. */
export interface ImportReport {
  readonly accepted: number;
  readonly duplicates: number;
  /** Parcels for others, left on the stick. */
  readonly skipped: number;
  readonly refused: readonly { file: string; code: RefusalCode; reason: string }[];
  readonly unreadable: readonly { file: string; error: string }[];
  readonly ignored: readonly { file: string; code: string; reason: string }[];
}

/** The data of the `progress` event, during an export or import. */
export interface Progress {
  readonly direction: Direction;
  readonly done: number;
  readonly total: number;
}
