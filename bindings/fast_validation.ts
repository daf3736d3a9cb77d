/**
 * Fast parcel validation for relays, which check every parcel they carry but
 * never decrypt one.
 *
 * relaynet-core spends about 7 ms on a small parcel, mostly in its ASN.1/CMS
 * layers and its JavaScript RSA: each parcel's two certificates are parsed and
 * their chain verified again, though a relay sees the same few chains over and
 * over. This validator:
 *
 * - walks the parcel's DER itself, reading only what it needs, and accepts only
 *   the canonical shape relaynet-core writes (definite lengths, one signer, the
 *   content-type and message-digest attributes, SHA-256 and RSA-PSS); anything
 *   else is handed to relaynet-core, so exotic but valid parcels still pass;
 * - verifies the CMS signature with the runtime's native WebCrypto;
 * - parses each distinct certificate once and caches its native public key;
 * - caches each verified PDA chain with the window in which it is valid.
 *
 * It checks everything {@linkcode validateParcel} checks; a differential test
 * runs both on valid and mutated parcels.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { Certificate } from "@relaycorp/relaynet-core";
import { pkijsCertificateOf } from "./_pkijs.ts";
import {
  checkDates,
  checkParcelSize,
  fromHex,
  noRecipientCertificate,
  RAMF_MAX_TTL_SECONDS,
  toArrayBuffer,
  toHex,
  validateParcel,
  type ValidateParcelOptions,
  verifyDeliveryAuthorization,
} from "./validation.ts";

/** What a relay needs to know of a valid parcel. */
export interface ParcelFacts {
  /** The parcel id chosen by its sender. */
  readonly id: string;
  /** Id of the sender's key (its endpoint id, or an invitation key's id). */
  readonly senderId: string;
  /** Id of the endpoint it is addressed to. */
  readonly recipientId: string;
  /** When its sender created it (its sender's clock). */
  readonly creationDate: Date;
  /** When it expires; past it, no hop may carry it. */
  readonly expiresAt: Date;
}

const FORMAT_SIGNATURE = [0x41, 0x77, 0x61, 0x6c, 0x61, 0x50, 0x00]; // "Awala", parcel, version 0

// DER object identifiers, as their encoded content octets.
const OID_SIGNED_DATA = fromHex("2a864886f70d010702"); // 1.2.840.113549.1.7.2
const OID_DATA = fromHex("2a864886f70d010701"); // 1.2.840.113549.1.7.1
const OID_SHA256 = fromHex("608648016503040201"); // 2.16.840.1.101.3.4.2.1
const OID_RSA_PSS = fromHex("2a864886f70d01010a"); // 1.2.840.113549.1.1.10
const OID_MGF1 = fromHex("2a864886f70d010108"); // 1.2.840.113549.1.1.8
const OID_CONTENT_TYPE = fromHex("2a864886f70d010903"); // 1.2.840.113549.1.9.3
const OID_MESSAGE_DIGEST = fromHex("2a864886f70d010904"); // 1.2.840.113549.1.9.4

const MAX_ID_LENGTH = 64;
const MAX_RECIPIENT_LENGTH = 1024;

/** Thrown inside the walker when the parcel is not in the shape the fast path reads. */
class Unusual extends Error {}

interface Tlv {
  readonly tag: number;
  /** Offset of the first content octet. */
  readonly start: number;
  /** Offset just past the content. */
  readonly end: number;
  /** Offset of the tag octet. */
  readonly from: number;
}

/** Reads one DER TLV at `offset`, within `limit`. Multi-octet tags and indefinite lengths are unusual. */
function tlv(bytes: Uint8Array, offset: number, limit: number): Tlv {
  if (offset + 2 > limit) throw new Unusual();
  const tag = bytes[offset];
  if ((tag & 0x1f) === 0x1f) throw new Unusual();
  let length = bytes[offset + 1];
  let start = offset + 2;
  if (length & 0x80) {
    const octets = length & 0x7f;
    if (octets === 0 || octets > 4 || start + octets > limit) throw new Unusual();
    length = 0;
    for (let i = 0; i < octets; i++) length = length * 256 + bytes[start + i];
    start += octets;
  }
  const end = start + length;
  if (end > limit) throw new Unusual();
  return { tag, start, end, from: offset };
}

/** The children of a constructed TLV. */
function children(bytes: Uint8Array, parent: Tlv): Tlv[] {
  const items: Tlv[] = [];
  for (let offset = parent.start; offset < parent.end;) {
    const item = tlv(bytes, offset, parent.end);
    items.push(item);
    offset = item.end;
  }
  return items;
}

function expectTag(item: Tlv | undefined, tag: number): Tlv {
  if (!item || item.tag !== tag) throw new Unusual();
  return item;
}

const VERSION_1 = new Uint8Array([1]);

/** An AlgorithmIdentifier for SHA-256, with or without NULL parameters. */
function expectSha256(bytes: Uint8Array, item: Tlv | undefined): void {
  const [algorithm, params, ...rest] = children(bytes, expectTag(item, 0x30));
  if (rest.length || !equalBytes(content(bytes, expectTag(algorithm, 0x06)), OID_SHA256)) {
    throw new Unusual();
  }
  if (params && (params.tag !== 0x05 || params.end !== params.start)) throw new Unusual();
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function content(bytes: Uint8Array, item: Tlv): Uint8Array {
  return bytes.subarray(item.start, item.end);
}

/**
 * The value of an OCTET STRING, primitive or (as asn1js writes encapsulated
 * content) constructed from primitive pieces.
 */
function octetStringPieces(bytes: Uint8Array, item: Tlv): Uint8Array[] {
  if (item.tag === 0x04) return [content(bytes, item)];
  if (item.tag !== 0x24) throw new Unusual();
  return children(bytes, item).map((piece) => content(bytes, expectTag(piece, 0x04)));
}

/** SHA-256 of a value in pieces, hashed where they lie: no gathering, no copy. */
function digestPieces(pieces: readonly Uint8Array[]): Uint8Array {
  const hash = createHash("sha256");
  for (const piece of pieces) hash.update(piece);
  return new Uint8Array(hash.digest());
}

/** Octets of the RAMF field set read into one buffer: enough for every field but the payload. */
const HEAD_LENGTH = 8192;

/** The first `length` octets (or all) of a value split into pieces, in one buffer. */
function head(pieces: readonly Uint8Array[], length: number): Uint8Array {
  if (pieces[0].length >= length || pieces.length === 1) return pieces[0];
  const out = new Uint8Array(Math.min(length, pieces.reduce((n, p) => n + p.length, 0)));
  let offset = 0;
  for (const piece of pieces) {
    if (offset >= out.length) break;
    const part = piece.subarray(0, out.length - offset);
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function whole(bytes: Uint8Array, item: Tlv): Uint8Array {
  return bytes.subarray(item.from, item.end);
}

interface CachedCertificate {
  /** Unique per distinct certificate, for chain cache keys. */
  readonly serial: number;
  readonly der: Uint8Array;
  readonly certificate: Certificate;
  readonly id: string;
  readonly issuerDer: Uint8Array;
  readonly serialDer: Uint8Array;
  readonly key: CryptoKey;
}

/** Options of {@linkcode FastParcelValidator}. */
export interface FastValidatorOptions {
  /** Most certificates kept parsed (default 10 000). */
  readonly maxCertificates?: number;
  /** Most verified chains kept (default 10 000). */
  readonly maxChains?: number;
}

/** Validates parcels for relaying, with caches that live as long as the validator. */
export class FastParcelValidator {
  readonly #certificates = new Map<string, Promise<CachedCertificate>>();
  readonly #chains = new Map<string, { from: number; to: number }>();
  readonly #maxCertificates: number;
  readonly #maxChains: number;
  #serial = 0;
  /** Parcels validated by the fast path and handed to relaynet-core. */
  readonly counts = { fast: 0, fallback: 0 };

  /** Creates a validator with empty caches, bounded by `options`. */
  constructor(options: FastValidatorOptions = {}) {
    this.#maxCertificates = options.maxCertificates ?? 10_000;
    this.#maxChains = options.maxChains ?? 10_000;
  }

  /**
   * Checks a parcel exactly as {@linkcode validateParcel} does in relay mode (the
   * recipient's certificate in the parcel is the trust anchor) and returns its
   * facts, or throws {@linkcode ParcelRefusedError}.
   */
  async validate(
    bytes: Uint8Array,
    options: Omit<ValidateParcelOptions, "trustedCertificates"> = {},
  ): Promise<ParcelFacts> {
    checkParcelSize(bytes);
    let walked;
    try {
      walked = await this.#walk(bytes);
    } catch (error) {
      if (!(error instanceof Unusual)) throw error;
      walked = null;
    }
    if (!walked) {
      // Not the shape relaynet-core writes, or its signature does not verify:
      // relaynet-core decides, and says why.
      this.counts.fallback++;
      return await validateParcel(bytes, options);
    }
    const now = options.now ?? new Date();
    checkDates(walked, now, options.clockDriftToleranceMs);
    await this.#checkChain(walked.signer, walked.others, walked.recipientId, now);
    this.counts.fast++;
    return {
      id: walked.id,
      senderId: walked.signer.id,
      recipientId: walked.recipientId,
      creationDate: walked.creationDate,
      expiresAt: walked.expiresAt,
    };
  }

  /** Walks and verifies the parcel's structure and signature; null if the signature fails. */
  async #walk(bytes: Uint8Array) {
    for (let i = 0; i < FORMAT_SIGNATURE.length; i++) {
      if (bytes[i] !== FORMAT_SIGNATURE[i]) throw new Unusual();
    }
    const top = tlv(bytes, FORMAT_SIGNATURE.length, bytes.length);
    if (top.tag !== 0x30 || top.end !== bytes.length) throw new Unusual();
    const [contentType, explicit, ...rest] = children(bytes, top);
    if (rest.length || !equalBytes(content(bytes, expectTag(contentType, 0x06)), OID_SIGNED_DATA)) {
      throw new Unusual();
    }
    const signedDataWrapper = children(bytes, expectTag(explicit, 0xa0));
    if (signedDataWrapper.length !== 1) throw new Unusual();
    const signedData = children(bytes, expectTag(signedDataWrapper[0], 0x30));
    // version, digestAlgorithms, encapContentInfo, [0] certificates, signerInfos
    if (signedData.length !== 5) throw new Unusual();
    if (!equalBytes(content(bytes, expectTag(signedData[0], 0x02)), VERSION_1)) throw new Unusual();
    const digestAlgorithms = children(bytes, expectTag(signedData[1], 0x31));
    if (digestAlgorithms.length !== 1) throw new Unusual();
    expectSha256(bytes, digestAlgorithms[0]);
    const encap = children(bytes, expectTag(signedData[2], 0x30));
    if (encap.length !== 2 || !equalBytes(content(bytes, expectTag(encap[0], 0x06)), OID_DATA)) {
      throw new Unusual();
    }
    const eContentWrapper = children(bytes, expectTag(encap[1], 0xa0));
    if (eContentWrapper.length !== 1) throw new Unusual();
    // The signed content (the RAMF fields, payload included) may come in pieces:
    // hashed piece by piece, and only its first octets gathered for parsing.
    const eContent = octetStringPieces(bytes, eContentWrapper[0]);
    const certificateTlvs = children(bytes, expectTag(signedData[3], 0xa0));
    const signerInfos = children(bytes, expectTag(signedData[4], 0x31));
    if (signerInfos.length !== 1 || certificateTlvs.length === 0) throw new Unusual();

    // SignerInfo: version, sid, digestAlgorithm, [0] signedAttrs, signatureAlgorithm, signature
    const signerInfo = children(bytes, expectTag(signerInfos[0], 0x30));
    if (signerInfo.length !== 6) throw new Unusual();
    if (!equalBytes(content(bytes, expectTag(signerInfo[0], 0x02)), VERSION_1)) throw new Unusual();
    const sid = children(bytes, expectTag(signerInfo[1], 0x30));
    if (sid.length !== 2) throw new Unusual();
    const sidIssuer = whole(bytes, expectTag(sid[0], 0x30));
    const sidSerial = whole(bytes, expectTag(sid[1], 0x02));
    expectSha256(bytes, signerInfo[2]);
    const signedAttrs = expectTag(signerInfo[3], 0xa0);
    const saltLength = this.#pssSaltLength(bytes, expectTag(signerInfo[4], 0x30));
    const signature = content(bytes, expectTag(signerInfo[5], 0x04));

    // Signed attributes: exactly one content type (data) and one message digest.
    let digestAttribute: Uint8Array | null = null;
    let contentTypeSeen = false;
    for (const attribute of children(bytes, signedAttrs)) {
      const [type, values, ...extra] = children(bytes, expectTag(attribute, 0x30));
      if (extra.length) throw new Unusual();
      const typeOid = content(bytes, expectTag(type, 0x06));
      const valueList = children(bytes, expectTag(values, 0x31));
      if (equalBytes(typeOid, OID_CONTENT_TYPE)) {
        if (contentTypeSeen || valueList.length !== 1) throw new Unusual();
        if (!equalBytes(content(bytes, expectTag(valueList[0], 0x06)), OID_DATA)) {
          throw new Unusual();
        }
        contentTypeSeen = true;
      } else if (equalBytes(typeOid, OID_MESSAGE_DIGEST)) {
        if (digestAttribute || valueList.length !== 1) throw new Unusual();
        digestAttribute = content(bytes, expectTag(valueList[0], 0x04));
      }
    }
    if (!contentTypeSeen || !digestAttribute) throw new Unusual();

    const certificates = await Promise.all(
      certificateTlvs.map((c) => this.#certificate(whole(bytes, c))),
    );
    const signer = certificates.find((c) =>
      equalBytes(c.issuerDer, sidIssuer) && equalBytes(c.serialDer, sidSerial)
    );
    if (!signer) throw new Unusual();

    const digest = digestPieces(eContent);
    if (!equalBytes(digest, digestAttribute)) return null;
    // The signature covers the attributes encoded as a SET (RFC 5652, section 5.4).
    // A copy: on a Node Buffer, slice() would return a view and this would alter the parcel.
    const signedBytes = new Uint8Array(whole(bytes, signedAttrs));
    signedBytes[0] = 0x31;
    const valid = await crypto.subtle.verify(
      { name: "RSA-PSS", saltLength },
      signer.key,
      toArrayBuffer(signature),
      signedBytes,
    );
    if (!valid) return null;

    const fields = this.#ramfFields(
      head(eContent, HEAD_LENGTH),
      eContent.reduce((n, p) => n + p.length, 0),
    );
    return { ...fields, signer, others: certificates.filter((c) => c !== signer) };
  }

  /** The salt length of RSASSA-PSS with SHA-256 and MGF1-SHA-256; anything else is unusual. */
  #pssSaltLength(bytes: Uint8Array, algorithm: Tlv): number {
    const [algorithmOid, params, ...rest] = children(bytes, algorithm);
    if (rest.length || !equalBytes(content(bytes, expectTag(algorithmOid, 0x06)), OID_RSA_PSS)) {
      throw new Unusual();
    }
    let saltLength = 20; // RFC 4055 default
    let hashSeen = false;
    let mgfSeen = false;
    for (const param of children(bytes, expectTag(params, 0x30))) {
      if (param.tag === 0xa0) {
        const [hash, ...more] = children(bytes, param);
        if (more.length) throw new Unusual();
        expectSha256(bytes, hash);
        hashSeen = true;
      } else if (param.tag === 0xa1) {
        const [mgf, ...more] = children(bytes, param);
        if (more.length) throw new Unusual();
        const [mgfOid, mgfHash, ...extra] = children(bytes, expectTag(mgf, 0x30));
        if (extra.length || !equalBytes(content(bytes, expectTag(mgfOid, 0x06)), OID_MGF1)) {
          throw new Unusual();
        }
        expectSha256(bytes, mgfHash);
        mgfSeen = true;
      } else if (param.tag === 0xa2) {
        const [integer, ...more] = children(bytes, param);
        if (more.length) throw new Unusual();
        const value = content(bytes, expectTag(integer, 0x02));
        if (value.length > 2) throw new Unusual();
        saltLength = value.reduce((n, b) => n * 256 + b, 0);
      } else if (param.tag === 0xa3) {
        const [integer] = children(bytes, param);
        if (!equalBytes(content(bytes, expectTag(integer, 0x02)), VERSION_1)) throw new Unusual();
      } else {
        throw new Unusual();
      }
    }
    if (!hashSeen || !mgfSeen) throw new Unusual();
    return saltLength;
  }

  /** The RAMF fields (RS-001), with relaynet-core's syntax checks. */
  #ramfFields(fields: Uint8Array, total: number) {
    // `fields` holds the first octets of the field set; `total` is its length.
    const sequence = tlv(fields, 0, total);
    if (sequence.tag !== 0x30 || sequence.end !== total) throw new Unusual();
    const items: Tlv[] = [];
    for (let offset = sequence.start; offset < sequence.end && items.length < 6;) {
      if (offset + 6 > fields.length) throw new Unusual();
      const item = tlv(fields, offset, total);
      items.push(item);
      offset = item.end;
    }
    const [recipient, id, date, ttl, payload, ...rest] = items;
    if (rest.length || !payload || payload.end !== total) throw new Unusual();
    // Everything but the payload must lie in the gathered octets.
    if (ttl.end > fields.length) throw new Unusual();
    const recipientItems = children(fields, expectTag(recipient, 0xa0));
    if (recipientItems.length < 1 || recipientItems.length > 2) throw new Unusual();
    const text = (item: Tlv) => new TextDecoder().decode(content(fields, item));
    const recipientId = text(expectTag(recipientItems[0], 0x80));
    if (recipientId.length > MAX_RECIPIENT_LENGTH || !/^[a-f\d]+$/.test(recipientId)) {
      throw new Unusual();
    }
    if (recipientItems.length === 2) expectTag(recipientItems[1], 0x81); // relays ignore the address
    const parcelId = text(expectTag(id, 0x81));
    if (parcelId.length > MAX_ID_LENGTH) throw new Unusual();
    const dateText = text(expectTag(date, 0x82));
    const match = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(dateText);
    if (!match) throw new Unusual();
    const creationDate = new Date(
      Date.UTC(+match[1], +match[2] - 1, +match[3], +match[4], +match[5], +match[6]),
    );
    const ttlBytes = content(fields, expectTag(ttl, 0x83));
    if (ttlBytes.length === 0 || ttlBytes.length > 4 || ttlBytes[0] & 0x80) throw new Unusual();
    const ttlSeconds = ttlBytes.reduce((n, b) => n * 256 + b, 0);
    if (ttlSeconds > RAMF_MAX_TTL_SECONDS) throw new Unusual();
    expectTag(payload, 0x84);
    if (payload.end - payload.start > 2 ** 23 - 1) throw new Unusual();
    return {
      id: parcelId,
      recipientId,
      creationDate,
      expiresAt: new Date(creationDate.getTime() + ttlSeconds * 1000),
    };
  }

  /** A certificate parsed once, with its native public key. */
  async #certificate(der: Uint8Array): Promise<CachedCertificate> {
    // The last octets are the issuer's signature: a good hash key, confirmed below.
    const cacheKey = toHex(der.subarray(Math.max(0, der.length - 32))) + der.length;
    let cached = this.#certificates.get(cacheKey);
    if (!cached) {
      cached = this.#parseCertificate(new Uint8Array(der));
      this.#certificates.set(cacheKey, cached);
      cached.catch(() => this.#certificates.delete(cacheKey));
      if (this.#certificates.size > this.#maxCertificates) {
        this.#certificates.delete(this.#certificates.keys().next().value!);
      }
    }
    const entry = await cached;
    return equalBytes(entry.der, der) ? entry : await this.#parseCertificate(new Uint8Array(der));
  }

  async #parseCertificate(der: Uint8Array): Promise<CachedCertificate> {
    try {
      const certificate = Certificate.deserialize(toArrayBuffer(der));
      const inner = pkijsCertificateOf(certificate);
      const spki = new Uint8Array(inner.subjectPublicKeyInfo.toSchema().toBER(false));
      const key = await crypto.subtle.importKey(
        "spki",
        spki,
        { name: "RSA-PSS", hash: "SHA-256" },
        false,
        [
          "verify",
        ],
      );
      return {
        serial: ++this.#serial,
        der,
        certificate,
        id: await certificate.calculateSubjectId(),
        issuerDer: new Uint8Array(inner.issuer.toSchema().toBER(false)),
        serialDer: new Uint8Array(inner.serialNumber.toBER(false)),
        key,
      };
    } catch {
      throw new Unusual(); // relaynet-core will say what is wrong with it
    }
  }

  /** The sender's PDA chain to its recipient's certificate, verified once per chain and window. */
  async #checkChain(
    signer: CachedCertificate,
    others: CachedCertificate[],
    recipientId: string,
    now: Date,
  ) {
    const anchor = others.find((c) => c.id === recipientId);
    if (!anchor) throw noRecipientCertificate(recipientId);
    const chainKey = [signer, ...others].map((c) => c.serial).join(",");
    const window = this.#chains.get(chainKey);
    const time = now.getTime();
    if (window && window.from <= time && time < window.to) return;
    await verifyDeliveryAuthorization(
      signer.certificate,
      others.map((c) => c.certificate),
      recipientId,
      [anchor.certificate],
      now,
    );
    const all = [signer, ...others];
    this.#chains.set(chainKey, {
      from: Math.max(...all.map((c) => c.certificate.startDate.getTime())),
      to: Math.min(...all.map((c) => c.certificate.expiryDate.getTime())),
    });
    if (this.#chains.size > this.#maxChains) this.#chains.delete(this.#chains.keys().next().value!);
  }
}
