/**
 * The coded symbols of a set, computed in order: the work the encoder and the
 * decoder of rateless IBLT (mesh/riblt.ts) share. Items are kept in flat typed
 * arrays with a heap by the next symbol index each maps to, so that a symbol
 * costs no allocation.
 *
 * @module
 */
import { hashAt, hashed, indexAfter, seed, STEP } from "./riblt_mapping.ts";

/**
 * Items with their hashes and index sequences, in parallel typed arrays (item
 * `id` is `items[id × itemLength, (id + 1) × itemLength)`), and a min-heap of
 * items by the next index each maps to. The heap keeps each index beside its item,
 * which spares the sifts a lookup per comparison. Grows geometrically when
 * appended to.
 */
export class MappedItems {
  /** The items, back to back. */
  items: Uint8Array;
  /** High half of each item's hash. */
  hashHi: Uint32Array;
  /** Low half of each item's hash. */
  hashLo: Uint32Array;
  /** Generator state of each item's index sequence (`IndexSequence`, riblt_mapping.ts). */
  state: Uint32Array;
  /** The heap's items, by id. */
  heapItem: Uint32Array;
  /** Float64, not Uint32: the arithmetic of {@linkcode indexAfter} is in doubles. */
  heapIndex: Float64Array;
  /** How many items are held. */
  size = 0;
  /** How many items are in the heap. */
  heapSize = 0;

  /** Room for `capacity` items of `itemLength` bytes, to start with. */
  constructor(readonly itemLength: number, capacity: number) {
    this.items = new Uint8Array(capacity * itemLength);
    this.hashHi = new Uint32Array(capacity);
    this.hashLo = new Uint32Array(capacity);
    this.state = new Uint32Array(capacity);
    this.heapItem = new Uint32Array(capacity);
    this.heapIndex = new Float64Array(capacity);
  }

  /** How many items fit before the arrays grow. */
  get capacity(): number {
    return this.hashHi.length;
  }

  /** Bytes held in the typed arrays. */
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

/** The coded symbols of a set, in order: the work `Encoder` and `Decoder` share. */
export class SymbolSource {
  readonly #mapped: MappedItems;
  /** Every item maps to symbol 0: it is computed while reading the set. */
  readonly #first: Uint8Array;
  readonly #firstHi: number;
  readonly #firstLo: number;
  /** Index of the next symbol. */
  next = 0;
  /** High hash half of the symbol {@linkcode xorNextInto} produced last. */
  hashHi = 0;
  /** Low hash half of the symbol {@linkcode xorNextInto} produced last. */
  hashLo = 0;

  /** Reads the set (each item `itemLength` bytes), copying it in; throws on a wrong length. */
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

  /** Bytes held in typed arrays. */
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

/** XORs `source[sourceOffset, sourceOffset + length)` into `target` from `targetOffset`. */
export function xorAt(
  target: Uint8Array,
  targetOffset: number,
  source: Uint8Array,
  sourceOffset: number,
  length: number,
): void {
  for (let i = 0; i < length; i++) target[targetOffset + i] ^= source[sourceOffset + i];
}

/** Copies without the view object `target.set(source.subarray(…))` would allocate. */
export function copyAt(
  target: Uint8Array,
  targetOffset: number,
  source: Uint8Array,
  sourceOffset: number,
  length: number,
): void {
  for (let i = 0; i < length; i++) target[targetOffset + i] = source[sourceOffset + i];
}
