/**
 * The decoding side of rateless IBLT (mesh/riblt.ts): subtracts the local set's
 * coded symbols from the remote side's and peels the differences out, within a
 * bound on the symbols it accepts.
 *
 * @module
 */
import { type CodedSymbol, codedSymbolLength } from "./riblt_codec.ts";
import { hashAt, hashed } from "./riblt_mapping.ts";
import { copyAt, MappedItems, SymbolSource, xorAt } from "./riblt_source.ts";

/** What a finished decoding found. */
export interface Difference {
  /** Items the remote side has and the local side lacks. */
  readonly remoteOnly: Uint8Array[];
  /** Items the local side has and the remote side lacks. */
  readonly localOnly: Uint8Array[];
}

/** Options of {@linkcode Decoder}. */
export interface DecoderOptions {
  /**
   * Most coded symbols the decoder accepts: {@linkcode Decoder.add} and
   * {@linkcode Decoder.addEncoded} throw a `RangeError` rather than go beyond, and
   * the decoder never allocates room for more.
   *
   * @default {Infinity}
   */
  readonly maxSymbols?: number;
}

/** Room for this many cells at first; then it doubles, up to the decoder's `maxSymbols`. */
const FIRST_CAPACITY = 64;

/**
 * Receives the remote side's coded symbols one batch at a time, subtracts the
 * local set's own, and peels the differences out.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Decoder, Encoder } from "./riblt.ts";
 *
 * const item = (byte: number) => new Uint8Array(37).fill(byte);
 * const encoder = new Encoder([item(1), item(2), item(3)], 37, 42);
 * const decoder = new Decoder([item(1), item(2), item(4)], 37, 42, { maxSymbols: 1000 });
 * while (!decoder.addEncoded(encoder.produceEncoded(4)));
 * const { remoteOnly, localOnly } = decoder.difference();
 * assert.deepEqual([remoteOnly, localOnly], [[item(3)], [item(4)]]);
 * assert.ok(decoder.memoryBytes < 10_000);
 * ```
 */
export class Decoder {
  /** See {@linkcode DecoderOptions.maxSymbols}. */
  readonly maxSymbols: number;
  readonly #local: SymbolSource;
  // Received symbols minus the local set's, which peeling empties: cell i's sum
  // is #sums[i × itemLength, (i + 1) × itemLength).
  #sums = new Uint8Array(0);
  #hashHi = new Uint32Array(0);
  #hashLo = new Uint32Array(0);
  // Int32 is exact enough: counts wrap modulo 2^32, and a wrapped count can only
  // pass for -1, 0 or 1 once local items and recoveries number about 2^31.
  #counts = new Int32Array(0);
  #received = 0;
  /** Recovered items, in order, for subtracting them from cells not received yet. */
  readonly #recovered: MappedItems;
  /** Per recovered item: +1 remote only, -1 local only. */
  #signs = new Int8Array(0);

  /**
   * @param localItems The local set (each item `itemLength` bytes), copied in.
   * @param salt The remote side's.
   */
  constructor(
    localItems: Iterable<Uint8Array>,
    readonly itemLength: number,
    readonly salt: number,
    options: DecoderOptions = {},
  ) {
    const { maxSymbols = Infinity } = options;
    if (!(maxSymbols >= 0 && (Number.isInteger(maxSymbols) || maxSymbols === Infinity))) {
      throw new RangeError(`maxSymbols must be a whole number of symbols: got ${maxSymbols}`);
    }
    this.maxSymbols = maxSymbols;
    this.#local = new SymbolSource(localItems, itemLength, salt);
    this.#recovered = new MappedItems(itemLength, 0);
  }

  /** How many coded symbols were received. */
  get received(): number {
    return this.#received;
  }

  /**
   * Bytes the decoder holds in typed arrays: its received cells (with headroom),
   * its copy of the local set and the items recovered. Objects around them add a
   * few hundred bytes.
   */
  get memoryBytes(): number {
    return this.#local.byteLength + this.#sums.byteLength + this.#hashHi.byteLength +
      this.#hashLo.byteLength + this.#counts.byteLength + this.#recovered.byteLength +
      this.#signs.byteLength;
  }

  /**
   * Adds the remote side's next coded symbols; returns true once the difference is complete.
   *
   * @throws {RangeError} If a sum has the wrong length, a count is not a 32-bit
   * integer, beyond `maxSymbols`, or if the symbols are inconsistent (see
   * {@linkcode addEncoded}).
   */
  add(symbols: readonly CodedSymbol[]): boolean {
    const length = this.itemLength;
    for (const { sum, count } of symbols) {
      if (sum.length !== length) {
        throw new RangeError(`Coded symbols must carry ${length}-byte sums: got ${sum.length}`);
      }
      if ((count | 0) !== count) {
        throw new RangeError(`Coded symbol counts must be 32-bit integers: got ${count}`);
      }
    }
    const start = this.#reserve(symbols.length);
    for (let i = 0; i < symbols.length; i++) {
      const { sum, hashHi, hashLo, count } = symbols[i];
      this.#sums.set(sum, (start + i) * length);
      this.#subtractLocal(start + i, hashHi, hashLo, count);
    }
    return this.#settle(start, symbols.length);
  }

  /**
   * Adds the remote side's next coded symbols as `encodeSymbols` (riblt_codec.ts) wrote
   * them; returns true once the difference is complete.
   *
   * @throws {RangeError} If `bytes` is not a whole number of symbols, or beyond
   * `maxSymbols` (then nothing was added). Also if peeling recovers more items
   * than symbols were received, which only symbols crafted to be inconsistent
   * cause; the decoder is of no further use then.
   */
  addEncoded(bytes: Uint8Array): boolean {
    const length = this.itemLength;
    const size = codedSymbolLength(length);
    if (bytes.length % size !== 0) {
      throw new RangeError(`Coded symbols take ${size} bytes each: got ${bytes.length} bytes`);
    }
    const count = bytes.length / size;
    const start = this.#reserve(count);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const sums = this.#sums;
    for (let offset = 0, cell = start; offset < bytes.length; offset += size, cell++) {
      copyAt(sums, cell * length, bytes, offset, length);
      this.#subtractLocal(
        cell,
        view.getUint32(offset + length),
        view.getUint32(offset + length + 4),
        view.getInt32(offset + length + 8),
      );
    }
    return this.#settle(start, count);
  }

  /** True once every item of the difference is recovered (cell 0 is empty). */
  get done(): boolean {
    if (this.#received === 0) return false;
    if (this.#counts[0] !== 0 || this.#hashHi[0] !== 0 || this.#hashLo[0] !== 0) return false;
    for (let i = 0; i < this.itemLength; i++) if (this.#sums[i] !== 0) return false;
    return true;
  }

  /** The difference found so far (complete once {@linkcode done}). */
  difference(): Difference {
    const remoteOnly: Uint8Array[] = [], localOnly: Uint8Array[] = [];
    const { items, size } = this.#recovered;
    const length = this.itemLength;
    for (let id = 0; id < size; id++) {
      const item = items.slice(id * length, (id + 1) * length);
      (this.#signs[id] === 1 ? remoteOnly : localOnly).push(item);
    }
    return { remoteOnly, localOnly };
  }

  /** Makes room for `count` more cells, and returns the first one's index. */
  #reserve(count: number): number {
    const start = this.#received;
    const needed = start + count;
    if (needed > this.maxSymbols) {
      throw new RangeError(
        `Reconciliation exceeds ${this.maxSymbols} coded symbols: received ${needed}`,
      );
    }
    if (needed > this.#counts.length) {
      const capacity = Math.min(
        Math.max(needed, FIRST_CAPACITY, this.#counts.length * 2),
        this.maxSymbols,
      );
      const sums = new Uint8Array(capacity * this.itemLength);
      sums.set(this.#sums.subarray(0, start * this.itemLength));
      this.#sums = sums;
      this.#hashHi = grown(this.#hashHi, new Uint32Array(capacity), start);
      this.#hashLo = grown(this.#hashLo, new Uint32Array(capacity), start);
      this.#counts = grown(this.#counts, new Int32Array(capacity), start);
    }
    return start;
  }

  /** Turns cell `cell`, holding the remote sum already, into remote minus local. */
  #subtractLocal(cell: number, hashHi: number, hashLo: number, count: number): void {
    const local = this.#local;
    const localCount = local.xorNextInto(this.#sums, cell * this.itemLength);
    this.#hashHi[cell] = hashHi ^ local.hashHi;
    this.#hashLo[cell] = hashLo ^ local.hashLo;
    this.#counts[cell] = count - localCount;
  }

  /** Counts in the `count` cells filled from `start`, takes recovered items out of them, and peels. */
  #settle(start: number, count: number): boolean {
    this.#received = start + count;
    // Items already recovered also sit in the new cells: take them out.
    const recovered = this.#recovered;
    while (recovered.peekIndex() < this.#received) {
      const id = recovered.top();
      this.#remove(id, this.#signs[id], recovered.peekIndex());
      recovered.advanceTop();
    }
    this.#peel(start);
    return this.done;
  }

  #peel(from: number): void {
    const end = this.#received, length = this.itemLength, recovered = this.#recovered;
    // Visited last to first: cell 0, then the new cells.
    const queue: number[] = [];
    if (from > 0 && end > 0) queue.push(0);
    for (let i = from; i < end; i++) queue.push(i);
    while (queue.length) {
      const index = queue.pop()!;
      const sign = this.#counts[index];
      if (sign !== 1 && sign !== -1) continue;
      hashAt(this.#sums, index * length, length, this.salt);
      const hashHi = hashed[0], hashLo = hashed[1];
      if (hashHi !== this.#hashHi[index] || hashLo !== this.#hashLo[index]) continue;
      // Each genuine recovery empties a cell for good; more recoveries than cells
      // take symbols crafted to recover items over and over, forever.
      if (recovered.size === end) {
        throw new RangeError(
          `Coded symbols are inconsistent: more than ${end} items recovered from ${end} symbols`,
        );
      }
      const id = recovered.append(this.#sums, index * length, hashHi, hashLo);
      if (this.#signs.length < recovered.capacity) {
        this.#signs = grown(this.#signs, new Int8Array(recovered.capacity), id);
      }
      this.#signs[id] = sign;
      // Take the item out of every received cell it maps to.
      let touched = 0;
      for (; touched < end; touched = recovered.step(id, touched)) {
        this.#remove(id, sign, touched);
        queue.push(touched);
      }
      recovered.push(id, touched);
    }
  }

  /** Takes recovered item `id` out of cell `cell`. */
  #remove(id: number, sign: number, cell: number): void {
    const recovered = this.#recovered, length = this.itemLength;
    xorAt(this.#sums, cell * length, recovered.items, id * length, length);
    this.#hashHi[cell] ^= recovered.hashHi[id];
    this.#hashLo[cell] ^= recovered.hashLo[id];
    this.#counts[cell] -= sign;
  }
}

/** `target` with the first `count` elements of `source` copied in. */
function grown<T extends Uint32Array | Int32Array | Int8Array>(
  source: T,
  target: T,
  count: number,
): T {
  target.set(source.subarray(0, count));
  return target;
}
