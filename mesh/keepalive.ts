/**
 * Notices dead connections within seconds. A Wi-Fi link that drops leaves TCP
 * connections open with nobody at the other end, and TCP takes minutes to give
 * up; the node would wait on a connection that carries nothing, and never dial
 * again. So every connected peer is pinged (libp2p's ping protocol) every
 * `intervalMs`; after `misses` pings in a row go unanswered within `timeoutMs`,
 * its connections are closed, and the reconnection service takes over.
 *
 * @module
 */

/** Options of {@linkcode KeepAlive}. */
export interface KeepAliveOptions {
  /** How often each peer is pinged, in ms (default 3 000). */
  readonly intervalMs?: number;
  /** How long a ping may take, in ms (default 3 000). */
  readonly timeoutMs?: number;
  /** Unanswered pings in a row that make a connection dead (default 2). */
  readonly misses?: number;
}

/** Pings peers and reports the ones that stopped answering. */
export class KeepAlive {
  readonly #missed = new Map<string, number>();
  readonly #busy = new Set<string>();
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly peers: () => readonly string[],
    private readonly ping: (peer: string, signal: AbortSignal) => Promise<unknown>,
    private readonly onDead: (peer: string) => void,
    private readonly options: KeepAliveOptions = {},
  ) {}

  start(): void {
    this.#timer ??= setInterval(() => this.#round(), this.options.intervalMs ?? 3_000);
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** A peer's connections closed: forget its count. */
  forget(peer: string): void {
    this.#missed.delete(peer);
  }

  #round(): void {
    for (const peer of this.peers()) {
      if (this.#busy.has(peer)) continue;
      this.#busy.add(peer);
      this.ping(peer, AbortSignal.timeout(this.options.timeoutMs ?? 3_000)).then(
        () => this.#missed.delete(peer),
        () => {
          const missed = (this.#missed.get(peer) ?? 0) + 1;
          this.#missed.set(peer, missed);
          if (missed >= (this.options.misses ?? 2)) {
            this.#missed.delete(peer);
            this.onDead(peer);
          }
        },
      ).finally(() => this.#busy.delete(peer));
    }
  }
}
