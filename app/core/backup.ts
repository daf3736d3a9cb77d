/**
 * Identity backup and restore: one file, encrypted under a passphrase the
 * person types (`backup_format.ts`), holding everything a data directory needs
 * to carry its conversations on (`backup_db.ts`): the identity and its
 * certificates, contacts with their authorisations and session keys, pending
 * invitations, settings and, unless left out, the mail.
 *
 * A restored directory is the same endpoint as the original: contacts write to
 * it, and it writes to them, as before. Two copies must not both be used,
 * though: each message carries the sender's next session key, so whichever copy
 * wrote to a contact last is the one that contact's next mail can be read by;
 * the other refuses it as undecryptable. Restore, then stop using the old one.
 *
 * @module
 */
import { basename, dirname, join } from "node:path";
import type { SqliteDatabase } from "../../bindings/durable.ts";
import type { Clock } from "./clock.ts";
import {
  createPrivateFile,
  installDatabase,
  prepareRestore,
  readDeviceSettings,
  readPageSize,
  readSealerRecord,
  readWebSecret,
  removeTemp,
  sealerRecord,
  snapshotDatabase,
  tempPath,
} from "./backup_db.ts";
import {
  backupFileName,
  type BackupManifest,
  checkBackupPassphrase,
  openBackup,
  writeBackup,
} from "./backup_format.ts";
import { ConflictError, NotFoundError } from "./errors.ts";
import type { SqlitePrivateKeyStore } from "./keys/key_stores.ts";
import { KeySealer, type ScryptParams } from "./keys/sealing.ts";

/** Told how many octets of the database are done, of how many. */
export type BackupProgress = (progress: { done: number; total: number }) => void;

/** Options of a backup. */
export interface BackupOptions {
  /** What the backup is encrypted under: 10 characters or more (`MIN_BACKUP_PASSPHRASE`). */
  readonly passphrase: string;
  /** Leaves mail, attachments and drafts out (default false: they are in). */
  readonly withoutMail?: boolean;
  /** The scrypt cost (default `SCRYPT_PARAMS`); only tests lower it. */
  readonly params?: ScryptParams;
  readonly onProgress?: BackupProgress;
}

/** What a backup wrote. */
export interface BackupReport extends BackupManifest {
  /** The backup file. */
  readonly file: string;
  /** Its size in octets. */
  readonly bytes: number;
}

/** Options of a restore. */
export interface RestoreOptions {
  /**
   * Seals the restored keys under this passphrase, when the directory has none
   * yet (as `identity create` does); default: stored as the directory stores them.
   */
  readonly passphrase?: string;
  /** The backup's name in errors (default: the file's). */
  readonly name?: string;
  readonly onProgress?: BackupProgress;
}

/** The parts of an open data directory a backup or restore works on. */
export interface BackupTarget {
  readonly dataDir: string;
  /** Its database file. */
  readonly databaseFile: string;
  readonly db: SqliteDatabase;
  readonly keys: SqlitePrivateKeyStore;
  /** The sealer its keys are sealed under, null when they are not. */
  readonly sealer: KeySealer | null;
  readonly now: Clock;
}

/**
 * Writes a backup of `target` to `file`, which must not exist (written under a
 * temporary name beside it, then renamed: a failure leaves nothing).
 */
export async function writeBackupFile(
  target: BackupTarget,
  file: string,
  options: BackupOptions,
): Promise<BackupReport> {
  checkBackupPassphrase(options.passphrase);
  const sealer = KeySealer.fromPassphrase(options.passphrase, undefined, {
    params: options.params,
  });
  const snapshot = tempPath(target.dataDir, ".sqlite");
  const part = join(dirname(file), `.${basename(file)}.${crypto.randomUUID()}.part`);
  try {
    const facts = await snapshotDatabase(target.db, snapshot, {
      current: target.sealer,
      backup: sealer,
      withoutMail: options.withoutMail === true,
      now: target.now,
    });
    const manifest: BackupManifest = {
      format: 1,
      createdAt: target.now().toISOString(),
      ...facts,
      includesMail: options.withoutMail !== true,
      payloadBytes: (await Deno.stat(snapshot)).size,
    };
    {
      using out = await createPrivateFile(part);
      await writeBackup(out, sealer, manifest, snapshot, { onProgress: options.onProgress });
      await out.sync();
    }
    await placeWithoutOverwriting(part, file);
    return { ...manifest, file, bytes: (await Deno.stat(file)).size };
  } finally {
    await removeTemp(snapshot);
    await Deno.remove(part).catch(() => {});
  }
}

/**
 * Restores the backup in `file`, encrypted under `passphrase`, into `target`,
 * which the caller checked has no identity (`refuse` checks again just before
 * the database is written). Returns the backup's manifest and the sealer the
 * directory's keys are now sealed under.
 */
export async function restoreBackupFile(
  target: BackupTarget,
  file: string,
  passphrase: string,
  options: RestoreOptions & { readonly refuse: () => void },
): Promise<{ manifest: BackupManifest; sealer: KeySealer | null }> {
  let input: Deno.FsFile;
  try {
    input = await Deno.open(file, { read: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new NotFoundError(`No backup at ${file}`, { cause: error });
    }
    throw error;
  }
  const name = options.name ?? basename(file);
  const temp = tempPath(target.dataDir, ".sqlite");
  const before = target.sealer;
  try {
    const opened = await openBackup(input, passphrase, name);
    {
      using out = await createPrivateFile(temp);
      await opened.payloadTo(out, options.onProgress);
      await out.sync();
    }
    const sealer = before ??
      (options.passphrase ? KeySealer.fromPassphrase(options.passphrase) : null);
    prepareRestore(temp, {
      backup: opened.sealer,
      target: sealer,
      targetRecord: sealer === before ? readSealerRecord(target.db) : sealerRecord(sealer!),
      webSecret: readWebSecret(target.db),
      deviceSettings: readDeviceSettings(target.db),
      pageSize: readPageSize(target.db),
      now: target.now,
      name,
    });
    options.refuse();
    // The key store seals what it writes from now on under the directory's sealer.
    if (sealer !== before) target.keys.reseal(sealer);
    try {
      await installDatabase(temp, target.databaseFile);
    } catch (error) {
      if (sealer !== before) target.keys.reseal(before);
      throw error;
    }
    return { manifest: opened.manifest, sealer };
  } finally {
    input.close();
    await removeTemp(temp);
  }
}

/**
 * Where a backup asked for at `path` goes: `path` itself, or, when it is a
 * directory, `relaymail-backup-<date>.rmbackup` inside it.
 */
export async function backupDestination(path: string, now: Date): Promise<string> {
  const info = await Deno.stat(path).catch(() => null);
  if (!info?.isDirectory) return path;
  return join(path, backupFileName(now));
}

/**
 * Moves `part` to `file` unless `file` exists. A hard link does it atomically;
 * file systems without links (a FAT stick) get a check, then a rename.
 */
async function placeWithoutOverwriting(part: string, file: string): Promise<void> {
  const exists = () =>
    new ConflictError(`${file} exists already: choose another name, or remove it first`);
  try {
    await Deno.link(part, file);
    await Deno.remove(part);
    return;
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) throw exists();
  }
  if (await Deno.lstat(file).then(() => true, () => false)) throw exists();
  await Deno.rename(part, file);
}
