/**
 * Mail: sending, the folders, reading and exporting. Attachments travel as
 * bytes: the CLI reads the files it attaches and writes the ones it saves.
 *
 * @module
 */
import { messageToEml, threadToEml } from "../../core/eml.ts";
import { UserInputError } from "../../core/errors.ts";
import type { AttachmentInput } from "../../core/mailbox.ts";
import type { Operation, OperationContext } from "../types.ts";
import { count, optionalText, text } from "./_input.ts";

/** The folders `mail.list` lists. */
const FOLDERS = ["inbox", "sent", "outbox"] as const;

/** Messages listed at most when no limit is given. */
const DEFAULT_LIMIT = 100;

/** The mail operations. */
export const MAIL_OPERATIONS = {
  /** Queues a message, one parcel per recipient; returns it with each delivery's state. */
  "mail.send": (
    context: OperationContext,
    input: {
      to?: readonly string[];
      subject?: string;
      body?: string;
      attachments?: readonly AttachmentInput[];
      replyTo?: string;
    },
  ) => {
    const to = input.to?.map((name) => text(name, "A recipient"));
    const attachments = (input.attachments ?? []).map((a) => {
      if (!(a?.content instanceof Uint8Array)) {
        throw new UserInputError("An attachment must carry its content as bytes");
      }
      return {
        fileName: text(a.fileName, "An attachment's name"),
        mediaType: optionalText(a.mediaType, "An attachment's media type"),
        content: a.content,
      };
    });
    return context.messenger.mailbox.send({
      to,
      subject: optionalText(input.subject, "The subject"),
      body: optionalText(input.body, "The body") ?? "",
      attachments,
      replyTo: optionalText(input.replyTo, "The message replied to"),
    });
  },

  /** The messages of `folder`: newest first, at most `limit`. */
  "mail.list": (
    context: OperationContext,
    input: { folder: "inbox" | "sent" | "outbox"; limit?: number },
  ) => {
    if (!FOLDERS.includes(input.folder)) {
      throw new UserInputError(`No folder "${input.folder}": there are ${FOLDERS.join(", ")}`);
    }
    return context.messenger.mailbox.list(input.folder, {
      limit: count(input.limit, "The limit", DEFAULT_LIMIT),
    });
  },

  /** The messages whose subject or body contains `text`. */
  "mail.search": (context: OperationContext, input: { text: string }) =>
    context.messenger.mailbox.search(text(input.text, "The text searched for")),

  /**
   * The message `message` (an id or its first characters), which is marked read;
   * with `attachments`, their names and contents too.
   */
  "mail.read": (context: OperationContext, input: { message: string; attachments?: boolean }) => {
    const reference = text(input.message, "The message");
    const mailbox = context.messenger.mailbox;
    const message = mailbox.read(reference);
    return { message, attachments: input.attachments ? mailbox.attachments(reference) : [] };
  },

  /** The whole conversation `message` belongs to, oldest first. */
  "mail.thread": (context: OperationContext, input: { message: string }) =>
    context.messenger.mailbox.thread(text(input.message, "The message")),

  /** The message `message`, or with `thread` its whole conversation, as an .eml file. */
  "mail.exportEml": async (
    context: OperationContext,
    input: { message: string; thread?: boolean },
  ) => {
    const reference = text(input.message, "The message");
    const messenger = context.messenger;
    const exportable = messenger.mailbox.exportable(reference);
    const eml = input.thread
      ? await threadToEml(
        messenger.mailbox.conversation(reference),
        { ...messenger.identity.info(), isMe: true },
        messenger.ctx.now(),
      )
      : await messageToEml(exportable);
    return { subject: exportable.message.subject, eml };
  },
} satisfies Record<string, Operation>;
