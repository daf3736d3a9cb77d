/**
 * Rateless invertible Bloom lookup tables (Yang, Gilad and Alizadeh, "Practical
 * Rateless Set Reconciliation", SIGCOMM 2024), written for this project from the
 * paper's description.
 *
 * One side streams *coded symbols* of its set; the other subtracts its own coded
 * symbols and peels the differences out, in both directions, after receiving
 * about 1.35 to 3 coded symbols per differing item, however large the sets are.
 * That is what keeps the cost of a mesh reconnection proportional to what
 * differs, not to what is stored.
 *
 * Items are fixed-length byte strings (here 37 bytes: a kind, a parcel key and an
 * expiry). Every item maps to coded symbol 0 and to a pseudo-random, ever sparser
 * sequence of later ones (item maps to symbol i with probability about
 * 1 / (1 + 2i)); the sequence is seeded by a salted 64-bit hash of the item, the
 * same on both sides.
 *
 * The remote side chooses what a decoder receives, so a decoder keeps everything
 * in flat typed arrays: a received symbol costs the 49 bytes it took on the wire
 * (plus at most as much again of headroom while the arrays grow), an item of the
 * local set 61 bytes, and {@linkcode Decoder.memoryBytes} says how much it holds.
 *
 * @module
 */

/** A coded symbol: the XOR of the items mapped to it, of their hashes, and their count. */
export interface CodedSymbol {
  /** XOR of the items (all of {@linkcode Encoder.itemLength} bytes). */
  readonly sum: Uint8Array;
  /** XOR of the items' hashes (64 bits as two 32-bit halves). */
  readonly hashHi: number;
  readonly hashLo: number;
  /** Items added minus items removed. */
  readonly count: number;
}

/** Salted 64-bit hash of an item, as two unsigned 32-bit halves. */
export function hashItem(item: Uint8Array, salt: number): [number, number] {
  hashAt(item, 0, item.length, salt);
  return [hashed[0], hashed[1]];
}

/** Where {@linkcode hashAt} leaves the two halves, so that hot loops allocate nothing. */
const hashed = new Uint32Array(2);

/** {@linkcode hashItem} of `bytes[offset, offset + length)`, left in {@linkcode hashed}. */
function hashAt(bytes: Uint8Array, offset: number, length: number, salt: number): void {
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
const STEP = 0x6d2b79f5;

/** The generator state an item's index sequence starts from. */
function seed(hashHi: number, hashLo: number): number {
  return (hashHi ^ Math.imul(hashLo, 0x9e3779b1) ^ STEP) >>> 0 || 1;
}

/** The index after `index`, from the generator's `state` already stepped by {@linkcode STEP}. */
function indexAfter(index: number, state: number): number {
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

/**
 * Items with their hashes and index sequences, in parallel typed arrays (item
 * `id` is `items[id × itemLength, (id + 1) × itemLength)`), and a min-heap of
 * items by the next index each maps to. The heap keeps each index beside its item,
 * which spares the sifts a lookup per comparison. Grows geometrically when
 * appended to.
 */
class MappedItems {
  items: Uint8Array;
  hashHi: Uint32Array;
  hashLo: Uint32Array;
  /** Generator state of each item's {@linkcode IndexSequence}. */
  state: Uint32Array;
  heapItem: Uint32Array;
  /** Float64, not Uint32: the arithmetic of {@linkcode indexAfter} is in doubles. */
  heapIndex: Float64Array;
  size = 0;
  heapSize = 0;

  constructor(readonly itemLength: number, capacity: number) {
    this.items = new Uint8Array(capacity * itemLength);
    this.hashHi = new Uint32Array(capacity);
    this.hashLo = new Uint32Array(capacity);
    this.state = new Uint32Array(capacity);
    this.heapItem = new Uint32Array(capacity);
    this.heapIndex = new Float64Array(capacity);
  }

  get capacity(): number {
    return this.hashHi.length;
  }

  get byteLength(): number {
    return this.items.byteLength + this.hashHi.byteLength + this.hashLo.byteLength +
      this.state.byteLength + this.heapItem.byteLength + this.heapIndex.byteLength;
  }

  /** Copies in the item at `source[offset, …)`, at index 0 of its sequence and outside the heap. */
  append(source: Uint8Array, offset: number, hashHi: number, hashLo: number): number {
    if (this.size === this.capacity) this.#grow(Math.max(16, this.capacity * 2));
    const id = this.size++;
    copyAt(this.items, id * this.itemLength, source, offset, this.itemLength);
    this.hashHi[id] = hashHi;
    this.hashLo[id] = hashLo;
    this.state[id] = seed(hashHi, hashLo);
    return id;
  }

  /** The index after `index` in item `id`'s sequence, which moves on by one step. */
  step(id: number, index: number): number {
    const state = (this.state[id] + STEP) >>> 0;
    this.state[id] = state;
    return indexAfter(index, state);
  }

  /** Puts item `id`, at `index`, in the heap. */
  push(id: number, index: number): void {
    const heapItem = this.heapItem, heapIndex = this.heapIndex;
    let i = this.heapSize++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heapIndex[parent] <= index) break;
      heapItem[i] = heapItem[parent];
      heapIndex[i] = heapIndex[parent];
      i = parent;
    }
    heapItem[i] = id;
    heapIndex[i] = index;
  }

  /** Puts item `id`, at `index`, in the heap, leaving the order to {@linkcode heapify}. */
  pushUnordered(id: number, index: number): void {
    this.heapItem[this.heapSize] = id;
    this.heapIndex[this.heapSize++] = index;
  }

  /** Orders the heap, in linear time. */
  heapify(): void {
    for (let i = (this.heapSize >> 1) - 1; i >= 0; i--) this.#siftDown(i);
  }

  /** The least index in the heap (Infinity when it is empty). */
  peekIndex(): number {
    return this.heapSize ? this.heapIndex[0] : Infinity;
  }

  /** The item at the least index. */
  top(): number {
    return this.heapItem[0];
  }

  /** Moves the item on top of the heap to its next index, and restores the heap. */
  advanceTop(): void {
    this.heapIndex[0] = this.step(this.heapItem[0], this.heapIndex[0]);
    this.#siftDown(0);
  }

  #siftDown(start: number): void {
    const heapItem = this.heapItem, heapIndex = this.heapIndex, size = this.heapSize;
    const id = heapItem[start], index = heapIndex[start];
    let i = start;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= size) break;
      if (child + 1 < size && heapIndex[child + 1] < heapIndex[child]) child++;
      if (heapIndex[child] >= index) break;
      heapItem[i] = heapItem[child];
      heapIndex[i] = heapIndex[child];
      i = child;
    }
    heapItem[i] = id;
    heapIndex[i] = index;
  }

  #grow(capacity: number): void {
    const grown = new MappedItems(this.itemLength, capacity);
    grown.items.set(this.items);
    grown.hashHi.set(this.hashHi);
    grown.hashLo.set(this.hashLo);
    grown.state.set(this.state);
    grown.heapItem.set(this.heapItem);
    grown.heapIndex.set(this.heapIndex);
    this.items = grown.items;
    this.hashHi = grown.hashHi;
    this.hashLo = grown.hashLo;
    this.state = grown.state;
    this.heapItem = grown.heapItem;
    this.heapIndex = grown.heapIndex;
  }
}

/** The coded symbols of a set, in order: the work {@linkcode Encoder} and {@linkcode Decoder} share. */
class SymbolSource {
  readonly #mapped: MappedItems;
  /** Every item maps to symbol 0: it is computed while reading the set. */
  readonly #first: Uint8Array;
  readonly #firstHi: number;
  readonly #firstLo: number;
  /** Index of the next symbol. */
  next = 0;
  /** Hash halves of the symbol {@linkcode xorNextInto} produced last. */
  hashHi = 0;
  hashLo = 0;

  constructor(items: Iterable<Uint8Array>, readonly itemLength: number, salt: number) {
    const list: readonly Uint8Array[] = Array.isArray(items) ? items : [...items];
    const mapped = new MappedItems(itemLength, list.length);
    const first = new Uint8Array(itemLength);
    let hashHi = 0, hashLo = 0;
    for (const item of list) {
      if (item.length !== itemLength) {
        throw new RangeError(`Items must have ${itemLength} bytes: got ${item.length}`);
      }
      hashAt(item, 0, itemLength, salt);
      const id = mapped.append(item, 0, hashed[0], hashed[1]);
      xorAt(first, 0, item, 0, itemLength);
      hashHi ^= hashed[0];
      hashLo ^= hashed[1];
      mapped.pushUnordered(id, mapped.step(id, 0));
    }
    mapped.heapify();
    this.#mapped = mapped;
    this.#first = first;
    this.#firstHi = hashHi >>> 0;
    this.#firstLo = hashLo >>> 0;
  }

  get byteLength(): number {
    return this.#mapped.byteLength + this.#first.byteLength;
  }

  /**
   * XORs the next symbol's sum into `sums[offset, offset + itemLength)`, leaves its
   * hash halves in {@linkcode hashHi} and {@linkcode hashLo}, and returns its count.
   */
  xorNextInto(sums: Uint8Array, offset: number): number {
    const index = this.next++;
    const mapped = this.#mapped, length = this.itemLength;
    if (index === 0) {
      xorAt(sums, offset, this.#first, 0, length);
      this.hashHi = this.#firstHi;
      this.hashLo = this.#firstLo;
      return mapped.size;
    }
    let hashHi = 0, hashLo = 0, count = 0;
    while (mapped.peekIndex() === index) {
      const id = mapped.top();
      xorAt(sums, offset, mapped.items, id * length, length);
      hashHi ^= mapped.hashHi[id];
      hashLo ^= mapped.hashLo[id];
      count++;
      mapped.advanceTop();
    }
    this.hashHi = hashHi >>> 0;
    this.hashLo = hashLo >>> 0;
    return count;
  }
}

/**
 * Produces the coded symbols of a set, in order, as many as asked for.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Encoder } from "./riblt.ts";
 *
 * const encoder = new Encoder([new Uint8Array(37).fill(1)], 37, 42);
 * const [first] = encoder.produce(1);
 * assert.equal(first.count, 1);
 * assert.equal(encoder.produceEncoded(16).length, 16 * 49);
 * ```
 */
export class Encoder {
  readonly #source: SymbolSource;

  /**
   * @param items The set (each item `itemLength` bytes; duplicates are not allowed),
   * copied in.
   * @param salt Agreed by both sides for this session.
   */
  constructor(items: Iterable<Uint8Array>, readonly itemLength: number, readonly salt: number) {
    this.#source = new SymbolSource(items, itemLength, salt);
  }

  /** Index of the next coded symbol {@linkcode produce} returns. */
  get nextIndex(): number {
    return this.#source.next;
  }

  /** The next `count` coded symbols. */
  produce(count: number): CodedSymbol[] {
    const source = this.#source;
    const symbols: CodedSymbol[] = [];
    for (let n = 0; n < count; n++) {
      const sum = new Uint8Array(this.itemLength);
      const items = source.xorNextInto(sum, 0);
      symbols.push({ sum, hashHi: source.hashHi, hashLo: source.hashLo, count: items });
    }
    return symbols;
  }

  /** The next `count` coded symbols as {@linkcode encodeSymbols} writes them, without objects. */
  produceEncoded(count: number): Uint8Array {
    const source = this.#source, length = this.itemLength;
    const size = codedSymbolLength(length);
    const out = new Uint8Array(count * size);
    const view = new DataView(out.buffer);
    for (let offset = 0; offset < out.length; offset += size) {
      const items = source.xorNextInto(out, offset);
      view.setUint32(offset + length, source.hashHi);
      view.setUint32(offset + length + 4, source.hashLo);
      view.setInt32(offset + length + 8, items);
    }
    return out;
  }
}

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
   * Adds the remote side's next coded symbols as {@linkcode encodeSymbols} wrote
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

function xorAt(
  target: Uint8Array,
  targetOffset: number,
  source: Uint8Array,
  sourceOffset: number,
  length: number,
): void {
  for (let i = 0; i < length; i++) target[targetOffset + i] ^= source[sourceOffset + i];
}

/** Copies without the view object `target.set(source.subarray(…))` would allocate. */
function copyAt(
  target: Uint8Array,
  targetOffset: number,
  source: Uint8Array,
  sourceOffset: number,
  length: number,
): void {
  for (let i = 0; i < length; i++) target[targetOffset + i] = source[sourceOffset + i];
}

/** Bytes one coded symbol takes on the wire: sum, two hash halves, count as int32. */
export function codedSymbolLength(itemLength: number): number {
  return itemLength + 12;
}

/** Writes coded symbols back to back. */
export function encodeSymbols(symbols: readonly CodedSymbol[], itemLength: number): Uint8Array {
  const size = codedSymbolLength(itemLength);
  const out = new Uint8Array(symbols.length * size);
  const view = new DataView(out.buffer);
  symbols.forEach((s, i) => {
    const offset = i * size;
    out.set(s.sum, offset);
    view.setUint32(offset + itemLength, s.hashHi);
    view.setUint32(offset + itemLength + 4, s.hashLo);
    view.setInt32(offset + itemLength + 8, s.count);
  });
  return out;
}

/**
 * Reads what {@linkcode encodeSymbols} wrote, as one object per symbol;
 * {@linkcode Decoder.addEncoded} reads the bytes without them.
 */
export function decodeSymbols(bytes: Uint8Array, itemLength: number): CodedSymbol[] {
  const size = codedSymbolLength(itemLength);
  if (bytes.length % size !== 0) {
    throw new RangeError(`Coded symbols take ${size} bytes each: got ${bytes.length} bytes`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const symbols: CodedSymbol[] = [];
  for (let offset = 0; offset < bytes.length; offset += size) {
    symbols.push({
      sum: bytes.slice(offset, offset + itemLength),
      hashHi: view.getUint32(offset + itemLength),
      hashLo: view.getUint32(offset + itemLength + 4),
      count: view.getInt32(offset + itemLength + 8),
    });
  }
  return symbols;
}
