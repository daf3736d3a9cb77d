/**
 * Email-like mail: composing and sending (one parcel per recipient), the inbox,
 * sent mail and outbox with per-recipient delivery state, threads, reading, and
 * taking in incoming mail exactly once.
 *
 * @module
 */
import { MAX_PARCEL_LENGTH, ParcelRefusedError } from "../../bindings/validation.ts";
import type { Contact, Contacts } from "./contacts.ts";
import { emit, type NodeContext } from "./context.ts";
import { fingerprint, type IdentityManager } from "./identity.ts";
import type { Jobs } from "./jobs.ts";
import { makeParcel, type Outbox, type PreparedParcel } from "./outbox.ts";
import {
  type Attachment,
  decodeMail,
  decodeReceipt,
  encodeMail,
  MAIL_LIMITS,
  type MailContent,
  MessageType,
} from "./protocol/messages.ts";
import type {
  Delivery,
  DeliveryState,
  Effect,
  ExportableMessage,
  Incoming,
  MessageDetail,
  MessageSummary,
  Party,
} from "./types.ts";

export type { Delivery, DeliveryState, MessageDetail, MessageSummary, Party };

/**
 * Most octets an encoded mail (subject, body, attachments) may take: 8 264 332.
 * A parcel adds a fixed 4 KiB or so (envelope, signature, certificate chain) plus
 * about 0.45% (CMS splits encrypted content into 1 KiB pieces, each with its own
 * header); 16 KiB and 0.5% are set aside so the parcel stays within
 * {@linkcode MAX_PARCEL_LENGTH}.
 */
export const MAX_MAIL_LENGTH = Math.floor((MAX_PARCEL_LENGTH - 16 * 1024) / 1.005);

/** A file to attach. */
export interface AttachmentInput {
  readonly fileName: string;
  readonly mediaType?: string;
  readonly content: Uint8Array;
}

/** Options of {@linkcode Mailbox.send}. */
export interface SendOptions {
  /** Contact references (local name or fingerprint); defaults to the replied message's people. */
  readonly to?: readonly string[];
  readonly subject?: string;
  readonly body: string;
  readonly attachments?: readonly AttachmentInput[];
  /** Reference of the message this one answers; it joins that conversation. */
  readonly replyTo?: string;
}

/** Raised when a message reference matches none or several messages. */
export class MessageLookupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MessageLookupError";
  }
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

interface MessageRow {
  id: number;
  message_id: string;
  sender_id: string;
  folder: "inbox" | "sent";
  thread_id: string;
  in_reply_to: string | null;
  subject: string;
  body: string;
  recipients: string;
  sent_at: number;
  received_at: number | null;
  read_at: number | null;
}

/** A message row without its body: what a listing needs. */
type SummaryRow = Omit<MessageRow, "body">;
const SUMMARY_COLUMNS =
  "id, message_id, sender_id, folder, thread_id, in_reply_to, subject, recipients, sent_at, received_at, read_at";

/** The user's mail. */
export class Mailbox {
  constructor(
    private readonly ctx: NodeContext,
    private readonly identity: IdentityManager,
    private readonly contacts: Contacts,
    private readonly outbox: Outbox,
    private readonly jobs: Jobs,
  ) {}

  /**
   * Sends a message: one parcel per recipient, queued at once for active contacts
   * and held for those still pairing. Refused before anything is queued if it
   * cannot fit in one parcel.
   */
  async send(options: SendOptions): Promise<MessageDetail> {
    const replied = options.replyTo ? this.#find(options.replyTo) : null;
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
    for (const contact of recipients) {
      const parcel = await this.#makeMailParcel(contact.id, content);
      if (parcel) parcels.set(contact.id, parcel);
    }
    const now = this.ctx.now().getTime();
    this.ctx.db.transaction(() => {
      const rowId = this.#insertMessage(me, "sent", mail, now, now);
      for (const contact of recipients) {
        const parcel = parcels.get(contact.id);
        if (parcel) this.outbox.insert(parcel);
        this.ctx.db.run(
          "INSERT INTO deliveries (message, recipient_id, state, parcel_key, updated_at) VALUES (?, ?, ?, ?, ?)",
          rowId,
          contact.id,
          parcel ? "queued" : "waiting",
          parcel?.key ?? null,
          now,
        );
        this.contacts.touch(contact.id);
      }
    });
    emit(this.ctx, "delivery-changed", { messageId });
    return this.read(messageId, { markRead: false });
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
      const parcel = await this.#makeMailParcel(contactId, encodeMail(this.#content(row)));
      if (!parcel) break;
      // Claimed by moving it out of 'waiting' in the transaction that queues its
      // parcel: if another process sent it meanwhile, nothing is queued twice.
      const claimed = this.ctx.db.transaction(() => {
        const moved = this.ctx.db.run(
          `UPDATE deliveries SET state = 'queued', parcel_key = ?, updated_at = ?
           WHERE message = ? AND recipient_id = ? AND state = 'waiting'`,
          parcel.key,
          this.ctx.now().getTime(),
          row.id,
          contactId,
        );
        if (moved === 0) return false;
        this.outbox.insert(parcel);
        return true;
      });
      if (claimed) flushed++;
    }
    if (flushed) emit(this.ctx, "delivery-changed", { contactId });
    return flushed;
  }

  /** Messages of a folder, newest first; `outbox` is sent mail not yet delivered to everyone. */
  list(folder: "inbox" | "sent" | "outbox", options: { limit?: number } = {}): MessageSummary[] {
    const limit = options.limit ?? 1000;
    const rows = folder === "outbox"
      ? this.ctx.db.all<SummaryRow>(
        `SELECT ${SUMMARY_COLUMNS} FROM messages m WHERE folder = 'sent' AND EXISTS
           (SELECT 1 FROM deliveries d WHERE d.message = m.id AND d.state IN ('waiting', 'queued', 'sent'))
         ORDER BY sent_at DESC, id DESC LIMIT ?`,
        limit,
      )
      : this.ctx.db.all<SummaryRow>(
        `SELECT ${SUMMARY_COLUMNS} FROM messages WHERE folder = ? ORDER BY sent_at DESC, id DESC LIMIT ?`,
        folder,
        limit,
      );
    const party = this.#parties();
    return rows.map((row) => this.#summary(row, party));
  }

  /** Searches subjects and bodies (case-insensitive substring), newest first. */
  search(text: string, options: { limit?: number } = {}): MessageSummary[] {
    const pattern = `%${text.replace(/[\\%_]/g, (c) => "\\" + c)}%`;
    const party = this.#parties();
    return this.ctx.db.all<SummaryRow>(
      `SELECT ${SUMMARY_COLUMNS} FROM messages
       WHERE subject LIKE ? ESCAPE '\\' OR body LIKE ? ESCAPE '\\'
       ORDER BY sent_at DESC LIMIT ?`,
      pattern,
      pattern,
      options.limit ?? 200,
    ).map((row) => this.#summary(row, party));
  }

  /** A whole message; marks it read unless told otherwise. */
  read(reference: string, options: { markRead?: boolean } = {}): MessageDetail {
    const row = this.#find(reference);
    if (options.markRead !== false && row.read_at === null) {
      const now = this.ctx.now().getTime();
      this.ctx.db.run("UPDATE messages SET read_at = ? WHERE id = ?", now, row.id);
      row.read_at = now;
    }
    return { ...this.#summary(row), body: row.body };
  }

  /**
   * The messages of the conversation `reference` belongs to, oldest first. With
   * `markRead`, its unread messages are marked read (they are returned as they were).
   */
  thread(reference: string, options: { markRead?: boolean } = {}): MessageDetail[] {
    return this.#threadRows(reference, options).map(({ detail }) => detail);
  }

  /** The attachments of a message, with their content. */
  attachments(reference: string): Attachment[] {
    return this.#attachments(this.#find(reference).id);
  }

  /** A message and its attachments, as exports take them. */
  exportable(reference: string): ExportableMessage {
    const row = this.#find(reference);
    return {
      message: { ...this.#summary(row), body: row.body },
      attachments: this.#attachments(row.id),
    };
  }

  /** The conversation `reference` belongs to, oldest first, as exports take it. */
  conversation(reference: string): ExportableMessage[] {
    return this.#threadRows(reference).map(({ row, detail }) => ({
      message: detail,
      attachments: this.#attachments(row.id),
    }));
  }

  #threadRows(reference: string, options: { markRead?: boolean } = {}) {
    const { thread_id } = this.#find(reference);
    const party = this.#parties();
    const rows = this.ctx.db.all<MessageRow>(
      "SELECT * FROM messages WHERE thread_id = ? ORDER BY sent_at, id",
      thread_id,
    ).map((row) => ({ row, detail: { ...this.#summary(row, party), body: row.body } }));
    if (options.markRead) {
      this.ctx.db.run(
        "UPDATE messages SET read_at = ? WHERE thread_id = ? AND folder = 'inbox' AND read_at IS NULL",
        this.ctx.now().getTime(),
        thread_id,
      );
    }
    return rows;
  }

  #attachments(messageRowId: number): Attachment[] {
    return this.ctx.db.all<{ file_name: string; media_type: string; content: Uint8Array }>(
      "SELECT file_name, media_type, content FROM attachments WHERE message = ? ORDER BY position",
      messageRowId,
    ).map((a) => ({ fileName: a.file_name, mediaType: a.media_type, content: a.content }));
  }

  /** Unread messages in the inbox. */
  unreadCount(): number {
    return this.ctx.db.get<{ n: number }>(
      "SELECT count(*) AS n FROM messages WHERE folder = 'inbox' AND read_at IS NULL",
    )!.n;
  }

  /** Takes in a mail parcel from a contact: stored once, answered with a receipt. */
  prepareIncoming(incoming: Incoming, sender: Contact): Effect {
    let mail: MailContent;
    try {
      mail = decodeMail(new Uint8Array(incoming.message.content));
    } catch (error) {
      throw new ParcelRefusedError(
        "bad-content",
        `Mail is malformed: ${error instanceof Error ? error.message : error}`,
        { cause: error },
      );
    }
    let isNew = false;
    return {
      apply: () => {
        const existing = this.ctx.db.get(
          "SELECT 1 FROM messages WHERE sender_id = ? AND message_id = ?",
          sender.id,
          mail.messageId,
        );
        if (!existing) {
          this.#insertMessage(
            sender.id,
            "inbox",
            mail,
            mail.sentAt.getTime(),
            this.ctx.now().getTime(),
          );
          isNew = true;
        }
        this.jobs.add("receipt", sender.id, mail.messageId);
      },
      after: () => {
        if (isNew) emit(this.ctx, "mail-received", { messageId: mail.messageId, from: sender.id });
        return Promise.resolve();
      },
      savesSenderSessionKey: true,
      messageId: mail.messageId,
    };
  }

  /** Takes in a delivery receipt: the messages it names become delivered. */
  prepareReceipt(incoming: Incoming, sender: Contact): Effect {
    let messageIds: readonly string[];
    try {
      messageIds = decodeReceipt(new Uint8Array(incoming.message.content)).messageIds;
    } catch (error) {
      throw new ParcelRefusedError(
        "bad-content",
        `Receipt is malformed: ${error instanceof Error ? error.message : error}`,
      );
    }
    let changed = 0;
    return {
      apply: () => {
        changed = this.outbox.markDelivered(this.identity.id, sender.id, messageIds);
      },
      after: () => {
        if (changed) emit(this.ctx, "delivery-changed", { contactId: sender.id, messageIds });
        return Promise.resolve();
      },
      savesSenderSessionKey: true,
    };
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

  #insertMessage(
    senderId: string,
    folder: "inbox" | "sent",
    mail: MailContent,
    sentAt: number,
    receivedAt: number,
  ): number {
    const rowId = Number(
      this.ctx.db.prepare(
        `INSERT INTO messages (message_id, sender_id, folder, thread_id, in_reply_to, subject, body,
           recipients, sent_at, received_at, read_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        mail.messageId,
        senderId,
        folder,
        mail.threadId,
        mail.inReplyTo || null,
        mail.subject,
        mail.body,
        JSON.stringify(mail.recipients),
        sentAt,
        folder === "inbox" ? receivedAt : null,
        folder === "sent" ? receivedAt : null,
      ).lastInsertRowid,
    );
    mail.attachments.forEach((a, position) =>
      this.ctx.db.run(
        `INSERT INTO attachments (message, position, file_name, media_type, size, content)
         VALUES (?, ?, ?, ?, ?, ?)`,
        rowId,
        position,
        a.fileName,
        a.mediaType,
        a.content.byteLength,
        a.content,
      )
    );
    return rowId;
  }

  #content(row: MessageRow): MailContent {
    return {
      messageId: row.message_id,
      threadId: row.thread_id,
      inReplyTo: row.in_reply_to ?? "",
      sentAt: new Date(row.sent_at),
      subject: row.subject,
      body: row.body,
      recipients: JSON.parse(row.recipients),
      attachments: this.ctx.db.all<{ file_name: string; media_type: string; content: Uint8Array }>(
        "SELECT file_name, media_type, content FROM attachments WHERE message = ? ORDER BY position",
        row.id,
      ).map((a) => ({ fileName: a.file_name, mediaType: a.media_type, content: a.content })),
    };
  }

  /** Finds a message by (a prefix of at least 4 characters of) its id. */
  #find(reference: string): MessageRow {
    const ref = reference.trim().toLowerCase();
    if (ref.length < 4) {
      throw new MessageLookupError(
        `Message reference "${reference}" is too short: give at least 4 characters`,
      );
    }
    const rows = this.ctx.db.all<MessageRow>(
      "SELECT * FROM messages WHERE message_id = ? OR substr(message_id, 1, ?) = ? ORDER BY folder, id LIMIT 3",
      ref,
      ref.length,
      ref,
    );
    const exact = rows.filter((r) => r.message_id === ref);
    if (rows.length === 1 || (exact.length === 1 && rows.length > 0)) return exact[0] ?? rows[0];
    if (rows.length === 0) throw new MessageLookupError(`No message "${reference}"`);
    throw new MessageLookupError(`"${reference}" matches several messages: give more of its id`);
  }

  /**
   * Names people for one listing: this endpoint and each contact are looked up
   * once, however many messages name them.
   */
  #parties(): (id: string) => Party {
    const me = this.identity.id;
    const known = new Map<string, Party>();
    return (id) => {
      let party = known.get(id);
      if (!party) {
        const contact = id === me ? undefined : this.contacts.get(id);
        party = {
          id,
          name: id === me
            ? this.identity.name
            : contact?.name ?? `unknown (${fingerprint(id).slice(0, 9)})`,
          fingerprint: fingerprint(id),
          isMe: id === me,
        };
        known.set(id, party);
      }
      return party;
    };
  }

  #summary(row: SummaryRow, party = this.#parties()): MessageSummary {
    const deliveries = row.folder === "sent"
      ? this.ctx.db.all<
        {
          recipient_id: string;
          state: DeliveryState;
          via: string | null;
          updated_at: number;
          parcel_key: string | null;
        }
      >(
        "SELECT recipient_id, state, via, updated_at, parcel_key FROM deliveries WHERE message = ? ORDER BY rowid",
        row.id,
      ).map((d) => ({
        ...party(d.recipient_id),
        state: d.state,
        via: d.via,
        updatedAt: new Date(d.updated_at),
        parcelKey: d.parcel_key,
      }))
      : [];
    return {
      id: row.message_id,
      folder: row.folder,
      threadId: row.thread_id,
      inReplyTo: row.in_reply_to,
      from: party(row.sender_id),
      to: (JSON.parse(row.recipients) as string[]).map(party),
      subject: row.subject,
      sentAt: new Date(row.sent_at),
      receivedAt: row.received_at === null ? null : new Date(row.received_at),
      read: row.read_at !== null,
      attachments: this.ctx.db.all<{ file_name: string; media_type: string; size: number }>(
        "SELECT file_name, media_type, size FROM attachments WHERE message = ? ORDER BY position",
        row.id,
      ).map((a) => ({ fileName: a.file_name, mediaType: a.media_type, size: a.size })),
      deliveries,
    };
  }
}

function reSubject(subject: string): string {
  return /^re:/i.test(subject) ? subject : `Re: ${subject}`;
}
