/**
 * Mail: `relaymail send`, `forward`, the folders (the archive's listing too),
 * `search`, `read`, `thread`, `export-eml`, `archive`, `unarchive`,
 * `mark-read`, `mark-unread` and `delete`; the drafts' commands are in
 * `drafts.ts`. The command reads the files it attaches and writes the files it
 * saves; the messenger sees and returns bytes.
 *
 * @module
 */
import type { Command } from "commander";
import { safeFileName } from "../../core/eml.ts";
import { UserInputError } from "../../core/errors.ts";
import type { FolderName, MessagePage } from "../../core/mailbox.ts";
import { collect, cursor, limit } from "../args.ts";
import { withMessenger } from "../connection.ts";
import { makeDirectory, readAttachment, readText, writeFile, writeNewFile } from "../files.ts";
import { shortId, size } from "../format.ts";
import { deletedText, messagesTable, messageText, type Output, queuedText } from "../render.ts";
import { addDraftCommands } from "./drafts.ts";

/** Messages a listing prints when not told how many. */
const PAGE = 100;

/** Options of the listings. */
interface PageFlags {
  limit?: string;
  before?: string;
}

/** What a listing asks the operation for. */
function pageInput(opts: PageFlags): { limit: number; cursor?: string } {
  return {
    limit: opts.limit === undefined ? PAGE : limit(opts.limit),
    cursor: opts.before === undefined ? undefined : cursor(opts.before),
  };
}

/**
 * Prints a page: a table, with the flag that prints the next page when there is
 * one. With `--json`, `{ messages, next }` once `--limit` or `--before` asks for
 * pages; a bare `--json` prints the list of messages alone, as it always did.
 */
function showPage(
  output: Output,
  options: { json?: boolean },
  opts: PageFlags,
  page: MessagePage,
  folder: FolderName | "search",
): void {
  const paged = opts.limit !== undefined || opts.before !== undefined;
  output.show(
    options,
    paged ? page : page.messages,
    () =>
      page.messages.length === 0 ? (folder === "search" ? "Nothing matches." : "No messages.") : [
        messagesTable(page.messages, folder),
        ...(page.next ? [`more: --before ${page.next}`] : []),
      ].join("\n"),
  );
}

/** Reads the files to attach. */
async function readAttachments(paths: readonly string[] = []) {
  const attachments = [];
  for (const path of paths) attachments.push(await readAttachment(path));
  return attachments;
}

/** Options of `send`. */
interface SendFlags {
  to?: string[];
  subject?: string;
  body?: string;
  bodyFile?: string;
  attach?: string[];
  replyTo?: string;
}

/** Adds the mail commands to `program`. */
export function addMailCommands(program: Command, output: Output): void {
  program.command("send")
    .description("send a message (one parcel per recipient)")
    .option("-t, --to <contact...>", "recipients: contact names or fingerprints")
    .option("-s, --subject <subject>", "subject")
    .option("-b, --body <text>", "body text")
    .option("--body-file <file>", "read the body from a file (- for stdin)")
    .option(
      "-a, --attach <file>",
      "attach a file (repeatable)",
      collect,
    )
    .option("-r, --reply-to <message>", "answer this message, in its conversation")
    .action(function (this: Command, opts: SendFlags) {
      return withMessenger(this, async (messenger, options) => {
        if (opts.body !== undefined && opts.bodyFile !== undefined) {
          throw new UserInputError("Give the body with --body or --body-file, not both");
        }
        const body = opts.bodyFile === undefined
          ? opts.body ?? ""
          : opts.bodyFile === "-"
          ? await new Response(Deno.stdin.readable).text()
          : await readText(opts.bodyFile);
        const message = await messenger.call("mail.send", {
          to: opts.to,
          subject: opts.subject,
          body,
          attachments: await readAttachments(opts.attach),
          replyTo: opts.replyTo,
        });
        output.show(options, message, () => queuedText(message));
      });
    });

  program.command("forward <message>")
    .description("forward a message with its attachments, quoted under your note")
    .requiredOption("-t, --to <contact...>", "recipients: contact names or fingerprints")
    .option("-b, --body <text>", "a note above the forwarded message")
    .option("-a, --attach <file>", "attach another file (repeatable)", collect)
    .action(function (
      this: Command,
      reference: string,
      opts: { to: string[]; body?: string; attach?: string[] },
    ) {
      return withMessenger(this, async (messenger, options) => {
        const message = await messenger.call("mail.forward", {
          message: reference,
          to: opts.to,
          body: opts.body,
          attachments: await readAttachments(opts.attach),
        });
        output.show(options, message, () => queuedText(message, "Forwarded as"));
      });
    });

  for (const folder of ["inbox", "sent", "outbox"] as const) {
    program.command(folder)
      .description(
        folder === "inbox"
          ? "list received messages"
          : folder === "sent"
          ? "list sent messages with each recipient's delivery state"
          : "list sent messages not yet delivered to everyone",
      )
      .option("--limit <n>", `at most this many (default ${PAGE})`)
      .option("--before <cursor>", "the page after the one that printed this cursor")
      .action(function (this: Command, opts: PageFlags) {
        return withMessenger(this, async (messenger, options) => {
          const page = await messenger.call("mail.list", { folder, ...pageInput(opts) });
          showPage(output, options, opts, page, folder);
        });
      });
  }

  program.command("archive [message]")
    .description(
      "archive a message (it leaves the inbox or sent mail); with none, list the archive",
    )
    .option("--limit <n>", `list at most this many (default ${PAGE})`)
    .option("--before <cursor>", "list the page after the one that printed this cursor")
    .action(function (this: Command, reference: string | undefined, opts: PageFlags) {
      return withMessenger(this, async (messenger, options) => {
        if (reference === undefined) {
          const page = await messenger.call("mail.list", { folder: "archive", ...pageInput(opts) });
          showPage(output, options, opts, page, "archive");
          return;
        }
        if (opts.limit !== undefined || opts.before !== undefined) {
          throw new UserInputError("--limit and --before list the archive: give no message");
        }
        const message = await messenger.call("mail.archive", {
          message: reference,
          archived: true,
        });
        output.show(options, message, () => `Archived ${shortId(message.id)} "${message.subject}"`);
      });
    });

  program.command("unarchive <message>")
    .description("return an archived message to the inbox or sent mail")
    .action(function (this: Command, reference: string) {
      return withMessenger(this, async (messenger, options) => {
        const message = await messenger.call("mail.archive", {
          message: reference,
          archived: false,
        });
        output.show(
          options,
          message,
          () => `Moved ${shortId(message.id)} "${message.subject}" back to ${message.folder}`,
        );
      });
    });

  for (const read of [true, false]) {
    program.command(read ? "mark-read <message>" : "mark-unread <message>")
      .description(read ? "mark a message read" : "mark a message unread")
      .action(function (this: Command, reference: string) {
        return withMessenger(this, async (messenger, options) => {
          const message = await messenger.call("mail.markRead", { message: reference, read });
          output.show(
            options,
            message,
            () => `Marked ${shortId(message.id)} "${message.subject}" ${read ? "read" : "unread"}`,
          );
        });
      });
  }

  program.command("delete <message>")
    .description(
      "delete a message for good, with its attachments (a copy not yet sent is cancelled)",
    )
    .action(function (this: Command, reference: string) {
      return withMessenger(this, async (messenger, options) => {
        const result = await messenger.call("mail.delete", { message: reference });
        output.show(options, result, () =>
          [
            deletedText(result),
            ...result.riding.map((p) =>
              `Already packed with the pairing request to ${p.name}: it will still be delivered`
            ),
          ].join("\n"));
      });
    });

  addDraftCommands(program, output);

  program.command("search <text>")
    .description(
      "find messages by words of their subject, body, attachment names or sender's name " +
        "(a word ending in * finds the words it starts)",
    )
    .option("--limit <n>", `at most this many (default ${PAGE})`)
    .option("--before <cursor>", "the page after the one that printed this cursor")
    .action(function (this: Command, text: string, opts: PageFlags) {
      return withMessenger(this, async (messenger, options) => {
        const page = await messenger.call("mail.search", { text, ...pageInput(opts) });
        showPage(output, options, opts, page, "search");
      });
    });

  program.command("read <message>")
    .description("show a message (and mark it read)")
    .option("--save-attachments <dir>", "write its attachments into this directory")
    .action(function (this: Command, reference: string, opts: { saveAttachments?: string }) {
      return withMessenger(this, async (messenger, options) => {
        const directory = opts.saveAttachments;
        const { message, attachments } = await messenger.call("mail.read", {
          message: reference,
          attachments: Boolean(directory),
        });
        const saved: string[] = [];
        if (directory) {
          await makeDirectory(directory);
          for (const a of attachments) {
            // The sender chose the name: it must not reach outside the directory,
            // nor replace a file already there.
            const name = safeFileName(a.fileName, "attachment");
            saved.push(await writeNewFile(directory, name, a.content));
          }
        }
        output.show(
          options,
          directory ? { ...message, savedAttachments: saved } : message,
          () => [messageText(message), ...saved.map((path) => `Saved:    ${path}`)].join("\n"),
        );
      });
    });

  program.command("thread <message>").description(
    "show the whole conversation a message belongs to",
  )
    .action(function (this: Command, reference: string) {
      return withMessenger(this, async (messenger, options) => {
        const messages = await messenger.call("mail.thread", { message: reference });
        output.show(
          options,
          messages,
          () => messages.map(messageText).join("\n\n" + "─".repeat(60) + "\n\n"),
        );
      });
    });

  program.command("export-eml <message>")
    .description("export a message, or with --thread its whole conversation, as an .eml file")
    .option("--thread", "export the whole conversation")
    .option("-o, --out <file>", "where to write it (default: <subject>.eml here)")
    .action(function (this: Command, reference: string, opts: { thread?: boolean; out?: string }) {
      return withMessenger(this, async (messenger, options) => {
        const { subject, eml } = await messenger.call("mail.exportEml", {
          message: reference,
          thread: opts.thread === true,
        });
        const file = opts.out ?? `${safeFileName(subject)}.eml`;
        await writeFile(file, eml);
        output.show(
          options,
          { file, bytes: eml.byteLength },
          () => `Wrote ${file} (${size(eml.byteLength)})`,
        );
      });
    });
}
