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
import { INTEREST_TOKEN_LENGTH, type InterestToken, MAX_INTEREST_TOKENS } from "./wire.ts";

/** A node's own interest lasts this long from each HELLO (10 minutes). */
export const INTEREST_SECONDS = 600;
/** Bounds on what peers can make a node remember of their interest. */
export const INTEREST_LIMITS = {
  /** Tokens kept from one peer: what one HELLO carries. */
  perPeer: MAX_INTEREST_TOKENS,
  /** Tokens kept from the peers of one remote host, together. */
  perHost: 2 * MAX_INTEREST_TOKENS,
  /** Peers whose interest is remembered (connected now or lately). */
  peers: 256,
  /** Tokens kept in all. */
  total: 8192,
} as const;

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

  constructor(
    /** The channels this node follows. */
    private readonly own: () => readonly string[],
    private readonly now: () => number,
  ) {}

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
   * whether the peer asked for a channel it had not asked for: this node's other
   * peers must hear of it (split horizon: each hears the interest of the others).
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
      const until = now + Math.min(seconds, INTEREST_SECONDS) * 1000;
      const hex = toHex(token);
      tokens.set(hex, Math.max(tokens.get(hex) ?? 0, until));
    }
    this.#peers.delete(peer); // re-inserted last: the most recently heard
    if (tokens.size > 0) this.#peers.set(peer, { host, tokens, updated: now });
    this.#evict(now);
    for (const hex of tokens.keys()) if (!before?.has(hex)) return true;
    return false;
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
   * then the other peers' (taken in turn, each with what is left of its time),
   * at most {@linkcode MAX_INTEREST_TOKENS}. A peer's own interest is not told
   * back to it: it would come back as a wish for the posts it holds.
   */
  advertise(to?: string): InterestToken[] {
    const now = this.now();
    const out = new Map<string, number>();
    for (const channelId of this.own()) {
      if (out.size >= MAX_INTEREST_TOKENS) break;
      out.set(this.tokenOf(channelId), INTEREST_SECONDS);
    }
    const queues = [...this.#peers].filter(([id]) => id !== to).map(([, peer]) =>
      [...peer.tokens].filter(([, until]) => until > now).sort((a, b) => b[1] - a[1])
    );
    for (let i = 0; out.size < MAX_INTEREST_TOKENS; i++) {
      let any = false;
      for (const queue of queues) {
        if (i >= queue.length || out.size >= MAX_INTEREST_TOKENS) continue;
        any = true;
        const [hex, until] = queue[i];
        const seconds = Math.floor((until - now) / 1000);
        if (seconds > (out.get(hex) ?? 0)) out.set(hex, seconds);
      }
      if (!any) break;
    }
    return [...out]
      .filter(([, seconds]) => seconds > 0)
      .map(([hex, seconds]) => ({ token: fromHex(hex), seconds }));
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

  /** Forgets lapsed interest, then the least recently heard peers past the bounds. */
  #evict(now: number): void {
    let total = 0;
    for (const [id, peer] of this.#peers) {
      for (const [hex, until] of peer.tokens) if (until <= now) peer.tokens.delete(hex);
      if (peer.tokens.size === 0) this.#peers.delete(id);
      else total += peer.tokens.size;
    }
    for (const [id, peer] of this.#peers) {
      if (this.#peers.size <= INTEREST_LIMITS.peers && total <= INTEREST_LIMITS.total) break;
      this.#peers.delete(id); // Map order: the least recently heard first
      total -= peer.tokens.size;
    }
  }
}
