/**
 * How messages sit in the database: the rows of tables `messages` and
 * `attachments`, finding a message by a prefix of its id, writing a mail (sent
 * or received) with its attachments, the cursors that page listings and the
 * full-text queries that search them. Shared by sending, taking in and listing
 * mail.
 *
 * Writing a message row is all it takes: the schema's triggers (migration V5 in
 * `store/schema.ts`) give it its list key, index its text and count it, in the
 * same statement.
 *
 * @module
 */
import type { SqliteDatabase } from "../../bindings/durable.ts";
import { UserInputError } from "./errors.ts";
import type { Attachment, MailContent } from "./protocol/messages.ts";

/** Raised when a message reference matches none or several messages. */
export class MessageLookupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MessageLookupError";
  }
}

/** The row of table `messages`. */
export interface MessageRow {
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
  /** Its place in listings, newest last (see migration V5 in `store/schema.ts`). */
  list_key: number;
  /** 1 once archived (migration V6). */
  archived: 0 | 1;
}

/** A message row without its body: what a listing needs. */
export type SummaryRow = Omit<MessageRow, "body">;

/** The columns of a {@linkcode SummaryRow}. */
export const SUMMARY_COLUMNS =
  "id, message_id, sender_id, folder, thread_id, in_reply_to, subject, recipients, sent_at, received_at, read_at, list_key, archived";

/** The columns of a {@linkcode SummaryRow} of `messages m` (in a query that joins it). */
export const SUMMARY_COLUMNS_OF_M = SUMMARY_COLUMNS.split(", ").map((c) => `m.${c}`).join(", ");

/** A bound above every list key (keys stay under 2^53: see migration V5). */
export const FIRST_CURSOR = 2 ** 53;

/**
 * The list key a cursor holds: a page that follows it starts with the message
 * after that key, so it stays put whatever arrives meanwhile. A cursor is the
 * list key of the last message of the page before, in decimal.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cursorKey } from "./message_rows.ts";
 *
 * assert.equal(cursorKey("1813263974400003"), 1813263974400003);
 * assert.throws(() => cursorKey("page 2"));
 * ```
 */
export function cursorKey(cursor: string): number {
  const key = /^\d{1,16}$/.test(cursor) ? Number(cursor) : NaN;
  if (!(key <= Number.MAX_SAFE_INTEGER)) {
    throw new UserInputError(
      `Cursor "${cursor.slice(0, 40)}" is not one a page gave: pass the "next" of the page before`,
    );
  }
  return key;
}

/** A person a search may name: a contact, or this endpoint itself. */
export interface Named {
  readonly id: string;
  readonly name: string;
}

/** Most words a search takes. */
export const MAX_SEARCH_WORDS = 32;

/**
 * The FTS5 query (for table `message_search`) that finds what a person typed,
 * or null when it holds no word to look for.
 *
 * Every word typed must be a word of the subject, the body or an attachment's
 * name, or of the name of the sender, matched here against `people` (as they
 * are named now, renamed or not). A word ending in `*` matches the words it
 * starts. Words are found whole otherwise: a search then walks the index newest
 * first and stops after a page, whereas a prefix reads every word it starts.
 * Each word reaches FTS5 as a quoted phrase (a quote doubled, control
 * characters blanked), which FTS5 splits into words as it split the mail, so no
 * query is an FTS5 syntax error: `foo"bar`, `AND`, `NEAR(` are searched as
 * words, and `*` alone finds nothing.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { searchExpression } from "./message_rows.ts";
 *
 * const people = [{ id: "0ab12", name: "Bob Smith" }];
 * assert.equal(
 *   searchExpression('Bob  say"s sm*', people),
 *   '({subject body attachments} : "Bob" OR sender : "0ab12") AND ' +
 *     '({subject body attachments} : "say""s") AND ' +
 *     '({subject body attachments} : "sm"* OR sender : "0ab12")',
 * );
 * assert.equal(searchExpression("* AND", people), '({subject body attachments} : "AND")');
 * assert.equal(searchExpression(' "* ', people), null);
 * ```
 */
export function searchExpression(text: string, people: readonly Named[]): string | null {
  const terms = text.split(/\s+/).map((chunk) => ({
    words: searchTokens(chunk),
    prefix: chunk.endsWith("*"),
    // deno-lint-ignore no-control-regex
    phrase: chunk.replace(/\*+$/, "").replace(/[\u0000-\u001f\u007f]/g, " ").replaceAll('"', '""'),
  })).filter((term) => term.words.length > 0); // a phrase of no word would match nothing
  if (terms.length > MAX_SEARCH_WORDS) {
    throw new UserInputError(
      `Cannot search for more than ${MAX_SEARCH_WORDS} words: received ${terms.length}`,
    );
  }
  const named = people.map((p) => ({ id: p.id, words: searchTokens(p.name) }))
    .filter((p) => /^[0-9A-Za-z]+$/.test(p.id));
  const clauses = terms.map(({ words, prefix, phrase }) => {
    const senders = named.filter((p) => occursIn(p.words, words, prefix))
      .map((p) => ` OR sender : "${p.id}"`);
    return `({subject body attachments} : "${phrase}"${prefix ? "*" : ""}${senders.join("")})`;
  });
  return clauses.length > 0 ? clauses.join(" AND ") : null;
}

/**
 * The words of `text`, near enough as FTS5's `unicode61` tokenizer (with
 * `remove_diacritics 2`) makes them: lower case, accents removed, split at what
 * is neither a letter nor a digit. For matching names, and for telling a search
 * term with no word in it.
 */
function searchTokens(text: string): string[] {
  return text.normalize("NFD").replace(/\p{M}+/gu, "").toLowerCase()
    .split(/[^\p{L}\p{N}]+/u).filter(Boolean);
}

/** Whether `words` occur in `name` in a row (with `prefix`, the last one as a word's start). */
function occursIn(name: readonly string[], words: readonly string[], prefix: boolean): boolean {
  const last = words.length - 1;
  for (let at = 0; at + words.length <= name.length; at++) {
    const found = words.every((word, i) =>
      i === last && prefix ? name[at + i].startsWith(word) : name[at + i] === word
    );
    if (found) return true;
  }
  return false;
}

/** Finds a message by (a prefix of at least 4 characters of) its id. */
export function findMessage(db: SqliteDatabase, reference: string): MessageRow {
  const ref = reference.trim().toLowerCase();
  if (ref.length < 4) {
    throw new MessageLookupError(
      `Message reference "${reference}" is too short: give at least 4 characters`,
    );
  }
  const rows = db.all<MessageRow>(
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

/** The attachments of the message in row `messageRowId`, with their content, in order. */
export function attachmentsOf(db: SqliteDatabase, messageRowId: number): Attachment[] {
  return db.all<{ file_name: string; media_type: string; content: Uint8Array }>(
    "SELECT file_name, media_type, content FROM attachments WHERE message = ? ORDER BY position",
    messageRowId,
  ).map((a) => ({ fileName: a.file_name, mediaType: a.media_type, content: a.content }));
}

/** A stored message as the mail it was sent as, attachments included. */
export function mailContentOf(db: SqliteDatabase, row: MessageRow): MailContent {
  return {
    messageId: row.message_id,
    threadId: row.thread_id,
    inReplyTo: row.in_reply_to ?? "",
    sentAt: new Date(row.sent_at),
    subject: row.subject,
    body: row.body,
    recipients: JSON.parse(row.recipients),
    attachments: attachmentsOf(db, row.id),
  };
}

/**
 * Stores `mail` in `folder` with its attachments and returns its row id. Sent
 * mail counts as read at `receivedAt`; received mail arrived then.
 */
export function insertMessage(
  db: SqliteDatabase,
  senderId: string,
  folder: "inbox" | "sent",
  mail: MailContent,
  sentAt: number,
  receivedAt: number,
): number {
  const rowId = Number(
    db.prepare(
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
    db.run(
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

/**
 * Marks the copy of message `messageRowId` for `recipientId` as queued in
 * parcel `parcelKey`, if it is still waiting (for a pairing answer or an
 * authorisation): how many copies moved, 0 when another writer queued it first.
 */
export function queueWaiting(
  db: SqliteDatabase,
  messageRowId: number,
  recipientId: string,
  parcelKey: string,
  now: Date,
): number {
  return db.run(
    `UPDATE deliveries SET state = 'queued', parcel_key = ?, updated_at = ?
     WHERE message = ? AND recipient_id = ? AND state = 'waiting'`,
    parcelKey,
    now.getTime(),
    messageRowId,
    recipientId,
  );
}
