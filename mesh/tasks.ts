/**
 * The work a service has running (stream handlers, exchanges it started), so
 * that stopping it aborts that work and waits for it: once a service's `stop()`
 * resolves, nothing of it runs any more.
 *
 * @module
 */

/** Tracks running work; {@linkcode TaskGroup.close} aborts it and waits for it to end. */
export class TaskGroup {
  readonly #running = new Set<Promise<unknown>>();
  readonly #controller = new AbortController();

  /** Aborted once the group closes: work passes it on to what it waits for. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** Whether the group is closed: no new work starts. */
  get closed(): boolean {
    return this.#controller.signal.aborted;
  }

  /**
   * Starts `work` and tracks it until it settles; returns its promise, or
   * undefined (and starts nothing) once the group is closed.
   */
  run<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> | undefined {
    if (this.closed) return undefined;
    return this.track(work(this.signal));
  }

  /** Tracks a promise of work already started, until it settles. */
  track<T>(promise: Promise<T>): Promise<T> {
    this.#running.add(promise);
    const forget = () => this.#running.delete(promise);
    promise.then(forget, forget);
    return promise;
  }

  /** Closes the group (aborting its signal with `reason`) and resolves once its work is over. */
  async close(reason: Error = new Error("The service is stopping")): Promise<void> {
    if (!this.closed) this.#controller.abort(reason);
    // Work that ends may have started more before it saw the signal.
    while (this.#running.size > 0) await Promise.allSettled([...this.#running]);
  }
}
