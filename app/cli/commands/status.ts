/**
 * `relaymail status`: who this device is and what waits.
 *
 * @module
 */
import type { Command } from "commander";
import { withMessenger } from "../connection.ts";
import { type Output, statusText } from "../render.ts";

/** Adds `status` to `program`. */
export function addStatusCommand(program: Command, output: Output): void {
  program.command("status")
    .description("show identity, contacts and mail counts")
    .action(function (this: Command) {
      return withMessenger(this, async (messenger, options) => {
        const status = await messenger.call("status.show");
        output.show(options, status, () => statusText(options.dataDir, status));
      });
    });
}
