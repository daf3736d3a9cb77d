/**
 * `relaymail settings …`: the settings kept in the data directory. A running
 * daemon restarts with a change.
 *
 * @module
 */
import type { Command } from "commander";
import { withMessenger } from "../connection.ts";
import { table } from "../format.ts";
import type { Output } from "../render.ts";

/** Adds `settings` and its subcommands to `program`. */
export function addSettingsCommands(program: Command, output: Output): void {
  const settings = program.command("settings").description(
    "list the settings kept in the data directory",
  )
    .action(function (this: Command) {
      return withMessenger(this, async (messenger, options) => {
        const all = await messenger.call("settings.list");
        output.show(options, all, () =>
          table(
            ["SETTING", "VALUE", "", "WHAT"],
            all.map((s) => [s.name, JSON.stringify(s.value), s.set ? "" : "(default)", s.help]),
          ));
      });
    });
  settings.command("set <name> <value>")
    .description("change a setting (lists are comma-separated, booleans on/off, sizes like 512M)")
    .action(function (this: Command, name: string, value: string) {
      return withMessenger(this, async (messenger) => {
        await messenger.call("settings.set", { name, value });
      });
    });
  settings.command("unset <name>")
    .description("return a setting to its default")
    .action(function (this: Command, name: string) {
      return withMessenger(this, async (messenger) => {
        await messenger.call("settings.unset", { name });
      });
    });
}
