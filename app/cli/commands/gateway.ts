/**
 * `relaymail gateway …`: the Awala gateway this endpoint falls back to.
 *
 * @module
 */
import type { Command } from "commander";
import { withMessenger } from "../connection.ts";
import type { Output } from "../render.ts";

/** Adds `gateway` and its subcommands to `program`. */
export function addGatewayCommands(program: Command, output: Output): void {
  const gateway = program.command("gateway")
    .description("show this endpoint's registration with its gateway")
    .action(function (this: Command) {
      return withMessenger(this, async (messenger, options) => {
        const report = await messenger.call("gateway.show");
        const { configured, registered } = report;
        output.show(options, report, () =>
          registered
            ? [
              `Registered with ${registered.url} on ${registered.registeredAt}`,
              `  certificate valid until ${registered.expiresAt}`,
              `  Internet gateway: ${registered.internetAddress ?? "none"}`,
              configured && configured !== registered.url
                ? `  (the daemon will register with ${configured} when it starts)`
                : "",
            ].filter(Boolean).join("\n")
            : configured
            ? `Not registered yet; the daemon registers with ${configured} when it starts`
            : "No gateway: set one with `relaymail gateway register <url>`");
      });
    });
  gateway.command("register <url>")
    .description("register with an Awala gateway now (e.g. http://127.0.0.1:13276) and use it")
    .action(function (this: Command, url: string) {
      return withMessenger(this, async (messenger, options) => {
        const registered = await messenger.call("gateway.register", { url });
        output.show(
          options,
          registered,
          () =>
            `Registered with ${registered.url}; certificate valid until ${registered.expiresAt}.\n` +
            `Contacts will be sent the new way to reach you; run \`relaymail daemon\` to use the gateway.`,
        );
      });
    });
}
