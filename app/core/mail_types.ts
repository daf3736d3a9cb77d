/**
 * Messages as the mailbox shows them: where each is listed (the archive
 * included) and whether it is archived. They extend the shared message types
 * of `types.ts`, whose `folder` is the message's direction only.
 *
 * @module
 */
import type { Attachment } from "./protocol/messages.ts";
import type * as shared from "./types.ts";

/** Where a message is listed: received, sent, or archived (either of them). */
export type MailFolder = "inbox" | "sent" | "archive";

/** A message as listed. */
export interface MessageSummary extends Omit<shared.MessageSummary, "folder"> {
  /** `archive` once archived, else `inbox` or `sent` by its direction. */
  readonly folder: MailFolder;
  readonly archived: boolean;
}

/** A message with its body. */
export interface MessageDetail extends MessageSummary {
  readonly body: string;
}

/** A message with its attachments, ready to export. */
export interface ExportableMessage {
  readonly message: MessageDetail;
  readonly attachments: readonly Attachment[];
}

/** What deleting a message purged. */
export interface DeleteResult {
  /** The deleted message's id. */
  readonly deleted: string;
  /** Attachments purged with it. */
  readonly attachments: number;
  /** Outgoing parcels dropped: copies that had not yet left this device. */
  readonly parcels: number;
  /** The recipients whose delivery was cancelled (their copy was waiting or queued). */
  readonly cancelled: readonly shared.Party[];
  /**
   * The recipients whose copy is already packed with our pairing request to
   * them, still on this device: it cannot be taken out, and will still be delivered.
   */
  readonly riding: readonly shared.Party[];
}
