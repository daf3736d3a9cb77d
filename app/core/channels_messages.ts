/**
 * The service messages channels add (docs/broadcast.md §6–8): their DER
 * encodings and the limits checked on every one received.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import {
  bytesField,
  encodeSequence,
  Fields,
  listField,
  sequence,
  textField,
  timeField,
} from "./protocol/der.ts";
import { KEY_ID_OCTETS } from "./channels_content.ts";

/** Limits on what a channel message may carry. */
export const CHANNEL_MESSAGE_LIMITS = {
  /** Octets of a link (§5). */
  linkLength: 16_384,
  /** Octets of an author certificate. */
  certificateLength: 16_384,
  /** Content keys in one message; a channel keeps at most this many. */
  keys: 64,
  /** Octets of a grant's signature (a 4096-bit RSA key's is 512). */
  signatureLength: 1_024,
} as const;

/** A content key as messages carry it. */
export interface SentContentKey {
  /** 16 octets, hex. */
  readonly id: string;
  readonly key: Uint8Array;
  readonly createdAt: Date;
}

/** A private channel's link and keys (CHANNEL_KEYS), or an author's certificate too (CHANNEL_AUTHOR). */
export interface ChannelGrant {
  readonly link: Uint8Array;
  /** The recipient's author certificate (DER): only in CHANNEL_AUTHOR. */
  readonly certificate?: Uint8Array;
  /** A private channel's content keys, newest last. */
  readonly keys: readonly SentContentKey[];
  /**
   * The channel key's signature over {@linkcode grantSignedInput}: proof that the
   * grant comes from the channel's owner, for this recipient (§6).
   */
  readonly signature?: Uint8Array;
}

/** The label of a grant's signature (§6). */
export const GRANT_SIGNATURE_LABEL = "relaymail/channel-grant/1";

/** What a grant's signature covers: the recipient's id, 0, the grant encoded without its signature. */
export function grantSignedInput(grant: ChannelGrant, recipientId: string): Uint8Array {
  const recipient = new TextEncoder().encode(recipientId);
  const body = encodeChannelGrant({ ...grant, signature: undefined });
  const input = new Uint8Array(recipient.length + 1 + body.length);
  input.set(recipient);
  input.set(body, recipient.length + 1);
  return input;
}

/** Encodes a {@linkcode ChannelGrant}. */
export function encodeChannelGrant(grant: ChannelGrant): Uint8Array {
  return encodeSequence([
    bytesField(0, grant.link),
    listField(
      1,
      grant.keys.map((k) =>
        sequence([
          bytesField(0, Uint8Array.from(Buffer.from(k.id, "hex"))),
          bytesField(1, k.key),
          timeField(2, k.createdAt),
        ])
      ),
    ),
    ...grant.certificate ? [bytesField(2, grant.certificate)] : [],
    ...grant.signature ? [bytesField(3, grant.signature)] : [],
  ]);
}

/** Decodes a {@linkcode ChannelGrant}, enforcing {@linkcode CHANNEL_MESSAGE_LIMITS}. */
export function decodeChannelGrant(bytes: Uint8Array): ChannelGrant {
  const fields = Fields.decode("ChannelGrant", bytes);
  const keys = fields.sequenceList(1, "keys", CHANNEL_MESSAGE_LIMITS.keys).map((k) => {
    const id = k.bytes(0, "keyId", KEY_ID_OCTETS);
    const key = k.bytes(1, "key", 32);
    if (id.length !== KEY_ID_OCTETS || key.length !== 32) {
      throw new RangeError("A content key has a 16-octet id and 32 octets");
    }
    return { id: Buffer.from(id).toString("hex"), key, createdAt: k.time(2, "createdAt") };
  });
  return {
    link: fields.bytes(0, "link", CHANNEL_MESSAGE_LIMITS.linkLength),
    keys,
    certificate: fields.has(2)
      ? fields.bytes(2, "certificate", CHANNEL_MESSAGE_LIMITS.certificateLength)
      : undefined,
    signature: fields.has(3)
      ? fields.bytes(3, "signature", CHANNEL_MESSAGE_LIMITS.signatureLength)
      : undefined,
  };
}

/** A follow notice: the sender follows channel `channelId`, or no longer does. */
export interface FollowNotice {
  readonly channelId: string;
  readonly following: boolean;
}

/** Encodes a {@linkcode FollowNotice}. */
export function encodeFollowNotice(notice: FollowNotice): Uint8Array {
  return encodeSequence([
    textField(0, notice.channelId),
    textField(1, notice.following ? "follow" : "unfollow"),
  ]);
}

/** Decodes a {@linkcode FollowNotice}. */
export function decodeFollowNotice(bytes: Uint8Array): FollowNotice {
  const fields = Fields.decode("FollowNotice", bytes);
  const channelId = fields.text(0, "channelId", 130);
  const what = fields.text(1, "following", 10);
  if (what !== "follow" && what !== "unfollow") {
    throw new RangeError(`A follow notice says "follow" or "unfollow", not "${what}"`);
  }
  return { channelId, following: what === "follow" };
}
