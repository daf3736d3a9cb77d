/**
 * Mail: sending and forwarding, the folders, reading, archiving, read state,
 * deleting and exporting; and the drafts (`drafts.ts`). Attachments travel as
 * bytes: the CLI reads the files it attaches and writes the ones it saves.
 *
 * @module
 */
import { messageToEml, threadToEml } from "../../core/eml.ts";
import { UserInputError } from "../../core/errors.ts";
import { type AttachmentInput, MAX_PAGE } from "../../core/mailbox.ts";
import type { Operation, OperationContext } from "../types.ts";
import { count, optionalText, text } from "./_input.ts";
import { DRAFT_OPERATIONS } from "./drafts.ts";

/** The folders `mail.list` lists. */
const FOLDERS = ["inbox", "sent", "archive", "outbox"] as const;

/** The folders `mail.search` may keep to. */
const SEARCHED = ["inbox", "sent", "archive"] as const;

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
      /** A message whose attachments this one carries: all, or those at `forwardAttachments`. */
      forward?: string;
      forwardAttachments?: readonly number[];
      /** The draft it was written in: deleted once sent. */
      draft?: string;
    },
  ) => {
    const forwardAttachments = input.forwardAttachments?.map((n) =>
      count(n, "An attachment's index", 0, 10_000)
    );
    return context.messenger.mailbox.send({
      to: recipients(input.to),
      subject: optionalText(input.subject, "The subject"),
      body: optionalText(input.body, "The body") ?? "",
      attachments: attachmentsOf(input.attachments),
      replyTo: optionalText(input.replyTo, "The message replied to"),
      forward: optionalText(input.forward, "The message forwarded"),
      forwardAttachments,
      draft: optionalText(input.draft, "The draft"),
    });
  },

  /**
   * Forwards `message` to `to` with its attachments (and `attachments` added):
   * "Fwd: " its subject, `body` above the quoted original.
   */
  "mail.forward": (
    context: OperationContext,
    input: {
      message: string;
      to: readonly string[];
      body?: string;
      attachments?: readonly AttachmentInput[];
    },
  ) =>
    context.messenger.mailbox.forward(text(input.message, "The message forwarded"), {
      to: recipients(input.to) ?? [],
      body: optionalText(input.body, "The body"),
      attachments: attachmentsOf(input.attachments),
    }),

  /** Archives `message`, or with `archived` false returns it to the inbox or sent mail. */
  "mail.archive": (context: OperationContext, input: { message: string; archived?: boolean }) =>
    context.messenger.mailbox.archive(
      text(input.message, "The message"),
      flag(input.archived, "archived"),
    ),

  /** Marks `message` read, or with `read` false unread. */
  "mail.markRead": (context: OperationContext, input: { message: string; read?: boolean }) =>
    context.messenger.mailbox.markRead(
      text(input.message, "The message"),
      flag(input.read, "read"),
    ),

  /**
   * Deletes `message` for good with its attachments; the deliveries of it that had
   * not left this device are cancelled, their parcels dropped.
   */
  "mail.delete": (context: OperationContext, input: { message: string }) =>
    context.messenger.mailbox.delete(text(input.message, "The message")),

  /**
   * A page of `folder`, newest first: at most `limit` messages, from the page's
   * start `cursor` (the `next` of the page before; none for the newest).
   */
  "mail.list": (
    context: OperationContext,
    input: { folder: (typeof FOLDERS)[number]; limit?: number; cursor?: string | null },
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
    input: {
      text: string;
      folder?: "inbox" | "sent" | "archive";
      limit?: number;
      cursor?: string | null;
    },
  ) => {
    if (input.folder !== undefined && !SEARCHED.includes(input.folder)) {
      throw new UserInputError(
        `Cannot search folder "${input.folder}": search ${SEARCHED.join(", ")}`,
      );
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

  ...DRAFT_OPERATIONS,
} satisfies Record<string, Operation>;

/** Recipients as given: contact references. */
function recipients(to: unknown): string[] | undefined {
  if (to === undefined || to === null) return undefined;
  if (!Array.isArray(to)) throw new UserInputError("The recipients must be a list");
  return to.map((name) => text(name, "A recipient"));
}

/** Attachments as given, each with its bytes. */
function attachmentsOf(list: readonly AttachmentInput[] | undefined): AttachmentInput[] {
  return (list ?? []).map((a) => {
    if (!(a?.content instanceof Uint8Array)) {
      throw new UserInputError("An attachment must carry its content as bytes");
    }
    return {
      fileName: text(a.fileName, "An attachment's name"),
      mediaType: optionalText(a.mediaType, "An attachment's media type"),
      content: a.content,
    };
  });
}

/** `value`, true or false; true when absent. */
function flag(value: unknown, name: string): boolean {
  if (value === undefined || value === null) return true;
  if (typeof value !== "boolean") throw new UserInputError(`"${name}" is true or false`);
  return value;
}

/** The page size and cursor of a listing, checked. */
function pageOptions(input: { limit?: number; cursor?: string | null }) {
  const limit = count(input.limit, "The limit", DEFAULT_LIMIT, MAX_PAGE, 1);
  return { limit, cursor: optionalText(input.cursor, "The cursor") };
}
