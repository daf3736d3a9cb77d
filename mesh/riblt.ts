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
 * This module holds the encoder and is the entry point; the hash and index
 * mapping are in `riblt_mapping.ts`, the symbol computation both sides share in
 * `riblt_source.ts`, the decoder in `riblt_decoder.ts` and the wire encoding of
 * symbols in `riblt_codec.ts`.
 *
 * @module
 */
import { type CodedSymbol, codedSymbolLength } from "./riblt_codec.ts";
import { SymbolSource } from "./riblt_source.ts";

export {
  type CodedSymbol,
  codedSymbolLength,
  decodeSymbols,
  encodeSymbols,
} from "./riblt_codec.ts";
export { Decoder, type DecoderOptions, type Difference } from "./riblt_decoder.ts";
export { hashItem, IndexSequence } from "./riblt_mapping.ts";

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
