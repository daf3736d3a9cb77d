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
        const existing = this.ctx.db.get(
          "SELECT 1 FROM messages WHERE sender_id = ? AND message_id = ?",
          sender.id,
          mail.messageId,
        );
        if (!existing) {
          insertMessage(
            this.ctx.db,
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
}
