/**
 * A token bucket per peer: parcels and octets per second, with a burst allowance.
 * A peer over its budget has its parcels refused (transiently) until the bucket
 * refills, so that no single neighbour can monopolise a relay.
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

/** Tracks the budgets of many peers. */
export class RateLimiter {
  readonly #buckets = new Map<string, { parcels: number; bytes: number; at: number }>();

  constructor(
    private readonly limit: RateLimit = DEFAULT_RATE_LIMIT,
    private readonly now = () => Date.now(),
  ) {}

  /** Takes one parcel of `size` octets from `peer`'s budget; false if over it. */
  take(peer: string, size: number): boolean {
    const now = this.now();
    const { parcelsPerSecond, bytesPerSecond, burstSeconds } = this.limit;
    const bucket = this.#buckets.get(peer) ??
      { parcels: parcelsPerSecond * burstSeconds, bytes: bytesPerSecond * burstSeconds, at: now };
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
    bucket.at = now;
    this.#buckets.set(peer, bucket);
    if (bucket.parcels < 1 || bucket.bytes < size) return false;
    bucket.parcels -= 1;
    bucket.bytes -= size;
    return true;
  }

  /** Forgets a peer's bucket (it disconnected). */
  forget(peer: string): void {
    this.#buckets.delete(peer);
  }
}
