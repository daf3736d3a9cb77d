/**
 * Invitation text version 2: what a version 1 invitation holds (docs/protocol.md §2),
 * without what the acceptor can derive. The two certificates are rebuilt from their
 * variable fields (the rest of a Relaynet certificate is fixed, or derived from the
 * keys), the invitation key K travels as the 32-byte seed it was generated from
 * (layout 2, about 890 bytes) or as its modulus and a prime (layout 1, about 1,250),
 * and the session key as a compressed P-256 point. Three 256-byte RSA values (the
 * inviter's modulus, two signatures) are the floor RS-018 sets.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import {
  Certificate,
  CertificationPath,
  derDeserializeECDHPublicKey,
  derDeserializeRSAPrivateKey,
  derDeserializeRSAPublicKey,
  derSerializePrivateKey,
  derSerializePublicKey,
  PrivateEndpointConnParams,
} from "@relaycorp/relaynet-core";
import { toArrayBuffer } from "../../../bindings/validation.ts";
import {
  base32Decode,
  base32Encode,
  base32Read,
  CompactInvitationError,
  concat,
  type Der,
  der,
  nonCanonicalBase32,
  readDer,
} from "./compact_der.ts";
import {
  decompressP256,
  integer,
  invitationKeyFromSeed,
  rsaModulus,
  rsaPrime,
  rsaPrivateKey,
  rsaSpki,
  SEED_LENGTH,
} from "./invitation_key.ts";

export { CompactInvitationError, invitationKeyFromSeed };

/** What an invitation holds (the same in both versions). */
export interface InvitationContents {
  readonly connectionParams: PrivateEndpointConnParams;
  readonly invitationKey: CryptoKey;
  readonly nameHint: string;
  /**
   * The 32 bytes the invitation key was generated from
   * ({@linkcode invitationKeyFromSeed}), when it was: the text then carries them
   * instead of the key's modulus and a prime, 352 bytes less.
   */
  readonly invitationKeySeed?: Uint8Array;
}

/** Every version 2 invitation line starts with this. */
export const COMPACT_PREFIX = "relaymail-invite:2:";

/**
 * The layouts of version 2: for PDA_K issued by a self-issued identity
 * certificate, K as its modulus and a prime (1) or as the seed it was made from
 * (2); and (3) as 2, for an identity certificate issued by a gateway whose own
 * certificate is self-issued (an inviter registered with a gateway, §8).
 */
const LAYOUT = { KEY: 1, SEED: 2, GATEWAY: 3 } as const;

/** RSA-PSS with SHA-256, MGF1-SHA-256, salt 32: relaynet-core's signature AlgorithmIdentifier. */
const SIGNATURE_ALGORITHM = hex(
  "304106092a864886f70d01010a3034a00f300d06096086480165030402010500a11c301a06092a864886f70d010108300d06096086480165030402010500a203020120",
);
const P256_SPKI_PREFIX = hex("3059301306072a8648ce3d020106082a8648ce3d030107034200");

/** The variable fields of a Relaynet certificate (RS-002) issued by relaynet-core. */
interface CertificateFields {
  serial: Uint8Array;
  notBefore: number;
  notAfter: number;
  /** Basic constraints: 0x80 when a CA, plus the path length constraint. */
  basic: number;
  signature: Uint8Array;
}

/**
 * Encodes `invitation` as a version 2 line, or returns null when it has another
 * shape than the layouts describe (say, a gateway-issued certificate path): the
 * caller then writes version 1. Every certificate is rebuilt and compared, byte for
 * byte, before it is left out, and a seed is left in only if it makes the key.
 */
export async function encodeCompact(invitation: InvitationContents): Promise<string | null> {
  try {
    return await tryEncode(invitation);
  } catch {
    return null;
  }
}

async function tryEncode(
  { connectionParams: params, invitationKey, nameHint, invitationKeySeed: seed }:
    InvitationContents,
) {
  const authorities = params.deliveryAuth.certificateAuthorities;
  if (authorities.length !== 1 && authorities.length !== 2) return null;
  const certDer = new Uint8Array(authorities[0].serialize());
  const pdaDer = new Uint8Array(params.deliveryAuth.leafCertificate.serialize());
  const inviterSpki = new Uint8Array(await derSerializePublicKey(params.identityKey));
  const inviterModulus = rsaModulus(inviterSpki);
  const [cert, certSubject] = certificateFields(certDer);
  const [pda, keySpki] = certificateFields(pdaDer);
  const keyModulus = rsaModulus(keySpki);
  if (!equal(certSubject, inviterSpki)) return null;
  // Registered with a gateway, the identity certificate is the gateway's, and the
  // gateway's own certificate follows it.
  let gateway: { spki: Uint8Array; fields: CertificateFields } | null = null;
  if (authorities.length === 2) {
    const gatewayDer = new Uint8Array(authorities[1].serialize());
    const [fields, spki] = certificateFields(gatewayDer);
    if (!equal(gatewayDer, await buildCertificate(fields, spki, spki))) return null;
    gateway = { spki, fields };
  }
  const certIssuer = gateway?.spki ?? inviterSpki;
  if (!equal(certDer, await buildCertificate(cert, certIssuer, inviterSpki))) return null;
  if (!equal(pdaDer, await buildCertificate(pda, inviterSpki, keySpki))) return null;
  const seeded = seed !== undefined &&
    equal((await invitationKeyFromSeed(seed)).modulus, keyModulus);
  if (gateway && !seeded) return null;
  const prime = rsaPrime(new Uint8Array(await derSerializePrivateKey(invitationKey)), keyModulus);
  const sessionSpki = new Uint8Array(await derSerializePublicKey(params.sessionKey.publicKey));
  if (!equal(sessionSpki.subarray(0, P256_SPKI_PREFIX.length), P256_SPKI_PREFIX)) return null;
  const point = sessionSpki.subarray(P256_SPKI_PREFIX.length);
  const name = new TextEncoder().encode(nameHint);
  const address = new TextEncoder().encode(params.internetGatewayAddress);
  const keyId = new Uint8Array(params.sessionKey.keyId);
  if (name.length > 200 || address.length > 255 || keyId.length > 64) return null;
  if (!address.every((octet) => octet > 0x20 && octet < 0x7f)) return null;
  if (point.length !== 65 || point[0] !== 4) return null;
  const out = new Writer();
  out.u8(gateway ? LAYOUT.GATEWAY : seeded ? LAYOUT.SEED : LAYOUT.KEY);
  out.long(inviterModulus);
  if (gateway) {
    out.long(rsaModulus(gateway.spki));
    writeCertificate(out, gateway.fields);
  }
  writeCertificate(out, cert);
  if (seeded) out.bytes(seed);
  else out.long(keyModulus);
  writeCertificate(out, pda);
  if (!seeded) out.long(prime);
  out.short(keyId);
  out.bytes(Uint8Array.of(2 | (point[64] & 1), ...point.subarray(1, 33)));
  out.short(address);
  out.short(name);
  const body = out.done();
  return COMPACT_PREFIX + base32Encode(concat(body, await checksum(body)));
}

/**
 * `text` (version 2, layout 2) with its seed replaced by `seed` and its check made
 * anew; null for any other text. The inviter keeps the texts of its pending
 * invitations with the seed blanked, and puts the seed back to show one again.
 */
export async function withSeed(text: string, seed: Uint8Array): Promise<string | null> {
  if (!text.startsWith(COMPACT_PREFIX) || seed.length !== SEED_LENGTH) return null;
  let body: Uint8Array;
  try {
    body = base32Decode(text.slice(COMPACT_PREFIX.length)).slice(0, -4);
    const input = new Reader(body);
    const layout = input.u8();
    if (layout !== LAYOUT.SEED && layout !== LAYOUT.GATEWAY) return null;
    const inviterSpki = rsaSpki(input.modulus());
    const gatewaySpki = layout === LAYOUT.GATEWAY ? rsaSpki(input.modulus()) : null;
    if (gatewaySpki) readCertificate(input, gatewaySpki);
    readCertificate(input, gatewaySpki ?? inviterSpki);
    body.set(seed, input.at);
  } catch {
    return null;
  }
  return COMPACT_PREFIX + base32Encode(concat(body, await checksum(body)));
}

/** Decodes the base32 after {@linkcode COMPACT_PREFIX}; checks come after, as for version 1. */
export async function decodeCompact(encoded: string): Promise<InvitationContents> {
  // The check digits first: a character lost or mistyped is told as such.
  const { bytes, canonical } = base32Read(encoded);
  if (bytes.length < 5) throw new CompactInvitationError("it is far too short");
  const body = bytes.subarray(0, -4);
  if (!equal(bytes.subarray(-4), await checksum(body))) {
    throw new CompactInvitationError(
      "its check digits do not match (a character changed or went missing)",
    );
  }
  if (!canonical) throw nonCanonicalBase32();
  const input = new Reader(body);
  const layout = input.u8();
  if (layout !== LAYOUT.KEY && layout !== LAYOUT.SEED && layout !== LAYOUT.GATEWAY) {
    throw new CompactInvitationError(`its layout ${layout} is unknown to this Relaymail`);
  }
  const inviterSpki = rsaSpki(input.modulus());
  const gatewaySpki = layout === LAYOUT.GATEWAY ? rsaSpki(input.modulus()) : null;
  const gatewayCert = gatewaySpki ? readCertificate(input, gatewaySpki) : null;
  const cert = readCertificate(input, gatewaySpki ?? inviterSpki);
  const seed = layout === LAYOUT.KEY ? null : input.bytes(SEED_LENGTH);
  const keyModulus = seed ? null : input.modulus();
  const pda = readCertificate(input, inviterSpki);
  const prime = keyModulus ? input.long(512) : null;
  const keyId = input.short(64);
  const point = input.bytes(33);
  const gateway = input.address(255);
  const nameHint = input.text(200);
  input.end();
  try {
    const key = seed ? await invitationKeyFromSeed(seed) : {
      modulus: keyModulus!,
      spki: rsaSpki(keyModulus!),
      pkcs8: rsaPrivateKey(keyModulus!, prime!),
    };
    const authorities = [
      await buildCertificate(cert, gatewaySpki ?? inviterSpki, inviterSpki),
      ...gatewayCert && gatewaySpki
        ? [await buildCertificate(gatewayCert, gatewaySpki, gatewaySpki)]
        : [],
    ].map((der) => Certificate.deserialize(toArrayBuffer(der)));
    const authorization = Certificate.deserialize(
      toArrayBuffer(await buildCertificate(pda, inviterSpki, key.spki)),
    );
    const sessionKey = {
      keyId: Buffer.from(keyId),
      publicKey: await derDeserializeECDHPublicKey(
        Buffer.from(concat(P256_SPKI_PREFIX, decompressP256(point))),
        "P-256",
      ),
    };
    return {
      connectionParams: new PrivateEndpointConnParams(
        await derDeserializeRSAPublicKey(Buffer.from(inviterSpki)),
        gateway,
        new CertificationPath(authorization, authorities),
        sessionKey,
      ),
      invitationKey: await derDeserializeRSAPrivateKey(Buffer.from(key.pkcs8)),
      nameHint,
      ...seed ? { invitationKeySeed: seed } : {},
    };
  } catch (error) {
    if (error instanceof CompactInvitationError) throw error;
    throw new CompactInvitationError(
      `a key or certificate in it is unusable (${error instanceof Error ? error.message : error})`,
      { cause: error },
    );
  }
}

/** The first 4 bytes of the SHA-256 digest of `body`: catches a mistyped or lost character. */
async function checksum(body: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", toArrayBuffer(body))).subarray(0, 4);
}

/** A relaynet-core certificate, rebuilt from its variable fields and its two keys. */
async function buildCertificate(
  fields: CertificateFields,
  issuerSpki: Uint8Array,
  subjectSpki: Uint8Array,
): Promise<Uint8Array> {
  const issuerKeyId = await sha256(issuerSpki);
  const subjectKeyId = await sha256(subjectSpki);
  const constraints = (fields.basic & 0x80 ? [der(0x01, [0xff])] : [])
    .concat(der(0x02, integer(Uint8Array.of(fields.basic & 0x7f))));
  const extensions = der(
    0xa3,
    der(0x30, [
      der(0x30, [oid("551d13"), der(0x01, [0xff]), der(0x04, der(0x30, constraints))]),
      der(0x30, [oid("551d23"), der(0x04, der(0x30, der(0x80, issuerKeyId)))]),
      der(0x30, [oid("551d0e"), der(0x04, der(0x04, subjectKeyId))]),
    ]),
  );
  const tbs = der(0x30, [
    der(0xa0, der(0x02, [2])),
    der(0x02, fields.serial),
    SIGNATURE_ALGORITHM,
    name(issuerKeyId),
    der(0x30, [time(fields.notBefore), time(fields.notAfter)]),
    name(subjectKeyId),
    subjectSpki,
    extensions,
  ]);
  return der(0x30, [
    tbs,
    SIGNATURE_ALGORITHM,
    der(0x03, concat(Uint8Array.of(0), fields.signature)),
  ]);
}

/** Reads the variable fields and the subject key (SPKI) of a certificate's DER. */
function certificateFields(certificate: Uint8Array): [CertificateFields, Uint8Array] {
  const [tbs, , signature] = readDer(readDer(certificate)[0].content);
  const [, serial, , , validity, , spki, extensions] = readDer(tbs.content);
  const [notBefore, notAfter] = readDer(validity.content).map((t) => parseTime(t));
  const basic = readDer(readDer(readDer(extensions.content)[0].content)[0].content);
  const constraints = readDer(readDer(basic[2].content)[0].content);
  const isCa = constraints.length === 2;
  const pathLength = constraints[constraints.length - 1].content;
  if (pathLength.length !== 1 || pathLength[0] > 0x7f) throw new Error("Unexpected path length");
  return [{
    serial: serial.content,
    notBefore,
    notAfter,
    basic: (isCa ? 0x80 : 0) | pathLength[0],
    signature: signature.content.subarray(1),
  }, spki.whole];
}

function writeCertificate(out: Writer, fields: CertificateFields): void {
  out.short(fields.serial);
  out.u32(fields.notBefore);
  out.u32(fields.notAfter);
  out.u8(fields.basic);
  out.bytes(fields.signature);
}

function readCertificate(input: Reader, issuerSpki: Uint8Array): CertificateFields {
  const serial = input.serial(20);
  const notBefore = input.u32();
  const notAfter = input.u32();
  const basic = input.u8();
  // An RSA signature is exactly as long as its issuer's modulus.
  const signature = input.bytes(rsaModulus(issuerSpki).length);
  return { serial, notBefore, notAfter, basic, signature };
}

/** The issuer or subject name: one CN, the endpoint id, as relaynet-core writes it (BMPString). */
function name(keyId: Uint8Array): Uint8Array {
  const id = "0" + Buffer.from(keyId).toString("hex");
  const utf16 = new Uint8Array(id.length * 2).map((_, i) => i % 2 ? id.charCodeAt(i >> 1) : 0);
  return der(0x30, der(0x31, der(0x30, [oid("550403"), der(0x1e, utf16)])));
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime after. */
function time(seconds: number): Uint8Array {
  const iso = new Date(seconds * 1000).toISOString();
  const digits = iso.slice(0, 19).replace(/[-T:]/g, "") + "Z";
  const year = Number(iso.slice(0, 4));
  return year < 2050
    ? der(0x17, new TextEncoder().encode(digits.slice(2)))
    : der(0x18, new TextEncoder().encode(digits));
}

function parseTime(value: Der): number {
  const text = new TextDecoder().decode(value.content);
  const full = value.tag === 0x17 ? (Number(text.slice(0, 2)) < 50 ? "20" : "19") + text : text;
  const m = /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(full);
  if (!m) throw new Error(`Unexpected time ${text}`);
  return Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]) / 1000;
}

function oid(content: string): Uint8Array {
  return der(0x06, hex(content));
}

function hex(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, "hex"));
}

async function sha256(bytes: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", toArrayBuffer(bytes)));
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/** Big-endian fields, each length-prefixed where its length varies. */
class Writer {
  #chunks: Uint8Array[] = [];
  u8(value: number) {
    this.#chunks.push(Uint8Array.of(value));
  }
  u32(value: number) {
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new Error("Bad date");
    this.#chunks.push(
      Uint8Array.of(value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255),
    );
  }
  bytes(value: Uint8Array) {
    this.#chunks.push(value);
  }
  /** One length byte, then the bytes. */
  short(value: Uint8Array) {
    this.u8(value.length);
    this.bytes(value);
  }
  /** Two length bytes, then the bytes. */
  long(value: Uint8Array) {
    this.#chunks.push(Uint8Array.of(value.length >> 8, value.length & 255));
    this.bytes(value);
  }
  done(): Uint8Array {
    return concat(...this.#chunks);
  }
}

class Reader {
  #at = 0;
  constructor(private readonly data: Uint8Array) {}
  /** Where the next field starts. */
  get at(): number {
    return this.#at;
  }
  bytes(length: number): Uint8Array {
    if (this.#at + length > this.data.length) {
      throw new CompactInvitationError("it is cut short");
    }
    return this.data.subarray(this.#at, this.#at += length);
  }
  u8(): number {
    return this.bytes(1)[0];
  }
  u32(): number {
    const b = this.bytes(4);
    return ((b[0] << 24) >>> 0) + (b[1] << 16) + (b[2] << 8) + b[3];
  }
  short(max: number): Uint8Array {
    const length = this.u8();
    if (length > max) throw new CompactInvitationError(`a field is ${length} bytes, over ${max}`);
    return this.bytes(length);
  }
  long(max: number): Uint8Array {
    const length = (this.u8() << 8) + this.u8();
    if (length > max) throw new CompactInvitationError(`a field is ${length} bytes, over ${max}`);
    return this.bytes(length);
  }
  /** An RSA modulus of 256 to 512 octets, no leading zero, at least 2048 bits (RS-018). */
  modulus(): Uint8Array {
    const modulus = this.long(512);
    if (modulus.length > 0 && modulus[0] === 0) {
      throw new CompactInvitationError("an RSA modulus in it starts with a zero octet");
    }
    if (modulus.length < 256 || (modulus.length === 256 && modulus[0] < 0x80)) {
      throw new CompactInvitationError("an RSA key in it is shorter than 2048 bits");
    }
    return modulus;
  }
  /**
   * A serial number's content octets, 1 to `max`, verbatim: relaynet-core may write
   * a superfluous leading zero octet, and the signature covers it.
   */
  serial(max: number): Uint8Array {
    const value = this.short(max);
    if (value.length === 0) throw new CompactInvitationError("a serial number in it is empty");
    return value;
  }
  /** Printable ASCII without spaces (a domain name), or nothing. */
  address(max: number): string {
    const value = this.short(max);
    if (!value.every((octet) => octet > 0x20 && octet < 0x7f)) {
      throw new CompactInvitationError(
        "its gateway address is not a domain name (printable ASCII, no spaces)",
      );
    }
    return new TextDecoder().decode(value);
  }
  text(max: number): string {
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(this.short(max));
    } catch (error) {
      if (error instanceof CompactInvitationError) throw error;
      throw new CompactInvitationError("a text in it is not UTF-8");
    }
  }
  end(): void {
    if (this.#at !== this.data.length) {
      throw new CompactInvitationError(
        `${this.data.length - this.#at} bytes follow its last field`,
      );
    }
  }
}
