/**
 * `relaymail web …`: the web app `relaymail start` serves.
 *
 * @module
 */
import type { Command } from "commander";
import { withMessenger } from "../connection.ts";
import type { Output } from "../render.ts";

/** Adds `web` and its subcommands to `program`. */
export function addWebCommands(program: Command, output: Output): void {
  const web = program.command("web").description("the web app `relaymail start` serves");
  web.command("rotate-secret")
    .description("replace the web app's secret: the old address and every session stop working")
    .action(function (this: Command) {
      return withMessenger(this, async (messenger, options) => {
        const { url } = await messenger.call("web.rotateSecret");
        output.show(options, { url }, () => `New address (open pages are signed out):\n\n  ${url}`);
      });
    });
}
