/**
 * The keys of a version 2 invitation in few bytes: RSA keys rebuilt from their
 * modulus and one prime, the invitation key K generated from a 32-byte seed, and
 * P-256 points compressed (SEC 1 §2.3.3).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { checkPrimeSync } from "node:crypto";
import { CompactInvitationError, concat, der, readDer } from "./compact_der.ts";

/** Every RSA key of an invitation has this public exponent. */
export const RSA_EXPONENT = 65537n;
/** The AlgorithmIdentifier of an RSA key: rsaEncryption, NULL parameters. */
export const RSA_ENCRYPTION = hex("300d06092a864886f70d0101010500");
/** Bytes of the invitation key's seed. */
export const SEED_LENGTH = 32;
const P256 = {
  p: 2n ** 256n - 2n ** 224n + 2n ** 192n + 2n ** 96n - 1n,
  b: 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn,
};

/** An RSA-2048 key generated from a seed: its modulus, public key and private key. */
export interface SeededKey {
  readonly modulus: Uint8Array;
  /** The DER SubjectPublicKeyInfo. */
  readonly spki: Uint8Array;
  /** The DER PKCS#8 private key. */
  readonly pkcs8: Uint8Array;
}

/**
 * The invitation key K that `seed` (32 bytes) stands for: an RSA-2048 key with
 * exponent 65537 whose primes p and q are each the first probable prime at or
 * after a 1024-bit number drawn from the seed (docs/protocol.md §2.4). Anyone with
 * the seed gets the same key; it takes a few hundred milliseconds. Throws
 * {@linkcode CompactInvitationError} for a seed that makes no such key (p = q, or a
 * prime past 1024 bits: neither happens in practice); a writer then draws another.
 */
export function invitationKeyFromSeed(seed: Uint8Array): Promise<SeededKey> {
  if (seed.length !== SEED_LENGTH) {
    return Promise.reject(new RangeError(`A seed is ${SEED_LENGTH} bytes`));
  }
  // The same invitation is read several times (checked when written, previewed,
  // accepted): the last few keys are kept rather than searched for again.
  const id = Buffer.from(seed).toString("hex");
  let key = recentKeys.get(id);
  if (key) {
    recentKeys.delete(id);
  } else {
    key = keyFromSeed(seed.slice());
    key.catch(() => recentKeys.delete(id));
    if (recentKeys.size >= RECENT_KEYS) recentKeys.delete(recentKeys.keys().next().value!);
  }
  recentKeys.set(id, key);
  return key;
}

/** How many seeded keys {@linkcode invitationKeyFromSeed} keeps, most recent last. */
const RECENT_KEYS = 16;
const recentKeys = new Map<string, Promise<SeededKey>>();

async function keyFromSeed(seed: Uint8Array): Promise<SeededKey> {
  const p = await primeFromSeed(seed, 1);
  const q = await primeFromSeed(seed, 2);
  if (p === q) throw new CompactInvitationError("its invitation key seed is unusable");
  const modulus = fromBigInt(p * q);
  return { modulus, spki: rsaSpki(modulus), pkcs8: rsaPrivateKey(modulus, fromBigInt(p)) };
}

/**
 * The `index`-th prime of the key `seed` stands for: 128 bytes drawn as SHA-256
 * over the seed, the label, the index and a block counter 0 to 3, with the two top
 * bits and the low bit set; then the first probable prime from there by steps of
 * 2 whose p - 1 is coprime with 65537; a prime past 1024 bits makes the seed unusable.
 */
async function primeFromSeed(seed: Uint8Array, index: number): Promise<bigint> {
  const label = new TextEncoder().encode("relaymail invitation key prime");
  const blocks = [];
  for (let block = 0; block < 4; block++) {
    const input = concat(seed, label, Uint8Array.of(index, block));
    blocks.push(new Uint8Array(await crypto.subtle.digest("SHA-256", input)));
  }
  const start = concat(...blocks);
  start[0] |= 0xc0;
  start[127] |= 1;
  let candidate = toBigInt(start);
  while ((candidate - 1n) % RSA_EXPONENT === 0n || !checkPrimeSync(candidate)) candidate += 2n;
  // Past 1024 bits (it never happens: X would have to lie within a few thousand of
  // 2^1024), p·q would not have exactly 2048 bits.
  if (candidate >> 1024n !== 0n) {
    throw new CompactInvitationError("its invitation key seed is unusable");
  }
  return candidate;
}

/** The modulus (no leading zero) of an RSA SubjectPublicKeyInfo with exponent 65537. */
export function rsaModulus(spki: Uint8Array): Uint8Array {
  const [, key] = readDer(readDer(spki)[0].content);
  const [modulus, exponent] = readDer(readDer(key.content.subarray(1))[0].content);
  if (toBigInt(exponent.content) !== RSA_EXPONENT) throw new Error("Unexpected exponent");
  if (!equal(spki, rsaSpki(stripZeros(modulus.content)))) throw new Error("Unexpected key");
  return stripZeros(modulus.content);
}

export function rsaSpki(modulus: Uint8Array): Uint8Array {
  const key = der(0x30, [
    der(0x02, integer(modulus)),
    der(0x02, integer(fromBigInt(RSA_EXPONENT))),
  ]);
  return der(0x30, [RSA_ENCRYPTION, der(0x03, concat(Uint8Array.of(0), key))]);
}

/** The first prime of an RSA PKCS#8 private key whose modulus is `modulus`. */
export function rsaPrime(pkcs8: Uint8Array, modulus: Uint8Array): Uint8Array {
  const [, , octets] = readDer(readDer(pkcs8)[0].content);
  const [, n, , , p] = readDer(readDer(octets.content)[0].content);
  if (!equal(stripZeros(n.content), modulus)) throw new Error("Key and PDA differ");
  return stripZeros(p.content);
}

/** Rebuilds a PKCS#8 RSA private key from its modulus and one of its primes. */
export function rsaPrivateKey(modulusBytes: Uint8Array, primeBytes: Uint8Array): Uint8Array {
  const n = toBigInt(modulusBytes);
  const p = toBigInt(primeBytes);
  if (p <= 1n || p >= n || n % p !== 0n) {
    throw new CompactInvitationError("its invitation key does not match its authorisation");
  }
  const q = n / p;
  const d = inverse(RSA_EXPONENT, (p - 1n) * (q - 1n));
  const parts = [0n, n, RSA_EXPONENT, d, p, q, d % (p - 1n), d % (q - 1n), inverse(q, p)];
  const key = der(0x30, parts.map((v) => der(0x02, integer(fromBigInt(v)))));
  return der(0x30, [der(0x02, [0]), RSA_ENCRYPTION, der(0x04, key)]);
}

/** The uncompressed form (0x04, x, y) of a compressed P-256 point (SEC 1 §2.3.4). */
export function decompressP256(point: Uint8Array): Uint8Array {
  const { p, b } = P256;
  const x = toBigInt(point.subarray(1));
  if ((point[0] !== 2 && point[0] !== 3) || x >= p) {
    throw new CompactInvitationError("its session key is not a compressed P-256 point");
  }
  const rhs = ((x * x % p) * x - 3n * x + b) % p;
  let y = power(rhs < 0n ? rhs + p : rhs, (p + 1n) / 4n, p);
  if (y * y % p !== (rhs + p) % p) {
    throw new CompactInvitationError("its session key is not on the P-256 curve");
  }
  if (Number(y & 1n) !== (point[0] & 1)) y = p - y;
  return concat(Uint8Array.of(4), pad(fromBigInt(x), 32), pad(fromBigInt(y), 32));
}

function power(base: bigint, exponent: bigint, modulus: bigint): bigint {
  let result = 1n;
  for (let b = base % modulus, e = exponent; e > 0n; e >>= 1n, b = b * b % modulus) {
    if (e & 1n) result = result * b % modulus;
  }
  return result;
}

function inverse(a: bigint, m: bigint): bigint {
  let [oldR, r, oldS, s] = [a % m, m, 1n, 0n];
  while (r !== 0n) {
    const q = oldR / r;
    [oldR, r] = [r, oldR - q * r];
    [oldS, s] = [s, oldS - q * s];
  }
  if (oldR !== 1n) throw new CompactInvitationError("its invitation key is not a valid RSA key");
  return ((oldS % m) + m) % m;
}

/** A DER INTEGER's content for an unsigned big-endian number. */
export function integer(bytes: Uint8Array): Uint8Array {
  const value = stripZeros(bytes);
  return value.length === 0 || value[0] & 0x80 ? concat(Uint8Array.of(0), value) : value;
}

export function stripZeros(bytes: Uint8Array): Uint8Array {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  return bytes.subarray(i);
}

function pad(bytes: Uint8Array, length: number): Uint8Array {
  return concat(new Uint8Array(length - bytes.length), bytes);
}

export function toBigInt(bytes: Uint8Array): bigint {
  return bytes.length === 0 ? 0n : BigInt("0x" + Buffer.from(bytes).toString("hex"));
}

export function fromBigInt(value: bigint): Uint8Array {
  const text = value.toString(16);
  return new Uint8Array(Buffer.from(text.length % 2 ? "0" + text : text, "hex"));
}

function hex(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, "hex"));
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}
