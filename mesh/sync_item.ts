/**
 * Reconciliation items: a held parcel, a tombstone or a post, as the two sides of a
 * connection compare what they hold (docs/mesh-protocol.md §2.1). The store lists
 * them (`MeshStore.items`, mesh/store.ts) and the sync protocol feeds their
 * encodings to rateless IBLT (mesh/riblt.ts).
 *
 * @module
 */
import { fromHex, toHex } from "../bindings/validation.ts";

/** Kind byte of a reconciliation item. */
export const ItemKind = { PARCEL: 0, DELIVERED: 1, POST: 2 } as const;

/** Length of a reconciliation item: kind, 32-byte key, expiry in seconds (uint32). */
export const ITEM_LENGTH = 37;

/** A parcel, a tombstone or a broadcast post, as the two sides of a connection compare them. */
export interface Item {
  /** What it is, by {@linkcode ItemKind}: 0 a parcel, 1 a tombstone, 2 a post. */
  readonly kind: 0 | 1 | 2;
  /** Hex SHA-256 of the parcel (or post). */
  readonly key: string;
  /** When the parcel expires (or would have), to the second. */
  readonly expiresAt: Date;
}

/** Encodes an item as {@linkcode ITEM_LENGTH} bytes. */
export function encodeItem(item: Item): Uint8Array {
  const bytes = new Uint8Array(ITEM_LENGTH);
  bytes[0] = item.kind;
  bytes.set(fromHex(item.key), 1);
  new DataView(bytes.buffer).setUint32(
    33,
    Math.min(Math.floor(item.expiresAt.getTime() / 1000), 0xffffffff),
  );
  return bytes;
}

/** Decodes an item; throws on an unknown kind. */
export function decodeItem(bytes: Uint8Array): Item {
  if (bytes.length !== ITEM_LENGTH || bytes[0] > ItemKind.POST) {
    throw new RangeError("Not a reconciliation item");
  }
  const seconds = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(33);
  return {
    kind: bytes[0] as 0 | 1 | 2,
    key: toHex(bytes.subarray(1, 33)),
    expiresAt: new Date(seconds * 1000),
  };
}
