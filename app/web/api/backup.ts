/**
 * Backup and restore: `POST /api/backup`, `GET /api/backup/:id`,
 * `POST /api/restore/upload`, `POST /api/restore`.
 *
 * @module
 */
import type { IsoDate } from "./common.ts";
import type { Identity, State } from "./state.ts";

/** `POST /api/backup`: makes a backup of this device, encrypted under `passphrase`. */
export interface BackupRequest {
  /** 10 characters or more. */
  readonly passphrase: string;
  /** Leaves mail and attachments out (default false). */
  readonly withoutMail?: boolean;
  /** The device's current passphrase, needed when its keys are sealed under one. */
  readonly current?: string;
}

/**
 * The answer to `POST /api/backup`: the file, ready at `download` for a while
 * (a ticket from `POST /api/tickets` opens it, once).
 */
export interface BackupReady {
  readonly download: string;
  readonly fileName: string;
  readonly bytes: number;
  readonly contacts: number;
  readonly messages: number;
  readonly includesMail: boolean;
  /** Until when the file waits to be downloaded. */
  readonly expiresAt: IsoDate;
}

/**
 * The answer to `POST /api/restore/upload`, whose body is the backup file's
 * bytes (`application/octet-stream`), at most `maxBytes`.
 */
export interface RestoreUpload {
  /** What `POST /api/restore` names the upload by. */
  readonly upload: string;
  readonly bytes: number;
  readonly maxBytes: number;
}

/** `POST /api/restore`: restores the uploaded backup into this (new) device. */
export interface RestoreRequest {
  readonly upload: string;
  readonly passphrase: string;
}

/** The answer to `POST /api/restore`. */
export interface Restored {
  readonly identity: Identity;
  readonly contacts: number;
  readonly messages: number;
  /** Whether the backup held mail (not made "without mail"). */
  readonly includesMail: boolean;
  /** When the backup was made. */
  readonly backupCreatedAt: IsoDate;
  /** The state, now with the restored identity. */
  readonly state: State;
}
