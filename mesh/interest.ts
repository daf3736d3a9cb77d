/**
 * Interest in channels (docs/mesh-protocol.md §2.6): which channels' posts this
 * node wants, its own (the channels it follows) and its neighbours' (relayed,
 * so that a node between followers carries their posts), as the tokens a HELLO
 * carries.
 *
 * A token names a channel without spelling its id: the first 16 octets of
 * SHA-256("relaymail/channel-interest/3" ‖ 0 ‖ channel id). Each comes with the
 * seconds for which the interest holds. A node advertises its own follows for
 * {@linkcode INTEREST_SECONDS}, and what its peers advertised for what is left
 * of their time, never more: relayed interest cannot outlive its source, so a
 * token going round a loop dies out.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { fromHex, toHex } from "../bindings/validation.ts";
import { RateLimiter } from "./rate_limit.ts";
import { INTEREST_TOKEN_LENGTH, type InterestToken, MAX_INTEREST_TOKENS } from "./wire.ts";

/**
 * The seconds a node gives its own interest in each HELLO (9 minutes), and the
 * most it gives any relayed token: a token relayed less than a minute after its
 * source said it reads the same as a node's own, so a peer cannot tell which
 * channels a node follows from which it asks for on behalf of a neighbour.
 */
export const INTEREST_SECONDS = 540;
/** The most a node takes from a peer's token (10 minutes); more is taken as this. */
export const MAX_INTEREST_SECONDS = 600;
/** Bounds on what peers can make a node remember of their interest. */
export const INTEREST_LIMITS = {
  /** Tokens kept from one peer: what one HELLO carries. */
  perPeer: MAX_INTEREST_TOKENS,
  /** Tokens kept from the peers of one remote host, together. */
  perHost: 2 * MAX_INTEREST_TOKENS,
  /** Peers whose interest is remembered (connected now or lately). */
  peers: 256,
  /** Of those, peers of one remote host (it may hold 8 connections at once). */
  peersPerHost: 16,
  /** Tokens kept in all. */
  total: 8192,
} as const;

/**
 * How often one peer's new interest makes this node reconcile with all its other
 * peers at once (3 times, then once per 10 s; a host twice that): each such
 * round makes them reconcile with theirs in turn, so a peer changing its tokens
 * at every HELLO would keep the mesh reconciling. News past it waits for the
 * next periodic reconciliation.
 */
export const INTEREST_NEWS_RATE = { parcelsPerSecond: 0.1, bytesPerSecond: 0.1, burstSeconds: 30 };

const TOKEN_DOMAIN = new TextEncoder().encode("relaymail/channel-interest/3");

/** The interest token of a channel: its id, hashed (docs/mesh-protocol.md §2.6). */
export function interestToken(channelId: string): Uint8Array {
  const digest = createHash("sha256").update(TOKEN_DOMAIN).update(new Uint8Array([0]))
    .update(new TextEncoder().encode(channelId)).digest();
  return new Uint8Array(digest.subarray(0, INTEREST_TOKEN_LENGTH));
}

interface PeerInterest {
  readonly host: string;
  /** Hex token → until (ms, this node's clock). */
  readonly tokens: Map<string, number>;
  updated: number;
}

/** What this node and its peers want, by token. */
export class InterestTable {
  readonly #peers = new Map<string, PeerInterest>();
  /** Hex tokens of channels, cached (a relay computes them for every post it holds). */
  readonly #tokens = new Map<string, string>();
  #changes = 0;
  readonly #news: RateLimiter;

  constructor(
    /** The channels this node follows. */
    private readonly own: () => readonly string[],
    private readonly now: () => number,
  ) {
    this.#news = new RateLimiter(INTEREST_NEWS_RATE, { now });
  }

  /** The hex token of a channel. */
  tokenOf(channelId: string): string {
    let token = this.#tokens.get(channelId);
    if (token === undefined) {
      if (this.#tokens.size >= 65_536) this.#tokens.clear();
      token = toHex(interestToken(channelId));
      this.#tokens.set(channelId, token);
    }
    return token;
  }

  /**
   * Takes a peer's HELLO tokens, which replace what it said before (a peer that
   * unfollows stops saying so), within {@linkcode INTEREST_LIMITS}. Returns
   * whether the peer asked for a channel it had not asked for, and this node's
   * other peers must hear of it now (split horizon: each hears the interest of
   * the others), within {@linkcode INTEREST_NEWS_RATE}.
   */
  learn(peer: string, host: string, interest: readonly InterestToken[]): boolean {
    const now = this.now();
    const before = this.#peers.get(peer)?.tokens;
    const hostUsed = this.#hostCount(host, peer, now);
    const tokens = new Map<string, number>();
    for (const { token, seconds } of interest) {
      if (tokens.size >= INTEREST_LIMITS.perPeer) break;
      if (hostUsed + tokens.size >= INTEREST_LIMITS.perHost) break;
      if (seconds <= 0) continue;
      // Never longer than a node's own interest: relayed interest only wanes.
      const until = now + Math.min(seconds, MAX_INTEREST_SECONDS) * 1000;
      const hex = toHex(token);
      tokens.set(hex, Math.max(tokens.get(hex) ?? 0, until));
    }
    this.#changes++;
    this.#peers.delete(peer); // re-inserted last: the most recently heard
    if (tokens.size > 0) this.#peers.set(peer, { host, tokens, updated: now });
    this.#evict(now);
    const news = [...tokens.keys()].some((hex) => !before?.has(hex));
    return news && this.#news.take([peer, `host:${host}`], 1);
  }

  /** Whether `peer` asked for the posts of `channelId` (and its interest holds). */
  peerWants(peer: string, channelId: string): boolean {
    const until = this.#peers.get(peer)?.tokens.get(this.tokenOf(channelId));
    return until !== undefined && until > this.now();
  }

  /**
   * Whether this node wants the posts of `channelId` from peer `from`: it follows
   * the channel, or a peer other than `from` asked for it.
   */
  wants(channelId: string, from?: string): boolean {
    if (this.own().includes(channelId)) return true;
    const token = this.tokenOf(channelId);
    const now = this.now();
    for (const [id, peer] of this.#peers) {
      if (id !== from && (peer.tokens.get(token) ?? 0) > now) return true;
    }
    return false;
  }

  /**
   * The tokens for this node's next HELLO to peer `to`: its own follows first,
   * then the other peers' (each remote host in turn, and within a host each of
   * its peers in turn, so that many peer ids of one host get no more turns than
   * one honest neighbour; each token with what is left of its time), at most
   * {@linkcode MAX_INTEREST_TOKENS}, none for more than
   * {@linkcode INTEREST_SECONDS}, in the order of the tokens' octets (their order
   * must not tell own interest from relayed). A peer's own interest is not told
   * back to it: it would come back as a wish for the posts it holds.
   */
  advertise(to?: string): InterestToken[] {
    const now = this.now();
    const out = new Map<string, number>();
    for (const channelId of this.own()) {
      if (out.size >= MAX_INTEREST_TOKENS) break;
      out.set(this.tokenOf(channelId), INTEREST_SECONDS);
    }
    const byHost = new Map<string, [string, number][][]>();
    for (const [id, peer] of this.#peers) {
      if (id === to) continue;
      const queue = [...peer.tokens].filter(([, until]) => until > now)
        .sort((a, b) => b[1] - a[1]);
      byHost.set(peer.host, [...(byHost.get(peer.host) ?? []), queue]);
    }
    const queues = [...byHost.values()].map(interleave);
    for (let i = 0; out.size < MAX_INTEREST_TOKENS; i++) {
      let any = false;
      for (const queue of queues) {
        if (i >= queue.length || out.size >= MAX_INTEREST_TOKENS) continue;
        any = true;
        const [hex, until] = queue[i];
        const seconds = Math.min(INTEREST_SECONDS, Math.floor((until - now) / 1000));
        if (seconds > (out.get(hex) ?? 0)) out.set(hex, seconds);
      }
      if (!any) break;
    }
    return [...out]
      .filter(([, seconds]) => seconds > 0)
      .sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)
      .map(([hex, seconds]) => ({ token: fromHex(hex), seconds }));
  }

  /** How many times peers' interest was learnt: what they want may have changed since. */
  get changes(): number {
    return this.#changes;
  }

  /** Tokens remembered in all (for tests and status). */
  get size(): number {
    let n = 0;
    for (const peer of this.#peers.values()) n += peer.tokens.size;
    return n;
  }

  #hostCount(host: string, except: string, now: number): number {
    let n = 0;
    for (const [id, peer] of this.#peers) {
      if (id === except || peer.host !== host) continue;
      for (const until of peer.tokens.values()) if (until > now) n++;
    }
    return n;
  }

  /**
   * Forgets lapsed interest, then, past the bounds, the least recently heard
   * peers of the host with the most peers (past its own bound) or tokens (past
   * the node's): many peer ids of one host push out their own, not the
   * interest of honest neighbours.
   */
  #evict(now: number): void {
    let total = 0;
    for (const [id, peer] of this.#peers) {
      for (const [hex, until] of peer.tokens) if (until <= now) peer.tokens.delete(hex);
      if (peer.tokens.size === 0) this.#peers.delete(id);
      else total += peer.tokens.size;
    }
    const hosts = new Map<string, { ids: string[]; tokens: number }>();
    for (const [id, peer] of this.#peers) { // Map order: the least recently heard first
      const host = hosts.get(peer.host) ?? { ids: [], tokens: 0 };
      host.ids.push(id);
      host.tokens += peer.tokens.size;
      hosts.set(peer.host, host);
    }
    const drop = (host: { ids: string[]; tokens: number }) => {
      const id = host.ids.shift()!;
      const size = this.#peers.get(id)!.tokens.size;
      this.#peers.delete(id);
      host.tokens -= size;
      total -= size;
    };
    for (const host of hosts.values()) {
      while (host.ids.length > INTEREST_LIMITS.peersPerHost) drop(host);
    }
    while (this.#peers.size > INTEREST_LIMITS.peers || total > INTEREST_LIMITS.total) {
      // The host with the most of what is over the bound, peers or tokens.
      const byPeers = this.#peers.size > INTEREST_LIMITS.peers;
      const weight = (h: { ids: string[]; tokens: number }) =>
        byPeers ? [h.ids.length, h.tokens] : [h.tokens, h.ids.length];
      let busiest: { ids: string[]; tokens: number } | undefined;
      for (const host of hosts.values()) {
        if (host.ids.length === 0) continue;
        const [a, b] = weight(host);
        const [c, d] = busiest ? weight(busiest) : [-1, -1];
        if (a > c || (a === c && b > d)) busiest = host;
      }
      if (!busiest) break;
      drop(busiest);
    }
  }
}

/** One queue from several: the first of each, then the second of each, and so on. */
function interleave<T>(queues: readonly T[][]): T[] {
  const out: T[] = [];
  for (let i = 0; queues.some((q) => i < q.length); i++) {
    for (const queue of queues) if (i < queue.length) out.push(queue[i]);
  }
  return out;
}
