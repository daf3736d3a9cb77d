/**
 * The mesh protocol's messages and their binary encoding. docs/mesh-protocol.md
 * specifies them; keep the two in step. Every message travels as one
 * length-prefixed frame (unsigned varint length, as libp2p's `lpStream` writes)
 * whose first byte is the message type.
 *
 * @module
 */
import { Uint8ArrayList } from "uint8arraylist";
import { MAX_PARCEL_LENGTH } from "../bindings/validation.ts";
import { ProtocolError, Reader, Writer } from "./wire_codec.ts";
import type { RefusalCode } from "../bindings/binding.ts";
import { TAG_LENGTH } from "./proofs.ts";

export { ProtocolError } from "./wire_codec.ts";

/** Protocol of the stream on which two nodes compare what they hold. */
export const SYNC_PROTOCOL = "/relaymail/mesh/sync/3.0.0";
/** Protocol of the streams that carry parcels, one way each. */
export const TRANSFER_PROTOCOL = "/relaymail/mesh/parcels/3.0.0";
/** Version carried in HELLO; a node refuses another major version. */
export const PROTOCOL_VERSION = 3;
/** RS-000: at most five parcels in flight awaiting acknowledgement per connection. */
export const MAX_IN_FLIGHT = 5;
/** Largest frame: a parcel and its header. */
export const MAX_FRAME_LENGTH = MAX_PARCEL_LENGTH + 64;
/** Largest sync frame (symbols, item lists). */
export const MAX_SYNC_FRAME_LENGTH = 4 * 1024 * 1024;
/** At most this many endpoint announcements in a HELLO. */
export const MAX_ENDPOINTS = 256;
/** At most this many interest tokens in a HELLO (§2.6). */
export const MAX_INTEREST_TOKENS = 256;
/** Octets of an interest token: the first 16 of a SHA-256 (mesh/interest.ts). */
export const INTEREST_TOKEN_LENGTH = 16;
/** Octets of the nonce each side puts in its HELLO (announcements are sealed under it). */
export const NONCE_LENGTH = 16;
/** Largest sealed hosting claim in an announcement. */
export const MAX_SEALED_CLAIM_LENGTH = 2048;
/** Largest encoded delivery proof. */
export const MAX_PROOF_LENGTH = 32 + 2 + 800 + 2 + 512;
/** At most this many proofs in one PROOFS message. */
export const MAX_PROOFS_PER_MESSAGE = 4096;

/** Message type bytes. */
export const Type = {
  HELLO: 0x01,
  SYMBOLS: 0x02,
  ITEMS: 0x03,
  MORE: 0x04,
  DIFF: 0x05,
  PROOFS: 0x06,
  PARCEL: 0x10,
  ACK: 0x11,
  REFUSE: 0x12,
  PROGRESS: 0x13,
  POST: 0x14,
  ERROR: 0x7f,
} as const;

/** How a receiver took a parcel, in ACK. */
export const AckStatus = {
  /** Stored to carry on. */
  STORED: 0,
  /** Handed to the recipient endpoint hosted by the receiver; carries its delivery proof. */
  DELIVERED: 1,
  /** Already held; nothing changed. */
  ALREADY_HELD: 2,
  /** Known delivered already; carries the recipient's delivery proof. */
  ALREADY_DELIVERED: 3,
} as const;

/** A hosted endpoint as a HELLO announces it: a tag and a sealed hosting claim (mesh/proofs.ts). */
export interface Announcement {
  readonly tag: Uint8Array;
  readonly sealed: Uint8Array;
}

/** A delivery proof with the tombstone's expiry, as PROOFS carries it. */
export interface ProvenTombstone {
  readonly expiresAt: Date;
  /** The proof, encoded by `encodeProof` (mesh/proofs.ts). */
  readonly proof: Uint8Array;
}

/** Interest in a channel, as HELLO carries it (§2.6). */
export interface InterestToken {
  /** {@linkcode INTEREST_TOKEN_LENGTH} octets naming the channel (mesh/interest.ts). */
  readonly token: Uint8Array;
  /** Seconds, from the HELLO's sending, for which the interest holds. */
  readonly seconds: number;
}

/** Messages of the sync stream. */
export type SyncMessage =
  | {
    type: "hello";
    version: number;
    salt: number;
    itemCount: number;
    nonce: Uint8Array;
    announcements: Announcement[];
    /** The channels the sender wants posts of, its own or its peers' (none when absent). */
    interest?: InterestToken[];
  }
  | { type: "symbols"; start: number; symbols: Uint8Array }
  | { type: "items"; items: Uint8Array }
  | { type: "more" }
  | { type: "diff"; initiatorOnly: Uint8Array; responderOnly: Uint8Array; truncated: boolean }
  | { type: "proofs"; proofs: ProvenTombstone[] }
  | { type: "error"; message: string };

/** Messages of a transfer stream. */
export type TransferMessage =
  | { type: "parcel"; key: string; copies: number; bytes: Uint8Array }
  /** A broadcast post (docs/broadcast.md), answered by ACK or REFUSE like a parcel. */
  | { type: "post"; key: string; bytes: Uint8Array }
  /** `proof` (an encoded delivery proof) comes with DELIVERED and ALREADY_DELIVERED. */
  | { type: "ack"; key: string; status: number; proof?: Uint8Array }
  | { type: "refuse"; key: string; code: RefusalCode; transient: boolean; reason: string }
  /** Sent by a receiver while a large parcel arrives, so the sender sees it is alive. */
  | { type: "progress"; received: number }
  | { type: "error"; message: string };

/** Longest text (reasons, errors) a node writes, in octets: the decoders take up to 1000. */
const MAX_TEXT_OCTETS = 500;

/** `text` cut to at most {@linkcode MAX_TEXT_OCTETS} octets of UTF-8, at a character boundary. */
function clip(text: string): string {
  const encoded = new TextEncoder().encode(text);
  if (encoded.length <= MAX_TEXT_OCTETS) return text;
  let end = MAX_TEXT_OCTETS;
  while (end > 0 && (encoded[end] & 0xc0) === 0x80) end--; // not inside a character
  return new TextDecoder().decode(encoded.subarray(0, end));
}

/** Encodes a sync-stream message. */
export function encodeSync(message: SyncMessage): Uint8Array {
  switch (message.type) {
    case "hello": {
      if (message.nonce.length !== NONCE_LENGTH) throw new RangeError("A nonce is 16 octets");
      const w = new Writer().u8(Type.HELLO).u8(message.version).u32(message.salt)
        .u32(message.itemCount).bytes(message.nonce).u16(message.announcements.length);
      for (const a of message.announcements) w.bytes(a.tag).u16(a.sealed.length).bytes(a.sealed);
      const interest = message.interest ?? [];
      if (interest.length > MAX_INTEREST_TOKENS) {
        throw new RangeError(`A HELLO carries at most ${MAX_INTEREST_TOKENS} interest tokens`);
      }
      w.u16(interest.length);
      for (const { token, seconds } of interest) {
        if (token.length !== INTEREST_TOKEN_LENGTH) throw new RangeError("A token is 16 octets");
        w.bytes(token).u32(seconds);
      }
      return w.done();
    }
    case "symbols":
      return new Writer().u8(Type.SYMBOLS).u32(message.start).bytes(message.symbols).done();
    case "items":
      return new Writer().u8(Type.ITEMS).bytes(message.items).done();
    case "more":
      return new Uint8Array([Type.MORE]);
    case "diff":
      return new Writer().u8(Type.DIFF).u8(message.truncated ? 1 : 0).block(message.initiatorOnly)
        .block(message.responderOnly).done();
    case "proofs": {
      const w = new Writer().u8(Type.PROOFS).u16(message.proofs.length);
      for (const p of message.proofs) {
        w.u32(Math.min(Math.floor(p.expiresAt.getTime() / 1000), 0xffffffff)).u16(p.proof.length)
          .bytes(p.proof);
      }
      return w.done();
    }
    case "error":
      return new Writer().u8(Type.ERROR).text(clip(message.message)).done();
  }
}

/** Decodes a sync-stream message. */
export function decodeSync(frame: Uint8Array): SyncMessage {
  const r = new Reader(frame);
  const type = r.u8();
  let message: SyncMessage;
  switch (type) {
    case Type.HELLO: {
      const version = r.u8();
      if (version !== PROTOCOL_VERSION) {
        // Another version's HELLO may be laid out differently: say so, not "malformed".
        return {
          type: "hello",
          version,
          salt: 0,
          itemCount: 0,
          nonce: new Uint8Array(16),
          announcements: [],
        };
      }
      const salt = r.u32();
      const itemCount = r.u32();
      const nonce = r.bytes(NONCE_LENGTH).slice();
      const count = r.u16();
      if (count > MAX_ENDPOINTS) {
        throw new ProtocolError(`HELLO announces ${count} endpoints, over ${MAX_ENDPOINTS}`);
      }
      const announcements = Array.from({ length: count }, () => {
        const tag = r.bytes(TAG_LENGTH).slice();
        const length = r.u16();
        if (length > MAX_SEALED_CLAIM_LENGTH) {
          throw new ProtocolError(
            `Sealed claim of ${length} octets exceeds ${MAX_SEALED_CLAIM_LENGTH}`,
          );
        }
        return { tag, sealed: r.bytes(length).slice() };
      });
      const tokens = r.u16();
      if (tokens > MAX_INTEREST_TOKENS) {
        throw new ProtocolError(
          `HELLO carries ${tokens} interest tokens, over ${MAX_INTEREST_TOKENS}`,
        );
      }
      const interest = Array.from({ length: tokens }, () => ({
        token: r.bytes(INTEREST_TOKEN_LENGTH).slice(),
        seconds: r.u32(),
      }));
      message = { type: "hello", version, salt, itemCount, nonce, announcements };
      if (interest.length > 0) message.interest = interest;
      break;
    }
    case Type.SYMBOLS:
      message = { type: "symbols", start: r.u32(), symbols: r.rest() };
      break;
    case Type.ITEMS:
      message = { type: "items", items: r.rest() };
      break;
    case Type.MORE:
      message = { type: "more" };
      break;
    case Type.DIFF: {
      const flags = r.u8();
      if (flags > 1) throw new ProtocolError(`Unknown DIFF flags 0x${flags.toString(16)}`);
      message = {
        type: "diff",
        truncated: flags === 1,
        initiatorOnly: r.block(MAX_SYNC_FRAME_LENGTH),
        responderOnly: r.block(MAX_SYNC_FRAME_LENGTH),
      };
      break;
    }
    case Type.PROOFS: {
      const count = r.u16();
      if (count > MAX_PROOFS_PER_MESSAGE) {
        throw new ProtocolError(`PROOFS carries ${count} proofs, over ${MAX_PROOFS_PER_MESSAGE}`);
      }
      const proofs = Array.from({ length: count }, () => {
        const expiresAt = new Date(r.u32() * 1000);
        const length = r.u16();
        if (length > MAX_PROOF_LENGTH) {
          throw new ProtocolError(`Proof of ${length} octets exceeds ${MAX_PROOF_LENGTH}`);
        }
        return { expiresAt, proof: r.bytes(length).slice() };
      });
      message = { type: "proofs", proofs };
      break;
    }
    case Type.ERROR:
      message = { type: "error", message: r.text(1000) };
      break;
    default:
      throw new ProtocolError(`Unknown sync message type 0x${type.toString(16)}`);
  }
  r.end();
  return message;
}

/** Encodes a transfer-stream message. */
export function encodeTransfer(message: TransferMessage): Uint8Array {
  switch (message.type) {
    case "parcel":
      return encodeParcelFrame(message.key, message.copies, message.bytes).subarray();
    case "post":
      return encodePostFrame(message.key, message.bytes).subarray();
    case "ack": {
      const proof = message.proof ?? new Uint8Array(0);
      return new Writer().u8(Type.ACK).key(message.key).u8(message.status).u16(proof.length)
        .bytes(proof).done();
    }
    case "refuse":
      return new Writer().u8(Type.REFUSE).key(message.key).text(message.code).u8(
        message.transient ? 1 : 0,
      )
        .text(clip(message.reason)).done();
    case "progress":
      return new Writer().u8(Type.PROGRESS).u32(message.received).done();
    case "error":
      return new Writer().u8(Type.ERROR).text(clip(message.message)).done();
  }
}

/**
 * A PARCEL frame as a list of two buffers, header and parcel, so that the parcel
 * (up to 8 MiB) is not copied on its way out.
 */
export function encodeParcelFrame(key: string, copies: number, bytes: Uint8Array): Uint8ArrayList {
  return new Uint8ArrayList(new Writer().u8(Type.PARCEL).key(key).u16(copies).done(), bytes);
}

/** A POST frame as a list of two buffers, header and post, so that the post is not copied. */
export function encodePostFrame(key: string, bytes: Uint8Array): Uint8ArrayList {
  return new Uint8ArrayList(new Writer().u8(Type.POST).key(key).done(), bytes);
}

/** Decodes a transfer-stream message. */
export function decodeTransfer(frame: Uint8Array): TransferMessage {
  const r = new Reader(frame);
  const type = r.u8();
  let message: TransferMessage;
  switch (type) {
    case Type.PARCEL: {
      const key = r.key();
      const copies = r.u16();
      const bytes = r.rest();
      if (bytes.length > MAX_PARCEL_LENGTH) {
        throw new ProtocolError("Parcel frame exceeds the parcel limit");
      }
      message = { type: "parcel", key, copies, bytes };
      break;
    }
    case Type.POST: {
      const key = r.key();
      const bytes = r.rest();
      if (bytes.length > MAX_PARCEL_LENGTH) throw new ProtocolError("Post frame exceeds the limit");
      message = { type: "post", key, bytes };
      break;
    }
    case Type.ACK: {
      const key = r.key();
      const status = r.u8();
      if (status > AckStatus.ALREADY_DELIVERED) {
        throw new ProtocolError(`Unknown acknowledgement status ${status}`);
      }
      const length = r.u16();
      if (length > MAX_PROOF_LENGTH) {
        throw new ProtocolError(`Proof of ${length} octets exceeds ${MAX_PROOF_LENGTH}`);
      }
      message = length > 0
        ? { type: "ack", key, status, proof: r.bytes(length).slice() }
        : { type: "ack", key, status };
      break;
    }
    case Type.REFUSE:
      message = {
        type: "refuse",
        key: r.key(),
        code: r.text(40) as RefusalCode,
        transient: r.u8() === 1,
        reason: r.text(1000),
      };
      break;
    case Type.PROGRESS:
      message = { type: "progress", received: r.u32() };
      break;
    case Type.ERROR:
      message = { type: "error", message: r.text(1000) };
      break;
    default:
      throw new ProtocolError(`Unknown transfer message type 0x${type.toString(16)}`);
  }
  r.end();
  return message;
}
