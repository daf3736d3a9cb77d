/**
 * Coded symbols of rateless IBLT (mesh/riblt.ts) and their encoding on the wire:
 * each symbol is its sum (as long as an item), then the two hash halves as
 * `u32`, then the count as `i32`, symbols back to back (docs/mesh-protocol.md
 * §2.4).
 *
 * @module
 */

/** A coded symbol: the XOR of the items mapped to it, of their hashes, and their count. */
export interface CodedSymbol {
  /** XOR of the items (all of the encoder's `itemLength` bytes). */
  readonly sum: Uint8Array;
  /** XOR of the items' hashes (64 bits as two 32-bit halves): the high half. */
  readonly hashHi: number;
  /** The low half of the XOR of the items' hashes. */
  readonly hashLo: number;
  /** Items added minus items removed. */
  readonly count: number;
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
