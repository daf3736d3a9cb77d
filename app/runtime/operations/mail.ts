/**
 * Mail: sending, the folders, reading and exporting. Attachments travel as
 * bytes: the CLI reads the files it attaches and writes the ones it saves.
 *
 * @module
 */
import { messageToEml, threadToEml } from "../../core/eml.ts";
import { UserInputError } from "../../core/errors.ts";
import { type AttachmentInput, MAX_PAGE } from "../../core/mailbox.ts";
import type { Operation, OperationContext } from "../types.ts";
import { count, optionalText, text } from "./_input.ts";

/** The folders `mail.list` lists. */
const FOLDERS = ["inbox", "sent", "outbox"] as const;

/** Messages in a page when no limit is given. */
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

  /**
   * A page of `folder`, newest first: at most `limit` messages, from the page's
   * start `cursor` (the `next` of the page before; none for the newest).
   */
  "mail.list": (
    context: OperationContext,
    input: { folder: "inbox" | "sent" | "outbox"; limit?: number; cursor?: string | null },
  ) => {
    if (!FOLDERS.includes(input.folder)) {
      throw new UserInputError(`No folder "${input.folder}": there are ${FOLDERS.join(", ")}`);
    }
    return context.messenger.mailbox.folderPage(input.folder, pageOptions(input));
  },

  /**
   * A page of the messages matching `text` (each word found whole, or as a word's
   * start when it ends in `*`), newest first, from every folder or only `folder`.
   */
  "mail.search": (
    context: OperationContext,
    input: { text: string; folder?: "inbox" | "sent"; limit?: number; cursor?: string | null },
  ) => {
    if (input.folder !== undefined && input.folder !== "inbox" && input.folder !== "sent") {
      throw new UserInputError(`Cannot search folder "${input.folder}": search inbox or sent`);
    }
    return context.messenger.mailbox.searchPage(text(input.text, "The text searched for"), {
      folder: input.folder,
      ...pageOptions(input),
    });
  },

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

/** The page size and cursor of a listing, checked. */
function pageOptions(input: { limit?: number; cursor?: string | null }) {
  const limit = count(input.limit, "The limit", DEFAULT_LIMIT, MAX_PAGE);
  if (limit === 0) throw new UserInputError(`The limit takes a whole number from 1 to ${MAX_PAGE}`);
  return { limit, cursor: optionalText(input.cursor, "The cursor") };
}
