/**
 * Sending mail: checking a new message against the limits of one parcel,
 * building one parcel per recipient, putting the copy for a contact still pairing
 * in our pairing request while it has not left (docs/protocol.md §3.4), and
 * holding the other copies for contacts still pairing (or whose authorisation
 * lapsed) until {@linkcode MailSender.flushWaiting}.
 *
 * @module
 */
import type { Contact, Contacts } from "./contacts.ts";
import { emit, type NodeContext } from "./context.ts";
import { PairingRequests, type Ride } from "./handshake_request.ts";
import type { IdentityManager } from "./identity.ts";
import {
  findMessage,
  insertMessage,
  mailContentOf,
  type MessageRow,
  queueWaiting,
} from "./message_rows.ts";
import { makeParcel, type Outbox, type PreparedParcel } from "./outbox.ts";
import {
  type Attachment,
  encodeMail,
  MAIL_LIMITS,
  type MailContent,
  MAX_MAIL_LENGTH,
  MessageType,
} from "./protocol/messages.ts";

export { MAX_MAIL_LENGTH };

/** A file to attach. */
export interface AttachmentInput {
  readonly fileName: string;
  readonly mediaType?: string;
  readonly content: Uint8Array;
}

/** Options of `Mailbox.send` (and {@linkcode MailSender.send}). */
export interface SendOptions {
  /** Contact references (local name or fingerprint); defaults to the replied message's people. */
  readonly to?: readonly string[];
  readonly subject?: string;
  readonly body: string;
  readonly attachments?: readonly AttachmentInput[];
  /** Reference of the message this one answers; it joins that conversation. */
  readonly replyTo?: string;
}

/** Raised when a message cannot fit in one parcel. */
export class MessageTooLargeError extends RangeError {
  constructor(readonly size: number, readonly limit: number, attachmentBytes: number) {
    super(
      `Cannot queue message as it exceeds ${limit} bytes once encoded: it is ${size} bytes, ` +
        `${attachmentBytes} of them attachments`,
    );
    this.name = "MessageTooLargeError";
  }
}

/** Turns new messages into parcels, at once or once their recipient can be written to. */
export class MailSender {
  readonly #requests: PairingRequests;

  constructor(
    private readonly ctx: NodeContext,
    private readonly identity: IdentityManager,
    private readonly contacts: Contacts,
    private readonly outbox: Outbox,
  ) {
    this.#requests = new PairingRequests(ctx, identity, outbox);
  }

  /**
   * Sends a message: one parcel per recipient, queued at once for active
   * contacts; for one still pairing, put in our pairing request while it is still
   * here, and otherwise held until their answer. Refused before anything is
   * queued if it cannot fit in one parcel. Returns the new message's id.
   * `inCommit` runs inside the transaction that stores the message (deleting the
   * draft it was sent from, say): if it throws, nothing is stored or queued.
   */
  async send(options: SendOptions, inCommit?: () => void): Promise<string> {
    const replied = options.replyTo ? findMessage(this.ctx.db, options.replyTo) : null;
    const me = this.identity.id;
    const recipients = this.#resolveRecipients(options.to, replied, me);
    const subject = (options.subject ?? (replied ? reSubject(replied.subject) : "")).trim();
    if (subject.length > MAIL_LIMITS.subjectLength) {
      throw new RangeError(
        `Cannot send message: the subject exceeds ${MAIL_LIMITS.subjectLength} characters`,
      );
    }
    const attachments: Attachment[] = (options.attachments ?? []).map((a) => ({
      fileName: a.fileName,
      mediaType: a.mediaType || "application/octet-stream",
      content: a.content,
    }));
    if (attachments.length > MAIL_LIMITS.attachments) {
      throw new RangeError(
        `Cannot send message: it has ${attachments.length} attachments, over the limit of ${MAIL_LIMITS.attachments}`,
      );
    }
    for (const a of attachments) {
      if (!a.fileName || a.fileName.length > MAIL_LIMITS.fileNameLength) {
        throw new RangeError(
          `Cannot attach "${a.fileName}": file names need 1 to ${MAIL_LIMITS.fileNameLength} characters`,
        );
      }
    }
    const messageId = crypto.randomUUID();
    const mail: MailContent = {
      messageId,
      threadId: replied?.thread_id ?? messageId,
      inReplyTo: replied?.message_id ?? "",
      sentAt: this.ctx.now(),
      subject,
      body: options.body,
      recipients: recipients.map((c) => c.id),
      attachments,
    };
    const content = encodeMail(mail);
    if (content.byteLength > MAX_MAIL_LENGTH) {
      throw new MessageTooLargeError(
        content.byteLength,
        MAX_MAIL_LENGTH,
        attachments.reduce((sum, a) => sum + a.content.byteLength, 0),
      );
    }
    const parcels = new Map<string, PreparedParcel>();
    const rides = new Map<string, Ride>();
    for (const contact of recipients) {
      if (contact.state === "pairing") {
        const ride = await this.#requests.withMail(contact.id, content);
        if (ride) rides.set(contact.id, ride);
        continue;
      }
      const parcel = await this.#makeMailParcel(contact.id, content);
      if (parcel) parcels.set(contact.id, parcel);
    }
    const now = this.ctx.now().getTime();
    this.ctx.db.transaction(() => {
      const rowId = insertMessage(this.ctx.db, me, "sent", mail, now, now);
      for (const contact of recipients) {
        const parcel = parcels.get(contact.id);
        if (parcel) this.outbox.insert(parcel);
        const ride = rides.get(contact.id);
        // The request it rides in may have left meanwhile: then it waits.
        const key = parcel?.key ?? (ride && this.#requests.commit(ride) ? ride.parcel.key : null);
        this.ctx.db.run(
          "INSERT INTO deliveries (message, recipient_id, state, parcel_key, updated_at) VALUES (?, ?, ?, ?, ?)",
          rowId,
          contact.id,
          key ? "queued" : "waiting",
          key,
          now,
        );
        this.contacts.touch(contact.id);
      }
      inCommit?.();
    });
    emit(this.ctx, "delivery-changed", { messageId });
    return messageId;
  }

  /**
   * Builds the parcels of messages that were waiting for `contactId` (its pairing
   * answer arrived, or its authorisation was renewed).
   */
  async flushWaiting(contactId: string): Promise<number> {
    const waiting = this.ctx.db.all<MessageRow>(
      `SELECT m.* FROM messages m JOIN deliveries d ON d.message = m.id
       WHERE d.recipient_id = ? AND d.state = 'waiting' ORDER BY m.sent_at`,
      contactId,
    );
    let flushed = 0;
    for (const row of waiting) {
      const parcel = await this.#makeMailParcel(
        contactId,
        encodeMail(mailContentOf(this.ctx.db, row)),
      );
      if (!parcel) break;
      // Claimed by moving it out of 'waiting' in the transaction that queues its
      // parcel: if another process sent it meanwhile, nothing is queued twice.
      const claimed = this.ctx.db.transaction(() => {
        const moved = queueWaiting(this.ctx.db, row.id, contactId, parcel.key, this.ctx.now());
        if (moved === 0) return false;
        this.outbox.insert(parcel);
        return true;
      });
      if (claimed) flushed++;
    }
    if (flushed) emit(this.ctx, "delivery-changed", { contactId });
    return flushed;
  }

  async #makeMailParcel(contactId: string, content: Uint8Array): Promise<PreparedParcel | null> {
    const contact = this.contacts.get(contactId);
    if (!contact || contact.state !== "active") return null;
    const channel = await this.identity.channel(contactId);
    if (!channel) return null; // e.g. their authorisation for us expired: wait for a renewal
    return await makeParcel(this.ctx, channel, "mail", MessageType.MAIL, content);
  }

  #resolveRecipients(
    to: readonly string[] | undefined,
    replied: MessageRow | null,
    me: string,
  ): Contact[] {
    let ids: string[];
    if (to && to.length > 0) {
      ids = to.map((ref) => this.contacts.find(ref).id);
    } else if (replied) {
      ids = replied.folder === "inbox"
        ? [replied.sender_id]
        : (JSON.parse(replied.recipients) as string[]).filter((id) => id !== me);
    } else {
      throw new RangeError("Cannot send message: give at least one recipient");
    }
    const unique = [...new Set(ids)];
    if (unique.length > MAIL_LIMITS.recipients) {
      throw new RangeError(
        `Cannot send message to ${unique.length} people: the limit is ${MAIL_LIMITS.recipients}`,
      );
    }
    return unique.map((id) => {
      const contact = this.contacts.get(id);
      if (!contact) throw new RangeError(`Cannot send to ${id.slice(0, 13)}: not a contact`);
      if (contact.state === "blocked") {
        throw new RangeError(`Cannot send to ${contact.name}: the contact is blocked`);
      }
      return contact;
    });
  }
}

function reSubject(subject: string): string {
  return /^re:/i.test(subject) ? subject : `Re: ${subject}`;
}
