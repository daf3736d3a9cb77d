/**
 * The database side of backups (`backup.ts` says what they are): the copy a
 * backup holds, and how it goes back into a data directory. A backup is
 * a consistent copy of the database (`VACUUM INTO`, one read transaction, made
 * while the daemon runs): the identity and its certificates issued ahead,
 * contacts with their certificates, authorisations both ways and session keys,
 * pending invitations, owed work, settings and, unless left out, the mail and
 * its attachments (all of which live in the database).
 *
 * Left out of every backup, as they belong to one install rather than to the
 * identity: the mesh node's libp2p key (a restored copy gets a new peer id, so
 * that it cannot clash with the original on the mesh), the web app's secret,
 * and maintenance leases. Private keys in the copy are sealed under the backup
 * passphrase, never written out in the clear; on restore they are sealed again
 * under the new directory's passphrase, or stored as its keys are.
 *
 * Restoring goes into a directory with no identity only, and in one step: the
 * copy is decrypted, checked and prepared in a temporary file, then written
 * into the open database with SQLite's backup API, in one transaction, so a
 * failure at any point leaves the directory as it was.
 *
 * A backup may have been crafted by someone who talked the person into
 * restoring it (they know its passphrase: they made it). It may make the device
 * that identity, and no more: its schema must be exactly what Relaymail's
 * migrations make at its version (no trigger, view or table of its own, which
 * would run SQL long after), its keys all sealed as a backup seals them (no
 * salt or cost of their own, each a key derivation), and what belongs to a
 * device (its mesh key, web secret, and the settings of what it listens on and
 * serves) stays the directory's own.
 *
 * @module
 */
import { dirname, join } from "node:path";
import { backup as copyDatabase, DatabaseSync } from "node:sqlite";
import { SqliteDatabase, StorageFullError } from "../../bindings/durable.ts";
import { fromHex, toHex } from "../../bindings/validation.ts";
import type { Clock } from "./clock.ts";
import { BackupUnreadableError } from "./backup_format.ts";
import { SqlitePrivateKeyStore } from "./keys/key_stores.ts";
import type { KeySealer } from "./keys/sealing.ts";
import { MIGRATIONS } from "./store/schema.ts";

/** SQLite's result code for a full disk. */
const SQLITE_FULL = 13;
/** Temporary files of backups and restores in a data directory start with this. */
const TEMP_PREFIX = ".backup-";
/** A temporary file, or the part of a backup written over one (`..backup-<id>.rmbackup.<id>.part`). */
const TEMP_NAME = /^\.{1,2}backup-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\./;

/** Where the passphrase's salt and check value live, in table `meta`. */
const SALT_KEY = "passphrase.salt";
const CHECK_KEY = "passphrase.check";
const WEB_SECRET_KEY = "web.secret";
/**
 * Settings that belong to a device rather than to its identity (what it listens
 * on and serves): a restore keeps the directory's own, whatever the backup says,
 * so that a crafted backup cannot open this device to the network.
 */
const DEVICE_SETTINGS = [
  "mesh.listen",
  "mesh.interfaces",
  "poweb.serve",
  "poweb.listen",
  "web.port",
]
  .map((name) => `setting.${name}`);
/** SQLite's statistics tables, which `ANALYZE` (or `PRAGMA optimize`) may add. */
const STATISTICS = /^sqlite_stat\d$/;

/** A fresh temporary path in `dataDir` ending in `suffix`. */
export function tempPath(dataDir: string, suffix: string): string {
  return join(dataDir, `${TEMP_PREFIX}${crypto.randomUUID()}${suffix}`);
}

/** Creates `path`, which must not exist, readable by its owner only. */
export function createPrivateFile(path: string): Promise<Deno.FsFile> {
  return Deno.open(path, { read: true, write: true, createNew: true, mode: 0o600 });
}

/** Removes `path` and the files SQLite may have kept beside it. */
export async function removeTemp(path: string): Promise<void> {
  for (const suffix of ["", "-journal", "-wal", "-shm"]) {
    await Deno.remove(path + suffix).catch(() => {});
  }
}

/**
 * Removes what a backup or restore that was interrupted (a crash, a power cut)
 * left in `dataDir`. Call it holding the writer lock: nothing else makes one then.
 */
export async function removeBackupLeftovers(dataDir: string): Promise<void> {
  for await (const entry of Deno.readDir(dataDir)) {
    if (entry.isFile && TEMP_NAME.test(entry.name)) {
      await Deno.remove(join(dataDir, entry.name)).catch(() => {});
    }
  }
}

/** The salt and check value of a passphrase, as table `meta` keeps them. */
export interface SealerRecord {
  readonly salt: string;
  readonly check: string;
}

/** The passphrase's salt and check value in `db`, or null when its keys are not sealed. */
export function readSealerRecord(db: SqliteDatabase): SealerRecord | null {
  const salt = db.get<{ value: string }>("SELECT value FROM meta WHERE key = ?", SALT_KEY);
  const check = db.get<{ value: string }>("SELECT value FROM meta WHERE key = ?", CHECK_KEY);
  return salt && check ? { salt: salt.value, check: check.value } : null;
}

/** Records the salt and check value of `record` in `db` (none when null). */
export function writeSealerRecord(db: SqliteDatabase, record: SealerRecord | null): void {
  db.run("DELETE FROM meta WHERE key IN (?, ?)", SALT_KEY, CHECK_KEY);
  if (!record) return;
  db.run("INSERT INTO meta (key, value) VALUES (?, ?)", SALT_KEY, record.salt);
  db.run("INSERT INTO meta (key, value) VALUES (?, ?)", CHECK_KEY, record.check);
}

/** The record of `sealer`: its salt, and a fresh check value. */
export function sealerRecord(sealer: KeySealer): SealerRecord {
  return { salt: toHex(sealer.salt), check: toHex(sealer.makeCheck()) };
}

/** Options of {@linkcode snapshotDatabase}. */
export interface SnapshotOptions {
  /** The sealer the live keys are sealed under (null: they are not). */
  readonly current: KeySealer | null;
  /** The backup's sealer: keys in the copy are sealed under it. */
  readonly backup: KeySealer;
  /** Leaves mail, attachments, drafts and mail parcels out. */
  readonly withoutMail: boolean;
  readonly now: Clock;
}

/** What a snapshot holds. */
export interface SnapshotFacts {
  readonly identity: { readonly id: string; readonly name: string };
  readonly contacts: number;
  readonly messages: number;
}

/** Copies the database `db` to `to` (which must not exist) as a backup holds it. */
export async function snapshotDatabase(
  db: SqliteDatabase,
  to: string,
  options: SnapshotOptions,
): Promise<SnapshotFacts> {
  (await createPrivateFile(to)).close();
  db.run("VACUUM INTO ?", to);
  const copy = SqliteDatabase.open(to, { migrations: MIGRATIONS });
  try {
    // What is deleted or resealed here is overwritten, not left in free pages.
    copy.exec("PRAGMA secure_delete = ON");
    copy.transaction(() => {
      copy.run("DELETE FROM private_keys WHERE kind = 'mesh'");
      copy.run("DELETE FROM meta WHERE key = ?", WEB_SECRET_KEY);
      copy.run("DELETE FROM leases");
      if (options.withoutMail) leaveMailOut(copy);
    });
    new SqlitePrivateKeyStore(copy, options.current, options.now).reseal(options.backup);
    writeSealerRecord(copy, sealerRecord(options.backup));
    const identity = copy.get<{ node_id: string; name: string }>(
      "SELECT node_id, name FROM identity",
    )!;
    const facts = {
      identity: { id: identity.node_id, name: identity.name },
      contacts: count(copy, "contacts"),
      messages: count(copy, "messages"),
    };
    copy.exec("PRAGMA journal_mode = DELETE");
    copy.exec("VACUUM");
    return facts;
  } finally {
    copy.close();
  }
}

/** Mail, its attachments and deliveries (by cascade), drafts, and parcels carrying mail. */
function leaveMailOut(db: SqliteDatabase): void {
  db.run(
    "DELETE FROM handovers WHERE parcel_key IN (SELECT key FROM outgoing_parcels WHERE kind = 'mail')",
  );
  db.run("DELETE FROM outgoing_parcels WHERE kind = 'mail'");
  db.run("DELETE FROM messages");
  if (db.get("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'drafts'")) {
    db.run("DELETE FROM drafts");
  }
}

function count(db: SqliteDatabase, table: string): number {
  return db.get<{ n: number }>(`SELECT count(*) AS n FROM ${table}`)!.n;
}

/** Options of {@linkcode prepareRestore}. */
export interface PrepareOptions {
  /** The backup's sealer, which its keys are sealed under. */
  readonly backup: KeySealer;
  /** The sealer of the directory restored into (null: its keys are stored unsealed). */
  readonly target: KeySealer | null;
  /** The directory's own passphrase record, kept as it is. */
  readonly targetRecord: SealerRecord | null;
  /** The directory's own web secret, kept so open pages stay signed in (null: none yet). */
  readonly webSecret: string | null;
  /** The page size of the directory's database, which the copy must have. */
  readonly pageSize: number;
  /** The directory's own device settings (`readDeviceSettings`), kept as they are. */
  readonly deviceSettings: readonly DeviceSetting[];
  readonly now: Clock;
  /** The backup's name, for errors. */
  readonly name: string;
}

/**
 * Makes the decrypted database at `path` ready to be the directory's: its
 * schema brought up to date, its keys sealed under the directory's passphrase,
 * and the directory's own passphrase record and web secret put in.
 */
export function prepareRestore(path: string, options: PrepareOptions): void {
  try {
    prepareCopy(path, options);
  } catch (error) {
    throw fullDisk(error, dirname(path));
  }
}

function prepareCopy(path: string, options: PrepareOptions): void {
  const unreadable = (why: string, cause?: unknown) =>
    new BackupUnreadableError(`Cannot restore from ${options.name}: ${why}; nothing was restored`, {
      cause,
    });
  // Before anything runs on it: a crafted database must not bring SQL of its own.
  checkSchema(path, { pageSize: options.pageSize }, unreadable);
  let copy: SqliteDatabase;
  try {
    copy = SqliteDatabase.open(path, { migrations: MIGRATIONS });
  } catch (error) {
    throw unreadable(
      error instanceof RangeError ? error.message : "its database cannot be opened",
      error,
    );
  }
  try {
    if (!copy.get("SELECT 1 FROM identity")) throw unreadable("it holds no identity");
    copy.exec("PRAGMA secure_delete = ON");
    // A mesh key belongs to one install; one the backup's maker knows would let them pass for this one.
    copy.run("DELETE FROM private_keys WHERE kind = 'mesh'");
    checkKeys(copy, options.backup, unreadable);
    try {
      new SqlitePrivateKeyStore(copy, options.backup, options.now).reseal(options.target);
    } catch (error) {
      throw unreadable("its keys cannot be opened", error);
    }
    copy.transaction(() => {
      writeSealerRecord(copy, options.targetRecord);
      copy.run("DELETE FROM meta WHERE key = ?", WEB_SECRET_KEY);
      if (options.webSecret !== null) {
        copy.run("INSERT INTO meta (key, value) VALUES (?, ?)", WEB_SECRET_KEY, options.webSecret);
      }
      copy.run("DELETE FROM leases");
      // This install's mesh node has none of the own posts: it publishes them anew.
      copy.run("UPDATE channel_posts SET published = 0 WHERE own = 1");
      for (const key of DEVICE_SETTINGS) copy.run("DELETE FROM meta WHERE key = ?", key);
      for (const { key, value } of options.deviceSettings) {
        copy.run("INSERT INTO meta (key, value) VALUES (?, ?)", key, value);
      }
    });
    // A plain file, which the backup API reads without the WAL's side files.
    copy.exec("PRAGMA journal_mode = DELETE");
  } finally {
    copy.close();
  }
}

type Unreadable = (why: string, cause?: unknown) => BackupUnreadableError;

/**
 * Refuses a database whose schema (tables, indexes, views, triggers) is not
 * exactly the one Relaymail's migrations make at its version, or that SQLite
 * finds damaged. Read without running anything the file holds.
 */
function checkSchema(
  path: string,
  layout: { readonly pageSize: number },
  unreadable: Unreadable,
): void {
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(path, { readOnly: true });
  } catch (error) {
    throw unreadable("its database cannot be opened", error);
  }
  try {
    const version = Number(db.prepare("PRAGMA user_version").get()!.user_version);
    if (!Number.isSafeInteger(version) || version < 0) throw unreadable("its database is damaged");
    // A newer schema is refused, with its own message, when it is opened.
    if (version > MIGRATIONS.length) return;
    const check = db.prepare("PRAGMA quick_check").all().map((row) => Object.values(row)[0]);
    if (check.length !== 1 || check[0] !== "ok") throw unreadable("its database is damaged");
    // SQLite's backup API cannot write pages of another size into the open database.
    const pageSize = db.prepare("PRAGMA page_size").get()!.page_size;
    const encoding = db.prepare("PRAGMA encoding").get()!.encoding;
    if (pageSize !== layout.pageSize || encoding !== "UTF-8") {
      throw unreadable(
        `its database is not as Relaymail makes it (pages of ${pageSize} octets, text in ${encoding}; this device's are of ${layout.pageSize}, in UTF-8)`,
      );
    }
    const expected = new DatabaseSync(":memory:");
    let wanted: Map<string, unknown>;
    try {
      for (const migration of MIGRATIONS.slice(0, version)) expected.exec(migration);
      wanted = schemaObjects(expected);
    } finally {
      expected.close();
    }
    const found = schemaObjects(db);
    const odd = [...new Set([...found.keys(), ...wanted.keys()])]
      .filter((object) => found.get(object) !== wanted.get(object));
    if (odd.length > 0) {
      throw unreadable(
        `its database is not as Relaymail makes it (it has ${odd.length} odd schema object(s): ${
          odd.slice(0, 5).join(", ")
        }); it may have been crafted to harm this device`,
      );
    }
  } catch (error) {
    if (error instanceof BackupUnreadableError) throw error;
    throw unreadable("its database cannot be opened", error);
  } finally {
    db.close();
  }
}

/** Each schema object of `db` ("trigger evil") with its SQL, statistics left out. */
function schemaObjects(db: DatabaseSync): Map<string, unknown> {
  const rows = db.prepare("SELECT type, name, tbl_name, sql FROM sqlite_master").all();
  return new Map(
    rows.filter((row) => !(row.type === "table" && STATISTICS.test(String(row.name))))
      .map((row) => [`${row.type} ${row.name}`, `${row.tbl_name}\n${row.sql}`]),
  );
}

/**
 * Refuses keys sealed other than as a backup seals them, all under its
 * passphrase, cost and salt: each other salt or cost would cost a derivation
 * of its own, and a key in the clear has no business in a backup.
 */
function checkKeys(copy: SqliteDatabase, backup: KeySealer, unreadable: Unreadable): void {
  const sealedRight = (sealed: Uint8Array, label: string) => {
    try {
      return !backup.needsReseal(sealed, label);
    } catch {
      return false;
    }
  };
  const record = readSealerRecord(copy);
  const check = record && /^(?:[0-9a-f]{2})+$/.test(record.check) ? fromHex(record.check) : null;
  const keys = copy.all<{ key_id: string; key: Uint8Array; sealed: number }>(
    "SELECT key_id, key, sealed FROM private_keys",
  );
  if (
    !check || !sealedRight(check, "check") ||
    keys.some((row) => row.sealed !== 1 || !sealedRight(row.key, row.key_id))
  ) {
    throw unreadable("its keys are not sealed as a backup seals them");
  }
  try {
    backup.verifyCheck(check);
  } catch (error) {
    throw unreadable("its keys cannot be opened", error);
  }
}

/** A device setting as table `meta` keeps it. */
export interface DeviceSetting {
  readonly key: string;
  readonly value: string;
}

/** The page size of `db`. */
export function readPageSize(db: SqliteDatabase): number {
  return db.get<{ page_size: number }>("PRAGMA page_size")!.page_size;
}

/** The device settings (`DEVICE_SETTINGS`) set in `db`. */
export function readDeviceSettings(db: SqliteDatabase): DeviceSetting[] {
  return DEVICE_SETTINGS.flatMap((key) =>
    db.all<DeviceSetting>("SELECT key, value FROM meta WHERE key = ?", key)
  );
}

/** The web secret of `db`, or null before it has one. */
export function readWebSecret(db: SqliteDatabase): string | null {
  return db.get<{ value: string }>("SELECT value FROM meta WHERE key = ?", WEB_SECRET_KEY)
    ?.value ?? null;
}

/**
 * Writes the database at `from` into the database file `livePath`, which may be
 * open (in WAL mode) in this process: SQLite's backup API copies it in one write
 * transaction, which open connections see whole once it commits, or not at all.
 */
export async function installDatabase(from: string, livePath: string): Promise<void> {
  const source = new DatabaseSync(from, { readOnly: true });
  try {
    // All pages in one step: the destination is written in a single transaction.
    await copyDatabase(source, livePath, { rate: 2 ** 30 });
  } catch (error) {
    throw fullDisk(error, dirname(livePath));
  } finally {
    source.close();
  }
}

/**
 * `error` as a {@linkcode StorageFullError} (a passing fault: free space, and
 * try again) when SQLite says the disk holding `dir` is full; else as it is.
 */
function fullDisk(error: unknown, dir: string): unknown {
  const { errcode, message } = (error ?? {}) as { errcode?: unknown; message?: unknown };
  const full = (typeof errcode === "number" && (errcode & 0xff) === SQLITE_FULL) ||
    message === "database or disk is full";
  return full ? new StorageFullError(dir, { cause: error }) : error;
}
