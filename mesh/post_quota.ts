/**
 * How many posts a node keeps (docs/mesh-protocol.md §6.3). The posts of
 * channels it does not follow, which it carries for neighbours, share one quota,
 * and no channel, delivering peer or remote host may fill more than its share of
 * it: a Sybil with many self-made channels is bounded by its host's share, and
 * an honest channel keeps room. The posts of a followed channel are bounded per
 * channel, so that a rogue author of a channel the user follows cannot fill the
 * disk either.
 *
 * As for parcels (quota.ts), room is reserved when a post is checked, so
 * concurrent streams cannot overshoot a share, and a refused post never evicts
 * a stored one.
 *
 * @module
 */
import type { PostShareKey, PostStore } from "./post_store.ts";
import { postShareKeys } from "./post_store.ts";

/** Bounds on the posts a node keeps; every field has a default. */
export interface PostQuotaOptions {
  /** Octets of posts of channels this node does not follow (default 64 MiB). */
  readonly bytes?: number;
  /** Posts of channels this node does not follow (default 10 000). */
  readonly posts?: number;
  /**
   * Shares of that quota one channel, one delivering peer and one remote host may
   * fill (default 0.25, 0.5 and 0.5).
   */
  readonly shares?: { readonly channel?: number; readonly peer?: number; readonly host?: number };
  /** Octets of one followed channel's posts (default 256 MiB). */
  readonly followedBytes?: number;
  /** Posts of one followed channel (default 10 000). */
  readonly followedPosts?: number;
}

/** The bounds in force. */
export type ResolvedPostQuota = {
  readonly bytes: number;
  readonly posts: number;
  readonly shares: { readonly channel: number; readonly peer: number; readonly host: number };
  readonly followedBytes: number;
  readonly followedPosts: number;
};

/** Default bounds on posts (docs/mesh-protocol.md §6.3). */
export const DEFAULT_POST_QUOTA: ResolvedPostQuota = {
  bytes: 64 * 1024 * 1024,
  posts: 10_000,
  shares: { channel: 0.25, peer: 0.5, host: 0.5 },
  followedBytes: 256 * 1024 * 1024,
  followedPosts: 10_000,
};

/** The bounds `options` ask for, with the defaults. */
export function resolvePostQuota(options: PostQuotaOptions = {}): ResolvedPostQuota {
  const resolved = {
    ...DEFAULT_POST_QUOTA,
    ...options,
    shares: { ...DEFAULT_POST_QUOTA.shares, ...options.shares },
  };
  for (const [name, value] of Object.entries({ ...resolved, ...resolved.shares })) {
    if (typeof value === "number" && !(value >= 0 && Number.isFinite(value))) {
      throw new RangeError(`postQuota.${name} must be a finite number ≥ 0, not ${value}`);
    }
  }
  return resolved;
}

/** What a post to store counts against. */
export interface PostClaim {
  readonly size: number;
  readonly channelId: string;
  readonly followed: boolean;
  readonly fromPeer?: string;
  readonly fromHost?: string;
}

/** Room held for a post between its check and its commit. */
export interface PostReservation {
  /** Gives the room back (the post was stored, and is now counted, or dropped). */
  release(): void;
}

/** Decides whether a post may be stored, and holds its room until it is. */
export class PostQuota {
  readonly #reserved = new Map<PostShareKey, { bytes: number; posts: number }>();

  constructor(private readonly store: PostStore, readonly limits: ResolvedPostQuota) {}

  /**
   * Reserves room for `claim`, or says which bound is reached (a transient
   * refusal); `total` is set when only the whole quota is full, with what is
   * missing of it (carried posts nobody wants any more can make that room).
   */
  reserve(
    claim: PostClaim,
  ): PostReservation | { refused: string; total?: { bytes: number; posts: number } } {
    const keys = postShareKeys(claim);
    for (const key of keys) {
      const limit = this.#limit(key);
      const used = this.store.usage(key);
      const held = this.#reserved.get(key) ?? { bytes: 0, posts: 0 };
      const bytes = used.bytes + held.bytes + claim.size - limit.bytes;
      const posts = used.posts + held.posts + 1 - limit.posts;
      if (bytes > 0 || posts > 0) {
        const missing = { bytes: Math.max(0, bytes), posts: Math.max(0, posts) };
        return { refused: describe(key, limit), ...(key === "total" ? { total: missing } : {}) };
      }
    }
    for (const key of keys) this.#add(key, claim.size, 1);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        for (const key of keys) this.#add(key, -claim.size, -1);
      },
    };
  }

  #add(key: PostShareKey, bytes: number, posts: number): void {
    const entry = this.#reserved.get(key) ?? { bytes: 0, posts: 0 };
    entry.bytes += bytes;
    entry.posts += posts;
    if (entry.posts <= 0) this.#reserved.delete(key);
    else this.#reserved.set(key, entry);
  }

  #limit(key: PostShareKey): { bytes: number; posts: number } {
    const { limits } = this;
    if (key.startsWith("followed:")) {
      return { bytes: limits.followedBytes, posts: limits.followedPosts };
    }
    const kind = key.slice(0, key.indexOf(":")) as "channel" | "peer" | "host";
    const fraction = key === "total" ? 1 : limits.shares[kind];
    return {
      bytes: Math.floor(limits.bytes * fraction),
      posts: Math.floor(limits.posts * fraction),
    };
  }
}

function describe(key: PostShareKey, limit: { bytes: number; posts: number }): string {
  const of = `${limit.bytes} bytes or ${limit.posts} posts`;
  if (key === "total") return `This relay's post quota (${of}) is full`;
  const [kind, id] = [key.slice(0, key.indexOf(":")), key.slice(key.indexOf(":") + 1)];
  if (kind === "followed") return `Followed channel ${id.slice(0, 13)} already holds ${of}`;
  return `${kind[0].toUpperCase()}${kind.slice(1)} ${
    id.slice(0, 13)
  } already fills its share of posts (${of})`;
}
