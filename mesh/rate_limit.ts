/**
 * Token buckets, parcels and octets per second with a burst allowance, kept per
 * key: a peer id, and the remote host the peer connects from
 * (`"host:" + Admission.hostOf(remoteAddr)`, see admission.ts). A parcel is
 * taken from every key's bucket or from none, so a peer over its own budget,
 * or on a host over the host's budget, has its parcels refused (transiently)
 * until the buckets refill. No single neighbour can monopolise a relay, and a
 * new peer id on the same host does not bring a fresh budget.
 *
 * Buckets outlive connections: a peer that reconnects finds its bucket as it
 * left it. A bucket left idle until it is full again is the same as no bucket
 * (a new one starts full), so such buckets are dropped; memory is bounded by
 * the keys active within the last burst period, and capped at
 * {@linkcode RateLimiterOptions.maxKeys}. Past the cap the least recently used
 * bucket goes even if not yet full, which gives its key back at most one
 * burst: reaching that takes more than `maxKeys` keys (peers or hosts) active
 * within one burst period.
 *
 * @example A peer's budget survives a reconnect
 * ```ts
 * import assert from "node:assert/strict";
 * import { RateLimiter } from "./rate_limit.ts";
 *
 * let now = 0;
 * const limiter = new RateLimiter(
 *   { parcelsPerSecond: 1, bytesPerSecond: 1000, burstSeconds: 2 },
 *   { now: () => now },
 * );
 * const keys = ["12D3KooWPeer", "host:10.0.0.7"];
 * limiter.take(keys, 10);
 * limiter.take(keys, 10);
 * // The peer disconnects and comes back at once: still out of budget.
 * assert.equal(limiter.take(keys, 10), false, "a reconnect does not reset the budget");
 * now += 1000;
 * assert.equal(limiter.take(keys, 10), true, "the bucket refills");
 * ```
 *
 * @module
 */

/** Budget of one peer. */
export interface RateLimit {
  /** Sustained parcels per second (default 200). */
  readonly parcelsPerSecond: number;
  /** Sustained octets per second (default 64 MiB). */
  readonly bytesPerSecond: number;
  /** How many seconds' worth may be used in one burst (default 4). */
  readonly burstSeconds: number;
}

/** Default budget: generous for people, tight enough to blunt a flood. */
export const DEFAULT_RATE_LIMIT: RateLimit = {
  parcelsPerSecond: 200,
  bytesPerSecond: 64 * 1024 * 1024,
  burstSeconds: 4,
};

/** Keys that name a host rather than a peer start with this. */
export const HOST_KEY_PREFIX = "host:";

/** Options of {@linkcode RateLimiter}. */
export interface RateLimiterOptions {
  /**
   * Budget of a host key (one starting with {@linkcode HOST_KEY_PREFIX}); default
   * twice the peer budget, rates and burst alike. Twice, so that one honest
   * node per host never meets the host's limit before its own, and a host
   * running two nodes (a daemon and a test node, a restart with a new key)
   * still gets both full budgets; yet rotating peer ids on one host buys at
   * most twice one peer's budget.
   */
  readonly hostLimit?: RateLimit;
  /** Most buckets kept at once (default 10 000, about a megabyte). */
  readonly maxKeys?: number;
  /** The clock, in ms (default `Date.now`). */
  readonly now?: () => number;
}

interface Bucket {
  parcels: number;
  bytes: number;
  /** When the levels above were last brought up to date. */
  at: number;
  readonly limit: RateLimit;
}

/** Tracks the budgets of many peers and hosts. */
export class RateLimiter {
  /** Buckets by key, least recently used first. */
  readonly #buckets = new Map<string, Bucket>();
  readonly #limit: RateLimit;
  readonly #hostLimit: RateLimit;
  readonly #maxKeys: number;
  readonly #now: () => number;
  /** A bucket idle this long is full whatever its level was. */
  readonly #refillMs: number;

  /** Takes the budget of one peer, and options. */
  constructor(limit: RateLimit = DEFAULT_RATE_LIMIT, options: RateLimiterOptions = {}) {
    this.#limit = limit;
    this.#hostLimit = options.hostLimit ?? {
      parcelsPerSecond: limit.parcelsPerSecond * 2,
      bytesPerSecond: limit.bytesPerSecond * 2,
      burstSeconds: limit.burstSeconds,
    };
    this.#maxKeys = options.maxKeys ?? 10_000;
    if (!Number.isSafeInteger(this.#maxKeys) || this.#maxKeys < 1) {
      throw new RangeError(
        `Cannot track rate limits as maxKeys must be a positive integer: ${this.#maxKeys}`,
      );
    }
    for (const budget of [this.#limit, this.#hostLimit]) {
      for (const [name, value] of Object.entries(budget)) {
        if (!(value > 0) || !Number.isFinite(value)) {
          throw new RangeError(`Cannot track rate limits as ${name} must be positive: ${value}`);
        }
      }
    }
    this.#now = options.now ?? Date.now;
    this.#refillMs = Math.max(this.#limit.burstSeconds, this.#hostLimit.burstSeconds) * 1000;
  }

  /**
   * Takes one parcel of `size` octets from the budget of every key (a peer id,
   * `"host:" + address`), or from none: false if any of them is over budget.
   */
  take(keys: readonly string[], size: number): boolean {
    const now = this.#now();
    this.#sweep(now);
    const unique = new Set(keys);
    const buckets = [...unique].map((key) => this.#refill(key, size, now, unique));
    if (!buckets.every((b) => b.parcels >= 1 && b.bytes >= size)) return false;
    for (const bucket of buckets) {
      bucket.parcels -= 1;
      bucket.bytes -= size;
    }
    return true;
  }

  /** How many buckets are kept now (for tests and status). */
  get size(): number {
    return this.#buckets.size;
  }

  /** The key's bucket brought up to `now`, moved to the most recently used end. */
  #refill(key: string, size: number, now: number, taking: ReadonlySet<string>): Bucket {
    let bucket = this.#buckets.get(key);
    if (bucket) {
      this.#buckets.delete(key);
    } else {
      const limit = key.startsWith(HOST_KEY_PREFIX) ? this.#hostLimit : this.#limit;
      bucket = {
        parcels: limit.parcelsPerSecond * limit.burstSeconds,
        bytes: limit.bytesPerSecond * limit.burstSeconds,
        at: now,
        limit,
      };
      this.#makeRoom(taking);
    }
    const { parcelsPerSecond, bytesPerSecond, burstSeconds } = bucket.limit;
    const elapsed = Math.max(0, now - bucket.at) / 1000;
    bucket.parcels = Math.min(
      parcelsPerSecond * burstSeconds,
      bucket.parcels + elapsed * parcelsPerSecond,
    );
    // A single parcel may always fit the burst, even the largest one.
    bucket.bytes = Math.min(
      Math.max(bytesPerSecond * burstSeconds, size),
      bucket.bytes + elapsed * bytesPerSecond,
    );
    bucket.at = Math.max(bucket.at, now);
    this.#buckets.set(key, bucket);
    return bucket;
  }

  /** Drops buckets idle long enough to be full, least recently used first. */
  #sweep(now: number): void {
    for (const [key, bucket] of this.#buckets) {
      if (now - bucket.at < this.#refillMs) break;
      this.#buckets.delete(key);
    }
  }

  /**
   * Makes room for one more bucket: the least recently used goes (see the
   * module doc), but never one of the keys being taken from.
   */
  #makeRoom(taking: ReadonlySet<string>): void {
    for (const key of this.#buckets.keys()) {
      if (this.#buckets.size < this.#maxKeys) return;
      if (!taking.has(key)) this.#buckets.delete(key);
    }
  }
}
