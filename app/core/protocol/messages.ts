/**
 * Relaymail's service messages: their type strings and content encodings. Each is
 * the plaintext of one parcel (relaynet-core `ServiceMessage`). docs/protocol.md
 * specifies them for other implementations; keep the two in step.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { constants, createPublicKey, verify } from "node:crypto";
import { derSerializePublicKey, type PrivateEndpointConnParams } from "@relaycorp/relaynet-core";
import { MAX_PARCEL_LENGTH, ParcelRefusedError } from "../../../bindings/validation.ts";
import {
  bytesField,
  encodeSequence,
  Fields,
  listField,
  MalformedStructureError,
  sequence,
  textField,
  timeField,
} from "./der.ts";

/** Service message types Relaymail sends and understands. */
export const MessageType = {
  /** Sent with an invitation key: "here is how to reach me" (first use of an invitation). */
  PAIRING_REQUEST: "application/vnd.relaymail.pairing-request",
  /** The inviter's answer: its own connection parameters. */
  PAIRING_ACCEPT: "application/vnd.relaymail.pairing-accept",
  /** One email-like message. */
  MAIL: "application/vnd.relaymail.mail",
  /** End-to-end delivery receipt for mail. */
  RECEIPT: "application/vnd.relaymail.receipt",
  /** A renewed PDA, as Awala apps exchange them (content: DER CertificationPath). */
  PDA_PATH: "application/vnd+relaycorp.awala.pda-path",
  /**
   * New connection parameters for an existing contact, sent when the sender's
   * gateway changed (content: DER `PrivateEndpointConnParams`).
   */
  CONNECTION_PARAMS: "application/vnd.relaymail.connection-params",
  /**
   * A channel's author certificate for the recipient, with the channel's link and,
   * for a private channel, its content keys (docs/broadcast.md §7).
   */
  CHANNEL_AUTHOR: "application/vnd.relaymail.channel-author",
  /** A private channel's link and content keys, for a subscriber (docs/broadcast.md §6). */
  CHANNEL_KEYS: "application/vnd.relaymail.channel-keys",
  /** "I follow (or no longer follow) your channel": the owner's fan-out list (§8). */
  CHANNEL_FOLLOW: "application/vnd.relaymail.channel-follow",
  /** A post, carried as an ordinary parcel by the owner's fan-out (content: the post, §8). */
  CHANNEL_POST: "application/vnd.relaymail.channel-post-parcel",
} as const;

/** Limits checked on every incoming mail. */
export const MAIL_LIMITS = {
  idLength: 64,
  subjectLength: 998,
  recipients: 100,
  attachments: 100,
  fileNameLength: 255,
  mediaTypeLength: 255,
} as const;

/**
 * Most octets an encoded mail (subject, body, attachments) may take: 8 264 332;
 * and an encoded `Pairing` with the first mail in it (docs/protocol.md §3.4).
 * A parcel adds a fixed 4 KiB or so (envelope, signature, certificate chain) plus
 * about 0.45% (CMS splits encrypted content into 1 KiB pieces, each with its own
 * header); 16 KiB and 0.5% are set aside so the parcel stays within
 * {@linkcode MAX_PARCEL_LENGTH}.
 */
export const MAX_MAIL_LENGTH = Math.floor((MAX_PARCEL_LENGTH - 16 * 1024) / 1.005);

/** Content of a pairing request or a pairing accept. */
export interface PairingContent {
  /** DER `PrivateEndpointConnParams` of the sender, for the recipient. */
  readonly connectionParams: Uint8Array;
  /** What the sender calls itself: a hint, never trusted as an identity. */
  readonly nameHint: string;
  /**
   * PDAs the sender issued the recipient ahead, to follow the one in the
   * parameters (DER `CertificationPath`s, docs/protocol.md §6). Senders before
   * this field leave it out: it then reads as undefined, which tells that the
   * sender does not take PDAs dated ahead either.
   */
  readonly authorizations?: readonly Uint8Array[];
  /**
   * The first mail, riding in a pairing request (each a DER {@linkcode MailContent},
   * in the order written; docs/protocol.md §3.4). Written only when there is some;
   * absent, it reads as empty. A pairing accept carries none.
   */
  readonly mail?: readonly Uint8Array[];
  /**
   * In a pairing request, the requester's proof that it holds the identity key in
   * `connectionParams`: an RSA-PSS signature of {@linkcode pairingProofInput}
   * (docs/protocol.md §3.2). Absent from requests of older acceptors, and from
   * every accept.
   */
  readonly proof?: Uint8Array;
}

/** Longest `proof` accepted: an RSA-4096 signature. */
export const MAX_PROOF_LENGTH = 512;

/** Fixed label opening what a pairing request's `proof` signs (docs/protocol.md §3.2). */
export const PAIRING_PROOF_LABEL = "relaymail pairing request proof v1";

/** What a pairing request's proof binds. */
export interface PairingProofSubject {
  /** The inviter's endpoint id. */
  readonly inviterId: string;
  /** Id of the invitation key K (the endpoint id of its public key). */
  readonly invitationId: string;
  /** Id of the session key the requester offers (B₀). */
  readonly sessionKeyId: Uint8Array;
  /** B₀'s public key, DER SubjectPublicKeyInfo. */
  readonly sessionPublicKey: Uint8Array;
  /** The request's `Pairing`, without `proof`. */
  readonly pairing: PairingContent;
}

/**
 * The octets a pairing request's `proof` signs: a DER `PairingProofInput`
 * binding the label, the inviter, the invitation, the offered session key and the
 * rest of the `Pairing` (docs/protocol.md §3.2).
 */
export function pairingProofInput(subject: PairingProofSubject): Uint8Array {
  return encodeSequence([
    textField(0, PAIRING_PROOF_LABEL),
    textField(1, subject.inviterId),
    textField(2, subject.invitationId),
    bytesField(3, subject.sessionKeyId),
    bytesField(4, subject.sessionPublicKey),
    bytesField(5, encodePairing({ ...subject.pairing, proof: undefined })),
  ]);
}

/** Limits of the `authorizations` and `mail` of a {@linkcode PairingContent}. */
export const PAIRING_LIMITS = {
  authorizations: 32,
  authorizationLength: 16_384,
  mail: 100,
} as const;

/** Encodes {@linkcode PairingContent}. */
export function encodePairing(content: PairingContent): Uint8Array {
  const mail = content.mail ?? [];
  return encodeSequence([
    bytesField(0, content.connectionParams),
    textField(1, content.nameHint),
    listField(2, (content.authorizations ?? []).map((path) => bytesField(0, path))),
    // Left out when empty: a receiver older than the field then sees the request
    // it always saw (docs/protocol.md §3.4).
    ...mail.length > 0 ? [listField(3, mail.map((der) => bytesField(0, der)))] : [],
    // Also left out when absent: an older receiver ignores it (§1.1).
    ...content.proof === undefined ? [] : [bytesField(4, content.proof)],
  ]);
}

/** Decodes {@linkcode PairingContent}; the mail it carries is left encoded. */
export function decodePairing(bytes: Uint8Array): PairingContent {
  const fields = Fields.decode("Pairing", bytes);
  return {
    connectionParams: fields.bytes(0, "connectionParams", 16_384),
    nameHint: fields.text(1, "nameHint", 200),
    authorizations: fields.has(2)
      ? fields.list(2, "authorizations", PAIRING_LIMITS.authorizations).map((item, index) =>
        new Fields("Pairing", [item]).bytes(
          item.idBlock.tagNumber,
          `authorizations[${index}]`,
          PAIRING_LIMITS.authorizationLength,
        )
      )
      : undefined,
    mail: fields.has(3)
      ? fields.list(3, "mail", PAIRING_LIMITS.mail).map((item, index) =>
        new Fields("Pairing", [item]).bytes(item.idBlock.tagNumber, `mail[${index}]`)
      )
      : [],
    proof: fields.has(4) ? fields.bytes(4, "proof", MAX_PROOF_LENGTH) : undefined,
  };
}

/**
 * Checks a pairing request's `proof` (docs/protocol.md §3.2): the signature, by
 * the identity key in `params`, of what binds the request to this inviter, this
 * invitation and the session key offered. Refuses the parcel `unauthorized` when it
 * does not verify.
 */
export async function checkPairingProof(
  content: PairingContent,
  params: PrivateEndpointConnParams,
  binding: { readonly inviterId: string; readonly invitationId: string },
): Promise<void> {
  const input = pairingProofInput({
    ...binding,
    sessionKeyId: new Uint8Array(params.sessionKey.keyId),
    sessionPublicKey: new Uint8Array(await derSerializePublicKey(params.sessionKey.publicKey)),
    pairing: content,
  });
  let valid = false;
  try {
    const key = createPublicKey({
      key: Buffer.from(await derSerializePublicKey(params.identityKey)),
      format: "der",
      type: "spki",
    });
    valid = verify("sha256", input, {
      key,
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: 32,
    }, content.proof ?? new Uint8Array(0));
  } catch {
    valid = false;
  }
  if (!valid) {
    throw new ParcelRefusedError(
      "unauthorized",
      "Pairing request's proof does not verify with the identity key in its connection parameters",
    );
  }
}

/** A file attached to a mail. */
export interface Attachment {
  readonly fileName: string;
  readonly mediaType: string;
  readonly content: Uint8Array;
}

/** Content of a mail message. */
export interface MailContent {
  /** Chosen by the sender (a UUID); the same in every recipient's copy. */
  readonly messageId: string;
  /** Id of the first message of the conversation (its own id for a new one). */
  readonly threadId: string;
  /** Id of the message this one answers, or "" when it starts a conversation. */
  readonly inReplyTo: string;
  readonly sentAt: Date;
  readonly subject: string;
  readonly body: string;
  /** Endpoint ids of every recipient, so each copy shows who else got it. */
  readonly recipients: readonly string[];
  readonly attachments: readonly Attachment[];
}

/** Encodes {@linkcode MailContent}. */
export function encodeMail(mail: MailContent): Uint8Array {
  return encodeSequence([
    textField(0, mail.messageId),
    textField(1, mail.threadId),
    textField(2, mail.inReplyTo),
    timeField(3, mail.sentAt),
    textField(4, mail.subject),
    textField(5, mail.body),
    listField(6, mail.recipients.map((id) => textField(0, id))),
    listField(
      7,
      mail.attachments.map((a) =>
        sequence([textField(0, a.fileName), textField(1, a.mediaType), bytesField(2, a.content)])
      ),
    ),
  ]);
}

/** Decodes {@linkcode MailContent}, enforcing {@linkcode MAIL_LIMITS}. */
export function decodeMail(bytes: Uint8Array): MailContent {
  const fields = Fields.decode("Mail", bytes);
  const messageId = fields.text(0, "messageId", MAIL_LIMITS.idLength);
  if (messageId.length === 0) throw new MalformedStructureError("Mail field messageId is empty");
  return {
    messageId,
    threadId: fields.text(1, "threadId", MAIL_LIMITS.idLength) || messageId,
    inReplyTo: fields.text(2, "inReplyTo", MAIL_LIMITS.idLength),
    sentAt: fields.time(3, "sentAt"),
    subject: fields.text(4, "subject", MAIL_LIMITS.subjectLength * 4),
    body: fields.text(5, "body"),
    recipients: fields.textList(6, "recipients", MAIL_LIMITS.recipients, 130),
    attachments: fields.sequenceList(7, "attachments", MAIL_LIMITS.attachments).map((a) => ({
      fileName: a.text(0, "fileName", MAIL_LIMITS.fileNameLength * 4),
      mediaType: a.text(1, "mediaType", MAIL_LIMITS.mediaTypeLength),
      content: a.bytes(2, "content"),
    })),
  };
}

/** Content of a delivery receipt. */
export interface ReceiptContent {
  /** Ids of the mail messages that reached the recipient's inbox. */
  readonly messageIds: readonly string[];
  readonly receivedAt: Date;
}

/** Encodes {@linkcode ReceiptContent}. */
export function encodeReceipt(receipt: ReceiptContent): Uint8Array {
  return encodeSequence([
    listField(0, receipt.messageIds.map((id) => textField(0, id))),
    timeField(1, receipt.receivedAt),
  ]);
}

/** Decodes {@linkcode ReceiptContent}. */
export function decodeReceipt(bytes: Uint8Array): ReceiptContent {
  const fields = Fields.decode("Receipt", bytes);
  return {
    messageIds: fields.textList(0, "messageIds", 10_000, MAIL_LIMITS.idLength),
    receivedAt: fields.time(1, "receivedAt"),
  };
}
