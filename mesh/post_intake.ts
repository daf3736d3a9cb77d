/**
 * What a node does with the posts a peer pushes (docs/mesh-protocol.md §3.1):
 * each is checked as every hop must (docs/broadcast.md §3.1, `PostVerifier`),
 * then taken only if this node wants its channel (it follows it, or a peer asked
 * for it) and there is room for it (post_quota.ts); the posts of a batch are
 * committed together before any is acknowledged.
 *
 * @module
 */
import type { RefusalCode } from "../bindings/binding.ts";
import { StorageFullError } from "../bindings/durable.ts";
import { ParcelRefusedError } from "../bindings/validation.ts";
import { reportMisbehaviour } from "./core.ts";
import type { InterestTable } from "./interest.ts";
import type { NodeParts } from "./parts.ts";
import type { PostQuota } from "./post_quota.ts";
import type { PostRecord } from "./post_store.ts";
import type { PostFacts, PostVerifier } from "./posts.ts";
import type { RateLimiter } from "./rate_limit.ts";
import { AckStatus, type TransferMessage } from "./wire.ts";

/** A POST frame as decoded. */
export type PostMessage = Extract<TransferMessage, { type: "post" }>;

/** What the transfer service asks of the node's channels (mesh/channels.ts). */
export interface PostHandler {
  /** Takes a batch of posts a peer pushed; answers each. */
  takePosts(batch: PostMessage[], from: string, host: string): Promise<TransferMessage[]>;
  /** A peer refused a held post for good: checks it again, and drops it if it is no longer valid. */
  recheck(key: string): void;
}

/** Refusals that only a forger (or a broken peer) causes: the peer is reported. */
const FORGERY: ReadonlySet<RefusalCode> = new Set(["malformed", "bad-signature", "unauthorized"]);

/** How long a node waits to look for posts to evict after a look that found none. */
export const EVICTION_PAUSE_MS = 10_000;

/** What {@linkcode PostIntake} needs. */
export interface PostIntakeDeps extends Pick<NodeParts, "store" | "stats" | "emit" | "logger"> {
  readonly verifier: PostVerifier;
  readonly interest: InterestTable;
  readonly quota: PostQuota;
  /** Parcels (here: posts) and octets per second, per peer and per host. */
  readonly limiter: RateLimiter;
  readonly now: () => Date;
  /** The posts were stored: spread them, tell the node's listeners. */
  readonly stored: (posts: readonly PostRecord[], from: string) => void;
}

/** Takes the posts peers push. */
export class PostIntake {
  readonly #deps: PostIntakeDeps;
  /** Posts being stored right now, so that two streams do not both take one. */
  readonly #placing = new Set<string>();
  /**
   * Until when (ms) no carried post is looked for to evict, unless peers' interest
   * changed: the last look found none. A look reads every carried post, a hundred
   * times what checking a post costs, so a peer pushing posts at a full quota
   * must not make one per post.
   */
  #noneToEvict = { until: 0, changes: -1 };

  constructor(deps: PostIntakeDeps) {
    this.#deps = deps;
  }

  /** Takes a batch of posts from `from` (at `host`); returns an answer for each. */
  async takeBatch(batch: PostMessage[], from: string, host: string): Promise<TransferMessage[]> {
    const { store } = this.#deps;
    const seen = new Set<string>();
    const checked = await Promise.all(batch.map((message) => {
      if (seen.has(message.key)) return Promise.resolve(held(message.key));
      seen.add(message.key);
      return this.#check(message, from, host);
    }));
    const replies: TransferMessage[] = [];
    const records: { record: PostRecord; release(): void }[] = [];
    for (const [i, check] of checked.entries()) {
      if (!("facts" in check)) {
        replies.push(check);
        continue;
      }
      const placed = this.#place(batch[i], check.facts, from, host);
      if ("record" in placed) records.push(placed);
      else replies.push(placed);
    }
    if (records.length === 0) return replies;
    try {
      const added = store.posts.putMany(records.map((r) => r.record));
      for (const { record } of records) {
        replies.push({ type: "ack", key: record.key, status: AckStatus.STORED });
      }
      if (added.length > 0) this.#deps.stored(added, from);
    } catch (error) {
      if (!(error instanceof StorageFullError)) throw error;
      for (const { record } of records) {
        replies.push(this.#refuse(record.key, from, "quota", error.message, true));
      }
    } finally {
      for (const record of records) record.release();
    }
    return replies;
  }

  #refuse(
    key: string,
    from: string,
    code: RefusalCode,
    reason: string,
    transient: boolean,
  ): TransferMessage {
    this.#deps.stats.postsRefused++;
    this.#deps.logger.debug("Post refused", { peer: from, key, code, reason });
    return { type: "refuse", key, code, transient, reason };
  }

  async #check(
    message: PostMessage,
    from: string,
    host: string,
  ): Promise<TransferMessage | { facts: PostFacts }> {
    const { key, bytes } = message;
    const { store, limiter, verifier } = this.#deps;
    this.#deps.stats.postsReceived++;
    if (store.posts.has(key)) return held(key);
    if (!limiter.take([from, `host:${host}`], bytes.byteLength)) {
      return this.#refuse(key, from, "rate-limited", "Too many posts from this peer or host", true);
    }
    let facts: PostFacts;
    try {
      facts = await verifier.verify(bytes, { now: this.#deps.now() });
    } catch (error) {
      if (!(error instanceof ParcelRefusedError)) throw error;
      if (FORGERY.has(error.code)) {
        reportMisbehaviour(
          this.#deps,
          from,
          `sent a forged post (${error.code}): ${error.message}`,
        );
      }
      return this.#refuse(key, from, error.code, error.message, error.code === "future-dated");
    }
    if (facts.key !== key) {
      reportMisbehaviour(this.#deps, from, "sent a post that does not match its key");
      return this.#refuse(key, from, "malformed", "Post does not match its key", false);
    }
    return { facts };
  }

  #place(
    message: PostMessage,
    facts: PostFacts,
    from: string,
    host: string,
  ): TransferMessage | { record: PostRecord; release(): void } {
    const { store, interest, quota } = this.#deps;
    if (this.#placing.has(facts.key) || store.posts.has(facts.key)) return held(facts.key);
    const followed = store.posts.follows(facts.channelId);
    if (!followed && !interest.wants(facts.channelId, from)) {
      // Only posts this node asked for, by its own interest or another peer's: a
      // peer cannot make it carry channels nobody else near it wants. Transient:
      // the sender may have pushed on interest that lapsed a moment ago, and must
      // offer the post again once this node asks for the channel again.
      const reason = `This node did not ask for the posts of channel ${facts.channelId}`;
      return this.#refuse(facts.key, from, "unauthorized", reason, true);
    }
    const size = message.bytes.byteLength;
    const claim = { size, channelId: facts.channelId, followed, fromPeer: from, fromHost: host };
    let reservation = quota.reserve(claim);
    const now = this.#deps.now().getTime();
    const pause = this.#noneToEvict;
    if (
      "refused" in reservation && reservation.total &&
      (now >= pause.until || interest.changes !== pause.changes)
    ) {
      // Only the whole quota is full: posts carried for channels nobody near asks
      // for any more make room for one somebody wants (§6.4).
      const { bytes, posts } = reservation.total;
      const asked = new Map<string, boolean>(); // once per channel, not once per post held
      const wanted = (c: string) => asked.get(c) ?? asked.set(c, interest.wants(c)).get(c)!;
      if (store.posts.evictUnwanted(wanted, bytes, posts) > 0) {
        reservation = quota.reserve(claim);
      } else this.#noneToEvict = { until: now + EVICTION_PAUSE_MS, changes: interest.changes };
    }
    if ("refused" in reservation) {
      return this.#refuse(facts.key, from, "quota", reservation.refused, true);
    }
    this.#placing.add(facts.key);
    return {
      release: () => {
        reservation.release();
        this.#placing.delete(facts.key);
      },
      record: { ...facts, size, bytes: message.bytes, fromPeer: from, fromHost: host, followed },
    };
  }
}

function held(key: string): TransferMessage {
  return { type: "ack", key, status: AckStatus.ALREADY_HELD };
}
