/**
 * The receiving path every incoming parcel takes, whichever binding carried it.
 *
 * Order (RS-001): size, syntax and signature; addressed to this endpoint; not a
 * replay; sender is one of our invitation keys or contacts and not blocked;
 * timing (expiry, creation date within the drift tolerance) and authorisation (a
 * PDA this endpoint issued, checked at the injected clock); decryption; content.
 * Only then does one SQLite transaction record the parcel id (replay protection
 * until expiry) together with everything the parcel changes. A refused parcel
 * changes nothing but the refusal log.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import {
  derSerializePublicKey,
  type Parcel,
  ServiceMessage,
  SessionEnvelopedData,
  UnknownKeyError,
} from "@relaycorp/relaynet-core";
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import type { ParcelOrigin, ReceiveOutcome } from "../../bindings/binding.ts";
import { checkParcel, ParcelRefusedError, parseParcel } from "../../bindings/validation.ts";
import type { Channels } from "../core/channels.ts";
import { CHANNEL_MESSAGE_TYPES } from "../core/channels_incoming.ts";
import type { Contacts } from "../core/contacts.ts";
import type { NodeContext } from "../core/context.ts";
import type { IdentityManager } from "../core/identity.ts";
import type { Jobs } from "../core/jobs.ts";
import type { Mailbox } from "../core/mailbox.ts";
import type { Effect, Incoming } from "../core/types.ts";
import { type Pairing, refusalForInvitation } from "../core/pairing.ts";
import { MessageType } from "../core/protocol/messages.ts";
import type { RefusalLog } from "../core/refusals.ts";

/** Raised inside the transaction when a concurrent delivery of the same parcel won. */
class AlreadyReceived extends Error {}

interface Facts {
  parcelId?: string;
  senderId?: string;
  recipientId?: string;
}

/** Takes incoming parcels for this endpoint. */
export class Receiver {
  constructor(
    private readonly ctx: NodeContext,
    private readonly identity: IdentityManager,
    private readonly contacts: Contacts,
    private readonly pairing: Pairing,
    private readonly mailbox: Mailbox,
    private readonly jobs: Jobs,
    private readonly refusals: RefusalLog,
    private readonly channels?: Channels,
  ) {}

  /**
   * Forgets the ids of parcels expired by `now`: a replay of one would be
   * refused as expired anyway.
   */
  forgetExpired(now: number): void {
    this.ctx.db.run("DELETE FROM received_parcels WHERE expires_at <= ?", now);
  }

  /**
   * Validates, decrypts and stores one parcel. Resolves once it is committed (or
   * known to be a duplicate, skipped or refused); rejects only if storage failed,
   * in which case the previous hop must keep the parcel.
   */
  async receive(bytes: Uint8Array, origin: ParcelOrigin): Promise<ReceiveOutcome> {
    const facts: Facts = {};
    try {
      return await this.#receive(bytes, origin, facts);
    } catch (error) {
      if (!(error instanceof ParcelRefusedError)) throw error;
      this.refusals.record({
        via: origin.binding,
        hop: origin.hop,
        code: error.code,
        reason: error.message,
        size: bytes.byteLength,
        ...facts,
      });
      return error.code === "duplicate"
        ? { status: "duplicate" }
        : { status: "refused", code: error.code, reason: error.message };
    }
  }

  async #receive(bytes: Uint8Array, origin: ParcelOrigin, facts: Facts): Promise<ReceiveOutcome> {
    const parcel = await parseParcel(bytes);
    const ourId = this.identity.id;
    facts.parcelId = parcel.id;
    facts.recipientId = parcel.recipient.id;
    facts.senderId = await parcel.senderCertificate.calculateSubjectId();
    const senderId = facts.senderId;
    if (parcel.recipient.id !== ourId) {
      return {
        status: "skipped",
        reason: `Addressed to ${parcel.recipient.id}, not to this endpoint`,
      };
    }
    if (this.#alreadyReceived(senderId, parcel.id)) this.#duplicate(senderId, parcel);

    const invitation = this.pairing.invitationFor(senderId);
    if (
      invitation &&
      (invitation.state !== "pending" || invitation.expires_at <= this.ctx.now().getTime())
    ) {
      throw refusalForInvitation(invitation, this.ctx.now());
    }
    const contact = this.contacts.get(senderId);
    if (contact?.state === "blocked") {
      throw new ParcelRefusedError("blocked", `Sender ${contact.name} is blocked`);
    }

    const validated = await checkParcel(parcel, {
      now: this.ctx.now(),
      clockDriftToleranceMs: this.ctx.tunables.clockDriftToleranceMs,
      trustedCertificates: this.identity.certificates(),
    });
    if (!invitation && !contact) {
      throw new ParcelRefusedError(
        "unauthorized",
        `Sender ${senderId} holds an authorisation from this endpoint but is not one of its contacts`,
      );
    }

    const decrypted = await this.#decrypt(parcel, ourId, senderId);
    const incoming: Incoming = { parcel: validated, message: decrypted.message, origin };
    const effect = invitation
      ? await this.pairing.prepareRequest(incoming, invitation)
      : await this.#prepare(incoming, contact!);
    const senderKeyDer = effect.savesSenderSessionKey
      ? new Uint8Array(await derSerializePublicKey(decrypted.senderKey.publicKey))
      : null;

    try {
      this.ctx.db.transaction(() => {
        const inserted = this.ctx.db.run(
          `INSERT OR IGNORE INTO received_parcels (sender_id, parcel_id, expires_at, received_at, message_id)
           VALUES (?, ?, ?, ?, ?)`,
          senderId,
          parcel.id,
          validated.expiresAt.getTime(),
          this.ctx.now().getTime(),
          effect.messageId ?? null,
        );
        if (inserted === 0) throw new AlreadyReceived();
        effect.apply();
        if (senderKeyDer) {
          this.ctx.keys.publicKeyStore.saveSessionKeyDer(
            senderId,
            new Uint8Array(decrypted.senderKey.keyId),
            senderKeyDer,
            parcel.creationDate,
          );
          this.ctx.keys.privateKeyStore.markSuperseded(ourId, senderId, decrypted.usedKeyId);
        }
        this.contacts.touch(senderId);
      });
    } catch (error) {
      if (error instanceof AlreadyReceived) this.#duplicate(senderId, parcel);
      throw error;
    }
    await effect.after?.();
    return { status: "accepted" };
  }

  #prepare(
    incoming: Incoming,
    contact: NonNullable<ReturnType<Contacts["get"]>>,
  ): Promise<Effect> | Effect {
    if (this.channels && CHANNEL_MESSAGE_TYPES.includes(incoming.message.type)) {
      return this.channels.prepareMessage(incoming, contact);
    }
    switch (incoming.message.type) {
      case MessageType.MAIL:
        return this.mailbox.prepareIncoming(incoming, contact);
      case MessageType.RECEIPT:
        return this.mailbox.prepareReceipt(incoming, contact);
      case MessageType.PAIRING_ACCEPT:
        return this.pairing.prepareAccept(incoming, contact);
      case MessageType.PDA_PATH:
        return this.pairing.preparePdaPath(incoming, contact);
      case MessageType.CONNECTION_PARAMS:
        return this.pairing.prepareConnectionParams(incoming, contact);
      default:
        throw new ParcelRefusedError(
          "bad-content",
          `Unknown service message type "${incoming.message.type.slice(0, 100)}"`,
        );
    }
  }

  async #decrypt(parcel: Parcel, ourId: string, senderId: string) {
    const envelope = deserializeSessionEnvelope(new Uint8Array(parcel.payloadSerialized));
    const keyId = envelope.getRecipientKeyId();
    let privateKey;
    try {
      privateKey = await this.ctx.keys.privateKeyStore.retrieveSessionKey(keyId, ourId, senderId);
    } catch (error) {
      if (error instanceof UnknownKeyError) {
        throw new ParcelRefusedError(
          "undecryptable",
          `Parcel is encrypted with session key ${
            keyId.toString("hex")
          }, which this endpoint does not hold ` +
            `(never given to this sender, or deleted once superseded)`,
        );
      }
      throw error;
    }
    let message: ServiceMessage;
    try {
      message = ServiceMessage.deserialize(await envelope.decrypt(privateKey));
    } catch (error) {
      throw new ParcelRefusedError(
        "undecryptable",
        "Parcel payload does not decrypt to a service message",
        {
          cause: error,
        },
      );
    }
    return {
      message,
      senderKey: await envelope.getOriginatorKey(),
      usedKeyId: Buffer.from(keyId).toString("hex"),
    };
  }

  #alreadyReceived(senderId: string, parcelId: string): boolean {
    return this.ctx.db.get(
      "SELECT 1 FROM received_parcels WHERE sender_id = ? AND parcel_id = ?",
      senderId,
      parcelId,
    ) !== undefined;
  }

  /**
   * A parcel seen before: refused as a replay, which the previous hop may treat as
   * stored. If it carried mail, a receipt is owed again (the first may be lost).
   */
  #duplicate(senderId: string, parcel: Parcel): never {
    const seen = this.ctx.db.get<{ received_at: number; message_id: string | null }>(
      "SELECT received_at, message_id FROM received_parcels WHERE sender_id = ? AND parcel_id = ?",
      senderId,
      parcel.id,
    )!;
    const contact = this.contacts.get(senderId);
    // A lapsed contact may still be reachable (only its authorisation from us ran
    // out): the receipt waits for a channel like any parcel.
    if (seen.message_id && (contact?.state === "active" || contact?.state === "lapsed")) {
      this.jobs.add("receipt", senderId, seen.message_id);
    }
    const reason = `Parcel ${parcel.id} from ${senderId.slice(0, 13)} was already received on ${
      new Date(seen.received_at).toISOString()
    } (replay or second path)`;
    throw new ParcelRefusedError("duplicate", reason);
  }
}

/** OID of CMS EnvelopedData (RFC 5652, section 6.1). */
const CMS_ENVELOPED_DATA = "1.2.840.113549.1.7.3";

/**
 * Parses a parcel payload as CMS EnvelopedData for a channel session key.
 *
 * relaynet-core's own `EnvelopedData.deserialize()` cannot read payloads of more
 * than about 5 MB since asn1js 3.0.9 capped parsing at 10 000 ASN.1 nodes: CMS
 * splits encrypted content into 1 KiB pieces and asn1js also tries to parse inside
 * each. This parser lifts that cap (the parcel's size is already bounded) and
 * skips the speculative parsing inside octet strings.
 */
export function deserializeSessionEnvelope(payload: Uint8Array): SessionEnvelopedData {
  const parsed = asn1js.fromBER(payload, { maxNodes: 1_000_000, parseEmbedded: false });
  let enveloped: pkijs.EnvelopedData;
  try {
    if (parsed.offset === -1) throw new Error(parsed.result.error);
    const contentInfo = new pkijs.ContentInfo({ schema: parsed.result });
    if (contentInfo.contentType !== CMS_ENVELOPED_DATA) {
      throw new Error(`content type is ${contentInfo.contentType}`);
    }
    enveloped = new pkijs.EnvelopedData({ schema: contentInfo.content });
  } catch (error) {
    throw new ParcelRefusedError(
      "bad-content",
      `Parcel payload is not CMS EnvelopedData: ${error instanceof Error ? error.message : error}`,
      { cause: error },
    );
  }
  // Channel session encryption uses exactly one key agreement recipient (RS-003).
  if (enveloped.recipientInfos.length !== 1 || enveloped.recipientInfos[0].variant !== 2) {
    throw new ParcelRefusedError(
      "undecryptable",
      "Parcel payload is not encrypted with a channel session key",
    );
  }
  type Constructor = new (inner: pkijs.EnvelopedData) => SessionEnvelopedData;
  return new (SessionEnvelopedData as unknown as Constructor)(enveloped);
}
