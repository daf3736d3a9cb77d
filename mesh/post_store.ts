/**
 * Broadcast posts in the mesh store (docs/mesh-protocol.md §6.3): the `posts`
 * and `followed_channels` tables, and the running totals the post quota
 * (mesh/post_quota.ts) reads on every post offered. A post is named by its key,
 * the hex SHA-256 of its octets; it is `followed` when this node follows its
 * channel, otherwise carried for neighbours that asked for it.
 *
 * @module
 */
import type { SqliteDatabase } from "../bindings/durable.ts";
import type { PostFacts } from "./posts.ts";
import { type Item, ItemKind } from "./sync_item.ts";

/** A post to store, with what its verification said and who brought it. */
export interface PostRecord extends PostFacts {
  /** Octets of the post. */
  readonly size: number;
  /** The serialised post. */
  readonly bytes: Uint8Array;
  /** Peer id of the peer that delivered it (none: published here). */
  readonly fromPeer?: string;
  /** Remote host of that peer. */
  readonly fromHost?: string;
  /** Whether this node follows its channel. */
  readonly followed: boolean;
}

/**
 * What posts count against: `total`, `channel:`, `peer:` and `host:` for the
 * posts of channels this node does not follow, `followed:` per followed channel.
 */
export type PostShareKey =
  | "total"
  | `channel:${string}`
  | `peer:${string}`
  | `host:${string}`
  | `followed:${string}`;

/** The keys a post counts against. */
export function postShareKeys(post: {
  readonly channelId: string;
  readonly followed: boolean;
  readonly fromPeer?: string | null;
  readonly fromHost?: string | null;
}): PostShareKey[] {
  if (post.followed) return [`followed:${post.channelId}`];
  const keys: PostShareKey[] = ["total", `channel:${post.channelId}`];
  if (post.fromPeer) keys.push(`peer:${post.fromPeer}`);
  if (post.fromHost) keys.push(`host:${post.fromHost}`);
  return keys;
}

interface PostRow {
  key: string;
  channel_id: string;
  author_id: string;
  post_id: string;
  created_at: number;
  expires_at: number;
}

interface UsageRow {
  channel_id: string;
  followed: number;
  from_peer: string | null;
  from_host: string | null;
  size: number;
}

const FACTS = "key, channel_id, author_id, post_id, created_at, expires_at";

/** The posts a node holds and the channels it follows. */
export class PostStore {
  readonly #usage = new Map<PostShareKey, { bytes: number; posts: number }>();
  /** Followed channel ids, in step with the table, in the order they were followed. */
  readonly #followed = new Set<string>();

  /** The posts of the store's database (the store makes it; open no other). */
  constructor(private readonly db: SqliteDatabase, private readonly now: () => Date) {
    const followed = "SELECT channel_id FROM followed_channels ORDER BY since, rowid";
    for (const row of db.all<{ channel_id: string }>(followed)) {
      this.#followed.add(row.channel_id);
    }
    this.recount();
  }

  /** Counts the usage again from the table (after a failed write, a purge). */
  recount(): void {
    this.#usage.clear();
    for (const row of this.db.all<UsageRow>(SELECT_USAGE)) this.#count(row, 1);
  }

  #count(row: UsageRow, sign: 1 | -1): void {
    const keys = postShareKeys({
      channelId: row.channel_id,
      followed: row.followed === 1,
      fromPeer: row.from_peer,
      fromHost: row.from_host,
    });
    for (const key of keys) {
      const entry = this.#usage.get(key) ?? { bytes: 0, posts: 0 };
      entry.bytes += sign * row.size;
      entry.posts += sign;
      if (entry.posts <= 0) this.#usage.delete(key);
      else this.#usage.set(key, entry);
    }
  }

  /** Octets and posts counted against `key`. */
  usage(key: PostShareKey): { bytes: number; posts: number } {
    const entry = this.#usage.get(key);
    return { bytes: entry?.bytes ?? 0, posts: entry?.posts ?? 0 };
  }

  /** Whether this node follows the channel. */
  follows(channelId: string): boolean {
    return this.#followed.has(channelId);
  }

  /**
   * The channels followed, in the order they were followed (from memory: the
   * interest table asks on every post offered, and eviction for every post held).
   */
  followed(): string[] {
    return [...this.#followed];
  }

  /**
   * Follows a channel: its posts held here become followed. Returns the keys of
   * those posts (none if it was followed already).
   */
  follow(channelId: string): string[] {
    if (this.#followed.has(channelId)) return [];
    const keys = this.db.transaction(() => {
      this.db.run(
        "INSERT OR IGNORE INTO followed_channels (channel_id, since) VALUES (?, ?)",
        channelId,
        this.now().getTime(),
      );
      return this.db.all<{ key: string }>(
        "UPDATE posts SET followed = 1 WHERE channel_id = ? AND followed = 0 RETURNING key",
        channelId,
      ).map((r) => r.key);
    });
    this.#followed.add(channelId);
    this.recount();
    return keys;
  }

  /** Stops following a channel and forgets its posts. Returns whether it was followed. */
  unfollow(channelId: string): boolean {
    if (!this.#followed.has(channelId)) return false;
    this.db.transaction(() => {
      this.db.run("DELETE FROM followed_channels WHERE channel_id = ?", channelId);
      this.db.run("DELETE FROM posts WHERE channel_id = ?", channelId);
    });
    this.#followed.delete(channelId);
    this.recount();
    return true;
  }

  /** Whether the post is held. */
  has(key: string): boolean {
    return this.db.get("SELECT 1 FROM posts WHERE key = ?", key) !== undefined;
  }

  /** Stores posts in one transaction; returns those that were new. */
  putMany(posts: readonly PostRecord[]): PostRecord[] {
    const added: PostRecord[] = [];
    try {
      this.db.transaction(() => {
        for (const post of posts) if (this.#put(post)) added.push(post);
      });
    } catch (error) {
      this.recount();
      throw error;
    }
    return added;
  }

  #put(post: PostRecord): boolean {
    const inserted = this.db.run(
      `INSERT OR IGNORE INTO posts (key, channel_id, author_id, post_id, created_at, expires_at,
         received_at, size, from_peer, from_host, followed, bytes)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      post.key,
      post.channelId,
      post.authorId,
      post.id,
      post.createdAt.getTime(),
      post.expiresAt.getTime(),
      this.now().getTime(),
      post.size,
      post.fromPeer ?? null,
      post.fromHost ?? null,
      post.followed ? 1 : 0,
      post.bytes,
    ) === 1;
    if (inserted) {
      this.#count({
        channel_id: post.channelId,
        followed: post.followed ? 1 : 0,
        from_peer: post.fromPeer ?? null,
        from_host: post.fromHost ?? null,
        size: post.size,
      }, 1);
    }
    return inserted;
  }

  /** A held post's octets. */
  bytes(key: string): Uint8Array | undefined {
    return this.db.get<{ bytes: Uint8Array }>("SELECT bytes FROM posts WHERE key = ?", key)?.bytes;
  }

  /** A held post's facts. */
  get(key: string): PostFacts | undefined {
    const row = this.db.get<PostRow>(`SELECT ${FACTS} FROM posts WHERE key = ?`, key);
    return row && toFacts(row);
  }

  /** The posts held (of one channel, or of all), oldest first. */
  list(channelId?: string, followedOnly = false): PostFacts[] {
    const where = [channelId === undefined ? "1" : "channel_id = ?"];
    if (followedOnly) where.push("followed = 1");
    return this.db.all<PostRow>(
      `SELECT ${FACTS} FROM posts WHERE ${where.join(" AND ")} ORDER BY created_at, rowid`,
      ...(channelId === undefined ? [] : [channelId]),
    ).map(toFacts);
  }

  /** How many posts are held: of followed channels, and carried for others. */
  counts(): { followed: number; carried: number } {
    const rows = this.db.all<{ followed: number; n: number }>(
      "SELECT followed, count(*) AS n FROM posts GROUP BY followed",
    );
    return {
      followed: rows.find((r) => r.followed === 1)?.n ?? 0,
      carried: rows.find((r) => r.followed === 0)?.n ?? 0,
    };
  }

  /**
   * Unexpired posts as reconciliation items, newest first, those `wanted`
   * (by channel) only, at most `limit`.
   */
  items(wanted: (channelId: string) => boolean, limit: number): Item[] {
    if (limit <= 0) return [];
    const rows = this.db.all<{ key: string; channel_id: string; expires_at: number }>(
      "SELECT key, channel_id, expires_at FROM posts WHERE expires_at > ? ORDER BY received_at DESC",
      this.now().getTime(),
    );
    const out: Item[] = [];
    for (const row of rows) {
      if (out.length >= limit) break;
      if (!wanted(row.channel_id)) continue;
      out.push({ kind: ItemKind.POST, key: row.key, expiresAt: new Date(row.expires_at) });
    }
    return out;
  }

  /** Unexpired posts held, an upper bound of what {@linkcode items} lists. */
  count(): number {
    return this.db.get<{ n: number }>(
      "SELECT count(*) AS n FROM posts WHERE expires_at > ?",
      this.now().getTime(),
    )?.n ?? 0;
  }

  /**
   * Drops carried posts (of channels not followed) whose channel `wanted` says
   * nobody wants any more, oldest first, until `bytes` octets and `posts` posts
   * are freed or none is left to drop. Returns how many went.
   */
  evictUnwanted(wanted: (channelId: string) => boolean, bytes: number, posts: number): number {
    const rows = this.db.all<{ key: string; channel_id: string; size: number }>(
      "SELECT key, channel_id, size FROM posts WHERE followed = 0 ORDER BY received_at, rowid",
    );
    const doomed: string[] = [];
    let freed = 0;
    for (const row of rows) {
      if (freed >= bytes && doomed.length >= posts) break;
      if (wanted(row.channel_id)) continue;
      doomed.push(row.key);
      freed += row.size;
    }
    if (doomed.length === 0) return 0;
    this.db.transaction(() => {
      for (const key of doomed) this.db.run("DELETE FROM posts WHERE key = ?", key);
    });
    this.recount();
    return doomed.length;
  }

  /** Drops a post; returns whether it was held. */
  remove(key: string): boolean {
    const removed = this.db.run("DELETE FROM posts WHERE key = ?", key) === 1;
    if (removed) this.recount();
    return removed;
  }

  /** Drops the posts expired at `now` (ms); returns how many went. */
  purge(now: number): number {
    const purged = this.db.run("DELETE FROM posts WHERE expires_at <= ?", now);
    if (purged > 0) this.recount();
    return purged;
  }
}

const SELECT_USAGE = "SELECT channel_id, followed, from_peer, from_host, size FROM posts";

function toFacts(row: PostRow): PostFacts {
  return {
    key: row.key,
    channelId: row.channel_id,
    authorId: row.author_id,
    id: row.post_id,
    createdAt: new Date(row.created_at),
    expiresAt: new Date(row.expires_at),
  };
}
