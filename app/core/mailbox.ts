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
  cursorKey,
  findMessage,
  FIRST_CURSOR,
  type MessageRow,
  searchExpression,
  SUMMARY_COLUMNS_OF_M,
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

/** A folder as listings take it: `outbox` is sent mail not yet delivered to everyone. */
export type FolderName = "inbox" | "sent" | "outbox";

/** Options of {@linkcode Mailbox.folderPage}. */
export interface PageOptions {
  /** Most messages in the page (at least 1). Default: 50. */
  readonly limit?: number;
  /** The `next` of the page before; none (the default) starts with the newest message. */
  readonly cursor?: string | null;
}

/** Options of {@linkcode Mailbox.searchPage}. */
export interface SearchOptions extends PageOptions {
  /** Only messages of this folder. Default: every folder. */
  readonly folder?: "inbox" | "sent";
}

/** Messages of a listing, newest first, and where the next page starts. */
export interface MessagePage {
  readonly messages: MessageSummary[];
  /** The cursor of the next (older) page, or null when this page is the last. */
  readonly next: string | null;
}

/** How many messages each folder holds. */
export interface MailCounts {
  readonly inbox: number;
  readonly sent: number;
  /** Sent messages not yet delivered to everyone. */
  readonly outbox: number;
  /** Unread messages in the inbox. */
  readonly unread: number;
}

/** Deliveries still on their way: their message is in the outbox. */
const UNDELIVERED = "('waiting', 'queued', 'sent')";

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

  /** The active contacts some sent mail is still waiting for (their answer, a renewal). */
  contactsWaitedFor(): string[] {
    return this.ctx.db.all<{ recipient_id: string }>(
      `SELECT DISTINCT d.recipient_id FROM deliveries d JOIN contacts c ON c.id = d.recipient_id
       WHERE d.state = 'waiting' AND c.state = 'active'`,
    ).map((row) => row.recipient_id);
  }

  /**
   * Builds the parcels of messages that were waiting for `contactId` (its pairing
   * answer arrived, or its authorisation was renewed).
   */
  flushWaiting(contactId: string): Promise<number> {
    return this.#sender.flushWaiting(contactId);
  }

  /**
   * One page of a folder, newest first (by the time it was sent). Pages follow
   * one another by cursor, not by offset: each costs the same however deep, and
   * mail arriving meanwhile neither repeats nor skips a message.
   */
  folderPage(folder: FolderName, options: PageOptions = {}): MessagePage {
    const limit = pageLimit(options.limit);
    const before = options.cursor ? cursorKey(options.cursor) : FIRST_CURSOR;
    // The outbox is read from the deliveries still on their way (an index),
    // which stay few however much mail has been sent.
    const rows = folder === "outbox"
      ? this.ctx.db.all<SummaryRow>(
        `SELECT ${SUMMARY_COLUMNS_OF_M} FROM messages m WHERE m.id IN
           (SELECT message FROM deliveries WHERE state IN ${UNDELIVERED})
         AND +m.folder = 'sent' AND m.list_key < ? ORDER BY m.list_key DESC LIMIT ?`,
        before,
        limit + 1,
      )
      : this.ctx.db.all<SummaryRow>(
        `SELECT ${SUMMARY_COLUMNS_OF_M} FROM messages m
         WHERE m.folder = ? AND m.list_key < ? ORDER BY m.list_key DESC LIMIT ?`,
        folder,
        before,
        limit + 1,
      );
    return this.#page(rows, limit);
  }

  /**
   * One page of the messages matching `text`, newest first: each word must be a
   * word of the subject, the body, an attachment's name or the sender's name (a
   * word ending in `*`, the start of one; see `searchExpression`). Any text is a
   * valid search; one with no word in it finds nothing.
   */
  searchPage(text: string, options: SearchOptions = {}): MessagePage {
    const limit = pageLimit(options.limit);
    const before = options.cursor ? cursorKey(options.cursor) : FIRST_CURSOR;
    const people = [
      ...this.contacts.list(),
      ...(this.identity.exists() ? [{ id: this.identity.id, name: this.identity.name }] : []),
    ];
    const expression = searchExpression(text, people);
    if (expression === null) return { messages: [], next: null };
    // The index's rowid is the list key: it is walked newest first and left
    // once the page is full, however many messages match.
    const rows = this.ctx.db.all<SummaryRow>(
      `SELECT ${SUMMARY_COLUMNS_OF_M} FROM message_search s JOIN messages m ON m.list_key = s.rowid
       WHERE message_search MATCH ? AND s.rowid < ? AND (? IS NULL OR m.folder = ?)
       ORDER BY s.rowid DESC LIMIT ?`,
      expression,
      before,
      options.folder ?? null,
      options.folder ?? null,
      limit + 1,
    );
    return this.#page(rows, limit);
  }

  /** The newest messages of a folder, at most `limit` (1,000 by default). */
  list(folder: FolderName, options: { limit?: number } = {}): MessageSummary[] {
    return this.folderPage(folder, { limit: options.limit ?? 1000 }).messages;
  }

  /** The newest messages matching `text` (see {@linkcode searchPage}), at most `limit` (200). */
  search(text: string, options: { limit?: number } = {}): MessageSummary[] {
    return this.searchPage(text, { limit: options.limit ?? 200 }).messages;
  }

  #page(rows: SummaryRow[], limit: number): MessagePage {
    const party = this.#parties();
    const shown = rows.slice(0, limit);
    return {
      messages: shown.map((row) => this.#summary(row, party)),
      next: rows.length > limit ? String(shown[shown.length - 1].list_key) : null,
    };
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

  /** Unread messages in the inbox (a counter the schema keeps: no count is made). */
  unreadCount(): number {
    return this.ctx.db.get<{ n: number }>(
      "SELECT coalesce(sum(unread), 0) AS n FROM message_counts WHERE folder = 'inbox'",
    )!.n;
  }

  /** How many messages each folder holds: counters, but for the outbox (an index of its own). */
  counts(): MailCounts {
    const folders = new Map(
      this.ctx.db.all<{ folder: string; total: number; unread: number }>(
        "SELECT folder, total, unread FROM message_counts",
      ).map((row) => [row.folder, row]),
    );
    const outbox = this.ctx.db.get<{ n: number }>(
      `SELECT count(DISTINCT message) AS n FROM deliveries WHERE state IN ${UNDELIVERED}`,
    )!.n;
    return {
      inbox: folders.get("inbox")?.total ?? 0,
      sent: folders.get("sent")?.total ?? 0,
      outbox,
      unread: folders.get("inbox")?.unread ?? 0,
    };
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

/** Most messages one page holds. */
export const MAX_PAGE = 1_000_000;

function pageLimit(limit = 50): number {
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) {
    throw new RangeError(`A page holds 1 to ${MAX_PAGE} messages: received ${limit}`);
  }
  return limit;
}
