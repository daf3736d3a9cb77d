/**
 * One writer per data directory. The process that writes a data directory holds
 * an exclusive lock on its `writer.lock` file: the daemon for as long as it runs,
 * a CLI command for the moment it works when no daemon does. The operating
 * system drops the lock when the process ends, however it ends, so a crash never
 * leaves the directory locked.
 *
 * @module
 */
import { join } from "node:path";
import { ConflictError } from "../core/errors.ts";

/** Name of the lock file, inside the data directory. */
export const LOCK_FILE = "writer.lock";

/** Options of {@linkcode WriterLock.acquire}. */
export interface AcquireOptions {
  /** How long to wait for another writer to finish, in ms (default 0: do not wait). */
  readonly waitMs?: number;
  /** Checked between attempts: returns true to give up waiting (say, a daemon now answers). */
  readonly giveUp?: () => Promise<boolean>;
}

/** The exclusive right to write one data directory, until {@linkcode WriterLock.release}. */
export class WriterLock {
  private constructor(readonly path: string, readonly file: Deno.FsFile) {}

  /**
   * Takes the lock on `dataDir`, waiting up to `options.waitMs`; returns null if
   * `options.giveUp` said to, and throws a {@linkcode ConflictError} naming the
   * holder if the wait ran out.
   */
  static async acquire(dataDir: string, options: AcquireOptions = {}): Promise<WriterLock | null> {
    const path = join(dataDir, LOCK_FILE);
    const file = await Deno.open(path, { read: true, write: true, create: true, mode: 0o600 });
    const deadline = Date.now() + (options.waitMs ?? 0);
    try {
      for (let pause = 10;; pause = Math.min(pause * 2, 200)) {
        if (await file.tryLock(true)) {
          await file.truncate(0);
          await file.write(new TextEncoder().encode(`${Deno.pid}\n`));
          return new WriterLock(path, file);
        }
        if (await options.giveUp?.()) {
          file.close();
          return null;
        }
        if (Date.now() >= deadline) break;
        await new Promise((resolve) => setTimeout(resolve, pause));
      }
    } catch (error) {
      file.close();
      throw error;
    }
    file.close();
    const holder = (await Deno.readTextFile(path).catch(() => "")).trim();
    throw new ConflictError(
      `Another Relaymail process${holder ? ` (pid ${holder})` : ""} is writing ${dataDir}: ` +
        `wait for it to finish, or stop it`,
    );
  }

  /** Gives the lock up. */
  release(): void {
    try {
      this.file.unlockSync();
    } finally {
      this.file.close();
    }
  }
}
