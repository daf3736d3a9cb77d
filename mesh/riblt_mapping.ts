/**
 * How an item maps to the coded symbols of rateless IBLT (mesh/riblt.ts): its
 * salted 64-bit hash, and the sequence of symbol indices drawn from it
 * (docs/mesh-protocol.md §2.4). Both sides must compute these bit for bit alike.
 *
 * @module
 */

/** Salted 64-bit hash of an item, as two unsigned 32-bit halves. */
export function hashItem(item: Uint8Array, salt: number): [number, number] {
  hashAt(item, 0, item.length, salt);
  return [hashed[0], hashed[1]];
}

/** Where {@linkcode hashAt} leaves the two halves, so that hot loops allocate nothing. */
export const hashed = new Uint32Array(2);

/** {@linkcode hashItem} of `bytes[offset, offset + length)`, left in {@linkcode hashed}. */
export function hashAt(bytes: Uint8Array, offset: number, length: number, salt: number): void {
  // Two independent 32-bit lanes of a multiply-rotate mix (murmur3-style) over the
  // item's bytes; non-linear, so the XOR of several items' hashes is not the hash
  // of their XOR, which is what the purity test relies on.
  let h1 = (0x9e3779b9 ^ salt) >>> 0;
  let h2 = (0x85ebca6b ^ Math.imul(salt, 0xc2b2ae35)) >>> 0;
  const end = offset + length;
  let i = offset;
  for (; i + 4 <= end; i += 4) {
    const k = (bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24)) >>> 0;
    h1 = mixLane(h1, k, 0xcc9e2d51, 0x1b873593);
    h2 = mixLane(h2, k, 0x27d4eb2f, 0x165667b1);
  }
  if (i < end) {
    // The last word, zero-padded (docs/mesh-protocol.md §2.4).
    let k = 0;
    for (let shift = 0; i < end; i++, shift += 8) k |= bytes[i] << shift;
    h1 = mixLane(h1, k >>> 0, 0xcc9e2d51, 0x1b873593);
    h2 = mixLane(h2, k >>> 0, 0x27d4eb2f, 0x165667b1);
  }
  hashed[0] = finalize(h1 ^ length);
  hashed[1] = finalize(h2 ^ (length * 31));
}

function mixLane(h: number, k: number, c1: number, c2: number): number {
  k = Math.imul(k, c1);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, c2);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) >>> 0;
}

function finalize(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** mulberry32's increment, also mixed into the seed (docs/mesh-protocol.md §2.4). */
export const STEP = 0x6d2b79f5;

/** The generator state an item's index sequence starts from. */
export function seed(hashHi: number, hashLo: number): number {
  return (hashHi ^ Math.imul(hashLo, 0x9e3779b1) ^ STEP) >>> 0 || 1;
}

/** The index after `index`, from the generator's `state` already stepped by {@linkcode STEP}. */
export function indexAfter(index: number, state: number): number {
  // mulberry32: a small, well-distributed 32-bit generator.
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  const r = ((t ^ (t >>> 14)) >>> 0) + 1; // uniform in [1, 2^32]
  // If U is uniform on (0, 1], a gap of ceil((i + 1.5)(1/sqrt(U) - 1)) skips index
  // i + g with the probability the mapping density asks for.
  const gap = Math.ceil((index + 1.5) * (Math.sqrt(4294967296 / r) - 1));
  return index + Math.max(1, gap);
}

/**
 * The indices of the coded symbols an item maps to: 0, then gaps drawn so that
 * index i is hit with probability about 1 / (1 + 2i).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hashItem, IndexSequence } from "./riblt.ts";
 *
 * const sequence = new IndexSequence(...hashItem(new Uint8Array(37), 42));
 * assert.equal(sequence.index, 0);
 * assert.ok(sequence.next() > 0);
 * ```
 */
export class IndexSequence {
  #state: number;
  #index = 0;

  constructor(hashHi: number, hashLo: number) {
    this.#state = seed(hashHi, hashLo);
  }

  /** The current index (0 at first). */
  get index(): number {
    return this.#index;
  }

  /** Moves to the next index the item maps to, and returns it. */
  next(): number {
    this.#state = (this.#state + STEP) >>> 0;
    this.#index = indexAfter(this.#index, this.#state);
    return this.#index;
  }
}
