/**
 * Email-like mail: the inbox, sent mail, archive and outbox with per-recipient
 * delivery state, threads, search and reading. Sending lives in
 * mail_sending.ts, taking in incoming mail in incoming_mail.ts, archiving, read
 * state, deleting and forwarding in mail_actions.ts, drafts in drafts.ts;
 * {@linkcode Mailbox} brings them together.
 *
 * @module
 */
import type { Contact, Contacts } from "./contacts.ts";
import { emit, type NodeContext } from "./context.ts";
import { Drafts } from "./drafts.ts";
import type { IdentityManager } from "./identity.ts";
import { IncomingMail } from "./incoming_mail.ts";
import type { Jobs } from "./jobs.ts";
import {
  compactSearchIndex,
  forwardBody,
  forwardSubject,
  MailActions,
  purgeDeletedMail,
} from "./mail_actions.ts";
import { partiesOf, summarize } from "./mail_summaries.ts";
import { MailSender, type SendOptions } from "./mail_sending.ts";
import type {
  DeleteResult,
  ExportableMessage,
  MailFolder,
  MessageDetail,
  MessageSummary,
} from "./mail_types.ts";
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
import type { Delivery, DeliveryState, Effect, Incoming, Party } from "./types.ts";

export type { Delivery, DeliveryState, MessageDetail, MessageSummary, Party };
export type { DeleteResult, MailFolder } from "./mail_types.ts";
export type { Draft, DraftInput } from "./drafts.ts";
export {
  type AttachmentInput,
  MAX_MAIL_LENGTH,
  MessageTooLargeError,
  type SendOptions,
} from "./mail_sending.ts";
export { MessageLookupError } from "./message_rows.ts";

/**
 * A folder as listings take it: `archive` holds what was archived of the other
 * two, `outbox` is sent mail not yet delivered to everyone (archived or not).
 */
export type FolderName = MailFolder | "outbox";

/** Options of {@linkcode Mailbox.folderPage}. */
export interface PageOptions {
  /** Most messages in the page (at least 1). Default: 50. */
  readonly limit?: number;
  /** The `next` of the page before; none (the default) starts with the newest message. */
  readonly cursor?: string | null;
}

/** Options of {@linkcode Mailbox.searchPage}. */
export interface SearchOptions extends PageOptions {
  /** Only messages listed in this folder. Default: every folder, the archive included. */
  readonly folder?: MailFolder;
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
  /** Archived messages, received and sent (counted in neither of the above). */
  readonly archive: number;
  /** Sent messages not yet delivered to everyone. */
  readonly outbox: number;
  /** Unread messages in the inbox (archived ones left out). */
  readonly unread: number;
}

/** Options of {@linkcode Mailbox.send}: a message, and what it is written from. */
export interface ComposeOptions extends SendOptions {
  /**
   * Reference of a message whose attachments this one carries (before its own
   * `attachments`): those at `forwardAttachments`, or all of them.
   */
  readonly forward?: string;
  readonly forwardAttachments?: readonly number[];
  /** Reference of the draft this message was written in: deleted once it is sent. */
  readonly draft?: string;
}

/** Options of {@linkcode Mailbox.forward}. */
export interface ForwardOptions {
  /** Contact references; at least one. */
  readonly to: readonly string[];
  /** A note above the quoted original. */
  readonly body?: string;
  /** Files added to the original's. */
  readonly attachments?: ComposeOptions["attachments"];
}

/** Deliveries still on their way: their message is in the outbox. */
const UNDELIVERED = "('waiting', 'queued', 'sent')";

/** The user's mail. */
export class Mailbox {
  /** Messages being written. */
  readonly drafts: Drafts;
  readonly #sender: MailSender;
  readonly #incoming: IncomingMail;
  readonly #actions: MailActions;

  constructor(
    private readonly ctx: NodeContext,
    private readonly identity: IdentityManager,
    private readonly contacts: Contacts,
    outbox: Outbox,
    jobs: Jobs,
  ) {
    this.#sender = new MailSender(ctx, identity, contacts, outbox);
    this.#incoming = new IncomingMail(ctx, identity, outbox, jobs);
    this.#actions = new MailActions(ctx);
    this.drafts = new Drafts(ctx, contacts);
  }

  /**
   * Sends a message: one parcel per recipient, queued at once for active contacts
   * and held for those still pairing. Refused before anything is queued if it
   * cannot fit in one parcel (forwarded attachments included). Sent from a
   * draft, the draft is deleted: if two try to send it, one fails.
   */
  async send(options: ComposeOptions): Promise<MessageDetail> {
    const { forward, forwardAttachments, draft, ...message } = options;
    const carried = forward === undefined
      ? []
      : this.#actions.forwarded(forward, forwardAttachments);
    // The draft goes in the transaction that stores the message (Drafts.take).
    const draftId = draft === undefined ? undefined : this.drafts.get(draft).id;
    const messageId = await this.#sender.send(
      { ...message, attachments: [...carried, ...(message.attachments ?? [])] },
      draftId === undefined ? undefined : () => this.drafts.take(draftId),
    );
    return this.read(messageId, { markRead: false });
  }

  /** Sends the draft `reference` names, with what it forwards; the draft is then deleted. */
  sendDraft(reference: string): Promise<MessageDetail> {
    const draft = this.drafts.get(reference);
    return this.send({
      to: draft.to,
      subject: draft.subject,
      body: draft.body,
      replyTo: draft.replyTo ?? undefined,
      forward: draft.forward ?? undefined,
      draft: draft.id,
    });
  }

  /**
   * Forwards the message `reference` names with its attachments: "Fwd: " its
   * subject, and the note in `body` above the quoted original.
   */
  forward(reference: string, options: ForwardOptions): Promise<MessageDetail> {
    const original = this.read(reference, { markRead: false });
    return this.send({
      to: options.to,
      subject: forwardSubject(original.subject),
      body: forwardBody(original, options.body),
      attachments: options.attachments,
      forward: original.id,
    });
  }

  /**
   * Archives the message `reference` names (it leaves the inbox or sent mail for
   * the archive, where search still finds it), or with `archived` false returns it.
   */
  archive(reference: string, archived = true): MessageSummary {
    return this.#summary(this.#actions.setArchived(reference, archived));
  }

  /** Marks the message `reference` names read, or with `read` false unread. */
  markRead(reference: string, read = true): MessageSummary {
    return this.#summary(this.#actions.setRead(reference, read));
  }

  /**
   * Deletes the message `reference` names for good, with its attachments; a
   * copy that had not left this device is cancelled (see `MailActions.delete`).
   */
  delete(reference: string): DeleteResult {
    const purged = this.#actions.delete(reference);
    const party = partiesOf(this.identity, this.contacts);
    return {
      ...purged,
      cancelled: purged.cancelled.map(party),
      riding: purged.riding.map(party),
    };
  }

  /**
   * Maintenance of deleted mail: forgets the received messages deleted long
   * enough ago that no copy of them can still arrive, and rewrites the search
   * index if it still holds words of deleted mail (see `compactSearchIndex`).
   */
  purgeDeleted(): { forgotten: number; indexCompacted: boolean } {
    return { forgotten: purgeDeletedMail(this.ctx), indexCompacted: compactSearchIndex(this.ctx) };
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
      : folder === "archive"
      ? this.ctx.db.all<SummaryRow>(
        `SELECT ${SUMMARY_COLUMNS_OF_M} FROM messages m
         WHERE m.archived = 1 AND m.list_key < ? ORDER BY m.list_key DESC LIMIT ?`,
        before,
        limit + 1,
      )
      : this.ctx.db.all<SummaryRow>(
        `SELECT ${SUMMARY_COLUMNS_OF_M} FROM messages m
         WHERE m.folder = ? AND m.archived = 0 AND m.list_key < ? ORDER BY m.list_key DESC LIMIT ?`,
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
       WHERE message_search MATCH ? AND s.rowid < ?
         AND (?3 IS NULL OR (CASE WHEN m.archived THEN 'archive' ELSE m.folder END) = ?3)
       ORDER BY s.rowid DESC LIMIT ?`,
      expression,
      before,
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
    const party = partiesOf(this.identity, this.contacts);
    const shown = rows.slice(0, limit);
    return {
      messages: shown.map((row) => summarize(this.ctx.db, row, party)),
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
      // Other open pages show it read too.
      emit(this.ctx, "message-changed", { id: row.id });
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
    const party = partiesOf(this.identity, this.contacts);
    const rows = this.ctx.db.all<MessageRow>(
      "SELECT * FROM messages WHERE thread_id = ? ORDER BY sent_at, id",
      thread_id,
    ).map((row) => ({ row, detail: { ...summarize(this.ctx.db, row, party), body: row.body } }));
    if (options.markRead) {
      for (const { row } of rows) {
        if (row.folder === "inbox" && row.read_at === null) {
          emit(this.ctx, "message-changed", { id: row.id });
        }
      }
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
      archive: folders.get("archive")?.total ?? 0,
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

  #summary(row: SummaryRow, party = partiesOf(this.identity, this.contacts)): MessageSummary {
    return summarize(this.ctx.db, row, party);
  }

  #attachments(messageRowId: number): Attachment[] {
    return attachmentsOf(this.ctx.db, messageRowId);
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
