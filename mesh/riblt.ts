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
 * @module
 */

/** A coded symbol: the XOR of the items mapped to it, of their hashes, and their count. */
export interface CodedSymbol {
  /** XOR of the items (all of {@linkcode ItemSet.itemLength} bytes). */
  readonly sum: Uint8Array;
  /** XOR of the items' hashes (64 bits as two 32-bit halves). */
  readonly hashHi: number;
  readonly hashLo: number;
  /** Items added minus items removed. */
  readonly count: number;
}

/** Salted 64-bit hash of an item, as two unsigned 32-bit halves. */
export function hashItem(item: Uint8Array, salt: number): [number, number] {
  // Two independent 32-bit lanes of a multiply-rotate mix (murmur3-style) over the
  // item's bytes; non-linear, so the XOR of several items' hashes is not the hash
  // of their XOR, which is what the purity test relies on.
  let h1 = (0x9e3779b9 ^ salt) >>> 0;
  let h2 = (0x85ebca6b ^ Math.imul(salt, 0xc2b2ae35)) >>> 0;
  for (let i = 0; i < item.length; i += 4) {
    const k = (item[i] | (item[i + 1] << 8) | (item[i + 2] << 16) | (item[i + 3] << 24)) >>> 0;
    h1 = mixLane(h1, k, 0xcc9e2d51, 0x1b873593);
    h2 = mixLane(h2, k, 0x27d4eb2f, 0x165667b1);
  }
  return [finalize(h1 ^ item.length), finalize(h2 ^ (item.length * 31))];
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

/**
 * The indices of the coded symbols an item maps to: 0, then gaps drawn so that
 * index i is hit with probability about 1 / (1 + 2i).
 */
export class IndexSequence {
  #state: number;
  #index = 0;

  constructor(hashHi: number, hashLo: number) {
    this.#state = (hashHi ^ Math.imul(hashLo, 0x9e3779b1) ^ 0x6d2b79f5) >>> 0 || 1;
  }

  /** The current index (0 at first). */
  get index(): number {
    return this.#index;
  }

  /** Moves to the next index the item maps to, and returns it. */
  next(): number {
    // mulberry32: a small, well-distributed 32-bit generator.
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const r = ((t ^ (t >>> 14)) >>> 0) + 1; // uniform in [1, 2^32]
    // If U is uniform on (0, 1], a gap of ceil((i + 1.5)(1/sqrt(U) - 1)) skips index
    // i + g with the probability the mapping density asks for.
    const gap = Math.ceil((this.#index + 1.5) * (Math.sqrt(4294967296 / r) - 1));
    this.#index += Math.max(1, gap);
    return this.#index;
  }
}

interface Mapped {
  readonly item: Uint8Array;
  readonly hashHi: number;
  readonly hashLo: number;
  readonly sequence: IndexSequence;
}

/** A min-heap of mapped items by their next index. */
class IndexHeap {
  readonly #heap: Mapped[] = [];

  /** A heap of `items`, built in linear time. */
  static from(items: Mapped[]): IndexHeap {
    const heap = new IndexHeap();
    heap.#heap.push(...items);
    for (let i = (items.length >> 1) - 1; i >= 0; i--) heap.#siftDown(i);
    return heap;
  }

  get size(): number {
    return this.#heap.length;
  }

  peekIndex(): number {
    return this.#heap.length ? this.#heap[0].sequence.index : Infinity;
  }

  push(mapped: Mapped): void {
    const heap = this.#heap;
    heap.push(mapped);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent].sequence.index <= heap[i].sequence.index) break;
      [heap[parent], heap[i]] = [heap[i], heap[parent]];
      i = parent;
    }
  }

  pop(): Mapped | undefined {
    const heap = this.#heap;
    if (heap.length === 0) return undefined;
    const top = heap[0];
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      this.#siftDown(0);
    }
    return top;
  }

  #siftDown(start: number): void {
    const heap = this.#heap;
    let i = start;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < heap.length && heap[left].sequence.index < heap[smallest].sequence.index) {
        smallest = left;
      }
      if (right < heap.length && heap[right].sequence.index < heap[smallest].sequence.index) {
        smallest = right;
      }
      if (smallest === i) return;
      [heap[smallest], heap[i]] = [heap[i], heap[smallest]];
      i = smallest;
    }
  }
}

/** Produces the coded symbols of a set, in order, as many as asked for. */
export class Encoder {
  readonly #heap: IndexHeap;
  #next = 0;
  /** Every item maps to symbol 0: it is computed while reading the set. */
  readonly #first: CodedSymbol;

  /**
   * @param items The set (each item `itemLength` bytes; duplicates are not allowed).
   * @param salt Agreed by both sides for this session.
   */
  constructor(items: Iterable<Uint8Array>, readonly itemLength: number, readonly salt: number) {
    const mapped: Mapped[] = [];
    const sum = new Uint8Array(itemLength);
    let hashHi = 0, hashLo = 0;
    for (const item of items) {
      if (item.length !== itemLength) {
        throw new RangeError(`Items must have ${itemLength} bytes: got ${item.length}`);
      }
      const [hi, lo] = hashItem(item, salt);
      xorInto(sum, item);
      hashHi ^= hi;
      hashLo ^= lo;
      const sequence = new IndexSequence(hi, lo);
      sequence.next();
      mapped.push({ item, hashHi: hi, hashLo: lo, sequence });
    }
    this.#first = { sum, hashHi: hashHi >>> 0, hashLo: hashLo >>> 0, count: mapped.length };
    this.#heap = IndexHeap.from(mapped);
  }

  /** Index of the next coded symbol {@linkcode produce} returns. */
  get nextIndex(): number {
    return this.#next;
  }

  /** The next `count` coded symbols. */
  produce(count: number): CodedSymbol[] {
    const symbols: CodedSymbol[] = [];
    for (let n = 0; n < count; n++) {
      const index = this.#next++;
      if (index === 0) {
        symbols.push({ ...this.#first, sum: this.#first.sum.slice() });
        continue;
      }
      const sum = new Uint8Array(this.itemLength);
      let hashHi = 0, hashLo = 0, items = 0;
      while (this.#heap.peekIndex() === index) {
        const mapped = this.#heap.pop()!;
        xorInto(sum, mapped.item);
        hashHi ^= mapped.hashHi;
        hashLo ^= mapped.hashLo;
        items++;
        mapped.sequence.next();
        this.#heap.push(mapped);
      }
      symbols.push({ sum, hashHi: hashHi >>> 0, hashLo: hashLo >>> 0, count: items });
    }
    return symbols;
  }
}

/** What a finished decoding found. */
export interface Difference {
  /** Items the remote side has and the local side lacks. */
  readonly remoteOnly: Uint8Array[];
  /** Items the local side has and the remote side lacks. */
  readonly localOnly: Uint8Array[];
}

interface Cell {
  sum: Uint8Array;
  hashHi: number;
  hashLo: number;
  count: number;
}

/**
 * Receives the remote side's coded symbols one batch at a time, subtracts the
 * local set's own, and peels the differences out.
 */
export class Decoder {
  readonly #local: Encoder;
  readonly #cells: Cell[] = [];
  /** Recovered items, for subtracting them from cells not received yet. */
  readonly #recovered = new IndexHeap();
  readonly #recoveredSign = new Map<Mapped, number>();
  readonly #remoteOnly: Uint8Array[] = [];
  readonly #localOnly: Uint8Array[] = [];

  constructor(
    localItems: Iterable<Uint8Array>,
    readonly itemLength: number,
    readonly salt: number,
  ) {
    this.#local = new Encoder(localItems, itemLength, salt);
  }

  /** How many coded symbols were received. */
  get received(): number {
    return this.#cells.length;
  }

  /** Adds the remote side's next coded symbols; returns true once the difference is complete. */
  add(symbols: readonly CodedSymbol[]): boolean {
    const local = this.#local.produce(symbols.length);
    const start = this.#cells.length;
    for (const [i, remote] of symbols.entries()) {
      if (remote.sum.length !== this.itemLength) {
        throw new RangeError(`Coded symbols must carry ${this.itemLength}-byte sums`);
      }
      const cell: Cell = {
        sum: remote.sum.slice(),
        hashHi: (remote.hashHi ^ local[i].hashHi) >>> 0,
        hashLo: (remote.hashLo ^ local[i].hashLo) >>> 0,
        count: remote.count - local[i].count,
      };
      xorInto(cell.sum, local[i].sum);
      this.#cells.push(cell);
    }
    // Items already recovered also sit in the new cells: take them out.
    const end = this.#cells.length;
    while (this.#recovered.peekIndex() < end) {
      const mapped = this.#recovered.pop()!;
      this.#remove(mapped, this.#recoveredSign.get(mapped)!, mapped.sequence.index);
      mapped.sequence.next();
      this.#recovered.push(mapped);
    }
    this.#peel(start);
    return this.done;
  }

  /** True once every item of the difference is recovered (cell 0 is empty). */
  get done(): boolean {
    const first = this.#cells[0];
    return first !== undefined && first.count === 0 && first.hashHi === 0 && first.hashLo === 0 &&
      first.sum.every((b) => b === 0);
  }

  /** The difference found so far (complete once {@linkcode done}). */
  difference(): Difference {
    return { remoteOnly: [...this.#remoteOnly], localOnly: [...this.#localOnly] };
  }

  #peel(from: number): void {
    const queue: number[] = [];
    for (let i = 0; i < this.#cells.length; i++) if (i >= from || i === 0) queue.push(i);
    while (queue.length) {
      const index = queue.pop()!;
      const cell = this.#cells[index];
      if (cell.count !== 1 && cell.count !== -1) continue;
      const [hashHi, hashLo] = hashItem(cell.sum, this.salt);
      if (hashHi !== cell.hashHi || hashLo !== cell.hashLo) continue;
      const item = cell.sum.slice();
      const sign = cell.count;
      (sign === 1 ? this.#remoteOnly : this.#localOnly).push(item);
      const mapped: Mapped = { item, hashHi, hashLo, sequence: new IndexSequence(hashHi, hashLo) };
      // Take the item out of every received cell it maps to.
      while (mapped.sequence.index < this.#cells.length) {
        const touched = mapped.sequence.index;
        this.#remove(mapped, sign, touched);
        queue.push(touched);
        mapped.sequence.next();
      }
      this.#recovered.push(mapped);
      this.#recoveredSign.set(mapped, sign);
    }
  }

  #remove(mapped: Mapped, sign: number, index: number): void {
    const cell = this.#cells[index];
    xorInto(cell.sum, mapped.item);
    cell.hashHi = (cell.hashHi ^ mapped.hashHi) >>> 0;
    cell.hashLo = (cell.hashLo ^ mapped.hashLo) >>> 0;
    cell.count -= sign;
  }
}

function xorInto(target: Uint8Array, source: Uint8Array): void {
  for (let i = 0; i < target.length; i++) target[i] ^= source[i];
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

/** Reads what {@linkcode encodeSymbols} wrote. */
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
