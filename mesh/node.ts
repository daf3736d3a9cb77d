/**
 * A mesh node: a libp2p host (TCP, Noise, Yamux, optional mDNS) that carries
 * Relaynet parcels store-and-forward between nearby peers.
 *
 * On every connection the two nodes say which endpoints they host and reconcile
 * the parcels and delivery tombstones they hold with a rateless IBLT (cost in
 * proportion to what differs); each then pushes the parcels the other lacks and
 * should get (spray-and-wait, see routing.ts), at most five unacknowledged at a
 * time, each acknowledged only once stored on disk or handed to its endpoint.
 * Every parcel is validated against its recipient's own PDA chain before it is
 * stored: spam stops at the first hop.
 *
 * The node is a facade over its services, each given only what it uses:
 *
 * - peers (peers.ts): the connected peers, discovery, reconnection, keep-alive;
 * - sync (sync.ts, reconcile.ts): reconciliation;
 * - transfer (transfer.ts, sender.ts, intake.ts): moving parcels and posts;
 * - channels (channels.ts, interest.ts, post_intake.ts): broadcast posts;
 * - admission (admission.ts): which inbound connections libp2p accepts;
 * - the store (store.ts), which the node opens and closes.
 *
 * @module
 */
import { peerIdFromPrivateKey } from "@libp2p/peer-id";
import { createLibp2p, type Libp2p } from "libp2p";
import { isSafelyStored } from "../bindings/binding.ts";
import { FastParcelValidator, type ParcelFacts } from "../bindings/fast_validation.ts";
import { ParcelRefusedError, sha256Hex } from "../bindings/validation.ts";
import { Admission } from "./admission.ts";
import { ChannelService } from "./channels.ts";
import { discoveryOf, libp2pConfig, privateKeyOf, resolveOptions } from "./config.ts";
import { type Emit, emptyStats, reportMisbehaviour } from "./core.ts";
import { type HostedEndpoint, Hosting } from "./hosting.ts";
import { InterestTable } from "./interest.ts";
import { Links } from "./links.ts";
import { createLogger, type Logger } from "./log.ts";
import { PeerService } from "./peers.ts";
import { PostQuota } from "./post_quota.ts";
import type { PostFacts } from "./posts.ts";
import { encodeProof, makeDeliveryProof, SignatureVerifier } from "./proofs.ts";
import { StorageQuota } from "./quota.ts";
import { DEFAULT_RATE_LIMIT, RateLimiter } from "./rate_limit.ts";
import { MeshStore } from "./store.ts";
import { SyncService } from "./sync.ts";
import { TaskGroup } from "./tasks.ts";
import { TransferService } from "./transfer.ts";
import type {
  HostOptions,
  MeshEventMap,
  MeshNodeOptions,
  MeshPeer,
  MeshServices,
  MeshStats,
  ParcelHandler,
  SendResult,
} from "./types.ts";

export type {
  HostedParcel,
  HostOptions,
  Libp2pFactory,
  MeshEventMap,
  MeshNodeOptions,
  MeshPeer,
  MeshServices,
  MeshStats,
  ParcelHandler,
  SendResult,
} from "./types.ts";
export { MAX_ITEMS } from "./types.ts";

/** What a node is made of, built by {@linkcode MeshNode.create}. */
interface NodeParts {
  readonly libp2p: Libp2p<MeshServices>;
  readonly store: MeshStore;
  readonly admission: Admission;
  readonly logger: Logger;
  readonly options: MeshNodeOptions;
}

/** A node of the Relaymail mesh. */
export class MeshNode extends EventTarget {
  readonly #libp2p: Libp2p<MeshServices>;
  readonly #store: MeshStore;
  readonly #admission: Admission;
  readonly #log: Logger;
  readonly #hosting: Hosting;
  readonly #peers: PeerService;
  readonly #sync: SyncService;
  readonly #transfer: TransferService;
  readonly #channels: ChannelService;
  readonly #interest: InterestTable;
  readonly #validator = new FastParcelValidator();
  readonly #validate: (bytes: Uint8Array) => Promise<ParcelFacts>;
  readonly #initialCopies: number;
  readonly #purgeIntervalMs: number;
  readonly #stats: MeshStats = emptyStats();
  /** Work of the node's own: parcels held here handed to an endpoint it starts hosting. */
  readonly #tasks = new TaskGroup();
  #purgeTimer: ReturnType<typeof setInterval> | undefined;
  #state: "created" | "started" | "stopped" = "created";
  #starting: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;

  private constructor(parts: NodeParts) {
    super();
    const { libp2p, store, admission, logger } = parts;
    const options = resolveOptions(parts.options);
    const node = libp2p.peerId.toString();
    const child = (component: string) => logger.child(component, { node });
    const emit: Emit = (type, detail) => this.dispatchEvent(new CustomEvent(type, { detail }));
    const verifier = new SignatureVerifier();
    const links = new Links({
      connections: (peer) => libp2p.getConnections(peer),
      stallTimeoutMs: options.stallTimeoutMs,
      logger: child("links"),
    });
    this.#libp2p = libp2p;
    this.#store = store;
    this.#admission = admission;
    this.#log = child("node");
    this.#initialCopies = options.initialCopies;
    this.#purgeIntervalMs = options.purgeIntervalMs;
    this.#validate = (bytes) =>
      this.#validator.validate(bytes, {
        now: options.now(),
        clockDriftToleranceMs: options.clockDriftToleranceMs,
      });
    const hostingLog = { logger: child("hosting"), emit };
    this.#hosting = new Hosting({
      store,
      verifier,
      peerId: node,
      now: options.now,
      misbehaved: (peer, reason) => reportMisbehaviour(hostingLog, peer, reason),
    });
    this.#peers = new PeerService({
      libp2p,
      store,
      emit,
      logger: child("peers"),
      heardAt: (connection) => links.heardAt(connection),
      options: { ...options, discovery: discoveryOf(parts.options) },
      // One reconciliation per new connection: the node with the smaller peer id
      // starts it; the other starts one only if none came (a lost race, an old peer).
      onConnect: (peer) => this.#sync.scheduleSync(peer, node < peer.id ? 0 : 2_000),
      onDisconnect: (peer) => this.#sync.forget(peer),
    });
    const peers = this.#peers.table;
    const interest = new InterestTable(() => store.posts.followed(), () => options.now().getTime());
    this.#interest = interest;
    const limiter = new RateLimiter({ ...DEFAULT_RATE_LIMIT, ...parts.options.rateLimit });
    this.#channels = new ChannelService({
      peers,
      store,
      stats: this.#stats,
      emit,
      logger: child("channels"),
      interest,
      quota: new PostQuota(store.posts, options.postQuota),
      limiter,
      now: options.now,
      syncAll: (except) => this.#sync.syncAll(except),
      tellAll: () => this.#sync.tellAll(),
      push: (peer) => this.#transfer.push(peer),
    });
    this.#sync = new SyncService({
      registrar: libp2p,
      peers,
      store,
      links,
      hosting: this.#hosting,
      verifier,
      interest,
      stats: this.#stats,
      emit,
      logger: child("sync"),
      options,
      push: (peer) => this.#transfer.push(peer),
    });
    this.#transfer = new TransferService({
      registrar: libp2p,
      peers,
      store,
      links,
      hosting: this.#hosting,
      verifier,
      quota: new StorageQuota(store, options.quotaBytes, options.maxParcels, options.shares),
      limiter,
      validate: this.#validate,
      stats: this.#stats,
      emit,
      logger: child("transfer"),
      options,
      syncAll: (except) => this.#sync.syncAll(except),
      retryLater: (peer) => this.#sync.retryLater(peer),
      posts: this.#channels,
    });
  }

  /** Creates a node (not yet started); its peer key persists in the store. */
  static async create(options: MeshNodeOptions): Promise<MeshNode> {
    const logger = options.logger ?? createLogger();
    const store = MeshStore.open(options.storePath, options.now ?? (() => new Date()));
    try {
      const privateKey = await privateKeyOf(options, store);
      const node = peerIdFromPrivateKey(privateKey).toString();
      const admission = new Admission(options.admission, {
        logger: logger.child("admission", { node }),
      });
      const build = options.createLibp2p ?? createLibp2p<MeshServices>;
      const libp2p = await build(libp2pConfig(privateKey, options.listen, admission));
      return new MeshNode({ libp2p, store, admission, logger, options });
    } catch (error) {
      store.close();
      throw error;
    }
  }

  /** The node's libp2p peer id. */
  get peerId(): string {
    return this.#libp2p.peerId.toString();
  }

  /** Multiaddrs others can dial this node at (with its peer id). */
  get addresses(): string[] {
    return this.#libp2p.getMultiaddrs().map(String);
  }

  /** The parcel store (read it; change it only through the node). */
  get store(): MeshStore {
    return this.#store;
  }

  /** Counters since start, and the posts held now. */
  get stats(): MeshStats {
    const held = this.#store.posts.counts();
    this.#stats.postsFollowed = held.followed;
    this.#stats.postsCarried = held.carried;
    this.#stats.interestTokens = this.#interest.size;
    return this.#stats;
  }

  /** The connected peers. */
  peers(): MeshPeer[] {
    return this.#peers.describe();
  }

  /** Starts listening, discovering and dialling. */
  async start(): Promise<void> {
    if (this.#state === "started") return;
    if (this.#state === "stopped") throw new Error("Cannot start a node that was stopped");
    this.#state = "started";
    this.#starting = (async () => {
      await this.#sync.start();
      await this.#transfer.start();
      await this.#libp2p.start();
      this.#peers.start();
      this.#purgeTimer = setInterval(() => this.#purge(), this.#purgeIntervalMs);
    })();
    await this.#starting;
  }

  /**
   * Stops, and resolves once nothing of the node runs any more: reconciliations
   * and transfers in flight are aborted (their parcels stay with their senders,
   * unacknowledged), what they were committing is written, parcels being handed
   * to a hosted endpoint are waited for, and the store is closed.
   */
  stop(): Promise<void> {
    // A second call waits for the first: it too resolves only once all is over.
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    // Stopping halfway through a start would leave what starts later running.
    await this.#starting?.catch(() => {}); // start() rejected already, to its caller
    const started = this.#state === "started";
    this.#state = "stopped";
    clearInterval(this.#purgeTimer);
    if (started) {
      await Promise.all([this.#sync.stop(), this.#transfer.stop()]);
      await this.#peers.stop();
      await this.#libp2p.stop();
    }
    await this.#tasks.close(new Error("The node is stopping"));
    this.#admission.stop();
    this.#store.close();
  }

  /**
   * Hosts an endpoint: parcels for it go to `handler` instead of being carried on,
   * starting with those this node already holds for it (say, an endpoint that
   * registered with this node's PoWeb server after its mail arrived).
   */
  host(endpointId: string, handler: ParcelHandler, options: HostOptions = {}): void {
    const { signer } = options;
    if (signer && signer.id !== endpointId) {
      throw new RangeError(`The signer is endpoint ${signer.id}, not ${endpointId}`);
    }
    const hosted = this.#hosting.add(endpointId, handler, signer);
    this.#tasks.run((signal) => this.#handHeld(endpointId, hosted, signal))?.catch((error) =>
      this.#log.warn("Could not hand held parcels to a hosted endpoint", {
        endpoint: endpointId,
        error,
      })
    );
    this.#sync.syncAll();
  }

  async #handHeld(endpointId: string, hosted: HostedEndpoint, signal: AbortSignal): Promise<void> {
    for (const parcel of this.#store.heldFor(endpointId)) {
      if (signal.aborted) return;
      const bytes = this.#store.bytes(parcel.key);
      if (!bytes || this.#hosting.get(endpointId) !== hosted) continue;
      const outcome = await hosted.handler(bytes, { binding: "mesh", hop: "local" }, parcel);
      if (!isSafelyStored(outcome)) continue;
      const proof = hosted.signer && encodeProof(makeDeliveryProof(hosted.signer, parcel.key));
      this.#store.markDelivered(parcel.key, parcel.expiresAt, parcel.origin === "local", proof);
      this.dispatchEvent(new CustomEvent("parcel:delivered", { detail: { key: parcel.key } }));
    }
  }

  /** Stops hosting an endpoint. */
  unhost(endpointId: string): void {
    this.#hosting.remove(endpointId);
  }

  /** Endpoints this node hosts. */
  get endpoints(): string[] {
    return this.#hosting.ids();
  }

  /** Dials a peer by multiaddr. */
  async dial(address: string): Promise<void> {
    await this.#peers.dial(address);
  }

  /**
   * Hands the node a parcel to carry: validated like any other, stored, and offered
   * to peers from now on. Throws {@linkcode ParcelRefusedError} if it is invalid.
   */
  async send(bytes: Uint8Array): Promise<SendResult> {
    const key = await sha256Hex(bytes);
    if (this.#store.knows(key)) return { key, status: "known" };
    const parcel = await this.#validate(bytes);
    const host = this.#hosting.get(parcel.recipientId);
    if (host) {
      const outcome = await host.handler(bytes, { binding: "mesh", hop: "local" }, {
        key,
        recipientId: parcel.recipientId,
        expiresAt: parcel.expiresAt,
      });
      if (outcome.status === "refused") throw new ParcelRefusedError(outcome.code, outcome.reason);
      const proof = host.signer && encodeProof(makeDeliveryProof(host.signer, key));
      this.#store.markDelivered(key, parcel.expiresAt, true, proof);
      return { key, status: "delivered" };
    }
    this.#store.put({
      key,
      recipientId: parcel.recipientId,
      senderId: parcel.senderId,
      size: bytes.byteLength,
      expiresAt: parcel.expiresAt,
      origin: "local",
      copies: this.#initialCopies,
      parcelId: parcel.id,
      bytes,
    });
    this.#transfer.pushToHosts(key, parcel.recipientId);
    this.#sync.syncAll();
    return { key, status: "stored" };
  }

  /**
   * Records that the parcel `bytes`, whose key is `key`, reached its recipient by
   * another way (a gateway, a USB stick): the copy held here is dropped, and peers
   * learn it at the next reconciliation and drop theirs. Throws
   * {@linkcode ParcelRefusedError} if no copy is held here and the bytes are not a
   * valid parcel.
   */
  async noteDelivered(key: string, bytes: Uint8Array): Promise<void> {
    if (this.#store.knows(key) === "delivered" && this.#store.proofOf(key)) return;
    const held = this.#store.get(key);
    // The tombstone lasts as long as the parcel would have: its expiry comes from
    // the copy held here, or from the parcel itself.
    const facts = held ?? await this.#validate(bytes);
    // For an endpoint hosted here, this node can sign the proof that makes peers
    // drop their copies; otherwise the tombstone stays its own knowledge.
    const signer = this.#hosting.get(facts.recipientId)?.signer;
    const proof = signer && encodeProof(makeDeliveryProof(signer, key));
    const news = this.#store.markDelivered(key, facts.expiresAt, held?.origin === "local", proof);
    if (held) this.dispatchEvent(new CustomEvent("parcel:delivered", { detail: { key } }));
    if (news) this.#sync.syncAll();
  }

  /**
   * Reconciles with every connected peer now and waits until the resulting
   * transfers are over. For tests, benchmarks and a "sync now" button.
   */
  async syncNow(): Promise<void> {
    const peers = [...this.#peers.table.values()];
    // An explicit request retries what peers turned down for now.
    for (const peer of peers) peer.backoff.clear();
    await Promise.all(peers.map(async (peer) => {
      // A reconciliation already running may predate what the caller just did.
      await peer.syncing;
      await this.#sync.sync(peer);
    }));
    await this.idle();
  }

  /**
   * Resolves once no reconciliation or transfer is running, with what they
   * changed written to the store.
   */
  async idle(): Promise<void> {
    for (;;) {
      const busy = [...this.#peers.table.values()]
        .flatMap((p) => [p.syncing, p.pushing])
        .filter((p) => p !== null);
      if (busy.length === 0) break;
      await Promise.allSettled(busy);
    }
    this.#store.flush();
  }

  /**
   * Follows a broadcast channel (persisted): this node asks its peers for the
   * channel's posts, keeps them, and reports each in a `post` event. Throws
   * RangeError on a malformed channel id.
   */
  follow(channelId: string): void {
    this.#channels.follow(channelId);
  }

  /** Stops following a channel, and forgets its posts. */
  unfollow(channelId: string): void {
    this.#channels.unfollow(channelId);
  }

  /** The channels this node follows. */
  following(): string[] {
    return this.#channels.following();
  }

  /**
   * Publishes a post (docs/broadcast.md §3): verified as every hop will, stored
   * (following its channel), and spread to the peers that want it. Throws
   * {@linkcode ParcelRefusedError} if it is invalid or its channel is full.
   */
  publish(post: Uint8Array): Promise<PostFacts> {
    return this.#channels.publish(post);
  }

  /** The posts held: of one channel, or (without `channelId`) of every channel followed. */
  posts(channelId?: string): PostFacts[] {
    return this.#channels.posts(channelId);
  }

  /** A held post's octets, by its key. */
  post(key: string): Uint8Array | undefined {
    return this.#channels.post(key);
  }

  /** Adds a typed listener. */
  on<K extends keyof MeshEventMap>(
    type: K,
    listener: (detail: MeshEventMap[K]) => void,
  ): () => void {
    const wrapped: EventListener = (event) =>
      listener((event as CustomEvent<MeshEventMap[K]>).detail);
    this.addEventListener(type, wrapped);
    return () => this.removeEventListener(type, wrapped);
  }

  #purge(): void {
    if (this.#store.purgeExpired() > 0) this.#sync.syncAll();
  }
}
