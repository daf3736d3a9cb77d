/**
 * Encryption of private keys at rest under the user's passphrase: scrypt derives a
 * key-encryption key, AES-256-GCM seals each private key with its label (the key's
 * id) as associated data, so a sealed key cannot be swapped for another's row.
 *
 * A sealed key in the current format, `RMS2`, names the scrypt parameters and salt
 * it was sealed under, so the cost can be raised later and old keys still open:
 *
 * | Octets | Field                                      |
 * | ------ | ------------------------------------------ |
 * | 4      | magic `RMS2`                               |
 * | 1      | log2 of scrypt's N                         |
 * | 1      | scrypt's r                                 |
 * | 1      | scrypt's p                                 |
 * | 16     | scrypt salt                                |
 * | 12     | AES-GCM nonce                              |
 * | n      | ciphertext                                 |
 * | 16     | AES-GCM tag                                |
 *
 * The associated data is the 23-octet header (magic to salt) followed by the label
 * in UTF-8, so the header is authenticated in its own right, not only through the
 * key it derives.
 *
 * The earlier format, `RMS1` (magic ‖ nonce ‖ ciphertext ‖ tag, the label alone as
 * associated data), used N = 2^15, r = 8, p = 1 and one salt per data directory
 * kept beside the keys rather than in them. It still opens; the key store reseals
 * it in `RMS2` (see `SqlitePrivateKeyStore.upgradeSealing`).
 *
 * @example Sealing and opening a key
 * ```ts
 * import assert from "node:assert/strict";
 * import { KeySealer, WrongPassphraseError } from "./sealing.ts";
 *
 * // Tests may lower the cost; data directories use SCRYPT_PARAMS.
 * const sealer = KeySealer.fromPassphrase("correct horse", undefined, {
 *   params: { log2N: 10, r: 8, p: 1 },
 * });
 * const sealed = sealer.seal(new Uint8Array([1, 2, 3]), "key-1");
 * assert.deepEqual(sealer.open(sealed, "key-1"), new Uint8Array([1, 2, 3]));
 * assert.throws(() => sealer.open(sealed, "key-2"), WrongPassphraseError);
 * ```
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from "node:crypto";

/** The cost of one scrypt derivation: N = 2^log2N, block size r, parallelism p (RFC 7914 §2). */
export interface ScryptParams {
  /** log2 of the CPU/memory cost N. */
  readonly log2N: number;
  /** Block size. */
  readonly r: number;
  /** Parallelisation. */
  readonly p: number;
}

/**
 * The cost keys are sealed at: the minimum the OWASP Password Storage Cheat Sheet
 * (section "scrypt") recommends, N = 2^17, r = 8, p = 1. It needs 128 MiB and
 * roughly a second of a small machine's time (0.9 to 1.4 s on a shared two-core
 * VM), once for each open of a data directory: the derived key is cached.
 */
export const SCRYPT_PARAMS: ScryptParams = Object.freeze({ log2N: 17, r: 8, p: 1 });

/** What `RMS1` keys were sealed at (32 MiB). */
export const RMS1_SCRYPT_PARAMS: ScryptParams = Object.freeze({ log2N: 15, r: 8, p: 1 });

/**
 * The most memory a sealed key may ask scrypt for (256 MiB, twice SCRYPT_PARAMS):
 * a damaged key cannot make opening take gigabytes.
 */
const MAX_SCRYPT_MEMORY = 256 * 1024 * 1024;
/** The most parallelism a sealed key may ask for: each unit costs a full derivation. */
const MAX_SCRYPT_P = 4;

const RMS1 = new TextEncoder().encode("RMS1");
const RMS2 = new TextEncoder().encode("RMS2");
const SALT_LENGTH = 16;
const NONCE_LENGTH = 12;
const TAG_LENGTH = 16;
/** magic ‖ log2 N ‖ r ‖ p ‖ salt */
const RMS2_HEADER_LENGTH = RMS2.length + 3 + SALT_LENGTH;
const KEY_LENGTH = 32;
const CHECK_PLAINTEXT = new TextEncoder().encode("relaymail passphrase check");
const CHECK_LABEL = "check";

/** Raised when a passphrase does not open a data directory's keys. */
export class WrongPassphraseError extends Error {
  constructor(message = "Wrong passphrase: it does not unlock this data directory's keys") {
    super(message);
    this.name = "WrongPassphraseError";
  }
}

/** Options of {@linkcode KeySealer.fromPassphrase}. */
export interface KeySealerOptions {
  /**
   * The scrypt cost of what this sealer seals (default {@linkcode SCRYPT_PARAMS}).
   * Only tests should lower it. Keys open whatever cost they name.
   */
  readonly params?: ScryptParams;
}

/** The parts of a sealed key. */
interface Parsed {
  readonly format: "RMS1" | "RMS2";
  readonly params: ScryptParams;
  /** The salt named in an `RMS2` key; null for `RMS1`, whose salt is the sealer's. */
  readonly salt: Uint8Array | null;
  readonly header: Uint8Array;
  readonly nonce: Uint8Array;
  readonly ciphertext: Uint8Array;
  readonly tag: Uint8Array;
}

/**
 * Seals and opens private keys with keys derived from a passphrase. A derived key
 * is cached per scrypt parameters and salt, so opening every key of a data
 * directory (all sealed under one salt) costs one derivation.
 */
export class KeySealer {
  readonly #passphrase: Uint8Array;
  readonly #keys = new Map<string, Uint8Array>();
  #derivations = 0;

  private constructor(
    passphrase: Uint8Array,
    /** The data directory's salt: new keys are sealed under it, as `RMS1` keys were. */
    readonly salt: Uint8Array,
    /** The scrypt cost new keys are sealed at. */
    readonly params: ScryptParams,
  ) {
    this.#passphrase = passphrase;
  }

  /**
   * A sealer for `passphrase`, sealing under `salt` (default: a fresh one), which
   * is also the salt `RMS1` keys were sealed under. Derives nothing yet: the first
   * key sealed or opened does.
   */
  static fromPassphrase(
    passphrase: string,
    salt: Uint8Array = KeySealer.newSalt(),
    options: KeySealerOptions = {},
  ): KeySealer {
    if (passphrase.length === 0) throw new TypeError("Cannot use an empty passphrase");
    if (salt.length !== SALT_LENGTH) {
      throw new RangeError(
        `Cannot use a salt of ${salt.length} octets: it must have ${SALT_LENGTH}`,
      );
    }
    const params = options.params ?? SCRYPT_PARAMS;
    checkParams(params, "seal keys");
    return new KeySealer(
      new TextEncoder().encode(passphrase.normalize("NFC")),
      new Uint8Array(salt),
      params,
    );
  }

  /** A fresh random salt. */
  static newSalt(): Uint8Array {
    return new Uint8Array(randomBytes(SALT_LENGTH));
  }

  /** How many keys this sealer has derived from the passphrase so far (each costs scrypt). */
  get derivations(): number {
    return this.#derivations;
  }

  /** Encrypts `plaintext` in `RMS2` at this sealer's cost and salt, bound to `label`. */
  seal(plaintext: Uint8Array, label: string): Uint8Array {
    const { log2N, r, p } = this.params;
    const header = new Uint8Array(RMS2_HEADER_LENGTH);
    header.set(RMS2, 0);
    header.set([log2N, r, p], RMS2.length);
    header.set(this.salt, RMS2.length + 3);
    const nonce = randomBytes(NONCE_LENGTH);
    const cipher = createCipheriv("aes-256-gcm", this.#key(this.params, this.salt), nonce);
    cipher.setAAD(associatedData(header, label));
    const body = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    const sealed = new Uint8Array(header.length + NONCE_LENGTH + body.length);
    sealed.set(header, 0);
    sealed.set(nonce, header.length);
    sealed.set(body, header.length + NONCE_LENGTH);
    return sealed;
  }

  /**
   * Decrypts what {@linkcode seal} made (or the `RMS1` format before it); throws
   * {@linkcode WrongPassphraseError} if the passphrase or the label does not fit,
   * or the sealed key was altered.
   */
  open(sealed: Uint8Array, label: string): Uint8Array {
    const parsed = parse(sealed, label);
    const salt = parsed.salt ?? this.salt;
    const key = this.#key(parsed.params, salt);
    const decipher = createDecipheriv("aes-256-gcm", key, parsed.nonce);
    decipher.setAAD(associatedData(parsed.header, label));
    decipher.setAuthTag(parsed.tag);
    try {
      return new Uint8Array(
        Buffer.concat([decipher.update(parsed.ciphertext), decipher.final()]),
      );
    } catch {
      throw label === CHECK_LABEL ? new WrongPassphraseError() : new WrongPassphraseError(
        `Cannot open sealed key ${label}: wrong passphrase, or the sealed key was altered`,
      );
    }
  }

  /**
   * True unless `sealed` (labelled `label`) is in `RMS2` at this sealer's cost and
   * salt: an older format, a lower (or different) cost, or another salt, which
   * opening would need a derivation of its own for.
   */
  needsReseal(sealed: Uint8Array, label: string): boolean {
    const parsed = parse(sealed, label);
    return parsed.format !== "RMS2" || !sameParams(parsed.params, this.params) ||
      !equalBytes(parsed.salt!, this.salt);
  }

  /** A value stored beside the salt so a wrong passphrase is caught before any key is used. */
  makeCheck(): Uint8Array {
    return this.seal(CHECK_PLAINTEXT, CHECK_LABEL);
  }

  /** Throws {@linkcode WrongPassphraseError} unless `check` was made with this passphrase. */
  verifyCheck(check: Uint8Array): void {
    this.open(check, CHECK_LABEL);
  }

  /** The key for `params` and `salt`, derived once. */
  #key(params: ScryptParams, salt: Uint8Array): Uint8Array {
    const id = `${params.log2N}.${params.r}.${params.p}.${Buffer.from(salt).toString("hex")}`;
    let key = this.#keys.get(id);
    if (!key) {
      key = new Uint8Array(
        scryptSync(this.#passphrase, salt, KEY_LENGTH, {
          N: 2 ** params.log2N,
          r: params.r,
          p: params.p,
          maxmem: MAX_SCRYPT_MEMORY + 1024 * 1024,
        }),
      );
      this.#derivations++;
      this.#keys.set(id, key);
    }
    return key;
  }
}

function parse(sealed: Uint8Array, label: string): Parsed {
  const magic = sealed.subarray(0, 4);
  if (equalBytes(magic, RMS2)) {
    if (sealed.length < RMS2_HEADER_LENGTH + NONCE_LENGTH + TAG_LENGTH) {
      throw new TypeError(
        `Sealed key ${label} is corrupt: it has ${sealed.length} octets, fewer than the ${
          RMS2_HEADER_LENGTH + NONCE_LENGTH + TAG_LENGTH
        } of an empty one`,
      );
    }
    const [log2N, r, p] = sealed.subarray(RMS2.length, RMS2.length + 3);
    const params = { log2N, r, p };
    checkParams(params, `open sealed key ${label}`);
    const header = sealed.subarray(0, RMS2_HEADER_LENGTH);
    return {
      format: "RMS2",
      params,
      salt: sealed.subarray(RMS2.length + 3, RMS2_HEADER_LENGTH),
      header,
      nonce: sealed.subarray(RMS2_HEADER_LENGTH, RMS2_HEADER_LENGTH + NONCE_LENGTH),
      ciphertext: sealed.subarray(RMS2_HEADER_LENGTH + NONCE_LENGTH, sealed.length - TAG_LENGTH),
      tag: sealed.subarray(sealed.length - TAG_LENGTH),
    };
  }
  if (equalBytes(magic, RMS1)) {
    if (sealed.length < RMS1.length + NONCE_LENGTH + TAG_LENGTH) {
      throw new TypeError(
        `Sealed key ${label} is corrupt: it has ${sealed.length} octets, fewer than the ${
          RMS1.length + NONCE_LENGTH + TAG_LENGTH
        } of an empty one`,
      );
    }
    return {
      format: "RMS1",
      params: RMS1_SCRYPT_PARAMS,
      salt: null,
      // RMS1 authenticated the label alone.
      header: new Uint8Array(0),
      nonce: sealed.subarray(RMS1.length, RMS1.length + NONCE_LENGTH),
      ciphertext: sealed.subarray(RMS1.length + NONCE_LENGTH, sealed.length - TAG_LENGTH),
      tag: sealed.subarray(sealed.length - TAG_LENGTH),
    };
  }
  throw new TypeError(`Sealed key ${label} is corrupt: it starts with neither RMS2 nor RMS1`);
}

/** Refuses a cost scrypt cannot run, or one too dear to run unasked. */
function checkParams({ log2N, r, p }: ScryptParams, what: string): void {
  const memory = 128 * r * 2 ** log2N;
  if (!Number.isInteger(log2N) || log2N < 1 || !Number.isInteger(r) || r < 1 || r > 255) {
    throw new RangeError(`Cannot ${what} with scrypt log2 N = ${log2N}, r = ${r}`);
  }
  if (!Number.isInteger(p) || p < 1 || p > MAX_SCRYPT_P) {
    throw new RangeError(
      `Cannot ${what} as its scrypt parallelism exceeds ${MAX_SCRYPT_P}: p = ${p}`,
    );
  }
  if (memory > MAX_SCRYPT_MEMORY) {
    throw new RangeError(
      `Cannot ${what} as its scrypt cost exceeds ${MAX_SCRYPT_MEMORY} octets of memory: N = 2^${log2N} and r = ${r} need ${memory}`,
    );
  }
}

function associatedData(header: Uint8Array, label: string): Uint8Array {
  const encoded = new TextEncoder().encode(label);
  const data = new Uint8Array(header.length + encoded.length);
  data.set(header, 0);
  data.set(encoded, header.length);
  return data;
}

function sameParams(a: ScryptParams, b: ScryptParams): boolean {
  return a.log2N === b.log2N && a.r === b.r && a.p === b.p;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((value, i) => value === b[i]);
}
