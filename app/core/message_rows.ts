/**
 * How messages sit in the database: the rows of tables `messages` and
 * `attachments`, finding a message by a prefix of its id, and writing a mail
 * (sent or received) with its attachments. Shared by sending, taking in and
 * listing mail.
 *
 * @module
 */
import type { SqliteDatabase } from "../../bindings/durable.ts";
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
}

/** A message row without its body: what a listing needs. */
export type SummaryRow = Omit<MessageRow, "body">;

/** The columns of a {@linkcode SummaryRow}. */
export const SUMMARY_COLUMNS =
  "id, message_id, sender_id, folder, thread_id, in_reply_to, subject, recipients, sent_at, received_at, read_at";

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
