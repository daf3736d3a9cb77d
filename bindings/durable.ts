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

/** One SQLite database file with cached statements and nested transactions. */
export class SqliteDatabase {
  readonly #db: DatabaseSync;
  readonly #statements = new Map<string, StatementSync>();
  #depth = 0;

  private constructor(db: DatabaseSync) {
    this.#db = db;
  }

  /** Opens (creating if needed) the database at `path` and brings its schema up to date. */
  static open(path: string, options: OpenDatabaseOptions): SqliteDatabase {
    const db = new DatabaseSync(path);
    try {
      db.exec(`PRAGMA busy_timeout = ${options.busyTimeoutMs ?? 10_000}`);
      db.exec("PRAGMA journal_mode = WAL");
      db.exec("PRAGMA synchronous = FULL");
      db.exec("PRAGMA foreign_keys = ON");
      const database = new SqliteDatabase(db);
      database.#migrate(options.migrations);
      return database;
    } catch (error) {
      db.close();
      throw error;
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
    return Number(this.prepare(sql).run(...params).changes);
  }

  /** The first row of a query, or undefined. */
  get<T = Row>(sql: string, ...params: SQLInputValue[]): T | undefined {
    return this.prepare(sql).get(...params) as T | undefined;
  }

  /** Every row of a query. */
  all<T = Row>(sql: string, ...params: SQLInputValue[]): T[] {
    return this.prepare(sql).all(...params) as T[];
  }

  /** Runs SQL text holding several statements. */
  exec(sql: string): void {
    this.#db.exec(sql);
  }

  /**
   * Runs `fn` in one transaction, committed when it returns and rolled back when it
   * throws. Nested calls become savepoints. `fn` must be synchronous: nothing else
   * can then interleave with the transaction.
   */
  transaction<T>(fn: () => T): T {
    const savepoint = `sp${this.#depth}`;
    this.#db.exec(this.#depth === 0 ? "BEGIN IMMEDIATE" : `SAVEPOINT ${savepoint}`);
    this.#depth++;
    try {
      const result = fn();
      if (result instanceof Promise) {
        throw new TypeError("A transaction function must be synchronous");
      }
      this.#depth--;
      this.#db.exec(this.#depth === 0 ? "COMMIT" : `RELEASE ${savepoint}`);
      return result;
    } catch (error) {
      this.#depth--;
      this.#db.exec(
        this.#depth === 0 ? "ROLLBACK" : `ROLLBACK TO ${savepoint}; RELEASE ${savepoint}`,
      );
      throw error;
    }
  }

  /** Closes the database; later calls fail. */
  close(): void {
    this.#statements.clear();
    if (this.#db.isOpen) this.#db.close();
  }
}
