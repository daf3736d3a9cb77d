/**
 * Changing or removing the passphrase asks for the current one, from the web app
 * and over the control API alike, so that an unattended open page, a stolen
 * session or any process that can reach a running daemon cannot unseal the keys.
 * Wrong guesses are limited: after {@linkcode MAX_WRONG_PASSPHRASES} within
 * {@linkcode WRONG_PASSPHRASE_WINDOW_MS}, further tries wait.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { SqliteDatabase } from "../../bindings/durable.ts";
import { TransientError, UserInputError } from "./errors.ts";
import { KeySealer, WrongPassphraseError } from "./keys/sealing.ts";

/** Raised when the current passphrase given to change or remove it is wrong (HTTP 403). */
export class CurrentPassphraseWrongError extends UserInputError {
  constructor() {
    super("The current passphrase is wrong: nothing was changed");
    this.name = "CurrentPassphraseWrongError";
  }
}

/** Raised when too many wrong passphrases were given lately (HTTP 429). */
export class TooManyGuessesError extends TransientError {
  constructor(message: string) {
    super(message);
    this.name = "TooManyGuessesError";
  }
}

/** Wrong current passphrases accepted within {@linkcode WRONG_PASSPHRASE_WINDOW_MS}. */
export const MAX_WRONG_PASSPHRASES = 5;
/** The window over which wrong passphrases are counted: 15 minutes. */
export const WRONG_PASSPHRASE_WINDOW_MS = 15 * 60_000;

/**
 * Whether `passphrase` unlocks the keys of the data directory in `db` (the
 * check value beside its salt, as `Relaymail.open` verifies it); true when
 * the directory has no passphrase.
 *
 * Stands in for an app-side `Relaymail.verifyPassphrase()`, which would keep the
 * layout of the `meta` rows in one file.
 */
export function passphraseUnlocks(db: SqliteDatabase, passphrase: string): boolean {
  const salt = db.get<{ value: string }>("SELECT value FROM meta WHERE key = 'passphrase.salt'");
  const check = db.get<{ value: string }>("SELECT value FROM meta WHERE key = 'passphrase.check'");
  if (!salt || !check) return true;
  if (passphrase === "") return false;
  try {
    KeySealer.fromPassphrase(passphrase, Buffer.from(salt.value, "hex"))
      .verifyCheck(Buffer.from(check.value, "hex"));
    return true;
  } catch (error) {
    if (error instanceof WrongPassphraseError) return false;
    throw error;
  }
}

/** Checks the current passphrase a change gives, counting wrong ones. */
export class PassphraseGuard {
  #wrong: number[] = [];

  constructor(private readonly now: () => Date = () => new Date()) {}

  /**
   * Returns when `current` is the passphrase of `db`'s directory (or it has
   * none); otherwise throws a {@linkcode UserInputError} (none given), a
   * {@linkcode CurrentPassphraseWrongError} or a {@linkcode TooManyGuessesError}
   * (too many wrong ones lately).
   */
  check(db: SqliteDatabase, protectedNow: boolean, current: string | undefined): void {
    if (!protectedNow) return;
    if (current === undefined) {
      throw new UserInputError("Give your current passphrase to change or remove it");
    }
    const now = this.now().getTime();
    this.#wrong = this.#wrong.filter((at) => now - at < WRONG_PASSPHRASE_WINDOW_MS);
    if (this.#wrong.length >= MAX_WRONG_PASSPHRASES) {
      const minutes = Math.ceil((this.#wrong[0] + WRONG_PASSPHRASE_WINDOW_MS - now) / 60_000);
      throw new TooManyGuessesError(
        `Too many wrong passphrases (${MAX_WRONG_PASSPHRASES} in ${
          WRONG_PASSPHRASE_WINDOW_MS / 60_000
        } minutes): try again in ${minutes} minute${minutes === 1 ? "" : "s"}`,
      );
    }
    if (!passphraseUnlocks(db, current)) {
      this.#wrong.push(now);
      throw new CurrentPassphraseWrongError();
    }
  }
}
