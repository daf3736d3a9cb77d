/**
 * Octets received and not yet read, in one contiguous buffer of our own.
 *
 * A list of the chunks as they came (libp2p's `Uint8ArrayList`) costs an object
 * per chunk and a shift per chunk consumed: a peer sending one octet per muxer
 * frame would make a few MiB of data cost a hundred times that in memory and
 * quadratic time to read. Here each chunk is copied in, so memory follows the
 * octets, and reading a frame is one copy.
 *
 * @module
 */
import type { Uint8ArrayList } from "uint8arraylist";

/** Above this, an emptied queue gives its buffer back rather than keep it for later. */
const KEEP_CAPACITY = 1024 * 1024;

/** A FIFO of octets in one growable buffer. */
export class ByteQueue {
  #bytes = new Uint8Array(0);
  #start = 0;
  #end = 0;

  /** Octets queued. */
  get length(): number {
    return this.#end - this.#start;
  }

  /** Appends a copy of `chunk`. */
  push(chunk: Uint8Array | Uint8ArrayList): void {
    this.#reserve(chunk.byteLength);
    if (chunk instanceof Uint8Array) {
      this.#bytes.set(chunk, this.#end);
    } else {
      let at = this.#end;
      for (const part of chunk) {
        this.#bytes.set(part, at);
        at += part.byteLength;
      }
    }
    this.#end += chunk.byteLength;
  }

  /** The octet at `index` from the front (`index` < `length`). */
  at(index: number): number {
    return this.#bytes[this.#start + index];
  }

  /** A copy of `length` octets from `offset`; they and all before them leave the queue. */
  take(offset: number, length: number): Uint8Array {
    const from = this.#start + offset;
    const copy = this.#bytes.slice(from, from + length);
    this.drop(offset + length);
    return copy;
  }

  /** Removes `n` octets from the front. */
  drop(n: number): void {
    this.#start += Math.min(n, this.length);
    if (this.#start === this.#end) this.clear();
  }

  /** Removes everything, giving back a large buffer. */
  clear(): void {
    this.#start = this.#end = 0;
    if (this.#bytes.length > KEEP_CAPACITY) this.#bytes = new Uint8Array(0);
  }

  /** Room for `n` more octets at the end: the queue moved to the front, or a larger buffer. */
  #reserve(n: number): void {
    if (this.#end + n <= this.#bytes.length) return;
    const length = this.length;
    // Moved down while that leaves half the buffer free, else doubled: each octet is
    // copied a bounded number of times.
    if (length + n <= this.#bytes.length / 2) {
      this.#bytes.copyWithin(0, this.#start, this.#end);
    } else {
      const bigger = new Uint8Array(Math.max(2 * this.#bytes.length, length + n, 4096));
      bigger.set(this.#bytes.subarray(this.#start, this.#end));
      this.#bytes = bigger;
    }
    this.#start = 0;
    this.#end = length;
  }
}
