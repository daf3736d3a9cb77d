/**
 * The types the runtime's parts share: what an operation sees of the runtime it
 * runs in, and what the runtime says of its daemon. Operations depend on these,
 * not on the runtime itself.
 *
 * @module
 */
import type { Settings } from "../core/settings.ts";
import type { Daemon } from "../services/daemon.ts";
import type { FallbackStatus, PoWebStatus } from "../services/gateway_services.ts";
import type { Relaymail } from "../services/relaymail.ts";

/** What the runtime says of its daemon. */
export interface DaemonState {
  readonly running: boolean;
  /** Why it could not start, when it could not. */
  readonly error: string | null;
  readonly peerId: string | null;
  readonly addresses: readonly string[];
  readonly parcelsCarried: number;
  readonly gateway: FallbackStatus | null;
  readonly poweb: PoWebStatus | null;
}

/** What an operation may use: the runtime it runs in. */
export interface OperationContext {
  readonly messenger: Relaymail;
  readonly settings: Settings;
  readonly dataDir: string;
  /** The daemon, when this runtime runs one (the CLI's own runtime never does). */
  readonly daemon: Daemon | null;
  /** The daemon's state, for status views. */
  daemonState(): DaemonState;
  /** To call after changing settings: a running daemon restarts with them. */
  settingsChanged(): Promise<void>;
  /**
   * Returns when `current` is the passphrase the keys are sealed under (or they
   * are not); throws otherwise, counting wrong guesses.
   */
  checkPassphrase(current: string | undefined): void;
  /** Tells the caller how far a long operation got (plain data), for a progress bar. */
  progress(data: unknown): void;
}

/** Options of a call to an operation. */
export interface CallOptions {
  /** Told what the operation reports with {@linkcode OperationContext.progress}. */
  readonly onProgress?: (data: unknown) => void;
}

/**
 * Something a person can ask of the messenger, by name, from the CLI or over the
 * control API. Its input and result are plain data (with dates and bytes), as
 * they travel as control-API JSON. Errors raised on bad input are the person's
 * fault (see `faults.ts`).
 */
// deno-lint-ignore no-explicit-any
export type Operation = (context: OperationContext, input: any) => unknown;
