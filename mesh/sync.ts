/**
 * Reconciliation (docs/mesh-protocol.md §2): when to compare stores with a peer,
 * the streams the exchanges run on (reconcile.ts speaks them), and acting on the
 * difference: checking delivery proofs, queueing pushes (§2.5).
 *
 * @module
 */
import type { Connection, Stream } from "@libp2p/interface";
import { toHex } from "../bindings/validation.ts";
import { decodeProof, type DeliveryProof } from "./proofs.ts";
import type { Channel } from "./channel.ts";
import {
  asError,
  logFailure,
  recordDelivery,
  type Registrar,
  reportMisbehaviour,
  safeDecodeItem,
  type Service,
} from "./core.ts";
import { hostOf } from "./host_key.ts";
import type { InterestTable } from "./interest.ts";
import { endWithError, StreamSlots } from "./links.ts";
import type { Logger } from "./log.ts";
import type { NodeParts } from "./parts.ts";
import { RateLimiter } from "./rate_limit.ts";
import {
  answerExchange,
  type ExchangeResult,
  type ExchangeSide,
  type Hello,
  initiateExchange,
} from "./reconcile.ts";
import { route } from "./routing.ts";
import { encodeItem, ItemKind } from "./store.ts";
import { TaskGroup } from "./tasks.ts";
import {
  encodeSync,
  type InterestToken,
  MAX_PROOFS_PER_MESSAGE,
  MAX_SYNC_FRAME_LENGTH,
  ProtocolError,
  type ProvenTombstone,
  SYNC_PROTOCOL,
} from "./wire.ts";
import type { PeerState, ResolvedOptions } from "./types.ts";
import {
  FIRST_RETRY_MS,
  MAX_EXPIRY_AHEAD_MS,
  MAX_ITEMS,
  MAX_RETRY_MS,
  SYNC_RATE,
  SYNC_RESPONDERS,
} from "./types.ts";

/** What {@linkcode SyncService} needs. */
export interface SyncDeps extends NodeParts {
  readonly registrar: Registrar;
  /** Which channels' posts this node and its peers want. */
  readonly interest: InterestTable;
  readonly options: Pick<
    ResolvedOptions,
    "reconciliation" | "now" | "unverifiedTombstones" | "syncIntervalMs"
  >;
  /** Starts pushing the parcels a reconciliation queued for `peer` (the transfer service's). */
  readonly push: (peer: PeerState) => void;
}

/** Reconciles this node's store with its peers'. */
export class SyncService implements Service {
  readonly #deps: SyncDeps;
  readonly #log: Logger;
  readonly #tasks = new TaskGroup();
  /** Reconciliations answered at once, per peer, per host and in all. */
  readonly #slots = new StreamSlots(SYNC_RESPONDERS);
  /** Reconciliations answered, per peer and per host (each "parcel" is one). */
  readonly #limiter = new RateLimiter(SYNC_RATE);
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(deps: SyncDeps) {
    this.#deps = deps;
    this.#log = deps.logger;
  }

  /** Answers reconciliations, and reconciles with every peer now and then. */
  async start(): Promise<void> {
    await this.#deps.registrar.handle(
      SYNC_PROTOCOL,
      (stream, connection) => this.#handle(stream, connection),
      { maxInboundStreams: 4 },
    );
    this.#timer = setInterval(() => this.syncAll(), this.#deps.options.syncIntervalMs);
  }

  /** Stops: no new reconciliation starts, and those running are aborted and waited for. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    for (const peer of this.#deps.peers.values()) this.forget(peer);
    const stopping = this.#tasks.close(new Error("The node is stopping"));
    await this.#deps.registrar.unhandle(SYNC_PROTOCOL).catch((error) =>
      this.#log.debug("Could not unregister the protocol", { error })
    );
    await stopping;
  }

  /** A peer is gone: no reconciliation with it is scheduled any more. */
  forget(peer: PeerState): void {
    clearTimeout(peer.syncTimer);
    peer.syncTimer = undefined;
  }

  /**
   * Schedules a reconciliation with every peer, but `except` the one the change
   * came from: it already knows what it just gave or was given.
   */
  syncAll(except?: string): void {
    for (const peer of this.#deps.peers.values()) {
      if (peer.id !== except) this.scheduleSync(peer, 200);
    }
  }

  /**
   * Like {@linkcode syncAll}, for news the peers learn only from this node's
   * HELLO (interest it now relays): a reconciliation a peer starts meanwhile may
   * have begun before, so it does not stand in for this one.
   */
  tellAll(except?: string): void {
    for (const peer of this.#deps.peers.values()) {
      if (peer.id === except) continue;
      if (peer.syncing) peer.syncAgain = true;
      peer.mustSync = true;
      this.scheduleSync(peer, 200);
    }
  }

  scheduleSync(peer: PeerState, delayMs: number): void {
    if (peer.syncTimer !== undefined || this.#tasks.closed) return;
    peer.syncTimer = setTimeout(() => {
      peer.syncTimer = undefined;
      this.sync(peer); // never rejects: failures are logged and retried
    }, delayMs);
  }

  /** Runs one reconciliation as initiator (or queues another if one is running). */
  sync(peer: PeerState): Promise<void> {
    if (peer.syncing) {
      peer.syncAgain = true;
      return peer.syncing;
    }
    peer.mustSync = false;
    const running = this.#tasks.run((signal) =>
      this.#initiate(peer, signal)
        .then(() => {
          peer.retryMs = FIRST_RETRY_MS;
        })
        .catch((error) => {
          logFailure(this.#log, signal, "Reconciliation with a peer failed", {
            peer: peer.id,
            error,
          });
          this.retryLater(peer);
        })
        .finally(() => {
          peer.syncing = null;
          if (peer.syncAgain && this.#deps.peers.has(peer.id)) {
            peer.syncAgain = false;
            this.scheduleSync(peer, 50);
          }
        })
    );
    if (!running) return Promise.resolve();
    peer.syncing = running;
    return running;
  }

  /** Tries again after a failure, backing off while the peer keeps failing. */
  retryLater(peer: PeerState): void {
    if (!this.#deps.peers.has(peer.id)) return;
    this.scheduleSync(peer, peer.retryMs);
    peer.retryMs = Math.min(peer.retryMs * 2, MAX_RETRY_MS);
  }

  /** Answers a reconciliation, unless the node is stopping. */
  #handle(stream: Stream, connection: Connection): Promise<void> | undefined {
    const running = this.#tasks.run((signal) => this.#respond(stream, connection, signal));
    if (!running) stream.abort(new Error("The node is stopping"));
    return running;
  }

  async #initiate(peer: PeerState, signal: AbortSignal): Promise<void> {
    const { links, options } = this.#deps;
    const channel = await links.open(peer.peerId, SYNC_PROTOCOL, MAX_SYNC_FRAME_LENGTH, signal);
    const stream = channel.stream;
    try {
      const result = await initiateExchange(
        channel,
        this.#side(peer, peer.id, peer.host),
        options.reconciliation === "full-list",
      );
      await this.#close(stream, peer.id);
      this.#apply(peer, result, this.#account(peer, channel));
      if (result.truncated) this.scheduleSync(peer, 50);
    } catch (error) {
      await this.#end(channel, error);
      throw error;
    } finally {
      channel.dispose();
    }
  }

  async #respond(stream: Stream, connection: Connection, signal: AbortSignal): Promise<void> {
    const id = connection.remotePeer.toString();
    const peer = this.#deps.peers.get(id);
    if (peer?.syncTimer !== undefined && !peer.syncAgain && !peer.mustSync) {
      // The peer is reconciling with us: the one we had scheduled would be redundant.
      this.forget(peer);
    }
    const channel = this.#deps.links.accept(stream, connection, MAX_SYNC_FRAME_LENGTH, signal);
    const host = hostOf(connection.remoteAddr.toString());
    // Reconciliations cost CPU whatever they carry: a budget per peer and per host.
    const slot = this.#limiter.take([id, `host:${host}`], 1) ? this.#slots.take(id, host) : null;
    try {
      if (!slot) {
        this.#log.debug("Reconciliation refused: busy", { peer: id, host });
        const message = "Busy: too many reconciliations at once; try again later";
        await endWithError(channel, encodeSync({ type: "error", message }), this.#log);
        return;
      }
      const result = await answerExchange(channel, this.#side(peer, id, host));
      await this.#close(stream, id);
      if (peer) {
        this.#apply(peer, result, this.#account(peer, channel));
        if (result.truncated) this.scheduleSync(peer, 50);
      }
    } catch (error) {
      logFailure(this.#log, signal, "Reconciliation from a peer failed", { peer: id, host, error });
      // Ending costs nothing more (what arrives is dropped): the peer may start again now.
      slot?.release();
      await this.#end(channel, error);
    } finally {
      slot?.release();
      channel.dispose();
    }
  }

  /** This node's side of an exchange with `peer` (unknown: a stream that beat its connect event). */
  #side(peer: PeerState | undefined, id: string, host: string): ExchangeSide {
    const { store, hosting, interest } = this.#deps;
    let told: InterestToken[] | undefined;
    const tokens = () => told ??= interest.advertise(id);
    return {
      // Posts only of the channels one side asked the other for, the same on both
      // sides: others would only swell the difference (§2.6).
      items: () => {
        const asked = new Set(tokens().map((t) => toHex(t.token)));
        const wanted = (channel: string) =>
          asked.has(interest.tokenOf(channel)) || interest.peerWants(id, channel);
        return store.items(MAX_ITEMS, wanted).map(encodeItem);
      },
      itemCount: () => store.itemCount(MAX_ITEMS),
      interest: tokens,
      announcements: (nonce) => hosting.announcements(nonce),
      hello: (hello) => {
        if (peer) learnAnnouncements(peer, hello);
        // A channel wanted anew here must be heard of by the other peers, so that
        // posts come this way (relayed interest, §2.6).
        if (interest.learn(id, host, hello.interest ?? [])) this.tellAll(id);
      },
      proofsFor: (items) => this.#proofsFor(items),
    };
  }

  /** Ends our side of a finished exchange. */
  async #close(stream: Stream, peer: string): Promise<void> {
    try {
      await stream.close();
    } catch (error) {
      // The exchange is complete: a close that fails loses nothing.
      this.#log.debug("Could not close a sync stream", { peer, error });
    }
  }

  /**
   * Ends a failed exchange: with ERROR when the fault is in what the peer sent or
   * in our limits (the peer is told why), else with a reset.
   */
  async #end(channel: Channel, error: unknown): Promise<void> {
    const tell = (error instanceof ProtocolError || error instanceof RangeError) &&
      !error.message.startsWith("Peer says:");
    if (!tell) return channel.stream.abort(asError(error));
    await endWithError(channel, encodeSync({ type: "error", message: error.message }), this.#log);
  }

  /** The proofs of the tombstones among `items`, as many as fit one sync frame. */
  #proofsFor(items: readonly Uint8Array[]): ProvenTombstone[] {
    const keys = [];
    for (const raw of items) {
      const item = safeDecodeItem(raw);
      if (item?.kind === ItemKind.DELIVERED) keys.push(item.key);
    }
    const out = [];
    let size = 3;
    for (const { expiresAt, proof } of this.#deps.store.proofs(keys)) {
      size += 6 + proof.length;
      if (out.length >= MAX_PROOFS_PER_MESSAGE || size > MAX_SYNC_FRAME_LENGTH) break;
      out.push({ expiresAt, proof });
    }
    return out;
  }

  #account(peer: PeerState, channel: Channel): Traffic {
    const { stats } = this.#deps;
    stats.syncs++;
    stats.syncBytesSent += channel.bytesWritten;
    stats.syncBytesReceived += channel.bytesRead;
    return { peer: peer.id, bytesSent: channel.bytesWritten, bytesReceived: channel.bytesRead };
  }

  /**
   * Acts on a reconciliation: checks the peer's delivery proofs (only for
   * tombstones it listed and this node lacks), then queues the parcels the peer
   * should get.
   */
  #apply(peer: PeerState, result: ExchangeResult, traffic: Traffic): void {
    const { theirOnly, ourOnly } = result;
    const { store, hosting } = this.#deps;
    const listed = new Set<string>();
    for (const raw of theirOnly) {
      const item = safeDecodeItem(raw);
      if (item?.kind === ItemKind.DELIVERED) listed.add(item.key);
    }
    const changed = this.#learnProofs(peer, result.proofs, listed);
    const now = Date.now();
    const posts: string[] = [];
    for (const raw of ourOnly) {
      const item = safeDecodeItem(raw);
      if (item?.kind === ItemKind.POST) posts.push(item.key);
      if (item?.kind !== ItemKind.PARCEL) continue;
      const parcel = store.get(item.key);
      if (
        !parcel || peer.refused.has(item.key) || peer.sending.has(item.key) ||
        (peer.backoff.get(item.key) ?? 0) > now
      ) {
        continue;
      }
      const decision = route(parcel.copies, hosting.peerHosts(peer, parcel.recipientId));
      if (decision.send) peer.queue.set(item.key, { give: decision.give, direct: decision.direct });
    }
    // Posts after parcels: the queue goes in order, and mail must not wait behind
    // the posts of busy channels (hundreds of MiB of them, for a follower).
    for (const key of posts) this.#queuePost(peer, key, now);
    this.#deps.emit("sync", { ...traffic, theirOnly: theirOnly.length, ourOnly: ourOnly.length });
    this.#deps.push(peer);
    if (changed) this.syncAll(peer.id);
  }

  /** Queues a post the peer lacks, if it asked for its channel (§2.6). */
  #queuePost(peer: PeerState, key: string, now: number): void {
    const post = this.#deps.store.posts.get(key);
    if (
      !post || !this.#deps.interest.peerWants(peer.id, post.channelId) ||
      peer.refused.has(key) || peer.sending.has(key) || (peer.backoff.get(key) ?? 0) > now
    ) {
      return;
    }
    peer.queue.set(key, { give: 0, direct: false, post: true });
  }

  /**
   * Takes a peer's delivery proofs: one for a parcel held here is checked against
   * its recipient (valid: the copy goes, a proven tombstone stays; false: the peer
   * lied); one for a parcel never held here is kept, within per-peer, per-host and
   * total bounds, to be checked if the parcel comes. Returns whether anything changed.
   */
  #learnProofs(
    peer: PeerState,
    proofs: readonly ProvenTombstone[],
    listed: ReadonlySet<string>,
  ): boolean {
    const { store, verifier, options } = this.#deps;
    let changed = false;
    const unverified = [];
    const now = options.now().getTime();
    for (const { expiresAt, proof: bytes } of proofs) {
      let proof: DeliveryProof;
      try {
        proof = decodeProof(bytes);
      } catch {
        reportMisbehaviour(this.#deps, peer.id, "sent a malformed delivery proof");
        continue;
      }
      if (!listed.has(proof.key) || store.knows(proof.key) === "delivered") continue;
      const held = store.get(proof.key);
      if (held) {
        if (verifier.verifyProof(proof, held.recipientId)) {
          recordDelivery(this.#deps, proof.key, held, bytes);
          changed = true;
        } else {
          const reason = `false delivery proof for ${proof.key.slice(0, 12)}`;
          reportMisbehaviour(this.#deps, peer.id, reason);
        }
        continue;
      }
      const expiry = expiresAt.getTime();
      if (expiry <= now || expiry > now + MAX_EXPIRY_AHEAD_MS) continue;
      unverified.push({ key: proof.key, expiresAt, proof: bytes });
    }
    if (unverified.length > 0) {
      const kept = store.addUnverified(
        unverified,
        { peer: peer.id, host: peer.host },
        options.unverifiedTombstones,
      );
      if (kept > 0) changed = true;
    }
    return changed;
  }
}

/** What a reconciliation moved, for the `sync` event. */
interface Traffic {
  peer: string;
  bytesSent: number;
  bytesReceived: number;
}

/** Keeps a peer's announcements, to check its claims when a parcel needs them. */
function learnAnnouncements(peer: PeerState, hello: Hello): void {
  peer.nonce = hello.nonce;
  peer.announcements = new Map(hello.announcements.map((a) => [toHex(a.tag), a.sealed]));
  peer.hosts.clear();
}
