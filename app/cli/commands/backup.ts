/**
 * `relaymail backup <file>` and `relaymail restore <file>`: the identity, its
 * contacts and (unless left out) its mail in one file encrypted under a
 * passphrase. The backup passphrase comes from `--backup-passphrase-file`,
 * `RELAYMAIL_BACKUP_PASSPHRASE` or a prompt (twice, for a new backup); the
 * global `--passphrase-file` stays the data directory's own.
 *
 * @module
 */
import { resolve } from "node:path";
import type { Command } from "commander";
import { checkBackupPassphrase } from "../../core/backup_format.ts";
import { NotFoundError, UserInputError } from "../../core/errors.ts";
import { withMessenger } from "../connection.ts";
import { size } from "../format.ts";
import { passphraseFrom, promptPassphrase } from "../passphrase.ts";
import { progressBar } from "../progress.ts";
import type { Output } from "../render.ts";

const BACKUP_ENV = "RELAYMAIL_BACKUP_PASSPHRASE";
const NO_PASSPHRASE =
  `Give the backup passphrase: type it at the prompt, set ${BACKUP_ENV}, or use --backup-passphrase-file`;

/** Adds `backup` and `restore` to `program`. */
export function addBackupCommands(program: Command, output: Output): void {
  program.command("backup <file>")
    .description(
      "write the identity, contacts and mail to <file> (or into a directory), encrypted under a passphrase",
    )
    .option("--without-mail", "leave mail and attachments out: a small backup of the identity")
    .option(
      "--backup-passphrase-file <file>",
      `read the backup passphrase from this file (or set ${BACKUP_ENV}; else it is asked twice)`,
    )
    .action(function (
      this: Command,
      file: string,
      opts: { withoutMail?: boolean; backupPassphraseFile?: string },
    ) {
      return withMessenger(this, async (messenger, options) => {
        // As for changing the passphrase: the keys leave under another one.
        const current = (await messenger.call("passphrase.status")).protected
          ? await passphraseFrom(options.passphraseFile, "RELAYMAIL_PASSPHRASE") ??
            await promptPassphrase("Current passphrase (the data directory's): ")
          : undefined;
        const passphrase = await newBackupPassphrase(opts.backupPassphraseFile);
        const bar = progressBar("Backing up");
        const report = await messenger.track("backup.create", {
          file: resolve(file),
          passphrase,
          withoutMail: opts.withoutMail === true,
          current,
        }, (progress) => bar.update(progress as never)).finally(bar.stop);
        output.show(options, report, () =>
          [
            `Backed up ${report.identity.name} to ${report.file} (${size(report.bytes)}): ` +
            `${report.contacts} contact(s), ` +
            (report.includesMail ? `${report.messages} message(s)` : "no mail (--without-mail)"),
            "Keep the passphrase apart from the file: whoever has both can read your mail and write as you.",
            "Restore it with `relaymail --data-dir <new directory> restore <file>`; then use only one copy.",
          ].join("\n"));
      });
    });

  program.command("restore <file>")
    .description("restore a backup into the data directory, which must have no identity yet")
    .option(
      "--backup-passphrase-file <file>",
      `read the backup passphrase from this file (or set ${BACKUP_ENV}; else it is asked)`,
    )
    .action(function (this: Command, file: string, opts: { backupPassphraseFile?: string }) {
      return withMessenger(this, async (messenger, options) => {
        // Before the passphrase is asked for: a path mistyped is said at once.
        await checkReadable(resolve(file));
        const passphrase = await passphraseFrom(opts.backupPassphraseFile, BACKUP_ENV) ??
          await promptPassphrase("Backup passphrase: ");
        if (!passphrase) throw new UserInputError(NO_PASSPHRASE);
        // As with `identity create`: the restored keys are sealed under the directory's passphrase.
        const directoryPassphrase = await passphraseFrom(
          options.passphraseFile,
          "RELAYMAIL_PASSPHRASE",
        );
        const bar = progressBar("Restoring");
        const report = await messenger.track("backup.restore", {
          file: resolve(file),
          passphrase,
          directoryPassphrase,
        }, (progress) => bar.update(progress as never)).finally(bar.stop);
        output.show(options, report, () =>
          [
            `Restored ${report.identity.name} (${report.identity.fingerprint}) into ${options.dataDir}: ` +
            `${report.contacts} contact(s), ${report.messages} message(s)` +
            (report.backup.includesMail ? "" : " (the backup was made without mail)"),
            "Your contacts can write to you here, and you to them. Stop using the old copy: " +
            "whichever copy wrote to a contact last is the one that contact's next mail reaches.",
          ].join("\n"));
      });
    });
}

/** Fails unless `path` is a file this process can read, naming what is wrong. */
async function checkReadable(path: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new NotFoundError(`No backup at ${path}: the file does not exist`);
    }
    throw new UserInputError(`Cannot read the backup ${path}: ${(error as Error).message}`);
  }
  if (!info.isFile) {
    throw new UserInputError(`${path} is not a file: give the backup file itself`);
  }
  try {
    (await Deno.open(path, { read: true })).close();
  } catch (error) {
    throw new UserInputError(`Cannot read the backup ${path}: ${(error as Error).message}`);
  }
}

/** The passphrase of a new backup: from the file or environment, else typed twice. */
async function newBackupPassphrase(file: string | undefined): Promise<string> {
  const given = await passphraseFrom(file, BACKUP_ENV);
  if (given !== undefined) {
    checkBackupPassphrase(given);
    return given;
  }
  const typed = await promptPassphrase("Backup passphrase (10 characters or more): ");
  if (typed === undefined || typed === "") throw new UserInputError(NO_PASSPHRASE);
  checkBackupPassphrase(typed);
  if (await promptPassphrase("Again: ") !== typed) {
    throw new UserInputError("The two passphrases differ: nothing was written");
  }
  return typed;
}
