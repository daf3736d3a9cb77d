/**
 * Identity backup and restore (see `app/core/backup.ts`). Files are named by
 * absolute paths, since the process that runs the operation (the daemon,
 * perhaps) has a working directory of its own; it runs as the same user.
 *
 * @module
 */
import { isAbsolute } from "node:path";
import { backupDestination } from "../../core/backup.ts";
import { UserInputError } from "../../core/errors.ts";
import type { Operation, OperationContext } from "../types.ts";
import { optionalText, text } from "./_input.ts";

/** Refuses a backup of sealed keys without their passphrase. */
export const NO_CURRENT =
  "Give the data directory's current passphrase to back it up: a backup carries its private keys away";

/** The backup operations. */
export const BACKUP_OPERATIONS = {
  /**
   * Writes a backup, encrypted under `passphrase` (10 characters or more), to
   * `file`, which must not exist; a directory gets
   * `relaymail-backup-<date>.rmbackup` inside it. `withoutMail` leaves mail,
   * attachments and drafts out. Reports progress as `{ done, total }` octets.
   * When the keys are sealed under a passphrase, `current` must be it: a backup
   * carries the keys away under another passphrase, as changing it would.
   */
  "backup.create": async (
    context: OperationContext,
    input: { file: string; passphrase: string; withoutMail?: boolean; current?: string },
  ) => {
    const messenger = context.messenger;
    const current = optionalText(input.current, "The current passphrase");
    if (messenger.hasPassphrase && current === undefined) throw new UserInputError(NO_CURRENT);
    context.checkPassphrase(current);
    const file = await backupDestination(absolute(input.file), messenger.ctx.now());
    return await messenger.backup(file, {
      passphrase: text(input.passphrase, "The backup passphrase"),
      withoutMail: input.withoutMail === true,
      onProgress: (progress) => context.progress(progress),
    });
  },

  /**
   * Restores the backup in `file`, encrypted under `passphrase`, into this data
   * directory, which must have no identity. With `directoryPassphrase`, the
   * restored keys are sealed under it (unless the directory has a passphrase
   * already: they are sealed under that one). The daemon starts as that identity.
   */
  "backup.restore": async (
    context: OperationContext,
    input: { file: string; passphrase: string; directoryPassphrase?: string },
  ) => {
    const report = await context.messenger.restore(
      absolute(input.file),
      text(input.passphrase, "The backup passphrase"),
      {
        passphrase: optionalText(input.directoryPassphrase, "The data directory's passphrase"),
        onProgress: (progress) => context.progress(progress),
      },
    );
    // A runtime that waited for an identity starts its daemon now.
    await context.settingsChanged();
    return report;
  },
} satisfies Record<string, Operation>;

function absolute(file: unknown): string {
  const path = text(file, "The backup file");
  if (!isAbsolute(path)) throw new UserInputError(`Give the file's absolute path, not "${path}"`);
  return path;
}
