import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createCipheriv, randomBytes, scryptSync } from "node:crypto";
import {
  KeySealer,
  RMS1_SCRYPT_PARAMS,
  SCRYPT_PARAMS,
  type ScryptParams,
  WrongPassphraseError,
} from "../app/core/keys/sealing.ts";

/** Cheap enough for tests; data directories use SCRYPT_PARAMS. */
const CHEAP: ScryptParams = { log2N: 10, r: 8, p: 1 };
const KEY = new TextEncoder().encode("a private key, PKCS#8 DER in real life");

function cheapSealer(passphrase = "correct horse", salt?: Uint8Array): KeySealer {
  return KeySealer.fromPassphrase(passphrase, salt, { params: CHEAP });
}

/** What the sealing code before RMS2 wrote (app/core/keys/sealing.ts at RMS1), kept for tests. */
function sealRms1(passphrase: string, salt: Uint8Array, plaintext: Uint8Array, label: string) {
  const key = scryptSync(passphrase.normalize("NFC"), salt, 32, {
    N: 2 ** 15,
    r: 8,
    p: 1,
    maxmem: 64 * 1024 * 1024,
  });
  const nonce = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, nonce);
  cipher.setAAD(new TextEncoder().encode(label));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  return new Uint8Array(Buffer.concat([new TextEncoder().encode("RMS1"), nonce, body]));
}

Deno.test("KeySealer.seal() writes RMS2 naming its scrypt cost and salt, and open() reverses it", () => {
  const sealer = cheapSealer();
  const sealed = sealer.seal(KEY, "key-1");
  assert.equal(new TextDecoder().decode(sealed.subarray(0, 4)), "RMS2");
  assert.deepEqual([...sealed.subarray(4, 7)], [CHEAP.log2N, CHEAP.r, CHEAP.p]);
  assert.deepEqual(sealed.subarray(7, 23), sealer.salt);
  assert.equal(sealed.length, 23 + 12 + KEY.length + 16);
  assert.deepEqual(sealer.open(sealed, "key-1"), KEY);
  assert.equal(sealer.needsReseal(sealed, "key-1"), false);
  // Two seals of one key differ (fresh nonce each time).
  assert.notDeepEqual(sealer.seal(KEY, "key-1"), sealed);
});

Deno.test("KeySealer seals at SCRYPT_PARAMS by default: N = 2^17, r = 8, p = 1", () => {
  assert.deepEqual(SCRYPT_PARAMS, { log2N: 17, r: 8, p: 1 });
  const sealer = KeySealer.fromPassphrase("correct horse");
  const sealed = sealer.seal(KEY, "key-1");
  assert.deepEqual([...sealed.subarray(4, 7)], [17, 8, 1]);
  assert.deepEqual(sealer.open(sealed, "key-1"), KEY);
});

Deno.test("KeySealer.open() derives with the cost and salt the sealed key names, not its own", () => {
  const salt = KeySealer.newSalt();
  const sealed = KeySealer.fromPassphrase("correct horse", salt, { params: CHEAP }).seal(KEY, "k");
  const other = KeySealer.fromPassphrase("correct horse", KeySealer.newSalt(), {
    params: { log2N: 11, r: 4, p: 2 },
  });
  assert.deepEqual(other.open(sealed, "k"), KEY);
  assert.equal(other.derivations, 1);
  assert.equal(other.needsReseal(sealed, "k"), true);
  // Resealing brings the key to this sealer's cost and salt.
  const resealed = other.seal(other.open(sealed, "k"), "k");
  assert.deepEqual([...resealed.subarray(4, 7)], [11, 4, 2]);
  assert.deepEqual(resealed.subarray(7, 23), other.salt);
  assert.equal(other.needsReseal(resealed, "k"), false);
});

Deno.test("KeySealer.open() refuses a wrong passphrase or label with WrongPassphraseError", () => {
  const salt = KeySealer.newSalt();
  const sealer = cheapSealer("correct horse", salt);
  const sealed = sealer.seal(KEY, "key-1");
  assert.throws(
    () => cheapSealer("battery staple", salt).open(sealed, "key-1"),
    WrongPassphraseError,
  );
  assert.throws(() => sealer.open(sealed, "key-2"), WrongPassphraseError);
  const check = sealer.makeCheck();
  sealer.verifyCheck(check);
  assert.throws(
    () => cheapSealer("battery staple").verifyCheck(check),
    (error: Error) =>
      error instanceof WrongPassphraseError && /^Wrong passphrase/.test(error.message),
  );
});

Deno.test("KeySealer.open() refuses a sealed key whose header or body was altered", () => {
  const sealer = cheapSealer();
  const sealed = sealer.seal(KEY, "key-1");
  const altered = (offset: number, value: number) => {
    const copy = sealed.slice();
    copy[offset] = value;
    return copy;
  };
  // Magic: neither format.
  assert.throws(() => sealer.open(altered(3, 0x33), "key-1"), TypeError);
  // RMS2 read as RMS1: the layout no longer fits, nor does the key.
  assert.throws(() => sealer.open(altered(3, 0x31), "key-1"), WrongPassphraseError);
  // A lower cost, another r, p or salt derive another key, and the header is authenticated.
  for (
    const [offset, value] of [[4, 9], [5, 4], [6, 2], [7, sealed[7] ^ 1], [22, sealed[22] ^ 1]]
  ) {
    assert.throws(() => sealer.open(altered(offset, value), "key-1"), WrongPassphraseError);
  }
  // Nonce, ciphertext and tag.
  for (const offset of [23, 35, sealed.length - 1]) {
    assert.throws(
      () => sealer.open(altered(offset, sealed[offset] ^ 0x80), "key-1"),
      WrongPassphraseError,
    );
  }
  assert.throws(() => sealer.open(sealed.subarray(0, 50), "key-1"), TypeError);
  assert.throws(() => sealer.open(sealed.subarray(0, 40), "key-1"), TypeError);
});

Deno.test("KeySealer.open() refuses a cost too dear to run, before deriving anything", () => {
  const sealer = cheapSealer();
  const sealed = sealer.seal(KEY, "key-1");
  const withParams = (log2N: number, r: number, p: number) => {
    const copy = sealed.slice();
    copy.set([log2N, r, p], 4);
    return copy;
  };
  const derived = sealer.derivations;
  assert.throws(() => sealer.open(withParams(40, 8, 1), "key-1"), /exceeds 268435456 octets/);
  assert.throws(() => sealer.open(withParams(18, 16, 1), "key-1"), /need 536870912/);
  assert.throws(() => sealer.open(withParams(10, 8, 200), "key-1"), /p = 200/);
  assert.throws(() => sealer.open(withParams(0, 8, 1), "key-1"), RangeError);
  assert.throws(() => sealer.open(withParams(10, 0, 1), "key-1"), RangeError);
  assert.equal(sealer.derivations, derived);
});

Deno.test("KeySealer.fromPassphrase() refuses an empty passphrase, a short salt and a bad cost", () => {
  assert.throws(() => KeySealer.fromPassphrase(""), TypeError);
  assert.throws(() => KeySealer.fromPassphrase("x", new Uint8Array(8)), /salt of 8 octets/);
  assert.throws(
    () => KeySealer.fromPassphrase("x", undefined, { params: { log2N: 22, r: 8, p: 1 } }),
    RangeError,
  );
});

Deno.test("KeySealer.open() still opens RMS1 keys, under the salt it was given", () => {
  const salt = KeySealer.newSalt();
  const old = sealRms1("correct horse", salt, KEY, "key-1");
  const sealer = cheapSealer("correct horse", salt);
  assert.deepEqual(sealer.open(old, "key-1"), KEY);
  assert.equal(sealer.needsReseal(old, "key-1"), true);
  assert.throws(() => sealer.open(old, "key-2"), WrongPassphraseError);
  assert.throws(() => cheapSealer("battery staple", salt).open(old, "key-1"), WrongPassphraseError);
  assert.throws(() => cheapSealer("correct horse").open(old, "key-1"), WrongPassphraseError);
  // The RMS1 check value of an old data directory verifies too.
  const check = sealRms1(
    "correct horse",
    salt,
    new TextEncoder().encode("relaymail passphrase check"),
    "check",
  );
  sealer.verifyCheck(check);
  assert.deepEqual(RMS1_SCRYPT_PARAMS, { log2N: 15, r: 8, p: 1 });
});

Deno.test("KeySealer derives once per cost and salt, however many keys it opens", () => {
  const salt = KeySealer.newSalt();
  const writer = cheapSealer("correct horse", salt);
  const sealed = Array.from({ length: 20 }, (_, i) => writer.seal(KEY, `key-${i}`));
  const check = writer.makeCheck();
  assert.equal(writer.derivations, 1);

  const reader = cheapSealer("correct horse", salt);
  assert.equal(reader.derivations, 0, "nothing is derived before a key is used");
  reader.verifyCheck(check);
  sealed.forEach((s, i) => assert.deepEqual(reader.open(s, `key-${i}`), KEY));
  reader.seal(KEY, "key-new");
  assert.equal(reader.derivations, 1);

  // Another salt (or cost) is another derivation, once.
  const elsewhere = cheapSealer("correct horse").seal(KEY, "key-x");
  reader.open(elsewhere, "key-x");
  reader.open(elsewhere, "key-x");
  assert.equal(reader.derivations, 2);
});
