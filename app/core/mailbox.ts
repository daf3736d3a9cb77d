/**
 * Email-like mail: the inbox, sent mail and outbox with per-recipient delivery
 * state, threads, search and reading. Sending lives in mail_sending.ts, taking
 * in incoming mail in incoming_mail.ts; {@linkcode Mailbox} brings them together.
 *
 * @module
 */
import type { Contact, Contacts } from "./contacts.ts";
import type { NodeContext } from "./context.ts";
import { fingerprint, type IdentityManager } from "./identity.ts";
import { IncomingMail } from "./incoming_mail.ts";
import type { Jobs } from "./jobs.ts";
import { MailSender, type SendOptions } from "./mail_sending.ts";
import {
  attachmentsOf,
  findMessage,
  type MessageRow,
  SUMMARY_COLUMNS,
  type SummaryRow,
} from "./message_rows.ts";
import type { Outbox } from "./outbox.ts";
import type { Attachment } from "./protocol/messages.ts";
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
export {
  type AttachmentInput,
  MAX_MAIL_LENGTH,
  MessageTooLargeError,
  type SendOptions,
} from "./mail_sending.ts";
export { MessageLookupError } from "./message_rows.ts";

/** The user's mail. */
export class Mailbox {
  readonly #sender: MailSender;
  readonly #incoming: IncomingMail;

  constructor(
    private readonly ctx: NodeContext,
    private readonly identity: IdentityManager,
    private readonly contacts: Contacts,
    outbox: Outbox,
    jobs: Jobs,
  ) {
    this.#sender = new MailSender(ctx, identity, contacts, outbox);
    this.#incoming = new IncomingMail(ctx, identity, outbox, jobs);
  }

  /**
   * Sends a message: one parcel per recipient, queued at once for active contacts
   * and held for those still pairing. Refused before anything is queued if it
   * cannot fit in one parcel.
   */
  async send(options: SendOptions): Promise<MessageDetail> {
    const messageId = await this.#sender.send(options);
    return this.read(messageId, { markRead: false });
  }

  /**
   * Builds the parcels of messages that were waiting for `contactId` (its pairing
   * answer arrived, or its authorisation was renewed).
   */
  /** The active contacts some sent mail is still waiting for (their answer, a renewal). */
  contactsWaitedFor(): string[] {
    return this.ctx.db.all<{ recipient_id: string }>(
      `SELECT DISTINCT d.recipient_id FROM deliveries d JOIN contacts c ON c.id = d.recipient_id
       WHERE d.state = 'waiting' AND c.state = 'active'`,
    ).map((row) => row.recipient_id);
  }

  flushWaiting(contactId: string): Promise<number> {
    return this.#sender.flushWaiting(contactId);
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

  /** Unread messages in the inbox. */
  unreadCount(): number {
    return this.ctx.db.get<{ n: number }>(
      "SELECT count(*) AS n FROM messages WHERE folder = 'inbox' AND read_at IS NULL",
    )!.n;
  }

  /** Takes in a mail parcel from a contact: stored once, answered with a receipt. */
  prepareIncoming(incoming: Incoming, sender: Contact): Effect {
    return this.#incoming.prepareMail(incoming, sender);
  }

  /** Takes in a delivery receipt: the messages it names become delivered. */
  prepareReceipt(incoming: Incoming, sender: Contact): Effect {
    return this.#incoming.prepareReceipt(incoming, sender);
  }

  #find(reference: string): MessageRow {
    return findMessage(this.ctx.db, reference);
  }

  #attachments(messageRowId: number): Attachment[] {
    return attachmentsOf(this.ctx.db, messageRowId);
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
