/**
 * Durable storage for nodes and bindings: SQLite through Deno's built-in
 * `node:sqlite`, set up so that a committed transaction survives a crash or a power
 * cut (WAL with `synchronous=FULL`). RS-000 lets a hop acknowledge a parcel only
 * once it is stored like this.
 *
 * @module
 */
import { DatabaseSync, type SQLInputValue, type StatementSync } from "node:sqlite";

/** A row as `node:sqlite` returns it. */
export type Row = Record<string, SQLInputValue>;

/** Options of {@linkcode SqliteDatabase.open}. */
export interface OpenDatabaseOptions {
  /**
   * Schema migrations, applied in order; `PRAGMA user_version` records how many
   * have run. Never edit a published one: append a new one.
   */
  readonly migrations: readonly string[];
  /** How long to wait for another process's write lock, in ms (default 10 000). */
  readonly busyTimeoutMs?: number;
}

/**
 * Raised when a write fails because the disk holding the database is full. It is
 * transient: the statement or transaction that failed was rolled back whole, and the
 * same {@linkcode SqliteDatabase} takes writes again as soon as space is freed. A
 * hop that meets it must not acknowledge what it was storing: it refuses for now,
 * and the sender keeps the parcel and tries later.
 *
 * @example Telling a full disk from other failures
 * ```ts
 * import assert from "node:assert/strict";
 * import { SqliteDatabase, StorageFullError } from "./durable.ts";
 *
 * const db = SqliteDatabase.open(":memory:", { migrations: ["CREATE TABLE t (x)"] });
 * // A database of one page fills at the first row: SQLite says "full", as on a full disk.
 * db.exec("PRAGMA max_page_count = 1");
 * let refused = false;
 * try {
 *   db.transaction(() => db.run("INSERT INTO t (x) VALUES (?)", "x".repeat(10_000)));
 * } catch (error) {
 *   if (!(error instanceof StorageFullError)) throw error;
 *   // Nothing was kept: refuse transiently, and let the sender try again later.
 *   refused = true;
 * }
 * assert.ok(refused);
 * assert.equal(db.get("SELECT count(*) AS n FROM t")?.n, 0);
 * db.close();
 * ```
 */
export class StorageFullError extends Error {
  /** Creates the error for the database at `path`. */
  constructor(readonly path: string, options?: ErrorOptions) {
    super(
      `Cannot write to ${path} as the disk holding it is full: free some space and try again`,
      options,
    );
    this.name = "StorageFullError";
  }
}

// SQLite result codes (https://www.sqlite.org/rescode.html).
const SQLITE_FULL = 13;
/** Growing the WAL index (`-shm`) failed; on Unix, that is `ENOSPC` when writing it. */
const SQLITE_IOERR_SHMSIZE = 4874;

/** `error` as a {@linkcode StorageFullError} if it says the disk is full, else unchanged. */
function storageError(error: unknown, path: string): unknown {
  if (error instanceof StorageFullError) return error;
  const { code, errcode, message } = (error ?? {}) as {
    code?: unknown;
    errcode?: unknown;
    message?: unknown;
  };
  if (code !== "ERR_SQLITE_ERROR") return error;
  const full = typeof errcode === "number"
    ? (errcode & 0xff) === SQLITE_FULL || errcode === SQLITE_IOERR_SHMSIZE
    // `DatabaseSync.exec()` reports no result code, only SQLite's text for it.
    : message === "database or disk is full";
  return full ? new StorageFullError(path, { cause: error }) : error;
}

/**
 * Raised for a file Relaymail will not write through: a symbolic link, something
 * other than a regular file, or a file another user owns, where its own file
 * belongs. Someone who could write into the directory before it was made
 * private may have planted it, to have keys and mail written elsewhere.
 */
export class ForeignFileError extends Error {
  /** Creates the error for `path`, saying `why` (e.g. "a symbolic link"). */
  constructor(readonly path: string, why: string) {
    super(`Cannot use ${path} as it is ${why}: remove it, and Relaymail makes its own`);
    this.name = "ForeignFileError";
  }
}

/**
 * Throws a {@linkcode ForeignFileError} if `path` exists and is a link, not a
 * regular file, or another user's. Its absence is fine.
 */
export function refuseForeignFile(path: string): void {
  let info: Deno.FileInfo;
  try {
    info = Deno.lstatSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  if (info.isSymlink) throw new ForeignFileError(path, "a symbolic link");
  if (!info.isFile) throw new ForeignFileError(path, "not a regular file");
  const me = Deno.uid();
  if (me !== null && info.uid !== null && info.uid !== me) {
    throw new ForeignFileError(path, `owned by another user (uid ${info.uid})`);
  }
}

/**
 * Replaces the file at `path` with `text` all at once, readable by its owner
 * only: written to a fresh name created exclusively (nothing planted there can
 * take it), then renamed over `path` (a link there is replaced, not followed).
 */
export async function replaceFile(path: string, text: string): Promise<void> {
  const random = Array.from(
    crypto.getRandomValues(new Uint8Array(12)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  const temporary = `${path}.${random}.tmp`;
  try {
    await Deno.writeTextFile(temporary, text, { createNew: true, mode: 0o600 });
    await Deno.rename(temporary, path);
  } catch (error) {
    await Deno.remove(temporary).catch(() => {});
    throw error;
  }
}

/**
 * Makes the database file readable by its owner only (0600), creating it if
 * needed, before SQLite opens it: SQLite gives its WAL and shared-memory files the
 * database file's mode. A link or another user's file in their place is refused.
 */
function ownerOnly(path: string): void {
  if (Deno.build.os === "windows") return;
  for (const file of [path, `${path}-wal`, `${path}-shm`]) refuseForeignFile(file);
  try {
    Deno.openSync(path, { read: true, write: true, create: true, mode: 0o600 }).close();
    Deno.chmodSync(path, 0o600);
    for (const suffix of ["-wal", "-shm"]) {
      try {
        Deno.chmodSync(path + suffix, 0o600);
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      }
    }
  } catch (error) {
    // A read-only medium or a file owned by someone else: SQLite says what is wrong.
    if (!(error instanceof Deno.errors.PermissionDenied)) throw error;
  }
}

function safely(fn: () => void): void {
  try {
    fn();
  } catch (error) {
    console.error(`A listener failed after a commit: ${(error as Error)?.stack ?? error}`);
  }
}

/**
 * One SQLite database file with cached statements and nested transactions.
 *
 * Its transaction depth always agrees with SQLite's own state, whatever fails: a
 * failed COMMIT, BEGIN or SAVEPOINT, or an error after which SQLite rolled the whole
 * transaction back by itself (a full disk, an I/O error). A full disk surfaces as
 * {@linkcode StorageFullError}.
 */
export class SqliteDatabase {
  readonly #db: DatabaseSync;
  readonly #path: string;
  readonly #statements = new Map<string, StatementSync>();
  #depth = 0;
  /** The error that ended the current transaction before its outermost level did. */
  #lost: unknown = undefined;
  /** A ROLLBACK failed: the transaction is still open and must go before anything else runs. */
  #stale = false;

  private constructor(db: DatabaseSync, path: string) {
    this.#db = db;
    this.#path = path;
  }

  /** Opens (creating if needed) the database at `path` and brings its schema up to date. */
  static open(path: string, options: OpenDatabaseOptions): SqliteDatabase {
    if (path !== ":memory:") ownerOnly(path);
    const db = new DatabaseSync(path);
    try {
      db.exec(`PRAGMA busy_timeout = ${options.busyTimeoutMs ?? 10_000}`);
      db.exec("PRAGMA journal_mode = WAL");
      db.exec("PRAGMA synchronous = FULL");
      db.exec("PRAGMA foreign_keys = ON");
      const database = new SqliteDatabase(db, path);
      database.#migrate(options.migrations);
      return database;
    } catch (error) {
      db.close();
      throw storageError(error, path);
    }
  }

  #migrate(migrations: readonly string[]): void {
    this.transaction(() => {
      const { user_version: version } = this.get<{ user_version: number }>("PRAGMA user_version")!;
      if (version > migrations.length) {
        throw new RangeError(
          `Database schema version ${version} is newer than this program understands (${migrations.length}): upgrade Relaymail`,
        );
      }
      for (let index = version; index < migrations.length; index++) {
        this.#db.exec(migrations[index]);
      }
      this.#db.exec(`PRAGMA user_version = ${migrations.length}`);
    });
  }

  /** A cached prepared statement. */
  prepare(sql: string): StatementSync {
    let statement = this.#statements.get(sql);
    if (!statement) {
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  /** Runs a statement that returns no rows; returns the number of rows changed. */
  run(sql: string, ...params: SQLInputValue[]): number {
    return this.#step(() => Number(this.prepare(sql).run(...params).changes));
  }

  /** The first row of a query, or undefined. */
  get<T = Row>(sql: string, ...params: SQLInputValue[]): T | undefined {
    return this.#step(() => this.prepare(sql).get(...params) as T | undefined);
  }

  /** Every row of a query. */
  all<T = Row>(sql: string, ...params: SQLInputValue[]): T[] {
    return this.#step(() => this.prepare(sql).all(...params) as T[]);
  }

  /** Runs SQL text holding several statements. */
  exec(sql: string): void {
    this.#step(() => this.#db.exec(sql));
  }

  /**
   * Runs `fn` in one transaction, committed when it returns and rolled back when it
   * throws. Nested calls become savepoints. `fn` must be synchronous: nothing else
   * can then interleave with the transaction.
   *
   * When the disk is full this throws {@linkcode StorageFullError}, with nothing of
   * the transaction kept; the next call may succeed once space is freed.
   */
  transaction<T>(fn: () => T): T {
    const depth = this.#depth;
    const savepoint = `sp${depth}`;
    const pending = this.#afterCommit.length;
    this.#ready();
    if (depth === 0) this.#lost = undefined;
    this.#control(depth === 0 ? "BEGIN IMMEDIATE" : `SAVEPOINT ${savepoint}`);
    this.#depth = depth + 1;
    let committed = false;
    try {
      const result = fn();
      if (result instanceof Promise) {
        throw new TypeError("A transaction function must be synchronous");
      }
      // `fn` may have caught an error after which SQLite rolled everything back.
      this.#ready();
      this.#control(depth === 0 ? "COMMIT" : `RELEASE ${savepoint}`);
      committed = depth === 0;
      return result;
    } catch (error) {
      const failure = storageError(error, this.#path);
      this.#undo(depth, savepoint);
      if (depth > 0 && this.#ended()) this.#lost ??= failure;
      // What was to follow the undone work goes with it.
      this.#afterCommit.length = depth === 0 ? 0 : pending;
      throw failure;
    } finally {
      this.#depth = depth;
      if (committed) this.#runAfterCommit();
    }
  }

  /**
   * Runs `fn` once the current transaction commits (at once outside one), and
   * never if it rolls back: what others are told (events, say) is then always
   * what is on disk. An exception from `fn` is reported, not thrown: the commit
   * has happened.
   */
  afterCommit(fn: () => void): void {
    if (this.#depth === 0) {
      safely(fn);
      return;
    }
    this.#afterCommit.push(fn);
  }

  readonly #afterCommit: (() => void)[] = [];

  #runAfterCommit(): void {
    for (const fn of this.#afterCommit.splice(0)) safely(fn);
  }

  /** Closes the database; later calls fail. */
  close(): void {
    this.#statements.clear();
    if (this.#db.isOpen) this.#db.close();
  }

  /** Runs one statement of the caller's, once SQLite's state agrees with ours. */
  #step<T>(statement: () => T): T {
    this.#ready();
    try {
      return statement();
    } catch (error) {
      const failure = storageError(error, this.#path);
      if (this.#depth > 0 && this.#ended()) this.#lost ??= failure;
      throw failure;
    }
  }

  /** Runs BEGIN, COMMIT, SAVEPOINT and the like (prepared, so that errors carry their code). */
  #control(sql: string): void {
    try {
      this.prepare(sql).run();
    } catch (error) {
      throw storageError(error, this.#path);
    }
  }

  /**
   * Brings SQLite's transaction state in line with ours before a statement: outside a
   * transaction, a stale one left by a failed ROLLBACK goes; inside one that an error
   * ended, nothing may run, or it would be committed on its own.
   */
  #ready(): void {
    if (this.#depth === 0) {
      if (this.#stale) this.#rollback();
      if (this.#stale) {
        throw new Error(`Cannot use ${this.#path}: an earlier transaction cannot be rolled back`);
      }
    } else if (this.#ended()) {
      throw this.#lost ??
        new Error(`Cannot continue a transaction on ${this.#path}: an error ended it`);
    }
  }

  /** Whether the transaction under way was ended by an error (or half undone). */
  #ended(): boolean {
    return this.#stale || !this.#db.isTransaction;
  }

  /** Undoes level `depth` of the transaction after a failure. */
  #undo(depth: number, savepoint: string): void {
    // After some errors (a full disk among them) SQLite has already rolled the whole
    // transaction back, and a ROLLBACK would only fail.
    if (!this.#db.isTransaction) return;
    if (depth > 0 && !this.#stale) {
      try {
        this.#control(`ROLLBACK TO ${savepoint}`);
        this.#control(`RELEASE ${savepoint}`);
        return;
      } catch {
        // This level cannot be undone alone: undo all of it; the outer levels then fail too.
      }
    }
    this.#rollback();
  }

  /** Rolls the whole transaction back; if even that fails, the next statement tries again. */
  #rollback(): void {
    try {
      if (this.#db.isTransaction) this.#control("ROLLBACK");
      this.#stale = false;
    } catch {
      this.#stale = true;
    }
  }
}
