/**
 * Notices dead connections within seconds. A Wi-Fi link that drops leaves TCP
 * connections open with nobody at the other end, and TCP takes minutes to give
 * up; the node would wait on a connection that carries nothing, and never dial
 * again. So every connected peer is pinged (libp2p's ping protocol) every
 * `intervalMs`; after `misses` pings in a row go unanswered within `timeoutMs`,
 * its connections are closed, and the reconnection service takes over.
 *
 * A peer each of whose connections carried a frame from it within `timeoutMs`
 * is alive whatever its ping did: on a slow link a ping and its answer wait
 * behind the parcels in the buffers (a 256 KiB muxer window is 2 s at
 * 1 Mbit/s), and a connection closed for that would restart the parcel from
 * nothing, again and again. A dead peer's connections that were heard from
 * within `timeoutMs` are left open; the quiet ones are closed.
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
  /** Whether every connection to the peer carried a frame from it within `ms`. */
  readonly heard?: (peer: string, ms: number) => boolean;
}

/** Pings peers and reports the ones that stopped answering. */
export class KeepAlive {
  readonly #missed = new Map<string, number>();
  readonly #busy = new Set<string>();
  /** Pings in flight, so that stopping waits for them. */
  readonly #pinging = new Set<Promise<unknown>>();
  #controller = new AbortController();
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly peers: () => readonly string[],
    private readonly ping: (peer: string, signal: AbortSignal) => Promise<unknown>,
    /** Called with the peer and how long a connection of it must have been quiet to be closed. */
    private readonly onDead: (peer: string, quietMs: number) => void,
    private readonly options: KeepAliveOptions = {},
  ) {}

  start(): void {
    if (this.#controller.signal.aborted) this.#controller = new AbortController();
    this.#timer ??= setInterval(() => this.#round(), this.options.intervalMs ?? 3_000);
  }

  /** Stops pinging: the pings in flight are aborted, and it resolves once they are over. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#controller.abort(new Error("The keep-alive stopped"));
    while (this.#pinging.size > 0) await Promise.allSettled([...this.#pinging]);
  }

  /** A peer's connections closed: forget its count. */
  forget(peer: string): void {
    this.#missed.delete(peer);
  }

  #round(): void {
    for (const peer of this.peers()) {
      if (this.#busy.has(peer)) continue;
      this.#busy.add(peer);
      const stopped = this.#controller.signal;
      const timeoutMs = this.options.timeoutMs ?? 3_000;
      const signal = AbortSignal.any([AbortSignal.timeout(timeoutMs), stopped]);
      const pinging = this.ping(peer, signal).then(
        () => this.#missed.delete(peer),
        () => {
          if (stopped.aborted) return; // not the peer's fault
          if (this.options.heard?.(peer, timeoutMs)) {
            // Its octets keep coming: the pong is late, not lost.
            this.#missed.delete(peer);
            return;
          }
          const missed = (this.#missed.get(peer) ?? 0) + 1;
          this.#missed.set(peer, missed);
          if (missed >= (this.options.misses ?? 2)) {
            this.#missed.delete(peer);
            this.onDead(peer, timeoutMs);
          }
        },
      ).finally(() => {
        this.#busy.delete(peer);
        this.#pinging.delete(pinging);
      });
      this.#pinging.add(pinging);
    }
  }
}
