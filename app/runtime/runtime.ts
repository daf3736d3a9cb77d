/**
 * The runtime: one open data directory and everything that lives with it. It
 * holds the directory's writer lock, owns the messenger, its settings and the
 * daemon, restarts the daemon when settings change, serves the control API that
 * CLI commands use while it runs, and runs the operations both the CLI and the
 * control API name. The CLI, the web app and the daemon command are thin
 * adapters on it.
 *
 * @module
 */
import { resolve } from "node:path";
import { errorMessage } from "../../bindings/validation.ts";
import { removeBackupLeftovers } from "../core/backup_db.ts";
import { ConflictError, UserInputError } from "../core/errors.ts";
import { PassphraseGuard } from "../core/passphrase_guard.ts";
import { Settings } from "../core/settings.ts";
import { Daemon, type DaemonOptions, type DaemonStatus } from "../services/daemon.ts";
import { type OpenOptions, Relaymail } from "../services/relaymail.ts";
import { ControlServer } from "./control.ts";
import { roundTrip } from "./json.ts";
import { WriterLock } from "./lock.ts";
import { OPERATIONS } from "./operations/mod.ts";
import type { CallOptions, DaemonState, OperationContext } from "./types.ts";

export type { DaemonState };

/** Options of {@linkcode Runtime.open}. */
export interface RuntimeOptions extends OpenOptions {
  /** The writer lock, when the caller took it already (see `client.ts`). */
  readonly lock?: WriterLock;
  /** How long to wait for another writer to finish, in ms (default 0). */
  readonly lockWaitMs?: number;
  /** Where log lines go (default: stdout, after the time). */
  readonly log?: (line: string) => void;
}

/** The runtime's events, on {@linkcode Runtime.events}. */
export type RuntimeEventName =
  /** The daemon started, stopped or failed to start: `detail` is its {@linkcode DaemonState}. */
  | "daemon"
  /** A peer came or went. */
  | "peers";

/** An open data directory, held by this process alone. */
export class Runtime {
  /** Dispatches {@linkcode RuntimeEventName} events. */
  readonly events: EventTarget = new EventTarget();
  /** The user's settings. */
  readonly settings: Settings;
  /** Checks the current passphrase before it is changed or removed, counting wrong ones. */
  readonly passphrases: PassphraseGuard;
  readonly log: (line: string) => void;
  #daemon: Daemon | null = null;
  #daemonError: unknown = null;
  #daemonOptions: (() => DaemonOptions) | null = null;
  #restarting: Promise<void> | null = null;
  #control: ControlServer | null = null;
  #closed = false;

  private constructor(
    readonly messenger: Relaymail,
    private readonly lock: WriterLock,
    log: (line: string) => void,
    private readonly ownsMessenger = true,
  ) {
    this.settings = new Settings(messenger.ctx.db);
    this.passphrases = new PassphraseGuard(messenger.ctx.now);
    this.log = log;
  }

  /** Takes `dataDir`'s writer lock (unless given) and opens the messenger in it. */
  static async open(dataDir: string, options: RuntimeOptions = {}): Promise<Runtime> {
    // Absolute: operations and the control socket must not depend on a working directory.
    dataDir = resolve(dataDir);
    await Deno.mkdir(dataDir, { recursive: true, mode: 0o700 });
    const lock = options.lock ??
      (await WriterLock.acquire(dataDir, { waitMs: options.lockWaitMs }))!;
    try {
      // Under the lock, no backup or restore is under way: what one left is litter.
      await removeBackupLeftovers(dataDir);
      const messenger = await Relaymail.open(dataDir, options);
      return new Runtime(messenger, lock, options.log ?? timestamped);
    } catch (error) {
      if (!options.lock) lock.release(); // a lock the caller gave stays theirs to release
      throw error;
    }
  }

  /**
   * A runtime for a messenger opened elsewhere (tests, embedders), taking its
   * directory's writer lock. Closing the runtime leaves the messenger open.
   */
  static async attach(
    messenger: Relaymail,
    options: Pick<RuntimeOptions, "lockWaitMs" | "log"> = {},
  ): Promise<Runtime> {
    const lock = await WriterLock.acquire(messenger.dataDir, { waitMs: options.lockWaitMs });
    return new Runtime(messenger, lock!, options.log ?? timestamped, false);
  }

  get dataDir(): string {
    return this.messenger.dataDir;
  }

  /** The daemon, while it runs. */
  get daemon(): Daemon | null {
    return this.#daemon;
  }

  /**
   * Runs the daemon from now on, with the options `options` returns, read afresh
   * at each (re)start so that settings changes apply. It starts once the
   * messenger has an identity; a failure to start is logged and kept in
   * {@linkcode Runtime.daemonState}, not thrown.
   */
  async runDaemon(options: () => DaemonOptions): Promise<void> {
    this.#daemonOptions = options;
    if (this.messenger.identity.exists()) await this.restartDaemon();
  }

  /** (Re)starts the daemon with the current settings, one restart at a time. */
  restartDaemon(): Promise<void> {
    if (!this.#daemonOptions || this.#closed) return Promise.resolve();
    this.#restarting ??= (async () => {
      await this.#daemon?.stop();
      this.#daemon = null;
      try {
        const daemon = await Daemon.start(this.messenger, {
          ...this.#daemonOptions!(),
          log: this.log,
        });
        const peers = () => this.events.dispatchEvent(new CustomEvent("peers"));
        daemon.mesh.on("peer:connect", peers);
        daemon.mesh.on("peer:disconnect", peers);
        this.#daemon = daemon;
        this.#daemonError = null;
      } catch (error) {
        this.#daemonError = error;
        this.log(`the daemon could not start: ${errorMessage(error)}`);
      }
      this.events.dispatchEvent(new CustomEvent("daemon", { detail: this.daemonState() }));
    })().finally(() => (this.#restarting = null));
    return this.#restarting;
  }

  /** Called after settings change: the daemon, if it runs, restarts with them. */
  async settingsChanged(): Promise<void> {
    if (this.#daemonOptions && this.messenger.identity.exists()) await this.restartDaemon();
  }

  /** Why the daemon could not start (the error itself), or null. */
  daemonFailure(): unknown {
    return this.#daemonError;
  }

  /** The daemon's state, for status views. */
  daemonState(): DaemonState {
    const status: DaemonStatus | undefined = this.#daemon?.status();
    return {
      running: this.#daemon !== null,
      error: this.#daemonError === null ? null : errorMessage(this.#daemonError),
      peerId: status?.peerId ?? null,
      addresses: status?.addresses ?? [],
      parcelsCarried: status?.parcelsCarried ?? 0,
      gateway: status?.gateway ?? null,
      poweb: status?.poweb ?? null,
    };
  }

  /** Serves the control API, through which CLI commands reach this runtime. */
  async serveControl(): Promise<void> {
    this.#control ??= await ControlServer.start(this);
  }

  /**
   * Runs the operation `name` on `input` in this process. What goes in and what
   * comes out take the control API's JSON round trip, so a command sees the same
   * whether it ran here or in the daemon.
   */
  async call(name: string, input: unknown = {}, options: CallOptions = {}): Promise<unknown> {
    const onProgress = options.onProgress;
    return roundTrip(
      await this.serve(name, roundTrip(input), {
        onProgress: onProgress && ((data) => onProgress(roundTrip(data))),
      }),
    );
  }

  /**
   * Runs the operation `name` on `input` as it came over the control API (already
   * decoded from its JSON); the control server encodes what it returns.
   */
  async serve(name: string, input: unknown, options: CallOptions = {}): Promise<unknown> {
    if (this.#closed) throw new ConflictError("Relaymail is stopping");
    const operation = Object.hasOwn(OPERATIONS, name) ? OPERATIONS[name] : undefined;
    if (!operation) throw new UserInputError(`No operation "${name}"`);
    const daemon = () => this.#daemon;
    const context: OperationContext = {
      messenger: this.messenger,
      settings: this.settings,
      dataDir: this.dataDir,
      get daemon() {
        return daemon();
      },
      daemonState: () => this.daemonState(),
      settingsChanged: () => this.settingsChanged(),
      checkPassphrase: (current) =>
        this.passphrases.check(this.messenger.ctx.db, this.messenger.hasPassphrase, current),
      progress: (data) => options.onProgress?.(data),
    };
    return await operation(context, input);
  }

  /** Stops the daemon and the control API, closes the messenger and gives the lock up. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#restarting?.catch(() => {});
    try {
      await this.#control?.stop();
      await this.#daemon?.stop();
      this.#daemon = null;
      if (this.ownsMessenger) this.messenger.close();
    } finally {
      this.lock.release();
    }
  }
}

/** The default log: a line on stdout, after the time. */
function timestamped(line: string): void {
  console.log(`${new Date().toISOString()} ${line}`);
}
