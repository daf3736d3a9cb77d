/**
 * Parcels for the attack benchmark (mesh_attack_bench.ts): a file format to hand
 * them to the processes it spawns, and the attacker's cheap supply of fresh ones.
 *
 * A parcel's key is the SHA-256 of its octets, but its signature covers only the
 * content of the CMS encapsulated OCTET STRING, which relaynet-core writes in
 * constructed form (pieces). Cutting that content into pieces another way gives
 * other octets, so another key, under the same valid signature: one signed
 * parcel yields as many distinct valid parcels as there are ways to cut it, at
 * the price of a SHA-256 each instead of a signature. {@linkcode variant} does
 * that; the benchmark's Sybil uses it to push fresh valid parcels as fast as a
 * relay takes them.
 *
 * @module
 */

/** Writes parcels to a file: each a uint32 length and its octets. */
export async function writeParcels(path: string, parcels: readonly Uint8Array[]): Promise<void> {
  const total = parcels.reduce((n, p) => n + 4 + p.byteLength, 0);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let offset = 0;
  for (const parcel of parcels) {
    view.setUint32(offset, parcel.byteLength);
    out.set(parcel, offset + 4);
    offset += 4 + parcel.byteLength;
  }
  await Deno.writeFile(path, out);
}

/** Reads parcels written by {@linkcode writeParcels}. */
export async function readParcels(path: string): Promise<Uint8Array[]> {
  const bytes = await Deno.readFile(path);
  const view = new DataView(bytes.buffer);
  const parcels = [];
  for (let offset = 0; offset < bytes.byteLength;) {
    const length = view.getUint32(offset);
    parcels.push(bytes.slice(offset + 4, offset + 4 + length));
    offset += 4 + length;
  }
  return parcels;
}

interface Tlv {
  readonly tag: number;
  readonly from: number;
  readonly start: number;
  readonly end: number;
}

function tlv(bytes: Uint8Array, offset: number): Tlv {
  const tag = bytes[offset];
  let length = bytes[offset + 1];
  let start = offset + 2;
  if (length & 0x80) {
    const octets = length & 0x7f;
    length = 0;
    for (let i = 0; i < octets; i++) length = length * 256 + bytes[start + i];
    start += octets;
  }
  if (start + length > bytes.length) throw new RangeError("Truncated DER in a parcel");
  return { tag, from: offset, start, end: start + length };
}

function children(bytes: Uint8Array, parent: Tlv): Tlv[] {
  const out = [];
  for (let offset = parent.start; offset < parent.end;) {
    const item = tlv(bytes, offset);
    out.push(item);
    offset = item.end;
  }
  return out;
}

function encodeTlv(tag: number, parts: readonly Uint8Array[]): Uint8Array {
  const length = parts.reduce((n, p) => n + p.byteLength, 0);
  const lengthOctets = [];
  if (length < 0x80) {
    lengthOctets.push(length);
  } else {
    for (let n = length; n > 0; n = Math.floor(n / 256)) lengthOctets.unshift(n % 256);
    lengthOctets.unshift(0x80 | lengthOctets.length);
  }
  const out = new Uint8Array(1 + lengthOctets.length + length);
  out[0] = tag;
  out.set(lengthOctets, 1);
  let offset = 1 + lengthOctets.length;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}

/** RAMF format signature: "Awala", parcel type, version 0. */
const FORMAT_SIGNATURE_LENGTH = 7;
/** Child indexes from the ContentInfo down to the encapsulated content's OCTET STRING. */
const PATH_TO_CONTENT = [1, 0, 2, 1, 0];

/**
 * The `n`th re-encoding of a parcel (n ≥ 0): its signed content cut into two
 * pieces at a point `n` picks, every enclosing length rewritten. The result is
 * a different parcel octet for octet, valid under the same signature. Throws
 * RangeError when the parcel is not laid out as relaynet-core writes it.
 */
export function variant(parcel: Uint8Array, n: number): Uint8Array {
  const rebuild = (node: Tlv, path: readonly number[]): Uint8Array => {
    const kids = children(parcel, node);
    if (path.length === 0) {
      // The content OCTET STRING: gather its pieces, cut it anew.
      if (node.tag !== 0x24 && node.tag !== 0x04) throw new RangeError("Unexpected content");
      const value = node.tag === 0x04
        ? parcel.subarray(node.start, node.end)
        : concat(kids.map((k) => parcel.subarray(k.start, k.end)));
      if (value.length < 2) throw new RangeError("Content too short to cut");
      const cut = 1 + (n % (value.length - 1));
      const pieces = n < value.length - 1
        ? [value.subarray(0, cut), value.subarray(cut)]
        : threeWays(value, n);
      return encodeTlv(0x24, pieces.map((p) => encodeTlv(0x04, [p])));
    }
    const index = path[0];
    if (index >= kids.length) throw new RangeError("Parcel is not laid out as expected");
    return encodeTlv(
      node.tag,
      kids.map((kid, i) =>
        i === index ? rebuild(kid, path.slice(1)) : parcel.subarray(kid.from, kid.end)
      ),
    );
  };
  const top = tlv(parcel, FORMAT_SIGNATURE_LENGTH);
  return concat([parcel.subarray(0, FORMAT_SIGNATURE_LENGTH), rebuild(top, PATH_TO_CONTENT)]);
}

/** Cuts beyond the two-piece ones: three pieces, at points `n` picks. */
function threeWays(value: Uint8Array, n: number): Uint8Array[] {
  const span = value.length - 2;
  const a = 1 + (n % span);
  const b = a + 1 + (Math.floor(n / span) % (value.length - a - 1));
  return [value.subarray(0, a), value.subarray(a, b), value.subarray(b)];
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}
