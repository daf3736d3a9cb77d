/**
 * How a command reaches the messenger: through the running daemon's control
 * API when one holds the data directory, else through a runtime of its own,
 * opened under the writer lock with the passphrase and clock the command was
 * given (see `app/runtime/client.ts`).
 *
 * @module
 */
import type { Command } from "commander";
import { type Clock, offsetClock, parseDuration, systemClock } from "../core/clock.ts";
import { PassphraseRequiredError } from "../core/keys/key_stores.ts";
import { connect } from "../runtime/client.ts";
import type { WriterLock } from "../runtime/lock.ts";
import type { InputOf, OperationName, ResultOf } from "../runtime/operations/mod.ts";
import { Runtime } from "../runtime/runtime.ts";
import { passphraseFrom, promptPassphrase } from "./passphrase.ts";

/** The options every command takes. */
export interface GlobalOptions {
  dataDir: string;
  json?: boolean;
  passphraseFile?: string;
}

/** The messenger as a command uses it: its operations, typed. */
export interface Messenger {
  /** True when the daemon runs the operations; false when this process does. */
  readonly remote: boolean;
  /** Runs the operation `name` on `input`. */
  call<N extends OperationName>(
    name: N,
    ...input: InputOf<N> extends undefined ? [] : [InputOf<N>]
  ): Promise<ResultOf<N>>;
  /** Runs the operation `name` on `input`, passing what it reports of its progress to `onProgress`. */
  track<N extends OperationName>(
    name: N,
    input: InputOf<N>,
    onProgress: (progress: unknown) => void,
  ): Promise<ResultOf<N>>;
}

/** The clock, shifted by `RELAYMAIL_CLOCK_OFFSET` (e.g. `181d`) for tests and drills. */
export function clockFromEnvironment(): Clock {
  const offset = Deno.env.get("RELAYMAIL_CLOCK_OFFSET");
  return offset ? offsetClock(parseDuration(offset)) : systemClock;
}

/** Options of {@linkcode openRuntime}. */
export interface OpenRuntimeOptions {
  /** Where the passphrase is, if not in `RELAYMAIL_PASSPHRASE` (default: prompt if needed). */
  readonly passphraseFile?: string;
  /** The writer lock, when the caller took it (default: take it, or fail at once). */
  readonly lock?: WriterLock;
}

/**
 * Opens `dataDir` in a runtime of this process, unlocking its keys with the
 * passphrase from the file, the environment or, when the keys need one and a
 * person is at the terminal, a prompt.
 */
export async function openRuntime(
  dataDir: string,
  options: OpenRuntimeOptions = {},
): Promise<Runtime> {
  const now = clockFromEnvironment();
  let passphrase = await passphraseFrom(options.passphraseFile, "RELAYMAIL_PASSPHRASE");
  const open = () => Runtime.open(dataDir, { lock: options.lock, passphrase, now });
  try {
    return await open();
  } catch (error) {
    if (!(error instanceof PassphraseRequiredError)) throw error;
    passphrase = await promptPassphrase("Passphrase: ");
    if (passphrase === undefined) throw error;
    return await open();
  }
}

/** Runs `fn` on the messenger of `command`'s data directory, and lets it go. */
export async function withMessenger<T>(
  command: Command,
  fn: (messenger: Messenger, options: GlobalOptions) => Promise<T>,
): Promise<T> {
  const options = command.optsWithGlobals<GlobalOptions>();
  const client = await connect(options.dataDir, {
    open: (lock) => openRuntime(options.dataDir, { passphraseFile: options.passphraseFile, lock }),
  });
  try {
    const messenger: Messenger = {
      remote: client.remote,
      call: (name, ...input) => client.call(name, input[0] ?? {}) as Promise<never>,
      track: (name, input, onProgress) =>
        client.call(name, input, { onProgress }) as Promise<never>,
    };
    return await fn(messenger, options);
  } finally {
    await client.close();
  }
}
