/**
 * Broadcast channels (docs/broadcast.md): a channel is an RSA key pair, and its
 * id is the key's id (`"0"` + hex SHA-256 of its SubjectPublicKeyInfo), exactly
 * as an endpoint's. A post is an ordinary Relaynet parcel (RAMF) addressed to the
 * channel's id and signed by an author whose certificate the channel key issued:
 * the same shape as mail, where the recipient issues the sender's PDA. So every
 * hop checks a post exactly as it checks a parcel, against the channel's own
 * certificate carried in the post, and a third party needs nothing but
 * relaynet-core to do the same (`Parcel.deserialize`, then
 * `parcel.validate([channelCertificate])`).
 *
 * - {@linkcode createChannelKey} makes a channel; {@linkcode renewChannelCertificate}
 *   issues it a new self-signed certificate (same key, same id).
 * - {@linkcode authorizeAuthor} lets another key post, until a date.
 * - {@linkcode makePost} writes a post; {@linkcode PostVerifier} checks one as a
 *   relay does; {@linkcode readPost} also returns its payload.
 *
 * The payload is opaque here; Relaymail's own is described in docs/broadcast.md.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { constants, createPublicKey, verify } from "node:crypto";
// `@internal` marks types of npm packages that our public API names: they are documented
// upstream, and `deno doc --lint` should not ask us to export them (denoland/deno#27364).
import {
  /** @internal */
  Certificate,
  generateRSAKeyPair,
  getIdFromIdentityKey,
  getRSAPublicKeyFromPrivate,
  issueDeliveryAuthorization,
  issueEndpointCertificate,
  /** @internal */
  Parcel,
} from "@relaycorp/relaynet-core";
import { pkijsCertificateOf } from "../bindings/_pkijs.ts";
import { FastParcelValidator, type ParcelFacts } from "../bindings/fast_validation.ts";
import {
  ParcelRefusedError,
  parseParcel,
  RAMF_MAX_TTL_SECONDS,
  sha256Hex,
} from "../bindings/validation.ts";

/** A post lives 30 days unless its author says otherwise. */
export const DEFAULT_POST_TTL_SECONDS = 30 * 86_400;
/** A post lives at most 180 days (RAMF's own limit). */
export const MAX_POST_TTL_SECONDS: number = RAMF_MAX_TTL_SECONDS;
/** A channel's self-signed certificate is issued for this long… */
export const CHANNEL_CERTIFICATE_DAYS = 400;
/** …and renewed when fewer days than this are left, so it outlives any post. */
export const CHANNEL_RENEWAL_DAYS = 200;
/** Posts are dated this much in the past, so that a slow clock ahead accepts them. */
const BACKDATE_MS = 5 * 60_000;
const DAY_MS = 86_400_000;

/** A channel's key and its current certificate. */
export interface ChannelKey {
  /** The channel's id: its key's id. */
  readonly id: string;
  /** Self-signed by the channel key. */
  readonly certificate: Certificate;
  /** The channel's private key: whoever holds it owns the channel. */
  readonly privateKey: CryptoKey;
}

/** Makes a new channel: a fresh RSA-2048 key and its self-signed certificate. */
export async function createChannelKey(now: Date = new Date()): Promise<ChannelKey> {
  const { privateKey, publicKey } = await generateRSAKeyPair();
  return {
    id: await getIdFromIdentityKey(publicKey),
    certificate: await renewChannelCertificate(privateKey, now),
    privateKey,
  };
}

/** Issues the channel key a new self-signed certificate, valid {@linkcode CHANNEL_CERTIFICATE_DAYS}. */
export async function renewChannelCertificate(
  privateKey: CryptoKey,
  now: Date = new Date(),
): Promise<Certificate> {
  return await issueEndpointCertificate({
    issuerPrivateKey: privateKey,
    subjectPublicKey: await getRSAPublicKeyFromPrivate(privateKey),
    validityStartDate: new Date(now.getTime() - 3_600_000),
    validityEndDate: new Date(now.getTime() + CHANNEL_CERTIFICATE_DAYS * DAY_MS),
  });
}

/** True when a channel certificate has fewer than {@linkcode CHANNEL_RENEWAL_DAYS} left at `now`. */
export function needsRenewal(certificate: Certificate, now: Date = new Date()): boolean {
  return certificate.expiryDate.getTime() - now.getTime() < CHANNEL_RENEWAL_DAYS * DAY_MS;
}

/** Options of {@linkcode authorizeAuthor}. */
export interface AuthorizeOptions {
  /** The channel's key and certificate. */
  readonly channel: Pick<ChannelKey, "certificate" | "privateKey">;
  /** The author's public key (its Relaymail identity key, say). */
  readonly authorPublicKey: CryptoKey;
  /** Until when the author may post; capped by the channel certificate's expiry. */
  readonly expiresAt: Date;
  /** Default: now. */
  readonly now?: Date;
}

/** Issues an author certificate: the channel's authorisation of another key to post. */
export async function authorizeAuthor(options: AuthorizeOptions): Promise<Certificate> {
  const now = options.now ?? new Date();
  const channelId = await options.channel.certificate.calculateSubjectId();
  if (await getIdFromIdentityKey(options.authorPublicKey) === channelId) {
    // A certificate whose subject is its issuer is a root: no chain could check it.
    throw new RangeError(
      "Cannot authorise the channel key itself: the owner posts with another key (its identity's)",
    );
  }
  const end = Math.min(
    options.expiresAt.getTime(),
    options.channel.certificate.expiryDate.getTime(),
  );
  if (end <= now.getTime()) {
    throw new RangeError("Cannot authorise an author: the expiry must be in the future");
  }
  return await issueDeliveryAuthorization({
    issuerCertificate: options.channel.certificate,
    issuerPrivateKey: options.channel.privateKey,
    subjectPublicKey: options.authorPublicKey,
    validityStartDate: new Date(now.getTime() - 3_600_000),
    validityEndDate: new Date(end),
  });
}

/** Options of {@linkcode makePost}. */
export interface PostOptions {
  /** The channel's certificate (current; a post carries it). */
  readonly channelCertificate: Certificate;
  /** The author's certificate, issued by the channel key (the owner's too). */
  readonly authorCertificate: Certificate;
  /** The author's private key. */
  readonly authorPrivateKey: CryptoKey;
  /** What the post says; opaque to the mesh. */
  readonly payload: Uint8Array;
  /** Default {@linkcode DEFAULT_POST_TTL_SECONDS}, at most {@linkcode MAX_POST_TTL_SECONDS}. */
  readonly ttlSeconds?: number;
  /** Default: now. */
  readonly now?: Date;
}

/**
 * Writes a post. Its lifetime is capped so that it never outlives the
 * certificates it carries: a post whose chain expired is refused by every hop.
 */
export async function makePost(options: PostOptions): Promise<Uint8Array> {
  const now = options.now ?? new Date();
  const ttl = options.ttlSeconds ?? DEFAULT_POST_TTL_SECONDS;
  if (!Number.isInteger(ttl) || ttl < 60 || ttl > MAX_POST_TTL_SECONDS) {
    throw new RangeError(
      `Cannot post: the lifetime must be 60 to ${MAX_POST_TTL_SECONDS} seconds (180 days), not ${ttl}`,
    );
  }
  const channelId = await options.channelCertificate.calculateSubjectId();
  const issuerId = await options.authorCertificate.getIssuerId();
  if (issuerId !== channelId) {
    throw new RangeError(
      `Cannot post: the author certificate was not issued by channel ${channelId}`,
    );
  }
  const creationDate = new Date(now.getTime() - BACKDATE_MS);
  const chainEnd = Math.min(
    options.channelCertificate.expiryDate.getTime(),
    options.authorCertificate.expiryDate.getTime(),
  );
  const room = Math.floor((chainEnd - creationDate.getTime()) / 1000);
  if (room <= BACKDATE_MS / 1000) {
    throw new RangeError("Cannot post: the author certificate has expired");
  }
  const parcel = new Parcel(
    { id: channelId },
    options.authorCertificate,
    Buffer.from(options.payload),
    {
      id: crypto.randomUUID(),
      creationDate,
      ttl: Math.min(ttl + BACKDATE_MS / 1000, room, MAX_POST_TTL_SECONDS),
      senderCaCertificateChain: [options.channelCertificate],
    },
  );
  return new Uint8Array(await parcel.serialize(options.authorPrivateKey));
}

/** What a verified post says of itself. */
export interface PostFacts {
  /** Hex SHA-256 of the post's octets: its key everywhere (store, wire, dedup). */
  readonly key: string;
  /** The channel it belongs to. */
  readonly channelId: string;
  /** The author's key id (for the owner's own posts, the owner's identity). */
  readonly authorId: string;
  /** The post's id chosen by its author. */
  readonly id: string;
  /** When its author dated it (backdated a few minutes). */
  readonly createdAt: Date;
  /** When every node deletes it. */
  readonly expiresAt: Date;
}

/** Options of {@linkcode PostVerifier.verify}. */
export interface VerifyPostOptions {
  /** Default: now. */
  readonly now?: Date;
  /** Refuse it unless it belongs to this channel. */
  readonly channelId?: string;
}

/**
 * Checks posts as every hop must (docs/broadcast.md §3): the signature, the
 * author's certificate issued by the channel key, every certificate valid now,
 * the post's own dates, at most 180 days of life. Certificates and chains are
 * cached, so a relay pays for a chain once.
 */
export class PostVerifier {
  readonly #validator: FastParcelValidator;

  /** Creates a verifier with its own caches. */
  constructor(validator: FastParcelValidator = new FastParcelValidator()) {
    this.#validator = validator;
  }

  /** The post's facts, or a {@linkcode ParcelRefusedError} naming what is wrong. */
  async verify(bytes: Uint8Array, options: VerifyPostOptions = {}): Promise<PostFacts> {
    const facts: ParcelFacts = await this.#validator.validate(bytes, { now: options.now });
    if (options.channelId !== undefined && facts.recipientId !== options.channelId) {
      throw new ParcelRefusedError(
        "unauthorized",
        `Post belongs to channel ${facts.recipientId}, not ${options.channelId}`,
      );
    }
    if (facts.expiresAt.getTime() - facts.creationDate.getTime() > MAX_POST_TTL_SECONDS * 1000) {
      throw new ParcelRefusedError("malformed", "Post lives longer than 180 days");
    }
    return {
      key: await sha256Hex(bytes),
      channelId: facts.recipientId,
      authorId: facts.senderId,
      id: facts.id,
      createdAt: facts.creationDate,
      expiresAt: facts.expiresAt,
    };
  }
}

/** A verified post and what it says. */
export interface ReadPost extends PostFacts {
  /** The payload, as its author wrote it. */
  readonly payload: Uint8Array;
  /** The channel certificate it carries (the newest its author had). */
  readonly channelCertificate: Certificate;
}

/** Options of {@linkcode readPost}. */
export interface ReadPostOptions extends VerifyPostOptions {
  /** The verifier whose caches to use (default: a new one). */
  readonly verifier?: PostVerifier;
  /** The post already parsed by relaynet-core from these octets, if the caller has it. */
  readonly parsed?: Parcel;
}

/** Verifies a post and returns its payload too (slower: relaynet-core parses it, once). */
export async function readPost(
  bytes: Uint8Array,
  options: ReadPostOptions = {},
): Promise<ReadPost> {
  const facts = await (options.verifier ?? new PostVerifier()).verify(bytes, options);
  const parcel = options.parsed ?? await parseParcel(bytes);
  let channelCertificate: Certificate | undefined;
  for (const certificate of parcel.senderCaCertificateChain) {
    // The first that names the channel, as the verifier takes it (docs/broadcast.md §3.1).
    if (await certificate.calculateSubjectId() === facts.channelId) {
      channelCertificate = certificate;
      break;
    }
  }
  if (!channelCertificate) {
    throw new ParcelRefusedError("unauthorized", "Post carries no channel certificate");
  }
  return { ...facts, payload: new Uint8Array(parcel.payloadSerialized), channelCertificate };
}

/**
 * The id of a channel certificate's key, checking that the certificate is
 * self-signed: its signature verifies with its own subject key (RSA-PSS,
 * SHA-256), which is what makes it the channel's and nobody else's.
 */
export async function channelIdOf(certificate: Certificate): Promise<string> {
  const id = await certificate.calculateSubjectId();
  if (await certificate.getIssuerId() !== id || !isSelfSigned(certificate)) {
    throw new RangeError("Not a channel certificate: it is not self-signed by its own key");
  }
  return id;
}

const OID_RSA_PSS = "1.2.840.113549.1.1.10";

function isSelfSigned(certificate: Certificate): boolean {
  const inner = pkijsCertificateOf(certificate);
  if (inner.signatureAlgorithm.algorithmId !== OID_RSA_PSS) return false;
  try {
    const key = createPublicKey({
      key: Buffer.from(inner.subjectPublicKeyInfo.toSchema().toBER()),
      format: "der",
      type: "spki",
    });
    return verify(
      "sha256",
      inner.tbsView,
      { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO },
      inner.signatureValue.valueBlock.valueHexView,
    );
  } catch {
    return false;
  }
}

/** Parses a channel certificate from DER. */
export function channelCertificateFromDer(der: Uint8Array): Certificate {
  return Certificate.deserialize(
    der.buffer.slice(der.byteOffset, der.byteOffset + der.byteLength) as ArrayBuffer,
  );
}
