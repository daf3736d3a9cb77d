/**
 * Encryption of private keys at rest under the user's passphrase: scrypt derives a
 * key-encryption key, AES-256-GCM seals each private key with the key's id as
 * associated data (so a sealed key cannot be swapped for another's row).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from "node:crypto";

const MAGIC = new TextEncoder().encode("RMS1");
const NONCE_LENGTH = 12;
const TAG_LENGTH = 16;
const CHECK_PLAINTEXT = new TextEncoder().encode("relaymail passphrase check");

/** scrypt cost: 2^15 iterations with r=8 take about 32 MiB and a tenth of a second. */
const SCRYPT_OPTIONS = { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };

/** Raised when a passphrase does not open a data directory's keys. */
export class WrongPassphraseError extends Error {
  constructor(message = "Wrong passphrase: it does not unlock this data directory's keys") {
    super(message);
    this.name = "WrongPassphraseError";
  }
}

/** Seals and opens private keys with a key derived from a passphrase. */
export class KeySealer {
  readonly #key: Uint8Array;

  private constructor(key: Uint8Array, readonly salt: Uint8Array) {
    this.#key = key;
  }

  /** Derives the sealing key from a passphrase and a salt (default: a fresh one). */
  static fromPassphrase(passphrase: string, salt: Uint8Array = KeySealer.newSalt()): KeySealer {
    if (passphrase.length === 0) throw new TypeError("Cannot use an empty passphrase");
    const key = scryptSync(passphrase.normalize("NFC"), salt, 32, SCRYPT_OPTIONS);
    return new KeySealer(new Uint8Array(key), salt);
  }

  /** A fresh random salt. */
  static newSalt(): Uint8Array {
    return new Uint8Array(randomBytes(16));
  }

  /** Encrypts `plaintext`, bound to `label`. */
  seal(plaintext: Uint8Array, label: string): Uint8Array {
    const nonce = randomBytes(NONCE_LENGTH);
    const cipher = createCipheriv("aes-256-gcm", this.#key, nonce);
    cipher.setAAD(new TextEncoder().encode(label));
    const body = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    const sealed = new Uint8Array(MAGIC.length + NONCE_LENGTH + body.length);
    sealed.set(MAGIC, 0);
    sealed.set(nonce, MAGIC.length);
    sealed.set(body, MAGIC.length + NONCE_LENGTH);
    return sealed;
  }

  /** Decrypts what {@linkcode seal} made; throws {@linkcode WrongPassphraseError} if it cannot. */
  open(sealed: Uint8Array, label: string): Uint8Array {
    const header = MAGIC.length + NONCE_LENGTH;
    if (sealed.length < header + TAG_LENGTH || !MAGIC.every((b, i) => sealed[i] === b)) {
      throw new TypeError(`Sealed key ${label} is corrupt`);
    }
    const nonce = sealed.subarray(MAGIC.length, header);
    const tag = sealed.subarray(sealed.length - TAG_LENGTH);
    const decipher = createDecipheriv("aes-256-gcm", this.#key, nonce);
    decipher.setAAD(new TextEncoder().encode(label));
    decipher.setAuthTag(tag);
    try {
      return new Uint8Array(
        Buffer.concat([
          decipher.update(sealed.subarray(header, sealed.length - TAG_LENGTH)),
          decipher.final(),
        ]),
      );
    } catch {
      throw new WrongPassphraseError();
    }
  }

  /** A value stored beside the salt so a wrong passphrase is caught before any key is used. */
  makeCheck(): Uint8Array {
    return this.seal(CHECK_PLAINTEXT, "check");
  }

  /** Throws {@linkcode WrongPassphraseError} unless `check` was made with this passphrase. */
  verifyCheck(check: Uint8Array): void {
    this.open(check, "check");
  }
}
