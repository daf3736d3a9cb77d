/**
 * Keeps dialling the peers a node has seen, for as long as they may be reachable
 * (docs/mesh-protocol.md §6.5): real Wi-Fi drops for seconds at a time, laptops
 * roam, nodes restart; mail must flow again as soon as a link is back.
 *
 * - A peer given as an address (`--peer`) is dialled for as long as the node runs.
 * - A peer seen by mDNS is dialled at once whenever it is seen while not
 *   connected, and retried for {@linkcode ReconnectOptions.forgetAfterMs} after it
 *   was last seen or connected.
 * - A peer that was connected is dialled again as soon as it drops, then with
 *   jittered exponential backoff (1 s doubling to 6 s), so that many nodes that
 *   lost a link together do not dial in lockstep.
 * - Peers seen recently are remembered across restarts (the caller persists
 *   {@linkcode Reconnector.snapshot}), so a restarted node dials its neighbours at
 *   once instead of waiting for the next mDNS round.
 *
 * The dialling itself is the caller's: this module only decides who and when.
 *
 * @module
 */

/** Options of {@linkcode Reconnector}. */
export interface ReconnectOptions {
  /** First retry after a failure or a drop, in ms (default 1 000; the first redial after a drop is at once). */
  readonly minBackoffMs?: number;
  /** Longest wait between tries, in ms (default 6 000: a link back is used within seconds). */
  readonly maxBackoffMs?: number;
  /** A peer neither seen nor connected for this long is no longer dialled, in ms (default 10 min). */
  readonly forgetAfterMs?: number;
  /** At most this many peers remembered (default 256; the least recently seen go first). */
  readonly maxPeers?: number;
  /** The clock (default `Date.now`). */
  readonly now?: () => number;
  /** Jitter source in [0, 1) (default `Math.random`). */
  readonly random?: () => number;
}

/** How a peer came to be known. */
export type PeerSource = "static" | "mdns" | "learned";

/** A peer as remembered between restarts. */
export interface KnownPeer {
  /** Its libp2p peer id, or null for a static address that names none. */
  readonly id: string | null;
  readonly addresses: readonly string[];
  readonly source: PeerSource;
  /** When it was last seen or connected, ms since the epoch. */
  readonly lastSeen: number;
}

interface Entry {
  id: string | null;
  addresses: string[];
  source: PeerSource;
  lastSeen: number;
  connected: boolean;
  dialing: boolean;
  failures: number;
  nextDialAt: number;
}

/**
 * Dials one of a peer's addresses and resolves with its peer id once connected;
 * `signal` aborts the dial when the reconnector stops.
 */
export type DialPeer = (
  peer: { id: string | null; addresses: readonly string[] },
  signal: AbortSignal,
) => Promise<string>;

/** Decides when to dial whom; `dial` does it and resolves once connected. */
export class Reconnector {
  readonly #entries = new Map<string, Entry>();
  readonly #dial: DialPeer;
  /** Dials in flight, so that stopping waits for them. */
  readonly #dialing = new Set<Promise<unknown>>();
  #controller = new AbortController();
  readonly #minBackoff: number;
  readonly #maxBackoff: number;
  readonly #forgetAfter: number;
  readonly #maxPeers: number;
  readonly #now: () => number;
  readonly #random: () => number;
  #timer: ReturnType<typeof setInterval> | undefined;

  /** `dial` connects to one of the peer's addresses and resolves with its peer id. */
  constructor(dial: DialPeer, options: ReconnectOptions = {}) {
    this.#dial = dial;
    this.#minBackoff = options.minBackoffMs ?? 1_000;
    this.#maxBackoff = options.maxBackoffMs ?? 6_000;
    this.#forgetAfter = options.forgetAfterMs ?? 10 * 60_000;
    this.#maxPeers = options.maxPeers ?? 256;
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
  }

  /** Starts checking, every `tickMs`, who is due a dial. */
  start(tickMs = 250): void {
    if (this.#controller.signal.aborted) this.#controller = new AbortController();
    this.#timer ??= setInterval(() => this.tick(), tickMs);
  }

  /** Stops dialling: the dials in flight are aborted, and it resolves once they are over. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#controller.abort(new Error("The reconnector stopped"));
    while (this.#dialing.size > 0) await Promise.allSettled([...this.#dialing]);
  }

  /** A static address to dial for as long as the node runs. */
  addStatic(address: string, id: string | null): void {
    const key = id ?? `addr:${address}`;
    const entry = this.#entry(key, id, "static");
    if (!entry.addresses.includes(address)) entry.addresses.push(address);
    entry.nextDialAt = Math.min(entry.nextDialAt, this.#now());
  }

  /**
   * A peer was seen (an mDNS answer, a peer remembered from before a restart):
   * dialled at once if not connected and not in backoff after a failed dial.
   */
  seen(id: string, addresses: readonly string[], source: PeerSource = "mdns"): void {
    const entry = this.#entry(id, id, source);
    entry.lastSeen = this.#now();
    entry.addresses = [...new Set([...addresses, ...entry.addresses])].slice(0, 8);
    // Seeing it is news that it is there: a failure before may have been the link.
    if (!entry.connected && entry.failures > 0) {
      entry.nextDialAt = Math.min(entry.nextDialAt, this.#now() + this.#minBackoff);
    }
    this.tick();
  }

  /** A connection to `id` opened (whoever dialled). */
  connected(id: string, address?: string): void {
    const entry = this.#entry(id, id, "learned");
    entry.connected = true;
    entry.failures = 0;
    entry.lastSeen = this.#now();
    if (address && !entry.addresses.includes(address)) entry.addresses.unshift(address);
    entry.addresses = entry.addresses.slice(0, 8);
  }

  /** The last connection to `id` closed: it is dialled again at once, then with backoff. */
  disconnected(id: string): void {
    const entry = this.#entries.get(id);
    if (!entry) return;
    entry.connected = false;
    entry.lastSeen = this.#now();
    entry.nextDialAt = this.#now();
    this.tick();
  }

  /** Dials every peer that is due. */
  tick(): void {
    if (this.#controller.signal.aborted) return;
    const now = this.#now();
    for (const [key, entry] of this.#entries) {
      if (entry.connected || entry.dialing || entry.nextDialAt > now) continue;
      if (entry.source !== "static" && now - entry.lastSeen > this.#forgetAfter) {
        this.#entries.delete(key);
        continue;
      }
      entry.dialing = true;
      const dialing = this.#dial(
        { id: entry.id, addresses: entry.addresses },
        this.#controller.signal,
      ).then(
        (id) => {
          entry.failures = 0;
          if (entry.id === null) this.#name(key, entry, id);
        },
        () => {
          entry.failures++;
          const backoff = Math.min(
            this.#maxBackoff,
            this.#minBackoff * 2 ** Math.min(entry.failures - 1, 16),
          );
          entry.nextDialAt = this.#now() + backoff * (0.5 + this.#random());
        },
      ).finally(() => {
        entry.dialing = false;
        this.#dialing.delete(dialing);
      });
      this.#dialing.add(dialing);
    }
  }

  /** Peers worth remembering across a restart: seen or connected within the forget window. */
  snapshot(): KnownPeer[] {
    const now = this.#now();
    return [...this.#entries.values()]
      .filter((e) =>
        e.id !== null && e.source !== "static" && now - e.lastSeen <= this.#forgetAfter
      )
      .map((e) => ({ id: e.id, addresses: e.addresses, source: e.source, lastSeen: e.lastSeen }));
  }

  /** Peers this node will dial when due, with their state (for status displays and tests). */
  describe(): { id: string | null; addresses: string[]; connected: boolean; failures: number }[] {
    return [...this.#entries.values()].map((e) => ({
      id: e.id,
      addresses: e.addresses,
      connected: e.connected,
      failures: e.failures,
    }));
  }

  /** A static address turned out to be peer `id`: one entry for both from now on. */
  #name(key: string, entry: Entry, id: string): void {
    this.#entries.delete(key);
    const other = this.#entries.get(id);
    entry.id = id;
    if (other) {
      entry.addresses = [...new Set([...entry.addresses, ...other.addresses])].slice(0, 8);
      entry.connected ||= other.connected;
    }
    this.#entries.set(id, entry);
  }

  #entry(key: string, id: string | null, source: PeerSource): Entry {
    let entry = this.#entries.get(key);
    if (!entry) {
      if (this.#entries.size >= this.#maxPeers) this.#evict();
      entry = {
        id,
        addresses: [],
        source,
        lastSeen: this.#now(),
        connected: false,
        dialing: false,
        failures: 0,
        nextDialAt: this.#now(),
      };
      this.#entries.set(key, entry);
    } else if (source === "static") {
      entry.source = "static";
    }
    return entry;
  }

  /** Forgets the least recently seen peer that is neither static nor connected. */
  #evict(): void {
    let oldest: [string, Entry] | undefined;
    for (const pair of this.#entries) {
      const [, e] = pair;
      if (e.source === "static" || e.connected) continue;
      if (!oldest || e.lastSeen < oldest[1].lastSeen) oldest = pair;
    }
    if (oldest) this.#entries.delete(oldest[0]);
  }
}
