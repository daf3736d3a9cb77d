/**
 * Invitations: the one line of text that lets someone pair with you, with no server.
 *
 * An invitation is a bearer token good for one pairing request. It carries the
 * inviter's connection parameters whose PDA was issued not to a person but to a
 * throwaway *invitation key* K, and K's private key. Whoever holds the line can
 * send the inviter exactly one parcel, signed with K; the inviter accepts the first
 * such parcel only. See docs/protocol.md.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import {
  type Certificate,
  type CertificationPath,
  derDeserializeRSAPrivateKey,
  derSerializePrivateKey,
  getIdFromIdentityKey,
  getRSAPublicKeyFromPrivate,
  PrivateEndpointConnParams,
} from "@relaycorp/relaynet-core";
import { toArrayBuffer, verifyPathIssuedBy } from "../../../bindings/validation.ts";
import { pkijsCertificateOf } from "../../../bindings/_pkijs.ts";
import { bytesField, encodeSequence, Fields, MalformedStructureError, textField } from "./der.ts";
import {
  COMPACT_PREFIX,
  CompactInvitationError,
  decodeCompact,
  encodeCompact,
  invitationKeyFromSeed,
  withSeed,
} from "./invitation_compact.ts";

export { COMPACT_PREFIX, invitationKeyFromSeed, withSeed };

/** Every version 1 invitation line starts with this; the digit is the format version. */
export const INVITATION_PREFIX = "relaymail-invite:1:";

/** The invitation text formats: 2 (compact, the default) and 1 (what older Relaymail reads). */
export type InvitationFormat = 1 | 2;

/** Raised when an invitation cannot be used; the message says why. */
export class InvalidInvitationError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "InvalidInvitationError";
  }
}

/** What an invitation holds. */
export interface Invitation {
  /** The inviter's parameters; their PDA is issued to the invitation key. */
  readonly connectionParams: PrivateEndpointConnParams;
  /** Private half of the invitation key K. */
  readonly invitationKey: CryptoKey;
  /** What the inviter calls itself: a hint shown beside its key fingerprint. */
  readonly nameHint: string;
  /**
   * The 32 bytes K was generated from ({@linkcode invitationKeyFromSeed}), if it
   * was: a version 2 text then carries them instead of K (352 bytes less).
   */
  readonly invitationKeySeed?: Uint8Array;
}

/** An invitation read from text, with what can be derived from it. */
export interface DecodedInvitation extends Invitation {
  /** Endpoint id of the inviter. */
  readonly inviterId: string;
  /** Id of the invitation key K: the sender id of the pairing request. */
  readonly invitationId: string;
  /** When the invitation (its PDA) expires. */
  readonly expiresAt: Date;
}

/**
 * Encodes an invitation as one line of text: version 2 (about 1,450 characters with
 * a seeded K, one QR code) unless `format` is 1 or the invitation has a shape
 * version 2 does not describe (a gateway-issued certificate path), then version 1
 * (about 5,300 characters).
 */
export async function encodeInvitation(
  invitation: Invitation,
  format: InvitationFormat = 2,
): Promise<string> {
  const compact = format === 2 ? await encodeCompact(invitation) : null;
  return compact ?? encodeVersion1(invitation);
}

async function encodeVersion1(invitation: Invitation): Promise<string> {
  const der = encodeSequence([
    bytesField(0, new Uint8Array(await invitation.connectionParams.serialize())),
    bytesField(1, new Uint8Array(await derSerializePrivateKey(invitation.invitationKey))),
    textField(2, invitation.nameHint),
  ]);
  return INVITATION_PREFIX + Buffer.from(der).toString("base64url");
}

/**
 * Reads an invitation line, checking that it is well-formed, that its PDA really was
 * issued by the inviter to its invitation key, and that it has not expired at `now`.
 */
export async function decodeInvitation(text: string, now: Date): Promise<DecodedInvitation> {
  const compact = joinInvitationParts(text).replace(/\s+/g, "");
  if (compact.slice(0, COMPACT_PREFIX.length).toLowerCase() === COMPACT_PREFIX) {
    let invitation: Invitation;
    try {
      invitation = await decodeCompact(compact.slice(COMPACT_PREFIX.length));
    } catch (error) {
      if (!(error instanceof CompactInvitationError)) throw error;
      throw new InvalidInvitationError(`Invitation is damaged or truncated: ${error.message}`, {
        cause: error,
      });
    }
    return await checkInvitation(invitation, now);
  }
  if (compact.slice(0, INVITATION_PREFIX.length).toLowerCase() !== INVITATION_PREFIX) {
    const other = /^relaymail-invite:(\d+):/i.exec(compact);
    throw new InvalidInvitationError(
      other
        ? `Cannot read invitation format version ${other[1]}: this Relaymail reads versions 1 and 2`
        : `Not a Relaymail invitation: it should start with "relaymail-invite:"`,
    );
  }
  const encoded = compact.slice(INVITATION_PREFIX.length);
  if (!/^[A-Za-z0-9_-]+$/.test(encoded)) {
    throw new InvalidInvitationError(
      "Invitation is damaged: it contains characters outside base64url",
    );
  }
  let invitation: Invitation;
  try {
    const fields = Fields.decode("Invitation", new Uint8Array(Buffer.from(encoded, "base64url")));
    invitation = {
      connectionParams: await PrivateEndpointConnParams.deserialize(
        toArrayBuffer(fields.bytes(0, "connectionParams", 16_384)),
      ),
      invitationKey: await derDeserializeRSAPrivateKey(
        Buffer.from(fields.bytes(1, "invitationKey", 8192)),
      ),
      nameHint: fields.text(2, "nameHint", 200),
    };
  } catch (error) {
    const detail = error instanceof MalformedStructureError ? error.message : "it does not decode";
    throw new InvalidInvitationError(`Invitation is damaged or truncated: ${detail}`, {
      cause: error,
    });
  }
  return await checkInvitation(invitation, now);
}

/**
 * Checks that the PDA of an invitation read from text really was issued by the
 * inviter to its invitation key, that every certificate in it was signed by its
 * issuer, and that it has not expired at `now`.
 */
async function checkInvitation(invitation: Invitation, now: Date): Promise<DecodedInvitation> {
  const params = invitation.connectionParams;
  const inviterId = await getIdFromIdentityKey(params.identityKey);
  const invitationId = await getIdFromIdentityKey(
    await getRSAPublicKeyFromPrivate(invitation.invitationKey),
  );
  const pda = params.deliveryAuth.leafCertificate;
  const subjectId = await pda.calculateSubjectId().catch((error) => {
    throw new InvalidInvitationError(
      "Invitation is damaged: its authorisation's key is unreadable",
      {
        cause: error,
      },
    );
  });
  if (subjectId !== invitationId) {
    throw new InvalidInvitationError("Invitation is forged: its authorisation is for another key");
  }
  await checkSignatures(params.deliveryAuth, inviterId);
  if (pda.expiryDate <= now) {
    throw new InvalidInvitationError(`Invitation expired on ${pda.expiryDate.toISOString()}`);
  }
  try {
    // Checked at a time the PDA is valid, so clock drift between the two people
    // never fails a fresh invitation.
    await verifyPathIssuedBy(
      params.deliveryAuth,
      inviterId,
      new Date(Math.max(now.getTime(), pda.startDate.getTime())),
    );
  } catch (error) {
    throw new InvalidInvitationError(
      `Invitation is forged: its authorisation was not issued by its inviter (${
        error instanceof Error ? error.message : error
      })`,
      { cause: error },
    );
  }
  return { ...invitation, inviterId, invitationId, expiresAt: pda.expiryDate };
}

/**
 * Checks the signature of every certificate in `path` with its issuer's key, the
 * issuer found in the path by its id (a self-issued certificate is its own): the
 * chain check takes the inviter's own certificate on trust, and a version 2 text
 * rebuilds the certificates from fields only their signatures cover (§2.7).
 */
async function checkSignatures(path: CertificationPath, inviterId: string): Promise<void> {
  const authorities = path.certificateAuthorities;
  const ids = await Promise.all(authorities.map((c) => c.calculateSubjectId().catch(() => "")));
  const roles = ids.map((id) =>
    id === inviterId ? "the inviter's certificate" : "the gateway's certificate"
  );
  const checks = [
    [path.leafCertificate, "its authorisation"] as const,
    ...authorities.map((c, i) => [c, roles[i]] as const),
  ];
  for (const [certificate, role] of checks) {
    let issuer: Certificate | undefined;
    let verified = false;
    try {
      issuer = authorities[ids.indexOf(certificate.getIssuerId() ?? "")];
      verified = issuer !== undefined &&
        await pkijsCertificateOf(certificate).verify(pkijsCertificateOf(issuer));
    } catch {
      // An unreadable issuer id or key: as unverified.
    }
    if (verified) continue;
    throw new InvalidInvitationError(
      issuer === undefined
        ? `Invitation is damaged or forged: the issuer of ${role} is not in it`
        : `Invitation is damaged or forged: the signature of ${role} does not verify with its issuer's key`,
    );
  }
}

/** Most parts an invitation may be split into (it is about 5 KB: a few parts of 1000). */
const MAX_INVITATION_PARTS = 64;

/** Prefix of one part of an invitation split for QR codes: `relaymail-invite-part:K/N:`. */
export const INVITATION_PART_PREFIX = "relaymail-invite-part:";

/**
 * Splits an invitation's text into parts of at most `maxChars` characters of
 * payload, each `relaymail-invite-part:K/N:<chunk>`, small enough for a QR code a
 * phone camera reads at a glance. A text that fits is returned whole.
 */
export function splitInvitation(text: string, maxChars = 1000): string[] {
  if (text.length <= maxChars) return [text];
  const count = Math.ceil(text.length / maxChars);
  const size = Math.ceil(text.length / count);
  return Array.from(
    { length: count },
    (_, i) => `${INVITATION_PART_PREFIX}${i + 1}/${count}:${text.slice(i * size, (i + 1) * size)}`,
  );
}

/**
 * Puts an invitation split by {@linkcode splitInvitation} back together (parts in
 * any order, separated by whitespace); other text is returned unchanged.
 */
export function joinInvitationParts(text: string): string {
  if (!text.toLowerCase().includes(INVITATION_PART_PREFIX)) return text;
  const parts = new Map<number, string>();
  let total = 0;
  // The prefix in any letter case, as a QR code reader in alphanumeric mode may give it.
  const pattern = new RegExp(`${INVITATION_PART_PREFIX}(\\d+)/(\\d+):(\\S+)`, "gi");
  for (const match of text.matchAll(pattern)) {
    const [index, count] = [Number(match[1]), Number(match[2])];
    if (count < 1 || count > MAX_INVITATION_PARTS || index < 1 || index > count) {
      throw new InvalidInvitationError(
        `Invitation part ${match[1]}/${
          match[2]
        } is not one: an invitation has 1 to ${MAX_INVITATION_PARTS} parts`,
      );
    }
    if (total !== 0 && count !== total) {
      throw new InvalidInvitationError("The invitation parts come from different invitations");
    }
    total = count;
    parts.set(index, match[3]);
  }
  const missing = Array.from({ length: total }, (_, i) => i + 1).filter((i) => !parts.has(i));
  if (total === 0 || missing.length > 0) {
    throw new InvalidInvitationError(
      `The invitation is missing part${missing.length === 1 ? "" : "s"} ${
        missing.join(", ")
      } of ${total}`,
    );
  }
  return Array.from({ length: total }, (_, i) => parts.get(i + 1)).join("");
}

/** One segment of a QR code: its text and the QR mode that holds it. */
export type QrSegment =
  | { readonly data: Uint8Array; readonly mode: "byte" }
  | { readonly data: string; readonly mode: "alphanumeric" };

/**
 * The QR codes that show an invitation line, each as its segments: a version 2 line
 * is one code, its prefix in byte mode and its base32 (upper case) in alphanumeric
 * mode, 5.5 bits a character; a version 1 line is one code per part
 * ({@linkcode splitInvitation}), in byte mode.
 */
export function invitationQrCodes(text: string): QrSegment[][] {
  if (text.startsWith(COMPACT_PREFIX)) {
    return [[
      { data: new TextEncoder().encode(COMPACT_PREFIX), mode: "byte" },
      { data: text.slice(COMPACT_PREFIX.length).toUpperCase(), mode: "alphanumeric" },
    ]];
  }
  return splitInvitation(text).map((part) => [
    { data: new TextEncoder().encode(part), mode: "byte" },
  ]);
}
