/**
 * What only an endpoint can say, and how any node checks it (docs/mesh-protocol.md §5):
 *
 * - a **delivery proof**: the recipient's identity key signs a parcel's key. Any
 *   node holding the parcel knows its recipient's id, which is `"0"` + the hex
 *   SHA-256 of the recipient's public key, so the proof carries that key and needs
 *   no certificate: a proof by any other key does not match the id;
 * - a **hosting claim**: an endpoint signs the libp2p peer id of the node that
 *   hosts it, with an expiry. It travels sealed (AES-256-GCM) under a key derived
 *   from the endpoint's id and a nonce fresh per connection, behind a tag derived
 *   the same way: a peer that already knows the endpoint id can find and check the
 *   claim, and one that does not learns nothing, not even the id.
 *
 * Signatures are RSA-PSS with SHA-256 and a 32-octet salt (the Relaynet identity
 * key type, RS-018), made and checked with `node:crypto`, which is several times
 * cheaper than WebCrypto under Deno.
 *
 * @module
 */
import {
  constants,
  createCipheriv,
  createDecipheriv,
  createHash,
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  sign,
  verify,
} from "node:crypto";
import { Buffer } from "node:buffer";
import { toHex } from "../bindings/validation.ts";

/** An endpoint's identity, able to sign for it. */
export interface EndpointSigner {
  /** The endpoint's id: `"0"` + hex SHA-256 of {@linkcode publicKey}. */
  readonly id: string;
  /** DER SubjectPublicKeyInfo of its identity key. */
  readonly publicKey: Uint8Array;
  /** Signs `data` with the identity key (RSA-PSS, SHA-256). */
  sign(data: Uint8Array): Uint8Array;
}

/** A recipient's signature over a parcel's key: the only thing that makes relays drop a copy. */
export interface DeliveryProof {
  /** Hex SHA-256 of the parcel. */
  readonly key: string;
  /** DER SubjectPublicKeyInfo of the recipient's identity key. */
  readonly publicKey: Uint8Array;
  /** RSA-PSS signature of the key, as docs/mesh-protocol.md §5.1 lays it out. */
  readonly signature: Uint8Array;
}

/** An endpoint's statement that a node (by libp2p peer id) hosts it, until `expiresAt`. */
export interface HostingClaim {
  /** DER SubjectPublicKeyInfo of the endpoint's identity key. */
  readonly publicKey: Uint8Array;
  /** The hosting node's libp2p peer id, in its string form. */
  readonly peerId: string;
  /** When the claim lapses (signed to the second). */
  readonly expiresAt: Date;
  /** RSA-PSS signature of the peer id and expiry, as docs/mesh-protocol.md §5.2 lays it out. */
  readonly signature: Uint8Array;
}

const PROOF_CONTEXT = new TextEncoder().encode("relaymail/delivery-proof/2\0");
const CLAIM_CONTEXT = new TextEncoder().encode("relaymail/hosting-claim/2\0");
const TAG_CONTEXT = new TextEncoder().encode("relaymail/announce-tag/2\0");
const SEAL_CONTEXT = new TextEncoder().encode("relaymail/announce-key/2\0");
/** Octets of an announcement tag. */
export const TAG_LENGTH = 16;
/** Largest public key a proof or claim may carry (RSA-4096 SPKI is 550 octets). */
export const MAX_PUBLIC_KEY_LENGTH = 800;
/** Largest signature (RSA-4096: 512 octets). */
export const MAX_SIGNATURE_LENGTH = 512;

const PSS = { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 };

/** The endpoint id of an identity key given as DER SubjectPublicKeyInfo. */
export function endpointIdOf(publicKey: Uint8Array): string {
  return "0" + createHash("sha256").update(publicKey).digest("hex");
}

/**
 * A signer from an identity private key in DER PKCS#8 (as relaynet-core's
 * `derSerializePrivateKey` writes it).
 */
export function signerFromPkcs8(pkcs8: Uint8Array): EndpointSigner {
  const key = createPrivateKey({ key: Buffer.from(pkcs8), format: "der", type: "pkcs8" });
  const publicKey = new Uint8Array(
    createPublicKey(key).export({ format: "der", type: "spki" }),
  );
  return {
    id: endpointIdOf(publicKey),
    publicKey,
    sign: (data) => new Uint8Array(sign("sha256", data, { key, ...PSS })),
  };
}

/** Signs that the parcel `key` (hex SHA-256) reached `signer`'s endpoint. */
export function makeDeliveryProof(signer: EndpointSigner, key: string): DeliveryProof {
  return { key, publicKey: signer.publicKey, signature: signer.sign(proofMessage(key)) };
}

/** Signs that the node `peerId` hosts `signer`'s endpoint until `expiresAt`. */
export function makeHostingClaim(
  signer: EndpointSigner,
  peerId: string,
  expiresAt: Date,
): HostingClaim {
  return {
    publicKey: signer.publicKey,
    peerId,
    expiresAt,
    signature: signer.sign(claimMessage(peerId, expiresAt)),
  };
}

/**
 * Checks signatures, keeping each distinct public key parsed once (at most
 * `maxKeys` of them, the oldest forgotten first).
 */
export class SignatureVerifier {
  readonly #keys = new Map<string, KeyObject | null>();

  /** Keeps at most `maxKeys` public keys parsed (default 4096). */
  constructor(private readonly maxKeys = 4096) {}

  /** Whether `proof` is `recipientId`'s signature over its key. */
  verifyProof(proof: DeliveryProof, recipientId: string): boolean {
    if (endpointIdOf(proof.publicKey) !== recipientId) return false;
    return this.#verify(proof.publicKey, proofMessage(proof.key), proof.signature);
  }

  /**
   * The endpoint id `claim` proves `peerId` hosts at `now`, or null when it does not
   * (another peer, expired, or a bad signature).
   */
  verifyClaim(claim: HostingClaim, peerId: string, now: Date): string | null {
    if (claim.peerId !== peerId || claim.expiresAt <= now) return null;
    const message = claimMessage(claim.peerId, claim.expiresAt);
    return this.#verify(claim.publicKey, message, claim.signature)
      ? endpointIdOf(claim.publicKey)
      : null;
  }

  #verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
    const id = toHex(createHash("sha256").update(publicKey).digest());
    let key = this.#keys.get(id);
    if (key === undefined) {
      try {
        key = createPublicKey({ key: Buffer.from(publicKey), format: "der", type: "spki" });
        if (key.asymmetricKeyType !== "rsa" && key.asymmetricKeyType !== "rsa-pss") key = null;
      } catch {
        key = null;
      }
      if (this.#keys.size >= this.maxKeys) this.#keys.delete(this.#keys.keys().next().value!);
      this.#keys.set(id, key);
    }
    if (!key) return false;
    try {
      return verify("sha256", message, { key, ...PSS }, signature);
    } catch {
      return false;
    }
  }
}

/** The tag under which an endpoint is announced on a connection whose announcer chose `nonce`. */
export function announcementTag(endpointId: string, nonce: Uint8Array): Uint8Array {
  return new Uint8Array(
    createHash("sha256").update(TAG_CONTEXT).update(nonce).update(endpointId).digest(),
  ).subarray(0, TAG_LENGTH);
}

/** Seals a claim for its announcement: readable only by whoever knows the endpoint id. */
export function sealClaim(claim: HostingClaim, endpointId: string, nonce: Uint8Array): Uint8Array {
  const cipher = createCipheriv("aes-256-gcm", sealKey(endpointId, nonce), new Uint8Array(12));
  const body = cipher.update(encodeClaim(claim));
  cipher.final();
  return concatBytes(new Uint8Array(body), new Uint8Array(cipher.getAuthTag()));
}

/** Opens a sealed claim with the endpoint id the reader expects; null if it does not open. */
export function openClaim(
  sealed: Uint8Array,
  endpointId: string,
  nonce: Uint8Array,
): HostingClaim | null {
  if (sealed.length < 16) return null;
  try {
    const decipher = createDecipheriv(
      "aes-256-gcm",
      sealKey(endpointId, nonce),
      new Uint8Array(12),
    );
    decipher.setAuthTag(sealed.subarray(sealed.length - 16));
    const body = decipher.update(sealed.subarray(0, sealed.length - 16));
    decipher.final();
    return decodeClaim(new Uint8Array(body));
  } catch {
    return null;
  }
}

/** Encodes a proof: key, public key and signature, the last two with uint16 lengths. */
export function encodeProof(proof: DeliveryProof): Uint8Array {
  return concatBytes(
    hexBytes(proof.key),
    lengthPrefixed(proof.publicKey),
    lengthPrefixed(proof.signature),
  );
}

/** Decodes a proof written by {@linkcode encodeProof}; throws RangeError if it is not one. */
export function decodeProof(bytes: Uint8Array): DeliveryProof {
  const reader = new FieldReader(bytes);
  const key = toHex(reader.take(32));
  const publicKey = reader.prefixed(MAX_PUBLIC_KEY_LENGTH);
  const signature = reader.prefixed(MAX_SIGNATURE_LENGTH);
  reader.end();
  return { key, publicKey, signature };
}

function encodeClaim(claim: HostingClaim): Uint8Array {
  const seconds = new Uint8Array(4);
  new DataView(seconds.buffer).setUint32(0, Math.floor(claim.expiresAt.getTime() / 1000));
  return concatBytes(
    seconds,
    lengthPrefixed(new TextEncoder().encode(claim.peerId)),
    lengthPrefixed(claim.publicKey),
    lengthPrefixed(claim.signature),
  );
}

function decodeClaim(bytes: Uint8Array): HostingClaim {
  const reader = new FieldReader(bytes);
  const seconds = new DataView(reader.take(4).slice().buffer).getUint32(0);
  const peerId = new TextDecoder("utf-8", { fatal: true }).decode(reader.prefixed(128));
  const publicKey = reader.prefixed(MAX_PUBLIC_KEY_LENGTH);
  const signature = reader.prefixed(MAX_SIGNATURE_LENGTH);
  reader.end();
  return { peerId, publicKey, signature, expiresAt: new Date(seconds * 1000) };
}

function proofMessage(key: string): Uint8Array {
  return concatBytes(PROOF_CONTEXT, hexBytes(key));
}

function claimMessage(peerId: string, expiresAt: Date): Uint8Array {
  const seconds = new Uint8Array(4);
  new DataView(seconds.buffer).setUint32(0, Math.floor(expiresAt.getTime() / 1000));
  return concatBytes(CLAIM_CONTEXT, seconds, new TextEncoder().encode(peerId));
}

function sealKey(endpointId: string, nonce: Uint8Array): Uint8Array {
  return new Uint8Array(
    createHash("sha256").update(SEAL_CONTEXT).update(nonce).update(endpointId).digest(),
  );
}

function hexBytes(hex: string): Uint8Array {
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new RangeError("A parcel key is 64 hex digits");
  return Uint8Array.from(hex.match(/../g)!, (h) => parseInt(h, 16));
}

function lengthPrefixed(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(2 + bytes.length);
  new DataView(out.buffer).setUint16(0, bytes.length);
  out.set(bytes, 2);
  return out;
}

function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

class FieldReader {
  #offset = 0;
  constructor(private readonly bytes: Uint8Array) {}

  take(n: number): Uint8Array {
    if (this.#offset + n > this.bytes.length) throw new RangeError("Truncated proof or claim");
    const out = this.bytes.subarray(this.#offset, this.#offset + n);
    this.#offset += n;
    return out;
  }

  prefixed(max: number): Uint8Array {
    const head = this.take(2);
    const length = (head[0] << 8) | head[1];
    if (length > max) throw new RangeError(`Field of ${length} octets exceeds ${max}`);
    return this.take(length).slice();
  }

  end(): void {
    if (this.#offset !== this.bytes.length) throw new RangeError("Trailing octets after a proof");
  }
}
