/**
 * Parcels for the attack benchmark (mesh_attack_bench.ts): a file format to hand
 * them to the processes it spawns, and two cheap supplies of parcels.
 *
 * - {@linkcode signedCopies}: genuinely distinct parcels, each with its own
 *   parcel id and its own signature, made from one parcel relaynet-core signed.
 *   A relay keeps one parcel per sender and parcel id, so these are what fill
 *   its storage; they cost an RSA signature each (a millisecond or two), against
 *   about 15 ms for relaynet-core's whole serialisation.
 * - {@linkcode variant}: the same parcel in other octets. A parcel's key is the
 *   SHA-256 of its octets, but its signature covers only the content of the CMS
 *   encapsulated OCTET STRING, which relaynet-core writes in constructed form
 *   (pieces). Cutting that content into pieces another way gives other octets,
 *   so another key, under the same valid signature, for the price of a SHA-256.
 *   A relay validates each such re-encoding, then answers "already held": they
 *   cost it CPU and store nothing.
 *
 * Run as a script, it makes the Sybil's parcels for the benchmark, off its
 * clock: `deno run -A _attack_parcels.ts '<JSON of GenerateConfig>'` writes them
 * and prints one JSON line, `{"type":"done","ms","count"}`.
 *
 * @module
 */
import { createHash } from "node:crypto";

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

/** Where the parts of a signed parcel that {@linkcode signedCopies} rewrites lie. */
interface SignedLayout {
  /** The parcel id's octets. */
  readonly id: { readonly start: number; readonly end: number };
  /** The pieces of the signed content, in order. */
  readonly pieces: readonly { readonly start: number; readonly end: number }[];
  /** The message-digest attribute's value (a SHA-256 of the content). */
  readonly digest: number;
  /** The signed attributes, whole: the signature covers them re-tagged as a SET. */
  readonly signedAttributes: { readonly from: number; readonly end: number };
  /** The signature's octets. */
  readonly signature: { readonly start: number; readonly end: number };
  readonly saltLength: number;
}

/** DER of the message-digest attribute's type, 1.2.840.113549.1.9.4. */
const OID_MESSAGE_DIGEST = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x04];

function layoutOf(parcel: Uint8Array): SignedLayout {
  const unexpected = () => new RangeError("Parcel is not laid out as relaynet-core writes it");
  const top = tlv(parcel, FORMAT_SIGNATURE_LENGTH);
  const signedData = children(parcel, children(parcel, children(parcel, top)[1])[0]);
  if (signedData.length !== 5) throw unexpected();
  const eContent = children(parcel, children(parcel, children(parcel, signedData[2])[1])[0]);
  const pieces = eContent.length > 0 && eContent.every((k) => k.tag === 0x04)
    ? eContent.map(({ start, end }) => ({ start, end }))
    : null;
  if (!pieces) throw unexpected();
  // The RAMF fields: recipient, [1] id, creation date, TTL, payload. The id is
  // near the start, within the first piece (the payload may run into others).
  const recipient = tlv(parcel, tlv(parcel, pieces[0].start).start);
  const id = tlv(parcel, recipient.end);
  if (id.tag !== 0x81 || id.end > pieces[0].end) throw unexpected();
  const signerInfo = children(parcel, children(parcel, signedData[4])[0]);
  const [, , , attributes, algorithm, signature] = signerInfo;
  if (attributes?.tag !== 0xa0 || signature?.tag !== 0x04) throw unexpected();
  let digest = -1;
  for (const attribute of children(parcel, attributes)) {
    const [type, values] = children(parcel, attribute);
    const oid = parcel.subarray(type.start, type.end);
    if (
      oid.length === OID_MESSAGE_DIGEST.length && oid.every((x, i) => x === OID_MESSAGE_DIGEST[i])
    ) {
      const value = children(parcel, values)[0];
      if (value.end - value.start !== 32) throw unexpected();
      digest = value.start;
    }
  }
  if (digest < 0) throw unexpected();
  // RSASSA-PSS parameters: [2] saltLength, 20 when absent (RFC 4055, section 3.1).
  let saltLength = 20;
  for (const param of children(parcel, children(parcel, algorithm)[1])) {
    if (param.tag !== 0xa2) continue;
    const integer = children(parcel, param)[0];
    saltLength = parcel.subarray(integer.start, integer.end).reduce((n, x) => n * 256 + x, 0);
  }
  return {
    id: { start: id.start, end: id.end },
    pieces,
    digest,
    signedAttributes: { from: attributes.from, end: attributes.end },
    signature: { start: signature.start, end: signature.end },
    saltLength,
  };
}

/**
 * `count` parcels like `template`, each with a parcel id of its own and signed
 * anew with `signerPkcs8` (the template's signing key, DER PKCS#8; RSA-PSS with
 * SHA-256): as
 * distinct to a relay as parcels relaynet-core makes one by one. Every copy has
 * the template's length, sender, recipient, dates and payload. Signatures run on
 * the runtime's crypto threads, `concurrency` at a time (default 4).
 *
 * @example
 * ```ts ignore
 * const fixture = await createParcelFixture();
 * const key = new Uint8Array(await derSerializePrivateKey(fixture.senderPrivateKey));
 * const parcels = await signedCopies(await fixture.makeParcel(), key, 1000);
 * ```
 */
export async function signedCopies(
  template: Uint8Array,
  signerPkcs8: Uint8Array,
  count: number,
  concurrency = 4,
): Promise<Uint8Array[]> {
  const layout = layoutOf(template);
  // The runtime's own key: relaynet-core's keys may belong to another WebCrypto.
  const signer = await crypto.subtle.importKey(
    "pkcs8",
    signerPkcs8.slice(),
    { name: "RSA-PSS", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const idLength = layout.id.end - layout.id.start;
  const copies: Uint8Array[] = new Array(count);
  let next = 0;
  const one = async (index: number) => {
    const copy = template.slice();
    // Hex digits are valid in the id's VisibleString, and 128 random bits make it unique.
    const hex = Array.from(crypto.getRandomValues(new Uint8Array(Math.ceil(idLength / 2))))
      .map((x) => x.toString(16).padStart(2, "0")).join("").slice(0, idLength);
    copy.set(new TextEncoder().encode(hex), layout.id.start);
    const hash = createHash("sha256");
    for (const { start, end } of layout.pieces) hash.update(copy.subarray(start, end));
    copy.set(hash.digest(), layout.digest);
    const signed = copy.slice(layout.signedAttributes.from, layout.signedAttributes.end);
    signed[0] = 0x31; // RFC 5652, section 5.4: the attributes are signed as a SET
    const signature = new Uint8Array(
      await crypto.subtle.sign({ name: "RSA-PSS", saltLength: layout.saltLength }, signer, signed),
    );
    if (signature.length !== layout.signature.end - layout.signature.start) {
      throw new RangeError(`Cannot re-sign with a key of another size: ${signature.length} octets`);
    }
    copy.set(signature, layout.signature.start);
    copies[index] = copy;
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, async () => {
    while (next < count) await one(next++);
  }));
  return copies;
}

/** What the script makes: the Sybil's parcels for mesh_attack_bench.ts. */
export interface GenerateConfig {
  /** File to write the parcels to, in {@linkcode writeParcels}' format. */
  readonly file: string;
  /** Parcels in all, shared out among the senders. */
  readonly count: number;
  /** Sender keys, each with a recipient key of its own and a self-issued PDA (default 4). */
  readonly senders?: number;
  /** Octets of payload of each parcel (default 1024). */
  readonly payloadSize?: number;
  /** Also one parcel of the first sender with this payload, written to `bigFile`. */
  readonly bigPayload?: number;
  readonly bigFile?: string;
}

if (import.meta.main) {
  const started = performance.now();
  const config = JSON.parse(Deno.args[0]) as GenerateConfig;
  // Loaded here only: the flood and the tests import this module without relaynet-core.
  const { createParcelFixture } = await import("../../bindings/testing/fixtures.ts");
  const { derSerializePrivateKey } = await import("@relaycorp/relaynet-core");
  const senders = config.senders ?? 4;
  const fixtures = await Promise.all(Array.from({ length: senders }, () => createParcelFixture()));
  const shares = await Promise.all(fixtures.map(async (fixture, i) => {
    const share = Math.floor(config.count / senders) + (i < config.count % senders ? 1 : 0);
    const template = await fixture.makeParcel({ payloadSize: config.payloadSize });
    const key = new Uint8Array(await derSerializePrivateKey(fixture.senderPrivateKey));
    return await signedCopies(template, key, share, 2);
  }));
  // Interleaved, so that any prefix of the file has every sender in it.
  const parcels = [];
  for (let i = 0; parcels.length < config.count; i++) {
    for (const share of shares) if (i < share.length) parcels.push(share[i]);
  }
  await writeParcels(config.file, parcels);
  if (config.bigFile && config.bigPayload) {
    await writeParcels(config.bigFile, [
      await fixtures[0].makeParcel({ payloadSize: config.bigPayload }),
    ]);
  }
  console.log(JSON.stringify({
    type: "done",
    ms: performance.now() - started,
    count: parcels.length,
  }));
}
