/**
 * How a command reaches the messenger with one writer per data directory: when
 * a runtime (the daemon, or `relaymail start`) holds the directory, through its
 * control API; when none does, by taking the writer lock and opening the
 * directory itself for the length of the command.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { ControlClient } from "./control.ts";
import { CONTROL_FILE, controlSocketPath } from "./control_address.ts";
import { ConflictError } from "../core/errors.ts";
import { WriterLock } from "./lock.ts";
import type { Runtime } from "./runtime.ts";
import type { DaemonStatus } from "../services/daemon.ts";
import type { ResultOf } from "./operations/mod.ts";
import type { CallOptions } from "./types.ts";

/** The messenger, as a command sees it. */
export interface MessengerClient {
  /** True when the daemon runs the operations; false when this process does. */
  readonly remote: boolean;
  /** Runs the operation `name` (see `operations/`). */
  call(name: string, input?: unknown, options?: CallOptions): Promise<unknown>;
  /** Done: a local runtime is closed and its lock given up. */
  close(): Promise<void>;
}

/** Options of {@linkcode connect}. */
export interface ConnectOptions {
  /** Opens the runtime when no daemon runs, with the lock this process took. */
  readonly open: (lock: WriterLock) => Promise<Runtime>;
  /** How long to wait for another process writing the directory, in ms (default 15 s). */
  readonly waitMs?: number;
}

/**
 * The messenger of `dataDir`: the running daemon's over its control API, or a
 * runtime of this process's own when no daemon runs. A CLI command running next
 * to another (one without a daemon) waits for it to finish.
 */
export async function connect(dataDir: string, options: ConnectOptions): Promise<MessengerClient> {
  // Absolute, so that the control socket is found whatever the working directory.
  dataDir = resolve(dataDir);
  await Deno.mkdir(dataDir, { recursive: true, mode: 0o700 });
  let remote: ControlClient | null = null;
  // The lock first: when it is free no daemon runs, whatever control.json says
  // (a daemon that was killed leaves it behind).
  const lock = await WriterLock.acquire(dataDir, {
    waitMs: options.waitMs ?? 15_000,
    giveUp: async () => (remote = await ControlClient.connect(dataDir)) !== null,
  });
  if (!lock) return remoteClient(remote!);
  try {
    // What a daemon that was killed left behind.
    await Deno.remove(join(dataDir, CONTROL_FILE)).catch(() => {});
    const socket = await controlSocketPath(dataDir);
    if (socket) await Deno.remove(socket).catch(() => {});
    const runtime = await options.open(lock);
    return localClient(runtime);
  } catch (error) {
    lock.release();
    throw error;
  }
}

function remoteClient(control: ControlClient): MessengerClient {
  return {
    remote: true,
    call: (name, input, options) => control.call(name, input, options),
    close: () => Promise.resolve(control.close()),
  };
}

/**
 * A runtime of this process's own. Each command first does the housekeeping the
 * daemon would (renewals, expiries), and afterwards builds the parcels it called
 * for, since no daemon will.
 */
function localClient(runtime: Runtime): MessengerClient {
  const messenger = runtime.messenger;
  return {
    remote: false,
    async call(name, input, options) {
      if (messenger.identity.exists()) await messenger.maintain();
      const result = await runtime.call(name, input, options);
      if (messenger.identity.exists()) await messenger.flush();
      return result;
    },
    close: () => runtime.close(),
  };
}

/**
 * Takes `dataDir`'s writer lock to run a daemon there. A command holds the lock
 * only while it works, so this waits for it (up to `waitMs`); but when another
 * daemon holds it (its control API answers), this fails at once, naming it.
 */
export async function lockForDaemon(dataDir: string, waitMs = 60_000): Promise<WriterLock> {
  dataDir = resolve(dataDir);
  await Deno.mkdir(dataDir, { recursive: true, mode: 0o700 });
  let running: ControlClient | null = null;
  const lock = await WriterLock.acquire(dataDir, {
    waitMs,
    giveUp: async () => (running = await ControlClient.connect(dataDir)) !== null,
  });
  if (lock) return lock;
  const pid = running!.address.pid;
  running!.close();
  throw new ConflictError(
    `Relaymail is already running for ${dataDir} (pid ${pid}): stop it first, or use another data directory`,
  );
}

/** The status of the daemon running `dataDir`, or null when none runs. */
export async function readDaemonStatus(dataDir: string): Promise<DaemonStatus | null> {
  const control = await ControlClient.connect(dataDir);
  if (!control) return null;
  try {
    const { status } = await control.call("runtime.status") as ResultOf<"runtime.status">;
    return status;
  } finally {
    control.close();
  }
}
