/**
 * Broadcast channels on the mesh (docs/mesh-protocol.md §2.6, §3.1; the post
 * format is docs/broadcast.md): following and unfollowing channels, publishing
 * posts, taking the posts peers push (post_intake.ts), and spreading each post
 * to the peers that asked for its channel. Reconciliation (sync.ts) finds the
 * posts a peer lacks; this service decides nothing about parcels.
 *
 * @module
 */
import { ParcelRefusedError } from "../bindings/validation.ts";
import type { InterestTable } from "./interest.ts";
import type { NodeParts } from "./parts.ts";
import { PostIntake, type PostMessage } from "./post_intake.ts";
import type { PostQuota } from "./post_quota.ts";
import type { PostRecord } from "./post_store.ts";
import { type PostFacts, PostVerifier } from "./posts.ts";
import type { RateLimiter } from "./rate_limit.ts";
import type { PeerState } from "./types.ts";
import type { TransferMessage } from "./wire.ts";

/** A channel id: `"0"` and the hex SHA-256 of the channel key (docs/broadcast.md §1). */
const CHANNEL_ID = /^0[0-9a-f]{64}$/;

/** What {@linkcode ChannelService} needs. */
export interface ChannelDeps
  extends Pick<NodeParts, "peers" | "store" | "stats" | "emit" | "logger"> {
  readonly interest: InterestTable;
  readonly quota: PostQuota;
  /** Posts and octets per second, per peer and per host (shared with parcels). */
  readonly limiter: RateLimiter;
  readonly now: () => Date;
  /** Schedules a reconciliation with every peer but `except` (the sync service's). */
  readonly syncAll: (except?: string) => void;
  /** Reconciles with every peer, even one that just started one: this node's interest changed. */
  readonly tellAll: () => void;
  /** Starts pushing a peer's queue (the transfer service's). */
  readonly push: (peer: PeerState) => void;
}

/** Channels followed, posts published and taken. */
export class ChannelService {
  readonly #deps: ChannelDeps;
  readonly #verifier = new PostVerifier();
  readonly #intake: PostIntake;

  constructor(deps: ChannelDeps) {
    this.#deps = deps;
    this.#intake = new PostIntake({
      ...deps,
      verifier: this.#verifier,
      stored: (posts, from) => this.#stored(posts, from),
    });
  }

  /** Follows a channel; the posts of it held here already are reported as new. */
  follow(channelId: string): void {
    checkChannelId(channelId);
    const { store } = this.#deps;
    for (const key of store.posts.follow(channelId)) {
      const facts = store.posts.get(key);
      const bytes = store.posts.bytes(key);
      if (facts && bytes) this.#deps.emit("post", { facts, bytes });
    }
    // Peers hear of it at once: the next reconciliation carries the interest,
    // and brings the posts they hold.
    this.#deps.tellAll();
  }

  /** Stops following a channel and forgets its posts. */
  unfollow(channelId: string): void {
    checkChannelId(channelId);
    if (this.#deps.store.posts.unfollow(channelId)) this.#deps.tellAll();
  }

  /** The channels followed, in the order they were followed. */
  following(): string[] {
    return this.#deps.store.posts.followed();
  }

  /**
   * Publishes a post: verified like any other, stored (its channel followed if
   * it was not), and spread to the peers that want it.
   */
  async publish(bytes: Uint8Array): Promise<PostFacts> {
    const { store } = this.#deps;
    const facts = await this.#verifier.verify(bytes, { now: this.#deps.now() });
    if (!store.posts.follows(facts.channelId)) this.follow(facts.channelId);
    if (store.posts.has(facts.key)) return facts;
    const reservation = this.#deps.quota.reserve({
      size: bytes.byteLength,
      channelId: facts.channelId,
      followed: true,
    });
    if ("refused" in reservation) throw new ParcelRefusedError("quota", reservation.refused);
    try {
      const record = { ...facts, size: bytes.byteLength, bytes: bytes.slice(), followed: true };
      const added = store.posts.putMany([record]);
      if (added.length > 0) this.#stored(added, undefined);
    } finally {
      reservation.release();
    }
    return facts;
  }

  /** The posts held (of one channel, or of every followed channel), oldest first. */
  posts(channelId?: string): PostFacts[] {
    if (channelId !== undefined) checkChannelId(channelId);
    return this.#deps.store.posts.list(channelId, channelId === undefined);
  }

  /** A held post's octets. */
  post(key: string): Uint8Array | undefined {
    return this.#deps.store.posts.bytes(key);
  }

  /** Takes a batch of posts a peer pushed. */
  takePosts(batch: PostMessage[], from: string, host: string): Promise<TransferMessage[]> {
    return this.#intake.takeBatch(batch, from, host);
  }

  /**
   * A peer refused a held post for good: if this node's own check now refuses
   * it too (its author certificate expired before the post, say), the post goes,
   * so that it is not offered to every peer, and refused by each, until it
   * expires. A post still valid here stays (the peer merely did not want it).
   */
  recheck(key: string): void {
    const bytes = this.#deps.store.posts.bytes(key);
    if (!bytes) return;
    this.#verifier.verify(bytes, { now: this.#deps.now() }).then(
      () => {},
      (error) => {
        if (!(error instanceof ParcelRefusedError) || error.code === "future-dated") return;
        try {
          if (!this.#deps.store.posts.remove(key)) return;
        } catch (failure) {
          // The node stopped meanwhile (its store is closed): the purge will see to it.
          this.#deps.logger.debug("Could not drop a post no longer valid", { key, error: failure });
          return;
        }
        this.#deps.logger.info("Dropped a post that is no longer valid", {
          key,
          code: error.code,
          reason: error.message,
        });
      },
    );
  }

  /** Posts were stored: the node's listeners hear of followed ones, and peers that want them get them. */
  #stored(posts: readonly PostRecord[], from: string | undefined): void {
    for (const post of posts) {
      if (post.followed) {
        const facts: PostFacts = {
          key: post.key,
          channelId: post.channelId,
          authorId: post.authorId,
          id: post.id,
          createdAt: post.createdAt,
          expiresAt: post.expiresAt,
        };
        this.#deps.emit("post", { facts, bytes: post.bytes.slice(), from });
      }
      this.#pushToInterested(post.key, post.channelId, from);
    }
    this.#deps.syncAll(from);
  }

  /** Sends a post at once to every connected peer that asked for its channel. */
  #pushToInterested(key: string, channelId: string, from: string | undefined): void {
    for (const peer of this.#deps.peers.values()) {
      if (
        peer.id === from || !this.#deps.interest.peerWants(peer.id, channelId) ||
        peer.refused.has(key) || peer.sending.has(key)
      ) continue;
      peer.queue.set(key, { give: 0, direct: false, post: true });
      this.#deps.push(peer);
    }
  }
}

function checkChannelId(channelId: string): void {
  if (!CHANNEL_ID.test(channelId)) {
    throw new RangeError(
      `Not a channel id ("0" and 64 lowercase hex digits): "${String(channelId).slice(0, 80)}"`,
    );
  }
}
