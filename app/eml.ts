/**
 * Export of messages as standard email (RFC 5322 with MIME), which ordinary mail
 * clients open. Addresses use the reserved `.invalid` domain (RFC 2606): a
 * Relaymail identity is a key, not a mailbox on some server.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import MailComposer from "nodemailer/lib/mail-composer";
import type { Party } from "./mailbox.ts";
import type { MessageDetail } from "./mailbox.ts";
import type { Attachment } from "./protocol/messages.ts";

/** Domain of the addresses in exported messages. */
export const EXPORT_DOMAIN = "relaymail.invalid";

/** A message with its attachments, ready to export. */
export interface ExportableMessage {
  readonly message: MessageDetail;
  readonly attachments: readonly Attachment[];
}

/** One message as an `.eml` file's bytes. */
export function messageToEml({ message, attachments }: ExportableMessage): Promise<Uint8Array> {
  const references = [...new Set([message.threadId, message.inReplyTo])]
    .filter((id): id is string => !!id && id !== message.id);
  return compose({
    from: address(message.from),
    to: message.to.map(address),
    subject: message.subject,
    text: message.body,
    date: message.sentAt,
    messageId: messageIdHeader(message.id),
    inReplyTo: message.inReplyTo ? messageIdHeader(message.inReplyTo) : undefined,
    references: references.length ? references.map(messageIdHeader).join(" ") : undefined,
    headers: {
      "X-Relaymail-Sender-Fingerprint": message.from.fingerprint,
      "X-Relaymail-Thread": message.threadId,
    },
    attachments: attachments.map((a) => ({
      filename: a.fileName,
      contentType: a.mediaType,
      content: Buffer.from(a.content),
    })),
  });
}

/**
 * A whole conversation as one `.eml`: a message whose parts are the conversation's
 * messages (`message/rfc822`), oldest first, as mail clients show forwarded mail.
 */
export async function threadToEml(
  messages: readonly ExportableMessage[],
  exportedBy: Party,
  exportedAt: Date,
): Promise<Uint8Array> {
  if (messages.length === 0) throw new RangeError("Cannot export an empty conversation");
  const parts = await Promise.all(messages.map(messageToEml));
  const subject = messages[0].message.subject;
  return compose({
    from: address(exportedBy),
    to: address(exportedBy),
    subject: `Conversation: ${subject}`,
    date: exportedAt,
    text:
      `${messages.length} message(s) of the Relaymail conversation "${subject}", oldest first, ` +
      `each attached as a message of its own.\n`,
    headers: { "X-Relaymail-Thread": messages[0].message.threadId },
    attachments: parts.map((eml, index) => ({
      filename: `${String(index + 1).padStart(3, "0")} ${
        safeFileName(messages[index].message.subject)
      }.eml`,
      contentType: "message/rfc822",
      contentDisposition: "attachment",
      content: Buffer.from(eml),
    })),
  });
}

function compose(options: Record<string, unknown>): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    new MailComposer(options).compile().build((error: Error | null, message: Uint8Array) =>
      error ? reject(error) : resolve(new Uint8Array(message))
    );
  });
}

function address(party: Party): { name: string; address: string } {
  return { name: party.name, address: `${party.id}@${EXPORT_DOMAIN}` };
}

function messageIdHeader(id: string): string {
  return `<${id}@${EXPORT_DOMAIN}>`;
}

/** A subject made safe as a file name on every common filesystem. */
export function safeFileName(text: string): string {
  // deno-lint-ignore no-control-regex -- control characters are exactly what must go
  return (text.replace(/[\\/:*?"<>|\x00-\x1f]+/g, "_").trim() || "message").slice(0, 80);
}
