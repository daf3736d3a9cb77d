/**
 * Export of messages as standard email (RFC 5322 with MIME), which ordinary mail
 * clients open. Addresses use the reserved `.invalid` domain (RFC 2606): a
 * Relaymail identity is a key, not a mailbox on some server.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import MailComposer from "nodemailer/lib/mail-composer";
import type { ExportableMessage } from "./mail_types.ts";
import type { Party } from "./types.ts";

/** Domain of the addresses in exported messages. */
export const EXPORT_DOMAIN = "relaymail.invalid";

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

/** Longest name {@linkcode safeFileName} returns, in UTF-16 units: at most 240 bytes of UTF-8. */
const MAX_FILE_NAME_LENGTH = 80;

/**
 * Path separators, control characters (C0, DEL, C1), the other characters Windows
 * forbids in names, and the bidirectional controls that could show `exe.pdf` for a
 * `.exe` name.
 */
const UNSAFE_CHARACTERS = /[\\/:*?"<>|\p{Cc}\u200e\u200f\u202a-\u202e\u2066-\u2069]+/gu;

/** Names Windows gives to devices, with or without an extension (`nul.txt`). */
const DEVICE_NAME =
  /^(?:con|prn|aux|nul|com[0-9\u00b9\u00b2\u00b3]|lpt[0-9\u00b9\u00b2\u00b3])(?:\.|$)/i;

/**
 * `text` (a subject, an attachment's name chosen by its sender) made safe as the
 * name of one file in a directory, on every common filesystem: no separators or
 * control characters, never `.`, `..` or empty (`fallback` then), no Windows device
 * name, and at most 80 characters, keeping a short extension.
 *
 * @example A hostile attachment name
 * ```ts
 * import assert from "node:assert/strict";
 * import { safeFileName } from "./eml.ts";
 *
 * assert.equal(safeFileName("..", "attachment"), "attachment");
 * assert.equal(safeFileName("../../.bashrc"), ".._.._.bashrc");
 * ```
 */
export function safeFileName(text: string, fallback = "message"): string {
  // Windows drops trailing dots and spaces, which also turns `.` and `..` into nothing.
  let name = text.replace(UNSAFE_CHARACTERS, "_").trim().replace(/[. ]+$/, "");
  if (name === "") return fallback;
  if (DEVICE_NAME.test(name)) name = `_${name}`;
  if (name.length <= MAX_FILE_NAME_LENGTH) return name;
  const extension = /\.[^.]{1,16}$/.exec(name)?.[0] ?? "";
  let end = MAX_FILE_NAME_LENGTH - extension.length;
  if (/[\ud800-\udbff]/.test(name[end - 1])) end--; // never half a surrogate pair
  return (name.slice(0, end).replace(/[. ]+$/, "") || fallback) + extension;
}

/**
 * `name` numbered the way file managers number copies, before its extension.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { numberedFileName } from "./eml.ts";
 *
 * assert.equal(numberedFileName("report.pdf", 2), "report (2).pdf");
 * ```
 */
export function numberedFileName(name: string, n: number): string {
  const dot = name.lastIndexOf(".");
  return dot > 0 ? `${name.slice(0, dot)} (${n})${name.slice(dot)}` : `${name} (${n})`;
}
