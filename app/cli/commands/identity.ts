/**
 * `relaymail identity …` and `relaymail passphrase …`: this device's identity
 * and the passphrase its private keys are sealed under.
 *
 * @module
 */
import type { Command } from "commander";
import { UserInputError } from "../../core/errors.ts";
import { type GlobalOptions, type Messenger, withMessenger } from "../connection.ts";
import { shortDate } from "../format.ts";
import { passphraseFrom, promptPassphrase } from "../passphrase.ts";
import type { Output } from "../render.ts";

/** Adds `identity` and its subcommands to `program`. */
export function addIdentityCommands(program: Command, output: Output): void {
  const identity = program.command("identity").description("this device's Relaymail identity");
  identity.command("create")
    .description("create the identity (an RSA key pair and its certificate)")
    .requiredOption("-n, --name <name>", "your name, shown to contacts as a hint")
    .action(function (this: Command, opts: { name: string }) {
      return withMessenger(this, async (messenger, options) => {
        // Keys made while the daemon runs are sealed under the passphrase given here.
        const passphrase = await passphraseFrom(options.passphraseFile, "RELAYMAIL_PASSPHRASE");
        const info = await messenger.call("identity.create", { name: opts.name, passphrase });
        output.show(
          options,
          info,
          () => `Created identity ${info.name}\nFingerprint: ${info.fingerprint}\nId: ${info.id}`,
        );
      });
    });
  identity.command("show")
    .description("show the identity")
    .action(function (this: Command) {
      return withMessenger(this, async (messenger, options) => {
        const info = await messenger.call("identity.show");
        output.show(options, info, () =>
          [
            `Name:         ${info.name}`,
            `Fingerprint:  ${info.fingerprint}`,
            `Id:           ${info.id}`,
            `Created:      ${shortDate(info.createdAt)}`,
            `Certificate:  valid until ${
              shortDate(info.certificateExpiresAt)
            } (renewed automatically)`,
            `Keys:         ${
              info.passphraseProtected ? "sealed under a passphrase" : "not passphrase-protected"
            }`,
          ].join("\n"));
      });
    });
  identity.command("rename <name>")
    .description("change the name given to contacts as a hint")
    .action(function (this: Command, name: string) {
      return withMessenger(this, async (messenger) => {
        await messenger.call("identity.rename", { name });
      });
    });
}

/** Adds `passphrase` and its subcommands to `program`. */
export function addPassphraseCommands(program: Command): void {
  const passphrase = program.command("passphrase").description(
    "protect private keys with a passphrase",
  );
  passphrase.command("set")
    .description(
      "seal private keys under a new passphrase (from --new-passphrase-file, RELAYMAIL_NEW_PASSPHRASE or a prompt)",
    )
    .option("--new-passphrase-file <file>", "read the new passphrase from this file")
    .action(function (this: Command, opts: { newPassphraseFile?: string }) {
      return withMessenger(this, async (messenger, options) => {
        const current = await currentPassphrase(messenger, options);
        const next = await passphraseFrom(opts.newPassphraseFile, "RELAYMAIL_NEW_PASSPHRASE") ??
          await promptPassphrase("New passphrase: ");
        if (!next) throw new UserInputError("No new passphrase given");
        await messenger.call("passphrase.set", { passphrase: next, current });
        console.error("Private keys are now sealed under the new passphrase.");
      });
    });
  passphrase.command("remove")
    .description("store private keys without a passphrase")
    .action(function (this: Command) {
      return withMessenger(this, async (messenger, options) => {
        const current = await currentPassphrase(messenger, options);
        await messenger.call("passphrase.remove", { current });
        console.error("Private keys are no longer passphrase-protected.");
      });
    });
}

/**
 * The passphrase the keys are sealed under now, which changing or removing it
 * asks for: from `--passphrase-file`, `RELAYMAIL_PASSPHRASE` or a prompt. None
 * when they are not sealed.
 */
async function currentPassphrase(
  messenger: Messenger,
  options: GlobalOptions,
): Promise<string | undefined> {
  if (!(await messenger.call("passphrase.status")).protected) return undefined;
  return await passphraseFrom(options.passphraseFile, "RELAYMAIL_PASSPHRASE") ??
    await promptPassphrase("Current passphrase: ");
}
