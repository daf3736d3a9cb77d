/**
 * `relaymail contacts …`: the contact list, and pairing again with a contact
 * whose authorisations lapsed.
 *
 * @module
 */
import { join } from "node:path";
import type { Command } from "commander";
import { parseDuration } from "../../core/clock.ts";
import { withMessenger } from "../connection.ts";
import { makeDirectory, writeFile } from "../files.ts";
import { shortDate } from "../format.ts";
import { contactsTable, type Output } from "../render.ts";

/** Adds `contacts` and its subcommands to `program`. */
export function addContactCommands(program: Command, output: Output): void {
  const contacts = program.command("contacts").description("list contacts")
    .action(function (this: Command) {
      return withMessenger(this, async (messenger, options) => {
        const list = await messenger.call("contacts.list");
        output.show(options, list, () => {
          // A lapsed contact says what to do about it, under the table.
          const lapsed = list.filter((c) => c.state === "lapsed").map((c) =>
            `${c.name}: lapsed, one of you can no longer write to the other ` +
            `(authorisations ran out after a long silence). To pair again, run ` +
            `"relaymail contacts repair ${c.name}" and give them the invitation.`
          );
          return [contactsTable(list), ...lapsed].join("\n");
        });
      });
    });
  contacts.command("rename <contact> <name>").description("give a contact another name")
    .action(function (this: Command, contact: string, name: string) {
      return withMessenger(this, async (messenger, options) => {
        const renamed = await messenger.call("contacts.rename", { contact, name });
        output.show(options, renamed, () => `Renamed to ${renamed.name}`);
      });
    });
  contacts.command("block <contact>").description("refuse every parcel from a contact from now on")
    .action(function (this: Command, contact: string) {
      return withMessenger(this, async (messenger, options) => {
        const blocked = await messenger.call("contacts.block", { contact });
        output.show(
          options,
          blocked,
          () => `Blocked ${blocked.name}: their parcels will be refused`,
        );
      });
    });
  contacts.command("unblock <contact>").description("accept a blocked contact's parcels again")
    .action(function (this: Command, contact: string) {
      return withMessenger(this, async (messenger, options) => {
        const unblocked = await messenger.call("contacts.unblock", { contact });
        output.show(options, unblocked, () => `Unblocked ${unblocked.name}`);
      });
    });
  contacts.command("repair <contact>")
    .description(
      "pair again with a contact whose authorisations lapsed: an invitation only they can use",
    )
    .option("--expires <duration>", "how long it stays valid, e.g. 2h or 7d", "7d")
    .option("-o, --out <file>", "also write the invitation to this file")
    .action(function (this: Command, contact: string, opts: { expires: string; out?: string }) {
      return withMessenger(this, async (messenger, options) => {
        const invitation = await messenger.call("contacts.repair", {
          contact,
          ttlMs: parseDuration(opts.expires),
        });
        const file = opts.out ??
          join(options.dataDir, "invitations", `${invitation.id.slice(1, 13)}.relaymail-invite`);
        await makeDirectory(join(file, ".."));
        await writeFile(file, invitation.text + "\n", { mode: 0o600 });
        output.show(options, { ...invitation, file }, () => invitation.text);
        if (!options.json) {
          console.error(
            `Invitation ${
              invitation.id.slice(1, 13)
            } to pair again with ${invitation.contactName}, ` +
              `valid until ${shortDate(invitation.expiresAt)} UTC, saved to ${file}. ` +
              `Only ${invitation.contactName} can use it: accepting it restores the same contact ` +
              `on both sides.`,
          );
        }
      });
    });
}
