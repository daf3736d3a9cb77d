/**
 * Drafts: `relaymail drafts` lists them; `draft save`, `draft send` and
 * `draft delete` write, send and drop one. A draft keeps text, recipients and
 * what it answers or forwards, not files.
 *
 * @module
 */
import type { Command } from "commander";
import { UserInputError } from "../../core/errors.ts";
import { withMessenger } from "../connection.ts";
import { readText } from "../files.ts";
import { shortId } from "../format.ts";
import { draftsTable, type Output, queuedText } from "../render.ts";

/** Options of `draft save`. */
interface SaveFlags {
  id?: string;
  to?: string[];
  subject?: string;
  body?: string;
  bodyFile?: string;
  replyTo?: string;
  forward?: string;
}

/** Adds `drafts` and `draft …` to `program`. */
export function addDraftCommands(program: Command, output: Output): void {
  program.command("drafts").description("list drafts, the most recently saved first")
    .action(function (this: Command) {
      return withMessenger(this, async (messenger, options) => {
        const { drafts, names } = await messenger.call("drafts.list");
        output.show(options, drafts, () => draftsTable(drafts, names));
      });
    });

  const draft = program.command("draft").description("save, send or delete a draft");
  draft.command("save")
    .description("save a new draft, or with --id change one (what is not given stays)")
    .option("--id <draft>", "the draft to change")
    .option("-t, --to <contact...>", "recipients: contact names or fingerprints")
    .option("-s, --subject <subject>", "subject")
    .option("-b, --body <text>", "body text")
    .option("--body-file <file>", "read the body from a file (- for stdin)")
    .option("-r, --reply-to <message>", "the message it answers")
    .option("--forward <message>", "the message it forwards, attachments and all")
    .action(function (this: Command, opts: SaveFlags) {
      return withMessenger(this, async (messenger, options) => {
        if (opts.body !== undefined && opts.bodyFile !== undefined) {
          throw new UserInputError("Give the body with --body or --body-file, not both");
        }
        const body = opts.bodyFile === undefined
          ? opts.body
          : opts.bodyFile === "-"
          ? await new Response(Deno.stdin.readable).text()
          : await readText(opts.bodyFile);
        const saved = await messenger.call("drafts.save", {
          id: opts.id,
          to: opts.to,
          subject: opts.subject,
          body,
          replyTo: opts.replyTo,
          forward: opts.forward,
        });
        output.show(options, saved, () => `Saved draft ${shortId(saved.id)}`);
      });
    });
  draft.command("send <draft>").description("send a draft (which deletes it)")
    .action(function (this: Command, reference: string) {
      return withMessenger(this, async (messenger, options) => {
        const message = await messenger.call("drafts.send", { draft: reference });
        output.show(options, message, () => queuedText(message));
      });
    });
  draft.command("delete <draft>").description("delete a draft")
    .action(function (this: Command, reference: string) {
      return withMessenger(this, async (messenger, options) => {
        const result = await messenger.call("drafts.delete", { draft: reference });
        output.show(options, result, () => `Deleted draft ${shortId(result.deleted)}`);
      });
    });
}
