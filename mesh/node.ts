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
 * @module
 */
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from "@libp2p/crypto/keys";
import type { PeerId } from "@libp2p/interface";
import { type Ping, ping } from "@libp2p/ping";
import { tcp } from "@libp2p/tcp";
import { multiaddr } from "@multiformats/multiaddr";
import { createLibp2p, type Libp2p } from "libp2p";
import { isSafelyStored } from "../bindings/binding.ts";
import {
  MAX_CLOCK_DRIFT_TOLERANCE_MS,
  ParcelRefusedError,
  sha256Hex,
} from "../bindings/validation.ts";
import { encodeProof, type EndpointSigner, makeDeliveryProof } from "./proofs.ts";
import { DEFAULT_QUOTA_SHARES } from "./quota.ts";
import { Admission } from "./admission.ts";
import { MdnsDiscovery } from "./mdns.ts";
import { KeepAlive } from "./keepalive.ts";
import { type KnownPeer, Reconnector } from "./reconnect.ts";
import { DEFAULT_RATE_LIMIT, RateLimiter } from "./rate_limit.ts";
import { DEFAULT_INITIAL_COPIES } from "./routing.ts";
import { MeshStore } from "./store.ts";
import { SYNC_PROTOCOL, TRANSFER_PROTOCOL } from "./wire.ts";
import type {
  MeshEventMap,
  MeshPeer,
  MeshStats,
  ParcelHandler,
  PeerState,
  ResolvedOptions,
} from "./types.ts";
import { CLAIM_LIFETIME_MS, DIAL_TIMEOUT_MS, FIRST_RETRY_MS } from "./types.ts";
import { hostOf, MeshCore } from "./core.ts";
import { SyncService } from "./sync.ts";
import { TransferService } from "./transfer.ts";
import type { HostOptions, MeshNodeOptions, SendResult } from "./types.ts";

export type {
  HostedParcel,
  HostOptions,
  MeshEventMap,
  MeshNodeOptions,
  MeshPeer,
  MeshStats,
  ParcelHandler,
  SendResult,
} from "./types.ts";
export { MAX_ITEMS } from "./types.ts";

/** A node of the Relaymail mesh. */
export class MeshNode extends EventTarget {
  readonly #core: MeshCore;
  readonly #syncs: SyncService;
  readonly #transfers: TransferService;
  readonly #discovery: { intervalMs: number; interfaces?: readonly string[] } | null;
  #mdns: MdnsDiscovery | undefined;
  readonly #timers: ReturnType<typeof setInterval>[] = [];
  #started = false;

  private constructor(
    libp2p: Libp2p,
    store: MeshStore,
    options: ResolvedOptions,
    limiter: RateLimiter,
    discovery: { intervalMs: number; interfaces?: readonly string[] } | null,
  ) {
    super();
    this.#discovery = discovery;
    this.#core = new MeshCore(libp2p, store, options, limiter, this, () => this.peerId);
    this.#syncs = new SyncService(this.#core);
    this.#transfers = new TransferService(this.#core);
    // What one service asks of the other goes through the core.
    this.#core.syncAll = (except) => this.#syncs.syncAll(except);
    this.#core.scheduleSync = (peer, delayMs) => this.#syncs.scheduleSync(peer, delayMs);
    this.#core.retryLater = (peer) => this.#syncs.retryLater(peer);
    this.#core.push = (peer) => this.#transfers.push(peer);
    this.#core.pushToHosts = (key, recipientId) => this.#transfers.pushToHosts(key, recipientId);
  }

  /** Creates a node (not yet started); its peer key persists in the store. */
  static async create(options: MeshNodeOptions): Promise<MeshNode> {
    const now = options.now ?? (() => new Date());
    const store = MeshStore.open(options.storePath, now);
    try {
      let privateKey;
      if (options.privateKey) {
        privateKey = privateKeyFromProtobuf(options.privateKey);
        store.deleteMeta("libp2p.private-key");
      } else {
        const keyBytes = store.getMeta("libp2p.private-key");
        if (!keyBytes) {
          privateKey = await generateKeyPair("Ed25519");
          store.setMeta("libp2p.private-key", privateKeyToProtobuf(privateKey));
        } else {
          privateKey = privateKeyFromProtobuf(keyBytes);
        }
      }
      const useMdns = options.mdns ?? true;
      const admission = new Admission(options.admission);
      const libp2p = await createLibp2p({
        ...admission.libp2pOptions(),
        privateKey,
        start: false,
        addresses: { listen: [...(options.listen ?? ["/ip4/0.0.0.0/tcp/0"])] },
        transports: [tcp()],
        connectionEncrypters: [noise()],
        streamMuxers: [yamux()],
        // Our keep-alive (keepalive.ts) decides when a connection is dead; libp2p's own
        // monitor would abort a connection whose second concurrent ping it could not open.
        services: { ping: ping({ maxInboundStreams: 2, maxOutboundStreams: 2, timeout: 5_000 }) },
        connectionMonitor: { enabled: false },
      });
      const discovery = useMdns
        ? {
          intervalMs: options.mdnsIntervalMs ?? 10_000,
          interfaces: options.mdnsInterfaces,
        }
        : null;
      const resolved = {
        peers: options.peers ?? [],
        quotaBytes: options.quotaBytes ?? 512 * 1024 * 1024,
        maxParcels: options.maxParcels ?? 50_000,
        senderShare: options.senderShare ?? DEFAULT_QUOTA_SHARES.sender,
        shares: {
          ...DEFAULT_QUOTA_SHARES,
          sender: options.senderShare ?? DEFAULT_QUOTA_SHARES.sender,
          ...options.shares,
        },
        unverifiedTombstones: {
          perPeer: 2_000,
          perHost: 4_000,
          total: 20_000,
          ...options.unverifiedTombstones,
        },
        initialCopies: options.initialCopies ?? DEFAULT_INITIAL_COPIES,
        stallTimeoutMs: options.stallTimeoutMs ?? 20_000,
        syncIntervalMs: options.syncIntervalMs ?? 60_000,
        clockDriftToleranceMs: options.clockDriftToleranceMs ?? MAX_CLOCK_DRIFT_TOLERANCE_MS,
        now,
        reconciliation: options.reconciliation ?? "auto",
      };
      const limiter = new RateLimiter({ ...DEFAULT_RATE_LIMIT, ...options.rateLimit });
      return new MeshNode(libp2p, store, resolved, limiter, discovery);
    } catch (error) {
      store.close();
      throw error;
    }
  }

  /** The node's libp2p peer id. */
  get peerId(): string {
    return this.#core.libp2p.peerId.toString();
  }

  /** Multiaddrs others can dial this node at (with its peer id). */
  get addresses(): string[] {
    return this.#core.libp2p.getMultiaddrs().map(String);
  }

  /** The parcel store (read it; change it only through the node). */
  get store(): MeshStore {
    return this.#core.store;
  }

  /** Counters since start. */
  get stats(): MeshStats {
    return this.#core.stats;
  }

  /** The connected peers. */
  peers(): MeshPeer[] {
    return [...this.#core.peers.values()].map(describe);
  }

  /** Starts listening, discovering and dialling. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    const libp2p = this.#core.libp2p;
    await libp2p.handle(
      SYNC_PROTOCOL,
      (stream, connection) => this.#syncs.respondToSync(stream, connection),
      {
        maxInboundStreams: 4,
      },
    );
    await libp2p.handle(
      TRANSFER_PROTOCOL,
      (stream, connection) => this.#transfers.receiveParcels(stream, connection),
      {
        maxInboundStreams: 4,
      },
    );
    libp2p.addEventListener("peer:connect", (event) => this.#onConnect(event.detail));
    libp2p.addEventListener(
      "peer:disconnect",
      (event) => this.#onDisconnect(event.detail.toString()),
    );
    await libp2p.start();
    if (this.#discovery) {
      // Our own mDNS: one socket per interface (a relay bridges its segments), and
      // every sighting reported, so a peer that comes back is dialled again.
      const mdns = new MdnsDiscovery({
        ...this.#discovery,
        peerId: this.peerId,
        addresses: () => this.#core.libp2p.getMultiaddrs().map(String),
      });
      mdns.on("peer", (sighting) => this.#reconnector.seen(sighting.peerId, sighting.multiaddrs));
      mdns.on(
        "warning",
        ({ interfaceName, error }) => this.#core.log(`mDNS on ${interfaceName}: ${error.message}`),
      );
      mdns.start();
      this.#mdns = mdns;
    }
    for (const address of this.#core.options.peers) {
      const id = multiaddr(address).getComponents().find((c) => c.name === "p2p")?.value ?? null;
      this.#reconnector.addStatic(address, id);
    }
    // Neighbours from before a restart are dialled at once, not at the next mDNS round.
    for (const known of this.#knownPeers()) {
      if (known.id) this.#reconnector.seen(known.id, known.addresses, "learned");
    }
    this.#reconnector.start();
    this.#keepAlive.start();
    this.#timers.push(setInterval(() => this.#rememberPeers(), 30_000));
    this.#timers.push(setInterval(() => this.#purge(), 60_000));
    this.#timers.push(setInterval(() => this.#syncs.syncAll(), this.#core.options.syncIntervalMs));
  }

  /** Stops: open transfers end unacknowledged (their parcels stay with the sender). */
  async stop(): Promise<void> {
    for (const timer of this.#timers) clearInterval(timer);
    this.#timers.length = 0;
    this.#reconnector.stop();
    this.#keepAlive.stop();
    await this.#mdns?.stop();
    this.#mdns = undefined;
    if (this.#started) this.#rememberPeers();
    for (const peer of this.#core.peers.values()) clearTimeout(peer.syncTimer);
    if (this.#started) await this.#core.libp2p.stop();
    this.#started = false;
    await Promise.allSettled([...this.#core.peers.values()].flatMap((p) => [p.syncing, p.pushing]));
    this.#core.peers.clear();
    this.#core.store.close();
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
    const hosted = { handler, signer };
    this.#core.hosts.set(endpointId, hosted);
    this.#core.store.noteKnownRecipient(endpointId, new Date(Date.now() + CLAIM_LIFETIME_MS));
    this.#handHeld(endpointId, hosted).catch((error) =>
      this.#core.log(`could not hand held parcels to ${endpointId}: ${error?.message ?? error}`)
    );
    this.#syncs.syncAll();
  }

  async #handHeld(
    endpointId: string,
    hosted: { handler: ParcelHandler; signer?: EndpointSigner },
  ): Promise<void> {
    for (const parcel of this.#core.store.heldFor(endpointId)) {
      const bytes = this.#core.store.bytes(parcel.key);
      if (!bytes || this.#core.hosts.get(endpointId) !== hosted) continue;
      const outcome = await hosted.handler(bytes, { binding: "mesh", hop: "local" }, parcel);
      if (!isSafelyStored(outcome)) continue;
      const proof = hosted.signer && encodeProof(makeDeliveryProof(hosted.signer, parcel.key));
      this.#core.store.markDelivered(
        parcel.key,
        parcel.expiresAt,
        parcel.origin === "local",
        proof,
      );
      this.#core.emit("parcel:delivered", { key: parcel.key });
    }
  }

  /** Stops hosting an endpoint. */
  unhost(endpointId: string): void {
    this.#core.hosts.delete(endpointId);
  }

  /** Endpoints this node hosts. */
  get endpoints(): string[] {
    return [...this.#core.hosts.keys()];
  }

  /** Dials a peer by multiaddr. */
  async dial(address: string): Promise<void> {
    await this.#core.libp2p.dial(multiaddr(address), {
      signal: AbortSignal.timeout(this.#core.options.stallTimeoutMs),
    });
  }

  /**
   * Hands the node a parcel to carry: validated like any other, stored, and offered
   * to peers from now on. Throws {@linkcode ParcelRefusedError} if it is invalid.
   */
  async send(bytes: Uint8Array): Promise<SendResult> {
    const key = await sha256Hex(bytes);
    if (this.#core.store.knows(key)) return { key, status: "known" };
    const parcel = await this.#core.validate(bytes);
    const host = this.#core.hosts.get(parcel.recipientId);
    if (host) {
      const outcome = await host.handler(bytes, { binding: "mesh", hop: "local" }, {
        key,
        recipientId: parcel.recipientId,
        expiresAt: parcel.expiresAt,
      });
      if (outcome.status === "refused") throw new ParcelRefusedError(outcome.code, outcome.reason);
      const proof = host.signer && encodeProof(makeDeliveryProof(host.signer, key));
      this.#core.store.markDelivered(key, parcel.expiresAt, true, proof);
      return { key, status: "delivered" };
    }
    this.#core.store.put({
      key,
      recipientId: parcel.recipientId,
      senderId: parcel.senderId,
      size: bytes.byteLength,
      expiresAt: parcel.expiresAt,
      origin: "local",
      copies: this.#core.options.initialCopies,
      parcelId: parcel.id,
      bytes,
    });
    this.#transfers.pushToHosts(key, parcel.recipientId);
    this.#syncs.syncAll();
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
    if (this.#core.store.knows(key) === "delivered" && this.#core.store.proofOf(key)) return;
    const held = this.#core.store.get(key);
    // The tombstone lasts as long as the parcel would have: its expiry comes from
    // the copy held here, or from the parcel itself.
    const facts = held ?? await this.#core.validate(bytes);
    // For an endpoint hosted here, this node can sign the proof that makes peers
    // drop their copies; otherwise the tombstone stays its own knowledge.
    const signer = this.#core.hosts.get(facts.recipientId)?.signer;
    const proof = signer && encodeProof(makeDeliveryProof(signer, key));
    const news = this.#core.store.markDelivered(
      key,
      facts.expiresAt,
      held?.origin === "local",
      proof,
    );
    if (held) this.#core.emit("parcel:delivered", { key });
    if (news) this.#syncs.syncAll();
  }

  /**
   * Reconciles with every connected peer now and waits until the resulting
   * transfers are over. For tests, benchmarks and a "sync now" button.
   */
  async syncNow(): Promise<void> {
    // An explicit request retries what peers turned down for now.
    for (const peer of this.#core.peers.values()) peer.backoff.clear();
    await Promise.all([...this.#core.peers.values()].map(async (peer) => {
      // A reconciliation already running may predate what the caller just did.
      await peer.syncing?.catch(() => {});
      await this.#syncs.sync(peer);
    }));
    await this.idle();
  }

  /**
   * Resolves once no reconciliation or transfer is running, with what they
   * changed written to the store.
   */
  async idle(): Promise<void> {
    for (;;) {
      const busy = [...this.#core.peers.values()].flatMap((p) => [p.syncing, p.pushing]).filter((
        p,
      ) => p !== null);
      if (busy.length === 0) break;
      await Promise.allSettled(busy);
    }
    this.#core.store.flush();
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

  #onConnect(peerId: PeerId): void {
    const id = peerId.toString();
    if (this.#core.peers.has(id)) return;
    const connections = this.#core.libp2p.getConnections(peerId);
    const addresses = connections.map((c) => c.remoteAddr.toString());
    const peer: PeerState = {
      id,
      peerId,
      host: connections[0] ? hostOf(connections[0].remoteAddr.toString()) : "unknown",
      nonce: null,
      announcements: new Map(),
      hosts: new Map(),
      connectedAt: this.#core.options.now(),
      addresses,
      syncing: null,
      syncAgain: false,
      queue: new Map(),
      sending: new Set(),
      pushing: null,
      refused: new Set(),
      backoff: new Map(),
      retryMs: FIRST_RETRY_MS,
    };
    this.#core.peers.set(id, peer);
    this.#reconnector.connected(id, connections[0]?.remoteAddr.toString().split("/p2p/")[0]);
    this.#core.emit("peer:connect", describe(peer));
    // One reconciliation per new connection: the node with the smaller peer id
    // starts it; the other starts one only if none came (a lost race, an old peer).
    this.#syncs.scheduleSync(peer, this.peerId < id ? 0 : 2_000);
  }

  #onDisconnect(id: string): void {
    const peer = this.#core.peers.get(id);
    if (!peer) return;
    if (this.#core.libp2p.getConnections(peer.peerId).length > 0) return; // another connection remains
    clearTimeout(peer.syncTimer);
    this.#core.peers.delete(id);
    this.#keepAlive.forget(id);
    this.#reconnector.disconnected(id);
    this.#core.emit("peer:disconnect", { id });
  }

  /** Dials one of a peer's addresses; resolves with its peer id once connected. */
  async #dialPeer(peer: { id: string | null; addresses: readonly string[] }): Promise<string> {
    let failure: unknown = new Error("No address to dial");
    for (const address of peer.addresses) {
      try {
        let target = multiaddr(address);
        if (peer.id && !address.includes("/p2p/")) target = multiaddr(`${address}/p2p/${peer.id}`);
        const connection = await this.#core.libp2p.dial(target, {
          signal: AbortSignal.timeout(DIAL_TIMEOUT_MS),
        });
        return connection.remotePeer.toString();
      } catch (error) {
        failure = error;
      }
    }
    throw failure;
  }

  readonly #reconnector = new Reconnector((peer) => this.#dialPeer(peer));
  readonly #keepAlive = new KeepAlive(
    () => [...this.#core.peers.keys()],
    (id, signal) => {
      const peer = this.#core.peers.get(id);
      if (!peer) return Promise.resolve();
      return (this.#core.libp2p.services as { ping: Ping }).ping.ping(peer.peerId, { signal });
    },
    (id) => {
      const peer = this.#core.peers.get(id);
      if (!peer) return;
      this.#core.log(`peer ${id} stopped answering: closing its connections`);
      for (const connection of this.#core.libp2p.getConnections(peer.peerId)) {
        connection.abort(new Error("The peer stopped answering pings"));
      }
    },
  );

  /** Peers remembered from before a restart. */
  #knownPeers(): KnownPeer[] {
    try {
      const bytes = this.#core.store.getMeta("known-peers");
      return bytes ? JSON.parse(new TextDecoder().decode(bytes)) : [];
    } catch {
      return [];
    }
  }

  #rememberPeers(): void {
    try {
      const snapshot = JSON.stringify(this.#reconnector.snapshot());
      this.#core.store.setMeta("known-peers", new TextEncoder().encode(snapshot));
    } catch (error) {
      this.#core.log(`could not remember peers: ${(error as Error)?.message ?? error}`);
    }
  }

  #purge(): void {
    if (this.#core.store.purgeExpired() > 0) this.#syncs.syncAll();
  }
}

function describe(peer: PeerState): MeshPeer {
  return {
    id: peer.id,
    addresses: peer.addresses,
    endpoints: [...peer.hosts].filter(([, proven]) => proven).map(([id]) => id),
    connectedAt: peer.connectedAt,
  };
}
