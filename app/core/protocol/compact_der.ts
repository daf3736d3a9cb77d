/**
 * The few byte tools version 2 invitations need: writing and walking DER (only
 * definite lengths, as DER has), and RFC 4648 base32, which a QR code holds in its
 * alphanumeric mode at 5.5 bits a character where base64 takes 8.
 *
 * @module
 */

/** One DER element: its tag, its content, and its whole encoding. */
export interface Der {
  readonly tag: number;
  readonly content: Uint8Array;
  readonly whole: Uint8Array;
}

/** Encodes one DER element (single-byte tag) around `content`: bytes, byte values or elements. */
export function der(
  tag: number,
  content: Uint8Array | readonly Uint8Array[] | readonly number[],
): Uint8Array {
  const body = content instanceof Uint8Array
    ? content
    : typeof content[0] === "number"
    ? Uint8Array.from(content as readonly number[])
    : concat(...content as readonly Uint8Array[]);
  const n = body.length;
  const length = n < 0x80
    ? [n]
    : n < 0x100
    ? [0x81, n]
    : n < 0x10000
    ? [0x82, n >> 8, n & 255]
    : [0x83, n >> 16, (n >> 8) & 255, n & 255];
  return concat(Uint8Array.of(tag, ...length), body);
}

/** Reads the DER elements that follow each other in `bytes` (single-byte tags). */
export function readDer(bytes: Uint8Array): Der[] {
  const elements: Der[] = [];
  let at = 0;
  while (at < bytes.length) {
    if (at + 2 > bytes.length) throw new RangeError("DER element cut short");
    const tag = bytes[at];
    let length = bytes[at + 1];
    let start = at + 2;
    if (length & 0x80) {
      const count = length & 0x7f;
      if (count < 1 || count > 3 || start + count > bytes.length) {
        throw new RangeError("Unsupported DER length");
      }
      length = 0;
      for (let i = 0; i < count; i++) length = length * 256 + bytes[start + i];
      start += count;
    }
    if (start + length > bytes.length) throw new RangeError("DER element cut short");
    elements.push({
      tag,
      content: bytes.subarray(start, start + length),
      whole: bytes.subarray(at, start + length),
    });
    at = start + length;
  }
  return elements;
}

/** Joins byte arrays. */
export function concat(...parts: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** RFC 4648 §6 base32, upper case, without padding. */
export function base32Encode(bytes: Uint8Array): string {
  let out = "";
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
    buffer &= (1 << bits) - 1;
  }
  return bits > 0 ? out + ALPHABET[(buffer << (5 - bits)) & 31] : out;
}

/** What {@linkcode base32Read} reads: the octets, and whether the unused bits were zero. */
export interface Base32Octets {
  readonly bytes: Uint8Array;
  /** The unused low bits of the last character are zero, as RFC 4648 §3.5 has them. */
  readonly canonical: boolean;
}

/**
 * Reads {@linkcode base32Encode}'s text, in either case; throws
 * {@linkcode CompactInvitationError} saying why when a character is not base32 or
 * the length is one no encoding has (1, 3 or 6 characters past a multiple of 8).
 */
export function base32Read(text: string): Base32Octets {
  const upper = text.toUpperCase();
  if (!/^[A-Z2-7]*$/.test(upper)) {
    throw new CompactInvitationError("it contains characters outside base32 (A–Z, 2–7)");
  }
  if ([1, 3, 6].includes(upper.length % 8)) {
    throw new CompactInvitationError("it is cut short (no base32 text has its length)");
  }
  const bytes = new Uint8Array(Math.floor(upper.length * 5 / 8));
  let buffer = 0;
  let bits = 0;
  let at = 0;
  for (const char of upper) {
    buffer = (buffer << 5) | ALPHABET.indexOf(char);
    bits += 5;
    if (bits >= 8) {
      bytes[at++] = (buffer >>> (bits - 8)) & 255;
      bits -= 8;
      buffer &= (1 << bits) - 1;
    }
  }
  return { bytes, canonical: buffer === 0 };
}

/**
 * Decodes {@linkcode base32Encode}'s text as {@linkcode base32Read} does, and also
 * refuses a last character whose unused low bits are not zero (RFC 4648 §3.5).
 */
export function base32Decode(text: string): Uint8Array {
  const { bytes, canonical } = base32Read(text);
  if (!canonical) throw nonCanonicalBase32();
  return bytes;
}

/** The refusal of a base32 text whose last character has unused bits set. */
export function nonCanonicalBase32(): CompactInvitationError {
  return new CompactInvitationError(
    "its last character is not one base32 ends with (its unused bits are not zero)",
  );
}

/** Raised when a version 2 invitation does not decode; invitation.ts words it for people. */
export class CompactInvitationError extends Error {}
