/**
 * Admission of inbound connections: who may start a handshake with this node,
 * and for how long.
 *
 * libp2p's own guard is one global count of pending handshakes (default 10), so
 * a thousand TCP connections that never finish Noise, opened from a thousand
 * addresses, keep every honest newcomer out until they time out. This module
 * plugs into libp2p as a connection gater and decides instead:
 *
 * - One remote host may hold {@linkcode AdmissionLimits.maxConnectionsPerHost}
 *   connections (pending or open), of which
 *   {@linkcode AdmissionLimits.maxPendingPerHost} still handshaking.
 * - At most {@linkcode AdmissionLimits.maxPendingTotal} handshakes are pending
 *   in all. When they are, a newcomer evicts (aborts) a pending handshake
 *   that has not finished Noise yet: first one of a *suspect* host, one whose
 *   handshake this node dropped unfinished (evicted or timed out) within the
 *   last minute; else one past its grace period (the first tenth of the
 *   handshake timeout, 500 ms by default) of the host with the most pending
 *   handshakes, if that is more than the newcomer's host has. A suspect
 *   newcomer evicts only suspects past their grace period. The victim is
 *   drawn at random among equals, so that an attacker cannot aim at one
 *   handshake by timing its own. Failing all that, the newcomer is refused.
 *
 *   An honest handshake finishes well within its grace period, so its host
 *   stays clear; a flood's hosts are caught stalling the first time one of
 *   theirs is evicted or times out, and from then on only evict each
 *   other, while any newcomer with a clear record evicts them.
 * - A handshake not finished within {@linkcode AdmissionLimits.handshakeTimeoutMs}
 *   is aborted.
 * - Connections are counted per host for their whole life: a slot is given
 *   back when the connection closes, however that happens.
 *
 * Only inbound connections are admitted here; the ones this node dials are its
 * own choice and count against nothing but libp2p's `maxConnections`.
 *
 * ## What a host is
 *
 * {@linkcode Admission.hostOf} names the host of an address, the key of the
 * per-host limits here and of the per-host rate limit (rate_limit.ts): an IPv4
 * address, the /64 of an IPv6 address, a whole link-local IPv6 address
 * (host_key.ts says why).
 *
 * ## What an attacker with many addresses can still do
 *
 * Per-host limits bound one address (one /64). An attacker with N addresses
 * (all of a LAN's subnet, a /48 of IPv6, a botnet) gets N hosts' worth:
 *
 * - Half-open handshakes: at most `maxPendingTotal` at once, each for at most
 *   `handshakeTimeoutMs`. An honest newcomer waits at most one grace period
 *   after a burst of fresh addresses, and once admitted cannot be evicted by
 *   suspects at all, nor by anyone before its grace period ends. To keep
 *   honest newcomers out for good, the attacker must keep every pending slot
 *   filled with handshakes younger than the grace period from hosts with a
 *   clear record: `maxPendingTotal` fresh addresses per grace period (128 a
 *   second by default), each of them spent for a minute, about 7,700
 *   addresses for a sustained attack. 4,096 suspect hosts are remembered, so
 *   beyond that many addresses it can also wash out its marks. Measured on
 *   loopback (two cores) against 1,000 addresses: with a flood holding its
 *   handshakes, an honest peer retrying every 200 ms connected in 0.3–0.7 s;
 *   with a flood reopening every dropped handshake at once, in 0.5–2.2 s.
 *   Without Admission: 9 s (libp2p's 10 s upgrade timeout), and not within
 *   15 s.
 * - An honest host can become suspect (a handshake timed out on a bad link, or
 *   was evicted after its grace period). For a minute it then gets in only
 *   through a free slot or by evicting another suspect: slower during a
 *   flood, never locked out.
 * - Finished connections (the attacker completes Noise, which costs it a key
 *   pair and a handshake each): `maxConnectionsPerHost` per address, up to
 *   libp2p's `maxConnections` in all. With `maxConnections / maxConnectionsPerHost`
 *   addresses (32 by default) it can fill the node, after which libp2p refuses
 *   inbound newcomers. Peers the node dials itself (static peers, mDNS) still
 *   connect, and libp2p then prunes its lowest-valued connections.
 * - New connections per second per address are capped by libp2p's
 *   `inboundConnectionThreshold` (set to `maxConnectionsPerHost`), which counts
 *   per address, not per /64.
 * - Connection attempts still cost CPU: each, even refused, costs an accept,
 *   libp2p's bookkeeping and a reset. That slows the node for everyone without
 *   locking anyone out; bounding it is the firewall's job.
 *
 * An Admission serves one libp2p node: its counts are that node's connections.
 *
 * @example Admission for a libp2p node
 * ```ts
 * import { noise } from "@chainsafe/libp2p-noise";
 * import { yamux } from "@chainsafe/libp2p-yamux";
 * import { tcp } from "@libp2p/tcp";
 * import { createLibp2p } from "libp2p";
 * import assert from "node:assert/strict";
 * import { Admission } from "./admission.ts";
 *
 * const admission = new Admission({ maxConnectionsPerHost: 4 });
 * const node = await createLibp2p({
 *   addresses: { listen: ["/ip4/127.0.0.1/tcp/0"] },
 *   transports: [tcp()],
 *   connectionEncrypters: [noise()],
 *   streamMuxers: [yamux()],
 *   ...admission.libp2pOptions(),
 * });
 * assert.equal(admission.stats().limits.maxConnectionsPerHost, 4);
 * await node.stop();
 * ```
 *
 * @module
 */
// `@internal` marks types of npm packages that our public API names: they are documented
// upstream, and `deno doc --lint` should not ask us to export them (denoland/deno#27364).
import type {
  /** @internal */
  ConnectionGater,
  MultiaddrConnection,
  PeerId,
} from "@libp2p/interface";
import type { Multiaddr } from "@multiformats/multiaddr";
import type {
  /** @internal */
  ConnectionManagerInit,
} from "libp2p";
import { hostKeyOf } from "./host_key.ts";
import {
  type AdmissionLimits,
  type AdmissionOptions,
  type AdmissionStats,
  DEFAULT_ADMISSION_LIMITS,
  type HostCounts,
} from "./admission_types.ts";
import { createLogger, type Logger } from "./log.ts";

export {
  type AdmissionLimits,
  type AdmissionOptions,
  type AdmissionStats,
  DEFAULT_ADMISSION_LIMITS,
  type HostCounts,
};

/**
 * libp2p's own upgrade timeout, this much after ours: ours decides (and counts
 * its timeouts), libp2p's remains as a backstop.
 */
const LIBP2P_TIMEOUT_SLACK_MS = 1000;

/**
 * A host whose handshake was dropped unfinished (evicted, or timed out) stays
 * suspect this long: its newcomers may evict only other suspects' handshakes,
 * and suspects' handshakes are evicted first.
 */
const SUSPECT_MS = 60_000;

/**
 * For its first tenth of the handshake timeout (500 ms by default), the
 * handshake of a host that is not suspect is evicted by no one: ample for
 * Noise on a LAN even on a busy node, so one still pending after that is
 * stalling, and its host becomes suspect if it is evicted.
 */
const GRACE_DIVISOR = 10;

/** Most suspect hosts remembered (the oldest marks go first). */
const MAX_SUSPECTS = 4096;

/** The abort reason of a handshake admission drops (it shows in libp2p's logs). */
class HandshakeDroppedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HandshakeDroppedError";
  }
}

interface Entry {
  readonly host: string;
  readonly connection: MultiaddrConnection;
  readonly startedAt: number;
  state: "pending" | "encrypted" | "open";
  timer?: ReturnType<typeof setTimeout>;
}

interface HostState {
  /** Its pending handshakes, oldest first. */
  readonly pending: Set<Entry>;
  open: number;
}

/** Decides which inbound connections a libp2p node accepts; see the module doc. */
export class Admission {
  /** The limits in force. */
  readonly limits: AdmissionLimits;
  readonly #entries = new Map<MultiaddrConnection, Entry>();
  /** Every pending handshake, oldest first. */
  readonly #pending = new Set<Entry>();
  readonly #hosts = new Map<string, HostState>();
  /** Hosts whose handshakes were dropped unfinished lately, and until when they are suspect. */
  readonly #suspects = new Map<string, number>();
  #open = 0;
  #admitted = 0;
  #upgraded = 0;
  #evicted = 0;
  #timedOut = 0;
  readonly #refused = { hostConnections: 0, hostPending: 0, pendingTotal: 0 };
  /** A handshake this young is evicted only if its host is suspect. */
  readonly #graceMs: number;
  readonly #log: Logger;

  /** Takes the limits to enforce; those left out are {@linkcode DEFAULT_ADMISSION_LIMITS}. */
  constructor(limits: Partial<AdmissionLimits> = {}, options: AdmissionOptions = {}) {
    const resolved = { ...DEFAULT_ADMISSION_LIMITS, ...limits };
    for (const [name, value] of Object.entries(resolved)) {
      if (!Number.isSafeInteger(value) || value < 1) {
        throw new RangeError(
          `Cannot admit connections as ${name} must be a positive integer: ${value}`,
        );
      }
    }
    this.limits = resolved;
    this.#graceMs = resolved.handshakeTimeoutMs / GRACE_DIVISOR;
    this.#log = options.logger ?? createLogger({ component: "mesh/admission" });
  }

  /**
   * Forgets every connection and stops the handshake timers, once the libp2p
   * node it served has stopped (its connections are closed by then).
   */
  stop(): void {
    for (const entry of this.#entries.values()) clearTimeout(entry.timer);
    this.#entries.clear();
    this.#pending.clear();
    this.#hosts.clear();
    this.#open = 0;
  }

  /**
   * Options to spread into `createLibp2p`: the gater, and libp2p's own limits
   * set so that ours decide (its pending cap above ours, its upgrade timeout a
   * backstop behind ours).
   */
  libp2pOptions(): { connectionGater: ConnectionGater; connectionManager: ConnectionManagerInit } {
    const limits = this.limits;
    return {
      connectionGater: {
        denyInboundConnection: (connection: MultiaddrConnection) => this.#admit(connection),
        denyInboundEncryptedConnection: (_peer: PeerId, connection: MultiaddrConnection) =>
          this.#encrypted(connection),
        denyInboundUpgradedConnection: (_peer: PeerId, connection: MultiaddrConnection) =>
          this.#upgrade(connection),
      },
      connectionManager: {
        maxConnections: limits.maxConnections,
        // libp2p counts a connection as pending before asking the gater, and
        // until an evicted handshake has unwound: twice ours leaves it room.
        maxIncomingPendingConnections: limits.maxPendingTotal * 2,
        inboundUpgradeTimeout: limits.handshakeTimeoutMs + LIBP2P_TIMEOUT_SLACK_MS,
        // New connections per second from one address: a host may reopen all
        // its connections each second, no more.
        inboundConnectionThreshold: limits.maxConnectionsPerHost,
      },
    };
  }

  /**
   * The host part of a multiaddr (or of a bare IP address): the IPv4 address,
   * the /64 of an IPv6 address, or a whole link-local IPv6 address.
   *
   * @example
   * ```ts
   * import { Admission } from "./admission.ts";
   *
   * if (Admission.hostOf("/ip4/10.0.0.7/tcp/4001") !== "10.0.0.7") throw new Error();
   * if (Admission.hostOf("/ip6/2001:db8:1:2:aa::1/tcp/4001") !== "2001:db8:1:2::/64") throw new Error();
   * ```
   */
  static hostOf(address: Multiaddr | string): string {
    return hostKeyOf(address);
  }

  /** Counters for tests and status: pending and open connections, refusals, evictions. */
  stats(): AdmissionStats {
    const hosts: Record<string, HostCounts> = {};
    for (const [host, state] of this.#hosts) {
      hosts[host] = { pending: state.pending.size, open: state.open };
    }
    return {
      limits: this.limits,
      pending: this.#pending.size,
      open: this.#open,
      hosts,
      admitted: this.#admitted,
      upgraded: this.#upgraded,
      refused: { ...this.#refused },
      evicted: this.#evicted,
      timedOut: this.#timedOut,
    };
  }

  /** The gater's first hook: true refuses the connection. */
  #admit(connection: MultiaddrConnection): boolean {
    if (connection.status !== "open") return true;
    const host = Admission.hostOf(connection.remoteAddr);
    const state = this.#hosts.get(host);
    const pending = state?.pending.size ?? 0;
    if (pending + (state?.open ?? 0) >= this.limits.maxConnectionsPerHost) {
      this.#refused.hostConnections++;
      this.#log.debug("Connection refused: its host has all its connections", { host });
      return true;
    }
    if (pending >= this.limits.maxPendingPerHost) {
      this.#refused.hostPending++;
      this.#log.debug("Connection refused: its host has all its handshakes pending", { host });
      return true;
    }
    if (this.#pending.size >= this.limits.maxPendingTotal) {
      const victim = this.#victimFor(host, pending);
      if (!victim) {
        this.#refused.pendingTotal++;
        this.#log.debug("Connection refused: every handshake slot is taken", { host });
        return true;
      }
      this.#evicted++;
      this.#drop(
        victim,
        `Handshake from ${victim.host} evicted: ${this.limits.maxPendingTotal} handshakes pending`,
      );
    }
    const entry: Entry = { host, connection, startedAt: Date.now(), state: "pending" };
    entry.timer = setTimeout(() => {
      this.#timedOut++;
      this.#drop(
        entry,
        `Handshake from ${host} took longer than ${this.limits.handshakeTimeoutMs} ms`,
      );
    }, this.limits.handshakeTimeoutMs);
    this.#entries.set(connection, entry);
    this.#pending.add(entry);
    this.#hostState(host).pending.add(entry);
    this.#admitted++;
    connection.addEventListener("close", () => this.#forget(entry), { once: true });
    return false;
  }

  /**
   * The handshake a newcomer from `host` (with `newcomerPending` of its own)
   * evicts, if any (see the module doc): a suspect's first, then one past
   * its grace period of a host with more pending handshakes than the
   * newcomer's, the busiest first; at random among equals. A suspect newcomer
   * evicts only suspects past their grace period. Handshakes past Noise are
   * never evicted.
   */
  #victimFor(host: string, newcomerPending: number): Entry | undefined {
    const now = Date.now();
    const newcomerSuspect = this.#isSuspect(host);
    let best = -1;
    let candidates: Entry[] = [];
    for (const entry of this.#pending) {
      if (entry.state !== "pending") continue;
      const count = this.#hosts.get(entry.host)!.pending.size;
      const suspect = this.#isSuspect(entry.host);
      const old = now - entry.startedAt >= this.#graceMs;
      const eligible = suspect
        ? !newcomerSuspect || (old && count > newcomerPending)
        : !newcomerSuspect && old && count > newcomerPending;
      if (!eligible) continue;
      const rank = (suspect ? this.limits.maxPendingTotal + 1 : 0) + count;
      if (rank > best) {
        best = rank;
        candidates = [entry];
      } else if (rank === best) {
        candidates.push(entry);
      }
    }
    if (candidates.length === 0) return undefined;
    return candidates[crypto.getRandomValues(new Uint32Array(1))[0] % candidates.length];
  }

  /** Marks a host whose handshake was dropped unfinished. */
  #suspect(host: string): void {
    this.#suspects.delete(host);
    this.#suspects.set(host, Date.now() + SUSPECT_MS);
    if (this.#suspects.size > MAX_SUSPECTS) {
      this.#suspects.delete(this.#suspects.keys().next().value!);
    }
  }

  #isSuspect(host: string): boolean {
    const now = Date.now();
    // Marks expire in the order they were made.
    for (const [marked, until] of this.#suspects) {
      if (until > now) break;
      this.#suspects.delete(marked);
    }
    return this.#suspects.has(host);
  }

  #encrypted(connection: MultiaddrConnection): boolean {
    const entry = this.#entries.get(connection);
    if (entry?.state === "pending") entry.state = "encrypted";
    return connection.status !== "open";
  }

  /** The gater's last hook: the handshake is over and the connection opens. */
  #upgrade(connection: MultiaddrConnection): boolean {
    if (connection.status !== "open") return true;
    const entry = this.#entries.get(connection);
    // A connection we never saw (a transport that skips the first hook) is libp2p's to count.
    if (!entry || entry.state === "open") return false;
    this.#unpend(entry);
    entry.state = "open";
    this.#hostState(entry.host).open++;
    this.#open++;
    this.#upgraded++;
    return false;
  }

  /** Aborts a pending handshake, its slot freed at once, and marks its host suspect. */
  #drop(entry: Entry, reason: string): void {
    this.#log.debug("Handshake dropped", { host: entry.host, reason });
    this.#forget(entry);
    this.#suspect(entry.host);
    entry.connection.abort(new HandshakeDroppedError(reason));
  }

  /** Gives back whatever a connection held (it closed or was dropped). */
  #forget(entry: Entry): void {
    if (this.#entries.get(entry.connection) !== entry) return;
    this.#entries.delete(entry.connection);
    if (entry.state === "open") {
      this.#open--;
      this.#hostState(entry.host).open--;
    } else {
      this.#unpend(entry);
    }
    const state = this.#hosts.get(entry.host);
    if (state && state.open === 0 && state.pending.size === 0) this.#hosts.delete(entry.host);
  }

  #unpend(entry: Entry): void {
    clearTimeout(entry.timer);
    this.#pending.delete(entry);
    this.#hosts.get(entry.host)?.pending.delete(entry);
  }

  #hostState(host: string): HostState {
    let state = this.#hosts.get(host);
    if (!state) {
      state = { pending: new Set(), open: 0 };
      this.#hosts.set(host, state);
    }
    return state;
  }
}
