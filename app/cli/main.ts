/**
 * The `relaymail` command line. Every command that lists or shows something takes
 * `--json`; failures print one line to stderr and exit non-zero, with the code
 * `app/runtime/faults.ts` gives: 1 when the person can fix it, 2 for a usage
 * error, 75 when trying again later may work, 70 for Relaymail's own bug.
 *
 * Each group of commands lives in `commands/`; every command but `start` and
 * `daemon` runs its operations through the daemon when one runs, else in a
 * runtime of its own (`connection.ts`).
 *
 * @module
 */
import { join } from "node:path";
import { Command, CommanderError, Option } from "commander";
import { errorMessage } from "../../bindings/validation.ts";
import { EXIT_CODES, exitCodeOf } from "../runtime/faults.ts";
import { addBackupCommands } from "./commands/backup.ts";
import { addChannelCommands } from "./commands/channel.ts";
import { addContactCommands } from "./commands/contacts.ts";
import { addDaemonCommand, addStartCommand } from "./commands/daemon.ts";
import { addGatewayCommands } from "./commands/gateway.ts";
import { addIdentityCommands, addPassphraseCommands } from "./commands/identity.ts";
import { addInvitationCommands } from "./commands/invitations.ts";
import { addMailCommands } from "./commands/mail.ts";
import { addMeshCommand } from "./commands/mesh.ts";
import { addRefusalsCommand } from "./commands/refusals.ts";
import { addSettingsCommands } from "./commands/settings.ts";
import { addSneakernetCommands } from "./commands/sneakernet.ts";
import { addStatusCommand } from "./commands/status.ts";
import { addWebCommands } from "./commands/web.ts";
import { output, type Print } from "./render.ts";

/** Where data lives when no `--data-dir` or `RELAYMAIL_DATA_DIR` is given. */
export function defaultDataDir(): string {
  const xdg = Deno.env.get("XDG_DATA_HOME");
  const home = Deno.env.get("HOME") ?? Deno.env.get("USERPROFILE") ?? ".";
  return join(xdg || join(home, ".local", "share"), "relaymail");
}

/** Runs the CLI with `args`; returns the exit status. */
export async function main(args: readonly string[], print: Print = console.log): Promise<number> {
  const program = buildProgram(print);
  try {
    await program.parseAsync([...args], { from: "user" });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version exit 0; usage errors were already printed by commander.
      return error.exitCode === 0 ? 0 : EXIT_CODES.usage;
    }
    const code = exitCodeOf(error);
    console.error(`relaymail: ${failureLine(error, code)}`);
    if (Deno.env.get("RELAYMAIL_DEBUG")) console.error((error as Error)?.stack ?? error);
    return code;
  }
}

/** The one line a failure prints: its message, and what to make of it when that is not clear. */
function failureLine(error: unknown, code: number): string {
  const message = errorMessage(error).split("\n")[0];
  if (code === EXIT_CODES.transient) return `${message} (this may work if you try again later)`;
  if (code === EXIT_CODES.bug) {
    return `${message} (an internal error in Relaymail: RELAYMAIL_DEBUG=1 shows where)`;
  }
  return message;
}

function buildProgram(print: Print): Command {
  const program = new Command("relaymail")
    .description("Spam-free, serverless, offline-first mail over Relaynet parcels")
    .addOption(
      new Option("-d, --data-dir <dir>", "data directory").env("RELAYMAIL_DATA_DIR").default(
        defaultDataDir(),
      ),
    )
    .option("--json", "print machine-readable JSON")
    .option(
      "--passphrase-file <file>",
      "read the passphrase from this file (or set RELAYMAIL_PASSPHRASE)",
    )
    .exitOverride()
    .showHelpAfterError()
    .configureOutput({
      writeOut: (s) => print(s.trimEnd()),
      writeErr: (s) => console.error(s.trimEnd()),
    });

  // In the order `--help` lists them.
  const out = output(print);
  addStartCommand(program, out);
  addStatusCommand(program, out);
  addIdentityCommands(program, out);
  addPassphraseCommands(program);
  addBackupCommands(program, out);
  addInvitationCommands(program, out);
  addContactCommands(program, out);
  addMailCommands(program, out);
  addChannelCommands(program, out);
  addSneakernetCommands(program, out);
  addDaemonCommand(program);
  addGatewayCommands(program, out);
  addSettingsCommands(program, out);
  addWebCommands(program, out);
  addMeshCommand(program, out);
  addRefusalsCommand(program, out);
  return program;
}
