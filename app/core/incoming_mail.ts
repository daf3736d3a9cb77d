/**
 * Taking in mail and delivery receipts from contacts: each mail is stored once,
 * however often its parcel arrives, and answered with a receipt; a receipt marks
 * the messages it names delivered.
 *
 * @module
 */
import { ParcelRefusedError } from "../../bindings/validation.ts";
import type { Contact } from "./contacts.ts";
import { emit, type NodeContext } from "./context.ts";
import type { IdentityManager } from "./identity.ts";
import type { Jobs } from "./jobs.ts";
import { insertMessage } from "./message_rows.ts";
import type { Outbox } from "./outbox.ts";
import { decodeMail, decodeReceipt, type MailContent } from "./protocol/messages.ts";
import type { Effect, Incoming } from "./types.ts";

/**
 * Stores `mail` from `senderId` in the inbox unless it is there already or was
 * deleted (a copy sent again: schema V7), and owes the sender a receipt for it
 * either way (docs/protocol.md §4, §5); synchronous, for use inside the
 * transaction that takes the parcel. True when it is new.
 */
export function storeIncomingMail(
  ctx: NodeContext,
  jobs: Jobs,
  senderId: string,
  mail: MailContent,
): boolean {
  const existing = ctx.db.get(
    "SELECT 1 FROM messages WHERE sender_id = ? AND message_id = ?",
    senderId,
    mail.messageId,
  ) ?? ctx.db.get(
    "SELECT 1 FROM deleted_mail WHERE sender_id = ? AND message_id = ? AND expires_at > ?",
    senderId,
    mail.messageId,
    ctx.now().getTime(),
  );
  if (!existing) {
    insertMessage(ctx.db, senderId, "inbox", mail, mail.sentAt.getTime(), ctx.now().getTime());
  }
  jobs.add("receipt", senderId, mail.messageId);
  return !existing;
}

/** Prepares what incoming mail and receipts change, for the receiver to apply. */
export class IncomingMail {
  constructor(
    private readonly ctx: NodeContext,
    private readonly identity: IdentityManager,
    private readonly outbox: Outbox,
    private readonly jobs: Jobs,
  ) {}

  /** Takes in a mail parcel from a contact: stored once, answered with a receipt. */
  prepareMail(incoming: Incoming, sender: Contact): Effect {
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
        isNew = storeIncomingMail(this.ctx, this.jobs, sender.id, mail);
      },
      after: () => {
        if (isNew) emitMailReceived(this.ctx, sender, mail);
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
}

/**
 * Tells live views that mail arrived, naming its sender as this user calls them
 * (the page's toast and desktop notification show it).
 */
export function emitMailReceived(
  ctx: NodeContext,
  from: { readonly id: string; readonly name: string },
  mail: Pick<MailContent, "messageId" | "subject">,
): void {
  emit(ctx, "mail-received", {
    id: mail.messageId,
    from: { id: from.id, name: from.name },
    subject: mail.subject,
  });
}
