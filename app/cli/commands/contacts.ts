/**
 * `relaymail contacts …`: the contact list.
 *
 * @module
 */
import type { Command } from "commander";
import { withMessenger } from "../connection.ts";
import { contactsTable, type Output } from "../render.ts";

/** Adds `contacts` and its subcommands to `program`. */
export function addContactCommands(program: Command, output: Output): void {
  const contacts = program.command("contacts").description("list contacts")
    .action(function (this: Command) {
      return withMessenger(this, async (messenger, options) => {
        const list = await messenger.call("contacts.list");
        output.show(options, list, () => contactsTable(list));
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
}
