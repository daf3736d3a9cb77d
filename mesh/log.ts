/**
 * A small structured logger: levels, a component name, a fields object per
 * record, and a sink that decides where records go. A mesh node takes one as
 * its `logger` option and hands each of its services a child named for it
 * (`mesh/sync`, `mesh/transfer`, …).
 *
 * The default logger writes warnings and errors to stderr and drops the rest;
 * with `RELAYMAIL_MESH_DEBUG` set in the environment (and readable), it writes
 * everything. To send records elsewhere, give {@linkcode createLogger} a sink.
 *
 * @example Records kept in memory, as a test would
 * ```ts
 * import assert from "node:assert/strict";
 * import { createLogger, type LogRecord } from "./log.ts";
 *
 * const records: LogRecord[] = [];
 * const logger = createLogger({ level: "info", sink: (record) => records.push(record) });
 * const sync = logger.child("sync", { node: "12D3KooWNode" });
 * sync.debug("dropped: below the level");
 * sync.warn("Reconciliation failed", { peer: "12D3KooWPeer" });
 *
 * assert.equal(records.length, 1);
 * assert.equal(records[0].component, "mesh/sync");
 * assert.deepEqual(records[0].fields, { node: "12D3KooWNode", peer: "12D3KooWPeer" });
 * ```
 *
 * @module
 */
/** How much a record matters, least first. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** What a record says beyond its message: ids, counts, the error that happened. */
export type LogFields = Readonly<Record<string, unknown>>;

/** One thing a logger was told. */
export interface LogRecord {
  /** When it was logged (the machine's clock). */
  readonly time: Date;
  /** How much it matters. */
  readonly level: LogLevel;
  /** The part of the program that logged it, as `mesh/sync`. */
  readonly component: string;
  /** What happened, in a sentence that stays the same from one time to the next. */
  readonly message: string;
  /** The logger's own fields, then the record's. */
  readonly fields: LogFields;
}

/** Takes the records a logger lets through. */
export type LogSink = (record: LogRecord) => void;

/** Writes records of a component at or above a level. */
export interface Logger {
  /** The component it logs for, as `mesh/sync`. */
  readonly component: string;
  /** Details worth seeing only while investigating. */
  debug(message: string, fields?: LogFields): void;
  /** Things that happen in normal operation and are worth a line. */
  info(message: string, fields?: LogFields): void;
  /** Something failed or a peer misbehaved; the node carries on. */
  warn(message: string, fields?: LogFields): void;
  /** Something failed that the node cannot work around. */
  error(message: string, fields?: LogFields): void;
  /** Whether a record at `level` would be written (to skip building costly fields). */
  enabled(level: LogLevel): boolean;
  /** A logger for a part of this component (`mesh` → `mesh/sync`) whose records all carry `fields`. */
  child(component: string, fields?: LogFields): Logger;
}

/** Options of {@linkcode createLogger}. */
export interface LoggerOptions {
  /**
   * The least level written (default `warn`; `debug` when the environment sets
   * `RELAYMAIL_MESH_DEBUG`).
   */
  readonly level?: LogLevel;
  /** The component name (default `mesh`). */
  readonly component?: string;
  /** Fields every record carries (default none). */
  readonly fields?: LogFields;
  /** Where records go (default: one line each on stderr). */
  readonly sink?: LogSink;
}

const RANK: Readonly<Record<LogLevel, number>> = { debug: 0, info: 1, warn: 2, error: 3 };

/** The environment variable that turns the default logger up to `debug`. */
const DEBUG_VARIABLE = "RELAYMAIL_MESH_DEBUG";

/** Creates a logger; see {@linkcode LoggerOptions} for the defaults. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? defaultLevel();
  if (!(level in RANK)) throw new RangeError(`Cannot log at level "${level}": not a level`);
  return new SinkLogger(
    options.component ?? "mesh",
    RANK[level],
    options.fields ?? {},
    options.sink ?? writeToStderr,
  );
}

class SinkLogger implements Logger {
  constructor(
    readonly component: string,
    private readonly least: number,
    private readonly fields: LogFields,
    private readonly sink: LogSink,
  ) {}

  debug(message: string, fields?: LogFields): void {
    this.#log("debug", message, fields);
  }

  info(message: string, fields?: LogFields): void {
    this.#log("info", message, fields);
  }

  warn(message: string, fields?: LogFields): void {
    this.#log("warn", message, fields);
  }

  error(message: string, fields?: LogFields): void {
    this.#log("error", message, fields);
  }

  enabled(level: LogLevel): boolean {
    return RANK[level] >= this.least;
  }

  child(component: string, fields: LogFields = {}): Logger {
    return new SinkLogger(
      `${this.component}/${component}`,
      this.least,
      { ...this.fields, ...fields },
      this.sink,
    );
  }

  #log(level: LogLevel, message: string, fields: LogFields = {}): void {
    if (RANK[level] < this.least) return;
    const record = {
      time: new Date(),
      level,
      component: this.component,
      message,
      fields: { ...this.fields, ...fields },
    };
    try {
      this.sink(record);
    } catch {
      // A sink that throws must not break the node it reports on; there is no
      // one left to tell.
    }
  }
}

/** A logger that writes nothing (tests that want silence, embedders that log elsewhere). */
export const silentLogger: Logger = createLogger({ level: "error", sink: () => {} });

function defaultLevel(): LogLevel {
  try {
    // Asked without a prompt: a program not allowed to read it logs as if unset.
    const permission = Deno.permissions.querySync({ name: "env", variable: DEBUG_VARIABLE });
    if (permission.state === "granted" && Deno.env.get(DEBUG_VARIABLE)) return "debug";
  } catch {
    // Not Deno, or no permissions API: the default stands.
  }
  return "warn";
}

/** The default sink: {@linkcode formatRecord}'s line on stderr. */
function writeToStderr(record: LogRecord): void {
  console.error(formatRecord(record));
}

/** A record as one line: `LEVEL component: message key=value …`. */
export function formatRecord(record: LogRecord): string {
  const fields = Object.entries(record.fields).map(([key, value]) => `${key}=${show(value)}`);
  const line = `${record.level.toUpperCase()} ${record.component}: ${record.message}`;
  return fields.length > 0 ? `${line} ${fields.join(" ")}` : line;
}

function show(value: unknown): string {
  if (value instanceof Error) return JSON.stringify(value.message);
  if (typeof value === "string") return /^[\w./:@+-]+$/.test(value) ? value : JSON.stringify(value);
  if (value instanceof Date) return value.toISOString();
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** The error's message, for a field or a line (anything may be thrown). */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
