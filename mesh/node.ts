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
import type { Connection, PeerId, Stream } from "@libp2p/interface";
import { type Ping, ping } from "@libp2p/ping";
import { tcp } from "@libp2p/tcp";
import { multiaddr } from "@multiformats/multiaddr";
import { createLibp2p, type Libp2p } from "libp2p";
import {
  isSafelyStored,
  type ParcelOrigin,
  type ReceiveOutcome,
  type RefusalCode,
} from "../bindings/binding.ts";
import { StorageFullError } from "../bindings/durable.ts";
import { FastParcelValidator, type ParcelFacts } from "../bindings/fast_validation.ts";
import {
  MAX_CLOCK_DRIFT_TOLERANCE_MS,
  ParcelRefusedError,
  RAMF_MAX_TTL_SECONDS,
  sha256Hex,
  toHex,
} from "../bindings/validation.ts";
import {
  announcementTag,
  decodeProof,
  type DeliveryProof,
  encodeProof,
  type EndpointSigner,
  type HostingClaim,
  makeDeliveryProof,
  makeHostingClaim,
  openClaim,
  sealClaim,
  SignatureVerifier,
} from "./proofs.ts";
import { DEFAULT_QUOTA_SHARES, type QuotaShares, StorageQuota } from "./quota.ts";
import { Admission, type AdmissionLimits } from "./admission.ts";
import { Channel } from "./channel.ts";
import { MdnsDiscovery } from "./mdns.ts";
import { KeepAlive } from "./keepalive.ts";
import { type KnownPeer, Reconnector } from "./reconnect.ts";
import { DEFAULT_RATE_LIMIT, type RateLimit, RateLimiter } from "./rate_limit.ts";
import { Decoder, Encoder } from "./riblt.ts";
import { DEFAULT_INITIAL_COPIES, route } from "./routing.ts";
import {
  decodeItem,
  encodeItem,
  type Item,
  ITEM_LENGTH,
  ItemKind,
  MeshStore,
  type ParcelRecord,
  type StoredParcel,
} from "./store.ts";
import {
  AckStatus,
  decodeSync,
  decodeTransfer,
  encodeParcelFrame,
  encodeSync,
  encodeTransfer,
  MAX_FRAME_LENGTH,
  MAX_IN_FLIGHT,
  MAX_PROOFS_PER_MESSAGE,
  MAX_SYNC_FRAME_LENGTH,
  NONCE_LENGTH,
  PROTOCOL_VERSION,
  ProtocolError,
  SYNC_PROTOCOL,
  type SyncMessage,
  TRANSFER_PROTOCOL,
  type TransferMessage,
} from "./wire.ts";

/** Options of {@linkcode MeshNode.create}. */
export interface MeshNodeOptions {
  /** SQLite file for the node's parcels and key (`:memory:` for a throwaway node). */
  readonly storePath: string;
  /**
   * The node's libp2p private key (protobuf-encoded, as `privateKeyToProtobuf`
   * writes it), for a caller that keeps it safe itself (sealed under a
   * passphrase, say); the store then keeps no copy. Default: a key generated once
   * and kept in the store, unencrypted.
   */
  readonly privateKey?: Uint8Array;
  /** Multiaddrs to listen on (default `/ip4/0.0.0.0/tcp/0`: every interface, any port). */
  readonly listen?: readonly string[];
  /** Multiaddrs of peers to dial and keep dialling, for networks without multicast. */
  readonly peers?: readonly string[];
  /** Find peers on the local network by mDNS (default true). Off outside networks you may multicast on. */
  readonly mdns?: boolean;
  /** mDNS query interval in ms (default 10 000). */
  readonly mdnsIntervalMs?: number;
  /** Network interfaces to speak mDNS on, by name (default: every one that is up). */
  readonly mdnsInterfaces?: readonly string[];
  /** Most octets of other people's parcels this node stores (default 512 MiB). */
  readonly quotaBytes?: number;
  /** Most parcels of other people this node stores (default 50 000). */
  readonly maxParcels?: number;
  /** Share of the quota one sender may fill (default 0.1); see also `shares`. */
  readonly senderShare?: number;
  /** Shares of the quota per sender, recipient, peer, host and unknown recipients. */
  readonly shares?: Partial<QuotaShares>;
  /**
   * Peers' delivery proofs for parcels never held here, which this node cannot
   * check yet: at most this many from one peer, one remote host and in all
   * (default 2 000, 4 000 and 20 000).
   */
  readonly unverifiedTombstones?: { perPeer?: number; perHost?: number; total?: number };
  /** Copies a parcel handed in locally starts with (default 8). */
  readonly initialCopies?: number;
  /** Per-peer rate limit (default {@linkcode DEFAULT_RATE_LIMIT}); a remote host gets twice it. */
  readonly rateLimit?: Partial<RateLimit>;
  /** Limits on inbound connections and handshakes (default `DEFAULT_ADMISSION_LIMITS`, admission.ts). */
  readonly admission?: Partial<AdmissionLimits>;
  /** A peer silent this long mid-exchange is dropped (default 20 000 ms). */
  readonly stallTimeoutMs?: number;
  /** Re-reconcile with every peer this often even if nothing changed (default 60 000 ms). */
  readonly syncIntervalMs?: number;
  /** How far ahead a parcel's date may be (default 2 h, RS-001's maximum). */
  readonly clockDriftToleranceMs?: number;
  /** The clock (default: the machine's). */
  readonly now?: () => Date;
  /**
   * How to compare stores: `auto` (rateless IBLT, or full lists when that is
   * smaller) or always `full-list` (for comparison in benchmarks).
   */
  readonly reconciliation?: "auto" | "full-list";
}

/** What the node already knows of a parcel it hands to a hosted endpoint (it was validated). */
export interface HostedParcel {
  /** Hex SHA-256 of its bytes. */
  readonly key: string;
  readonly recipientId: string;
  readonly expiresAt: Date;
}

/**
 * Takes a parcel addressed to an endpoint this node hosts; resolves once it is
 * stored. `parcel` saves the handler parsing what the node already checked.
 */
export type ParcelHandler = (
  bytes: Uint8Array,
  origin: ParcelOrigin,
  parcel: HostedParcel,
) => Promise<ReceiveOutcome>;

/** Options of {@linkcode MeshNode.host}. */
export interface HostOptions {
  /**
   * The endpoint's identity, to sign delivery proofs and the hosting claim
   * (mesh/proofs.ts). Without it, peers never learn that this node hosts the
   * endpoint and treat it as a relay: parcels reach the endpoint when they pass
   * here, and their senders' copies are dropped only at expiry or by their
   * end-to-end receipts.
   */
  readonly signer?: EndpointSigner;
}

/** A connected peer. */
export interface MeshPeer {
  readonly id: string;
  readonly addresses: readonly string[];
  /**
   * Endpoints the peer proved it hosts (a verified hosting claim), among those
   * this node asked about: the ids of the parcels it holds.
   */
  readonly endpoints: readonly string[];
  readonly connectedAt: Date;
}

/** Counters since the node started. */
export interface MeshStats {
  /** Octets of reconciliation messages sent and received. */
  syncBytesSent: number;
  syncBytesReceived: number;
  syncs: number;
  parcelsSent: number;
  parcelsReceived: number;
  parcelBytesSent: number;
  parcelBytesReceived: number;
  /** Octets of transfer-stream frames (parcels and their headers, acknowledgements). */
  transferBytesSent: number;
  transferBytesReceived: number;
  refusals: number;
}

/** Details of the events a node dispatches. */
export interface MeshEventMap {
  "peer:connect": MeshPeer;
  "peer:disconnect": { id: string };
  /** A parcel arrived from a peer: stored to carry on, or delivered to a hosted endpoint. */
  "parcel:received": { key: string; from: string; recipientId: string; delivered: boolean };
  /** A peer acknowledged a parcel this node pushed. */
  "parcel:handed": { key: string; peer: string; toRecipient: boolean };
  /** This node learnt a parcel reached its recipient (and dropped its copy). */
  "parcel:delivered": { key: string };
  /** A parcel was refused, by this node (`from` set) or by a peer (`peer` set). */
  "parcel:refused": {
    key?: string;
    from?: string;
    peer?: string;
    code: RefusalCode;
    reason: string;
    /** Whether it may be accepted later (a full quota, a rate limit). */
    transient?: boolean;
    /** Size of the refused parcel, when it was received. */
    size?: number;
    /** Refused by the hosted endpoint's own handler (which keeps its own record). */
    byEndpoint?: boolean;
  };
  /** A peer said something false: a delivery proof or hosting claim that does not verify. */
  "peer:misbehaved": { peer: string; reason: string };
  /** A reconciliation finished. */
  "sync": {
    peer: string;
    bytesSent: number;
    bytesReceived: number;
    theirOnly: number;
    ourOnly: number;
  };
}

/** Result of {@linkcode MeshNode.send}. */
export interface SendResult {
  readonly key: string;
  /** `stored` to carry, `delivered` to a hosted endpoint, `known` if already held or delivered. */
  readonly status: "stored" | "delivered" | "known";
}

interface PushJob {
  readonly give: number;
  readonly direct: boolean;
}

interface PeerState {
  readonly id: string;
  readonly peerId: PeerId;
  /** Remote host (IP address) of its first connection, the key of per-host limits. */
  readonly host: string;
  /** The nonce of its last HELLO and the announcements sealed under it, by hex tag. */
  nonce: Uint8Array | null;
  announcements: Map<string, Uint8Array>;
  /** Recipients checked against its announcements: whether a valid claim was there. */
  readonly hosts: Map<string, boolean>;
  readonly connectedAt: Date;
  addresses: string[];
  syncing: Promise<void> | null;
  syncAgain: boolean;
  syncTimer?: ReturnType<typeof setTimeout>;
  readonly queue: Map<string, PushJob>;
  pushing: Promise<void> | null;
  /** Keys this peer refused for good, or said it holds (so it is not offered them again). */
  readonly refused: Set<string>;
  /** Keys this peer refused for now, and until when. */
  readonly backoff: Map<string, number>;
  /** Delay before retrying a failed reconciliation or transfer; doubles up to 30 s. */
  retryMs: number;
}

/** The options the node goes on reading once created, with their defaults. */
type ResolvedOptions =
  & Required<
    Omit<
      MeshNodeOptions,
      | "rateLimit"
      | "peers"
      | "listen"
      | "storePath"
      | "mdns"
      | "mdnsIntervalMs"
      | "mdnsInterfaces"
      | "shares"
      | "unverifiedTombstones"
      | "admission"
      | "privateKey"
    >
  >
  & {
    peers: readonly string[];
    shares: QuotaShares;
    unverifiedTombstones: { perPeer: number; perHost: number; total: number };
  };

const TRANSIENT_BACKOFF_MS = 30_000;
/** A dial not connected by then has failed (the reconnection service tries again). */
const DIAL_TIMEOUT_MS = 5_000;
const GROUP_COMMIT_WAIT_MS = 2;
const FIRST_RETRY_MS = 1000;
const MAX_RETRY_MS = 30_000;
const MAX_SYMBOLS = 250_000;
/** Reconciliation items a node offers at most: they always fit one sync frame. */
export const MAX_ITEMS = 100_000;
/** Items a DIFF reports in each direction at most (the rest come in the next round). */
const MAX_DIFF_ITEMS = Math.floor((MAX_SYNC_FRAME_LENGTH - 16) / 2 / ITEM_LENGTH);
/** Sync streams a node answers at once: from one peer, one remote host, and in all. */
const SYNC_RESPONDERS = { perPeer: 1, perHost: 2, total: 8 };
/** Inbound transfer streams at once: from one peer, one remote host, and in all. */
const TRANSFER_RECEIVERS = { perPeer: 2, perHost: 4, total: 32 };
/** A hosting claim lasts this long, and is signed again when a day of it is left. */
const CLAIM_LIFETIME_MS = 7 * 86_400_000;
/** The latest a legitimate parcel can expire: 180 days (RS-000) past a clock 2 h ahead. */
const MAX_EXPIRY_AHEAD_MS = RAMF_MAX_TTL_SECONDS * 1000 + MAX_CLOCK_DRIFT_TOLERANCE_MS;
const FIRST_SYMBOL_BATCH = 16;

/** A node of the Relaymail mesh. */
export class MeshNode extends EventTarget {
  readonly #libp2p: Libp2p;
  readonly #store: MeshStore;
  readonly #options: ResolvedOptions;
  readonly #limiter: RateLimiter;
  readonly #discovery: { intervalMs: number; interfaces?: readonly string[] } | null;
  #mdns: MdnsDiscovery | undefined;
  readonly #quota: StorageQuota;
  readonly #verifier = new SignatureVerifier();
  readonly #hosts = new Map<
    string,
    { handler: ParcelHandler; signer?: EndpointSigner; claim?: HostingClaim }
  >();
  /** Streams being answered or received now, by peer and by host (see the limits above). */
  readonly #streams = {
    sync: new Map<string, number>(),
    transfer: new Map<string, number>(),
  };
  /** Parcels being handed to a hosted endpoint right now (after that, the store knows). */
  readonly #handing = new Map<string, Promise<ReceiveOutcome>>();
  readonly #peers = new Map<string, PeerState>();
  readonly #timers: ReturnType<typeof setInterval>[] = [];
  #started = false;
  /** Counters since start. */
  readonly stats: MeshStats = {
    syncBytesSent: 0,
    syncBytesReceived: 0,
    syncs: 0,
    parcelsSent: 0,
    parcelsReceived: 0,
    parcelBytesSent: 0,
    parcelBytesReceived: 0,
    transferBytesSent: 0,
    transferBytesReceived: 0,
    refusals: 0,
  };

  private constructor(
    libp2p: Libp2p,
    store: MeshStore,
    options: ResolvedOptions,
    limiter: RateLimiter,
    discovery: { intervalMs: number; interfaces?: readonly string[] } | null,
  ) {
    super();
    this.#discovery = discovery;
    this.#libp2p = libp2p;
    this.#store = store;
    this.#options = options;
    this.#limiter = limiter;
    this.#quota = new StorageQuota(store, options.quotaBytes, options.maxParcels, options.shares);
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
        services: { ping: ping({ maxInboundStreams: 2, timeout: 5_000 }) },
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

  /** Starts listening, discovering and dialling. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    const libp2p = this.#libp2p;
    await libp2p.handle(
      SYNC_PROTOCOL,
      (stream, connection) => this.#respondToSync(stream, connection),
      {
        maxInboundStreams: 4,
      },
    );
    await libp2p.handle(
      TRANSFER_PROTOCOL,
      (stream, connection) => this.#receiveParcels(stream, connection),
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
        addresses: () => this.#libp2p.getMultiaddrs().map(String),
      });
      mdns.on("peer", (sighting) => this.#reconnector.seen(sighting.peerId, sighting.multiaddrs));
      mdns.on(
        "warning",
        ({ interfaceName, error }) => this.#log(`mDNS on ${interfaceName}: ${error.message}`),
      );
      mdns.start();
      this.#mdns = mdns;
    }
    for (const address of this.#options.peers) {
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
    this.#timers.push(setInterval(() => this.#syncAll(), this.#options.syncIntervalMs));
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
    for (const peer of this.#peers.values()) clearTimeout(peer.syncTimer);
    if (this.#started) await this.#libp2p.stop();
    this.#started = false;
    await Promise.allSettled([...this.#peers.values()].flatMap((p) => [p.syncing, p.pushing]));
    this.#peers.clear();
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
    const hosted = { handler, signer };
    this.#hosts.set(endpointId, hosted);
    this.#store.noteKnownRecipient(endpointId, new Date(Date.now() + CLAIM_LIFETIME_MS));
    this.#handHeld(endpointId, hosted).catch((error) =>
      this.#log(`could not hand held parcels to ${endpointId}: ${error?.message ?? error}`)
    );
    this.#syncAll();
  }

  async #handHeld(
    endpointId: string,
    hosted: { handler: ParcelHandler; signer?: EndpointSigner },
  ): Promise<void> {
    for (const parcel of this.#store.heldFor(endpointId)) {
      const bytes = this.#store.bytes(parcel.key);
      if (!bytes || this.#hosts.get(endpointId) !== hosted) continue;
      const outcome = await hosted.handler(bytes, { binding: "mesh", hop: "local" }, parcel);
      if (!isSafelyStored(outcome)) continue;
      const proof = hosted.signer && encodeProof(makeDeliveryProof(hosted.signer, parcel.key));
      this.#store.markDelivered(parcel.key, parcel.expiresAt, parcel.origin === "local", proof);
      this.#emit("parcel:delivered", { key: parcel.key });
    }
  }

  /** The announcements of the endpoints this node can prove it hosts, sealed under `nonce`. */
  #announcements(nonce: Uint8Array): { tag: Uint8Array; sealed: Uint8Array }[] {
    const now = Date.now();
    const out = [];
    for (const [id, hosted] of this.#hosts) {
      if (!hosted.signer) continue;
      if (!hosted.claim || hosted.claim.expiresAt.getTime() - now < 86_400_000) {
        hosted.claim = makeHostingClaim(
          hosted.signer,
          this.peerId,
          new Date(now + CLAIM_LIFETIME_MS),
        );
      }
      out.push({ tag: announcementTag(id, nonce), sealed: sealClaim(hosted.claim, id, nonce) });
    }
    return out;
  }

  /**
   * Whether `peer` proved it hosts `recipientId`: its last HELLO carries a claim
   * under that id's tag, signed by the endpoint for this very peer id, unexpired.
   */
  #peerHosts(peer: PeerState, recipientId: string): boolean {
    const known = peer.hosts.get(recipientId);
    if (known !== undefined) return known;
    let proven = false;
    if (peer.nonce && peer.announcements.size > 0) {
      const sealed = peer.announcements.get(toHex(announcementTag(recipientId, peer.nonce)));
      const claim = sealed && openClaim(sealed, recipientId, peer.nonce);
      if (sealed) {
        proven = !!claim &&
          this.#verifier.verifyClaim(claim, peer.id, this.#options.now()) === recipientId;
        if (proven) this.#store.noteKnownRecipient(recipientId, claim!.expiresAt);
        else this.#misbehaved(peer.id, `hosting claim for ${recipientId.slice(0, 13)} is false`);
      }
    }
    peer.hosts.set(recipientId, proven);
    return proven;
  }

  #misbehaved(peer: string, reason: string): void {
    this.#log(`peer ${peer} misbehaved: ${reason}`);
    this.#emit("peer:misbehaved", { peer, reason });
  }

  /** Stops hosting an endpoint. */
  unhost(endpointId: string): void {
    this.#hosts.delete(endpointId);
  }

  /** Endpoints this node hosts. */
  get endpoints(): string[] {
    return [...this.#hosts.keys()];
  }

  /** The connected peers. */
  peers(): MeshPeer[] {
    return [...this.#peers.values()].map(describe);
  }

  /** Dials a peer by multiaddr. */
  async dial(address: string): Promise<void> {
    await this.#libp2p.dial(multiaddr(address), {
      signal: AbortSignal.timeout(this.#options.stallTimeoutMs),
    });
  }

  /**
   * Hands the node a parcel to carry: validated like any other, stored, and offered
   * to peers from now on. Throws {@linkcode ParcelRefusedError} if it is invalid.
   */
  async send(bytes: Uint8Array): Promise<SendResult> {
    const key = await sha256Hex(bytes);
    if (this.#store.knows(key)) return { key, status: "known" };
    const parcel = await this.#validate(bytes);
    const host = this.#hosts.get(parcel.recipientId);
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
      copies: this.#options.initialCopies,
      bytes,
    });
    this.#pushToHosts(key, parcel.recipientId);
    this.#syncAll();
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
    const signer = this.#hosts.get(facts.recipientId)?.signer;
    const proof = signer && encodeProof(makeDeliveryProof(signer, key));
    const news = this.#store.markDelivered(key, facts.expiresAt, held?.origin === "local", proof);
    if (held) this.#emit("parcel:delivered", { key });
    if (news) this.#syncAll();
  }

  /**
   * Reconciles with every connected peer now and waits until the resulting
   * transfers are over. For tests, benchmarks and a "sync now" button.
   */
  async syncNow(): Promise<void> {
    // An explicit request retries what peers turned down for now.
    for (const peer of this.#peers.values()) peer.backoff.clear();
    await Promise.all([...this.#peers.values()].map(async (peer) => {
      // A reconciliation already running may predate what the caller just did.
      await peer.syncing?.catch(() => {});
      await this.#sync(peer);
    }));
    await this.idle();
  }

  /**
   * Resolves once no reconciliation or transfer is running, with what they
   * changed written to the store.
   */
  async idle(): Promise<void> {
    for (;;) {
      const busy = [...this.#peers.values()].flatMap((p) => [p.syncing, p.pushing]).filter((p) =>
        p !== null
      );
      if (busy.length === 0) break;
      await Promise.allSettled(busy);
    }
    this.#store.flush();
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

  #emit<K extends keyof MeshEventMap>(type: K, detail: MeshEventMap[K]): void {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  // Peers

  #onConnect(peerId: PeerId): void {
    const id = peerId.toString();
    if (this.#peers.has(id)) return;
    const connections = this.#libp2p.getConnections(peerId);
    const addresses = connections.map((c) => c.remoteAddr.toString());
    const peer: PeerState = {
      id,
      peerId,
      host: connections[0] ? hostOf(connections[0].remoteAddr.toString()) : "unknown",
      nonce: null,
      announcements: new Map(),
      hosts: new Map(),
      connectedAt: this.#options.now(),
      addresses,
      syncing: null,
      syncAgain: false,
      queue: new Map(),
      pushing: null,
      refused: new Set(),
      backoff: new Map(),
      retryMs: FIRST_RETRY_MS,
    };
    this.#peers.set(id, peer);
    this.#reconnector.connected(id, connections[0]?.remoteAddr.toString().split("/p2p/")[0]);
    this.#emit("peer:connect", describe(peer));
    // One reconciliation per new connection: the node with the smaller peer id
    // starts it; the other starts one only if none came (a lost race, an old peer).
    this.#scheduleSync(peer, this.peerId < id ? 0 : 2_000);
  }

  #onDisconnect(id: string): void {
    const peer = this.#peers.get(id);
    if (!peer) return;
    if (this.#libp2p.getConnections(peer.peerId).length > 0) return; // another connection remains
    clearTimeout(peer.syncTimer);
    this.#peers.delete(id);
    this.#keepAlive.forget(id);
    this.#reconnector.disconnected(id);
    this.#emit("peer:disconnect", { id });
  }

  /** Dials one of a peer's addresses; resolves with its peer id once connected. */
  async #dialPeer(peer: { id: string | null; addresses: readonly string[] }): Promise<string> {
    let failure: unknown = new Error("No address to dial");
    for (const address of peer.addresses) {
      try {
        let target = multiaddr(address);
        if (peer.id && !address.includes("/p2p/")) target = multiaddr(`${address}/p2p/${peer.id}`);
        const connection = await this.#libp2p.dial(target, {
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
    () => [...this.#peers.keys()],
    (id, signal) => {
      const peer = this.#peers.get(id);
      if (!peer) return Promise.resolve();
      return (this.#libp2p.services as { ping: Ping }).ping.ping(peer.peerId, { signal });
    },
    (id) => {
      const peer = this.#peers.get(id);
      if (!peer) return;
      this.#log(`peer ${id} stopped answering: closing its connections`);
      for (const connection of this.#libp2p.getConnections(peer.peerId)) {
        connection.abort(new Error("The peer stopped answering pings"));
      }
    },
  );

  /** Peers remembered from before a restart. */
  #knownPeers(): KnownPeer[] {
    try {
      const bytes = this.#store.getMeta("known-peers");
      return bytes ? JSON.parse(new TextDecoder().decode(bytes)) : [];
    } catch {
      return [];
    }
  }

  #rememberPeers(): void {
    try {
      const snapshot = JSON.stringify(this.#reconnector.snapshot());
      this.#store.setMeta("known-peers", new TextEncoder().encode(snapshot));
    } catch (error) {
      this.#log(`could not remember peers: ${(error as Error)?.message ?? error}`);
    }
  }

  #purge(): void {
    if (this.#store.purgeExpired() > 0) this.#syncAll();
  }

  // Reconciliation

  /**
   * Schedules a reconciliation with every peer, but `except` the one the change
   * came from: it already knows what it just gave or was given.
   */
  #syncAll(except?: string): void {
    for (const peer of this.#peers.values()) if (peer.id !== except) this.#scheduleSync(peer, 200);
  }

  #scheduleSync(peer: PeerState, delayMs: number): void {
    if (peer.syncTimer !== undefined) return;
    peer.syncTimer = setTimeout(() => {
      peer.syncTimer = undefined;
      this.#sync(peer).catch(() => {});
    }, delayMs);
  }

  /** Runs one reconciliation as initiator (or queues another if one is running). */
  #sync(peer: PeerState): Promise<void> {
    if (peer.syncing) {
      peer.syncAgain = true;
      return peer.syncing;
    }
    peer.syncing = this.#initiateSync(peer)
      .then(() => {
        peer.retryMs = FIRST_RETRY_MS;
      })
      .catch((error) => {
        this.#log(`sync with ${peer.id} failed: ${error?.message ?? error}`);
        this.#retryLater(peer);
      })
      .finally(() => {
        peer.syncing = null;
        if (peer.syncAgain && this.#peers.has(peer.id)) {
          peer.syncAgain = false;
          this.#scheduleSync(peer, 50);
        }
      });
    return peer.syncing;
  }

  /** Tries again after a failure, backing off while the peer keeps failing. */
  #retryLater(peer: PeerState): void {
    if (!this.#peers.has(peer.id)) return;
    this.#scheduleSync(peer, peer.retryMs);
    peer.retryMs = Math.min(peer.retryMs * 2, MAX_RETRY_MS);
  }

  /**
   * Opens a stream to a peer on its current connection, with a framed channel
   * whose stall detection watches the whole connection.
   */
  async #open(peer: PeerState, protocol: string, maxFrame: number): Promise<Channel> {
    const connection = this.#libp2p.getConnections(peer.peerId)[0];
    if (!connection) throw new ProtocolError("Not connected");
    const stream = await connection.newStream(protocol, {
      signal: AbortSignal.timeout(this.#options.stallTimeoutMs * 3),
    });
    return this.#channel(stream, connection, maxFrame, 2);
  }

  /**
   * A framed channel over a stream. Octets moving on any stream of the connection
   * count as progress (a small exchange may wait behind a large parcel); a
   * connection with no progress at all for the stall timeout is dead: it is closed,
   * and the peer is dialled again or rediscovered.
   */
  #channel(stream: Stream, connection: Connection, maxFrame: number, frames: number): Channel {
    let activity = this.#activity.get(connection);
    if (!activity) {
      activity = { last: Date.now() };
      this.#activity.set(connection, activity);
    }
    return new Channel(
      stream,
      maxFrame,
      this.#options.stallTimeoutMs,
      frames,
      activity,
      (error) => {
        this.#log(`closing the connection to ${connection.remotePeer}: ${error.message}`);
        connection.abort(error);
      },
    );
  }

  readonly #activity = new WeakMap<Connection, { last: number }>();

  async #initiateSync(peer: PeerState): Promise<void> {
    const channel = await this.#open(peer, SYNC_PROTOCOL, MAX_SYNC_FRAME_LENGTH);
    const stream = channel.stream;
    try {
      const items = this.#store.items(MAX_ITEMS);
      const encoded = items.map(encodeItem);
      const salt = crypto.getRandomValues(new Uint32Array(1))[0];
      const nonce = crypto.getRandomValues(new Uint8Array(NONCE_LENGTH));
      await channel.write(encodeSync({
        type: "hello",
        version: PROTOCOL_VERSION,
        salt,
        itemCount: items.length,
        nonce,
        announcements: this.#announcements(nonce),
      }));
      const hello = expectSync(await channel.expect(), "hello");
      if (hello.version !== PROTOCOL_VERSION) {
        throw new ProtocolError(`Peer speaks version ${hello.version}`);
      }
      this.#learnAnnouncements(peer, hello);

      let diff: Extract<SyncMessage, { type: "diff" }>;
      const fullList = this.#options.reconciliation === "full-list" ||
        preferFullList(items.length, hello.itemCount);
      if (fullList && items.length * ITEM_LENGTH + 1 <= MAX_SYNC_FRAME_LENGTH) {
        await channel.write(encodeSync({ type: "items", items: concat(encoded) }));
        diff = expectSync(await channel.expect(), "diff");
      } else {
        const encoder = new Encoder(encoded, ITEM_LENGTH, salt);
        let batch = FIRST_SYMBOL_BATCH;
        for (;;) {
          const start = encoder.nextIndex;
          const symbols = encoder.produceEncoded(batch);
          await channel.write(encodeSync({ type: "symbols", start, symbols }));
          const reply = decodeSync(await channel.expect());
          if (reply.type === "diff") {
            diff = reply;
            break;
          }
          if (reply.type === "error") throw new ProtocolError(`Peer says: ${reply.message}`);
          if (reply.type !== "more") {
            throw new ProtocolError(`Expected MORE or DIFF, got ${reply.type}`);
          }
          batch = Math.min(batch * 2, 8192);
        }
      }
      const ourOnly = splitItems(diff.initiatorOnly);
      const theirOnly = splitItems(diff.responderOnly);
      // Proofs of the tombstones each side lacks: ours first, then theirs.
      await channel.write(encodeSync({ type: "proofs", proofs: this.#proofsFor(ourOnly) }));
      const proofs = expectSync(await channel.expect(), "proofs");
      await stream.close().catch(() => {});
      this.#apply(peer, theirOnly, ourOnly, proofs.proofs, this.#account(peer, channel));
      if (diff.truncated) this.#scheduleSync(peer, 50);
    } catch (error) {
      await this.#sendError(channel, error);
      stream.abort(error instanceof Error ? error : new Error(String(error)));
      throw error;
    } finally {
      channel.dispose();
    }
  }

  async #respondToSync(stream: Stream, connection: Connection): Promise<void> {
    const id = connection.remotePeer.toString();
    const peer = this.#peers.get(id);
    if (peer?.syncTimer !== undefined && !peer.syncAgain) {
      // The peer is reconciling with us: the one we had scheduled would be redundant.
      clearTimeout(peer.syncTimer);
      peer.syncTimer = undefined;
    }
    const channel = this.#channel(stream, connection, MAX_SYNC_FRAME_LENGTH, 2);
    const host = hostOf(connection.remoteAddr.toString());
    const slot = this.#takeStream("sync", id, host, SYNC_RESPONDERS);
    try {
      if (!slot) throw new ProtocolError("Busy: too many reconciliations at once; try again later");
      const hello = expectSync(await channel.expect(), "hello");
      if (hello.version !== PROTOCOL_VERSION) {
        throw new ProtocolError(
          `Peer speaks version ${hello.version}; this node speaks version ${PROTOCOL_VERSION}`,
        );
      }
      if (peer) this.#learnAnnouncements(peer, hello);
      const items = this.#store.items(MAX_ITEMS);
      const encoded = items.map(encodeItem);
      const nonce = crypto.getRandomValues(new Uint8Array(NONCE_LENGTH));
      await channel.write(encodeSync({
        type: "hello",
        version: PROTOCOL_VERSION,
        salt: hello.salt,
        itemCount: items.length,
        nonce,
        announcements: this.#announcements(nonce),
      }));
      let theirs: Uint8Array[];
      let ours: Uint8Array[];
      const first = decodeSync(await channel.expect());
      if (first.type === "items") {
        [theirs, ours] = setDifference(splitItems(first.items), encoded);
      } else {
        // Both sides hold at most MAX_ITEMS, so a difference needs at most about
        // 1.5 × 2 × MAX_ITEMS coded symbols: a peer sending more is flooding.
        const limit = Math.min(
          MAX_SYMBOLS,
          Math.ceil(3 * (items.length + Math.min(hello.itemCount, MAX_ITEMS))) + 256,
        );
        // The decoder holds 49 octets a symbol, at most `limit` of them; it throws
        // RangeError (answered with ERROR) past the limit or on inconsistent symbols.
        const decoder = new Decoder(encoded, ITEM_LENGTH, hello.salt, { maxSymbols: limit });
        let message: SyncMessage = first;
        for (;;) {
          if (message.type !== "symbols") {
            throw new ProtocolError(`Expected SYMBOLS, got ${message.type}`);
          }
          if (message.start !== decoder.received) {
            throw new ProtocolError("Coded symbols out of order");
          }
          if (decoder.addEncoded(message.symbols)) break;
          await channel.write(encodeSync({ type: "more" }));
          message = decodeSync(await channel.expect());
        }
        const difference = decoder.difference();
        theirs = difference.remoteOnly;
        ours = difference.localOnly;
      }
      // The initiator needs only our tombstones (to drop its copies): the parcels
      // we hold and it lacks are ours to push. Not listing them keeps a peer from
      // learning everything this node holds with one empty ITEMS.
      const ourTombstones = ours.filter((item) => item[0] === ItemKind.DELIVERED);
      const truncated = theirs.length > MAX_DIFF_ITEMS || ourTombstones.length > MAX_DIFF_ITEMS;
      theirs = theirs.slice(0, MAX_DIFF_ITEMS);
      await channel.write(
        encodeSync({
          type: "diff",
          initiatorOnly: concat(theirs),
          responderOnly: concat(ourTombstones.slice(0, MAX_DIFF_ITEMS)),
          truncated,
        }),
      );
      const proofs = expectSync(await channel.expect(), "proofs");
      await channel.write(encodeSync({ type: "proofs", proofs: this.#proofsFor(ours) }));
      await stream.close().catch(() => {});
      if (peer) this.#apply(peer, theirs, ours, proofs.proofs, this.#account(peer, channel));
      if (peer && truncated) this.#scheduleSync(peer, 50);
    } catch (error) {
      this.#log(`sync from ${id} failed: ${(error as Error)?.message ?? error}`);
      await this.#sendError(channel, error);
      stream.abort(error instanceof Error ? error : new Error(String(error)));
    } finally {
      slot?.release();
      channel.dispose();
    }
  }

  /** Tells the peer why a stream ends, when the fault is in what it sent or in our limits. */
  async #sendError(channel: Channel, error: unknown): Promise<void> {
    if (!(error instanceof ProtocolError || error instanceof RangeError)) return;
    if (error.message.startsWith("Peer says:")) return;
    await channel.write(encodeSync({ type: "error", message: error.message })).catch(() => {});
  }

  /**
   * Counts a stream of `kind` from `peer` at `host` against `limits`; null when one
   * of them is reached (the stream is then refused with ERROR).
   */
  #takeStream(
    kind: "sync" | "transfer",
    peer: string,
    host: string,
    limits: { perPeer: number; perHost: number; total: number },
  ): { release(): void } | null {
    const counts = this.#streams[kind];
    const keys = [`peer:${peer}`, `host:${host}`, "total"];
    const caps = [limits.perPeer, limits.perHost, limits.total];
    if (keys.some((key, i) => (counts.get(key) ?? 0) >= caps[i])) return null;
    for (const key of keys) counts.set(key, (counts.get(key) ?? 0) + 1);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        for (const key of keys) {
          const n = (counts.get(key) ?? 1) - 1;
          if (n <= 0) counts.delete(key);
          else counts.set(key, n);
        }
      },
    };
  }

  /** Keeps a peer's announcements, to check its claims when a parcel needs them. */
  #learnAnnouncements(peer: PeerState, hello: Extract<SyncMessage, { type: "hello" }>): void {
    peer.nonce = hello.nonce;
    peer.announcements = new Map(hello.announcements.map((a) => [toHex(a.tag), a.sealed]));
    peer.hosts.clear();
  }

  /** The proofs of the tombstones among `items`, as many as fit one sync frame. */
  #proofsFor(items: readonly Uint8Array[]): { expiresAt: Date; proof: Uint8Array }[] {
    const keys = [];
    for (const raw of items) {
      const item = safeDecodeItem(raw);
      if (item?.kind === ItemKind.DELIVERED) keys.push(item.key);
    }
    const out = [];
    let size = 3;
    for (const { expiresAt, proof } of this.#store.proofs(keys)) {
      size += 6 + proof.length;
      if (out.length >= MAX_PROOFS_PER_MESSAGE || size > MAX_SYNC_FRAME_LENGTH) break;
      out.push({ expiresAt, proof });
    }
    return out;
  }

  #account(
    peer: PeerState,
    channel: Channel,
  ): { peer: string; bytesSent: number; bytesReceived: number } {
    this.stats.syncs++;
    this.stats.syncBytesSent += channel.bytesWritten;
    this.stats.syncBytesReceived += channel.bytesRead;
    return { peer: peer.id, bytesSent: channel.bytesWritten, bytesReceived: channel.bytesRead };
  }

  /**
   * Acts on a reconciliation: checks the peer's delivery proofs (only for
   * tombstones it listed and this node lacks), then queues the parcels the peer
   * should get.
   */
  #apply(
    peer: PeerState,
    theirOnly: Uint8Array[],
    ourOnly: Uint8Array[],
    proofs: readonly { expiresAt: Date; proof: Uint8Array }[],
    traffic: { peer: string; bytesSent: number; bytesReceived: number },
  ): void {
    const listed = new Set<string>();
    for (const raw of theirOnly) {
      const item = safeDecodeItem(raw);
      if (item?.kind === ItemKind.DELIVERED) listed.add(item.key);
    }
    const changed = this.#learnProofs(peer, proofs, listed);
    const now = Date.now();
    for (const raw of ourOnly) {
      const item = safeDecodeItem(raw);
      if (item?.kind !== ItemKind.PARCEL) continue;
      const parcel = this.#store.get(item.key);
      if (!parcel || peer.refused.has(item.key) || (peer.backoff.get(item.key) ?? 0) > now) {
        continue;
      }
      const decision = route(parcel.copies, this.#peerHosts(peer, parcel.recipientId));
      if (decision.send) peer.queue.set(item.key, { give: decision.give, direct: decision.direct });
    }
    this.#emit("sync", { ...traffic, theirOnly: theirOnly.length, ourOnly: ourOnly.length });
    this.#push(peer);
    if (changed) this.#syncAll(peer.id);
  }

  /**
   * Takes a peer's delivery proofs: one for a parcel held here is checked against
   * its recipient (valid: the copy goes, a proven tombstone stays; false: the peer
   * lied); one for a parcel never held here is kept, within per-peer, per-host and
   * total bounds, to be checked if the parcel comes. Returns whether anything changed.
   */
  #learnProofs(
    peer: PeerState,
    proofs: readonly { expiresAt: Date; proof: Uint8Array }[],
    listed: ReadonlySet<string>,
  ): boolean {
    let changed = false;
    const unverified = [];
    const now = this.#options.now().getTime();
    for (const { expiresAt, proof: bytes } of proofs) {
      let proof: DeliveryProof;
      try {
        proof = decodeProof(bytes);
      } catch {
        this.#misbehaved(peer.id, "sent a malformed delivery proof");
        continue;
      }
      if (!listed.has(proof.key) || this.#store.knows(proof.key) === "delivered") continue;
      const held = this.#store.get(proof.key);
      if (held) {
        if (this.#verifier.verifyProof(proof, held.recipientId)) {
          this.#deliveredWithProof(proof.key, held, bytes);
          changed = true;
        } else {
          this.#misbehaved(peer.id, `false delivery proof for ${proof.key.slice(0, 12)}`);
        }
        continue;
      }
      const expiry = expiresAt.getTime();
      if (expiry <= now || expiry > now + MAX_EXPIRY_AHEAD_MS) continue;
      unverified.push({ key: proof.key, expiresAt, proof: bytes });
    }
    if (unverified.length > 0) {
      const kept = this.#store.addUnverified(
        unverified,
        { peer: peer.id, host: peer.host },
        this.#options.unverifiedTombstones,
      );
      if (kept > 0) changed = true;
    }
    return changed;
  }

  /** A held parcel reached its recipient, as a checked proof says: its copy goes. */
  #deliveredWithProof(key: string, held: StoredParcel, proof: Uint8Array): void {
    this.#store.markDeliveredLater(key, held.expiresAt, held.origin === "local", proof);
    this.#store.noteKnownRecipient(held.recipientId, held.expiresAt);
    this.#emit("parcel:delivered", { key });
  }

  // Transfers, sending side

  /**
   * Sends a parcel at once to every connected peer that hosts its recipient, without
   * waiting for the next reconciliation: that is the path of least latency.
   */
  #pushToHosts(key: string, recipientId: string): void {
    for (const peer of this.#peers.values()) {
      if (!this.#peerHosts(peer, recipientId) || peer.refused.has(key)) continue;
      peer.queue.set(key, { give: 0, direct: true });
      this.#push(peer);
    }
  }

  #push(peer: PeerState): void {
    if (peer.pushing || peer.queue.size === 0 || !this.#peers.has(peer.id)) return;
    peer.pushing = this.#pushQueue(peer)
      .then(() => {
        peer.retryMs = FIRST_RETRY_MS;
      })
      .catch((error) => {
        this.#log(`transfer to ${peer.id} failed: ${error?.message ?? error}`);
        // The parcels in flight were not acknowledged: a new reconciliation offers them again.
        peer.queue.clear();
        this.#retryLater(peer);
      })
      .finally(() => {
        peer.pushing = null;
        if (peer.queue.size > 0 && this.#peers.has(peer.id)) this.#push(peer);
      });
  }

  async #pushQueue(peer: PeerState): Promise<void> {
    const channel = await this.#open(peer, TRANSFER_PROTOCOL, 4096);
    const stream = channel.stream;
    const inFlight = new Map<string, { job: PushJob }>();
    let slot = Promise.withResolvers<void>();
    let failed: unknown = null;
    const reader = (async () => {
      try {
        while (true) {
          const frame = await channel.read();
          if (frame === null) {
            if (inFlight.size > 0) {
              throw new ProtocolError("Peer closed the stream with parcels unacknowledged");
            }
            return;
          }
          const message = decodeTransfer(frame);
          if (message.type === "progress") continue; // the receiver is alive and reading
          if (message.type === "error") throw new ProtocolError(`Peer says: ${message.message}`);
          if (message.type !== "ack" && message.type !== "refuse") {
            throw new ProtocolError(`Unexpected ${message.type} on a transfer stream`);
          }
          const sent = inFlight.get(message.key);
          if (!sent) throw new ProtocolError("Acknowledgement of a parcel not in flight");
          inFlight.delete(message.key);
          this.#settle(peer, message, sent.job);
          slot.resolve();
        }
      } catch (error) {
        failed = error;
        slot.resolve();
      }
    })();
    try {
      while (peer.queue.size > 0 && failed === null) {
        const [key, job] = peer.queue.entries().next().value!;
        peer.queue.delete(key);
        const bytes = this.#store.bytes(key);
        if (!bytes) continue; // delivered or expired meanwhile
        while (inFlight.size >= MAX_IN_FLIGHT && failed === null) {
          await slot.promise;
          slot = Promise.withResolvers();
        }
        if (failed !== null) {
          peer.queue.set(key, job);
          break;
        }
        inFlight.set(key, { job });
        const copies = job.direct ? 0 : job.give;
        await channel.write(encodeParcelFrame(key, copies, bytes));
        this.stats.parcelsSent++;
        this.stats.parcelBytesSent += bytes.byteLength;
      }
      while (inFlight.size > 0 && failed === null) {
        await slot.promise;
        slot = Promise.withResolvers();
      }
      await stream.close().catch(() => {});
      await reader;
    } catch (error) {
      failed ??= error;
    }
    channel.dispose();
    this.stats.transferBytesSent += channel.bytesWritten;
    this.stats.transferBytesReceived += channel.bytesRead;
    if (failed !== null) {
      stream.abort(failed instanceof Error ? failed : new Error(String(failed)));
      // Unacknowledged parcels stay here and are offered again after the next sync.
      throw failed;
    }
  }

  #settle(peer: PeerState, message: TransferMessage, job: PushJob): void {
    if (message.type === "refuse") {
      this.stats.refusals++;
      if (message.transient) peer.backoff.set(message.key, Date.now() + TRANSIENT_BACKOFF_MS);
      else peer.refused.add(message.key);
      this.#emit("parcel:refused", {
        key: message.key,
        peer: peer.id,
        code: message.code,
        reason: message.reason,
      });
      return;
    }
    if (message.type !== "ack") return;
    const parcel = this.#store.get(message.key);
    switch (message.status) {
      case AckStatus.DELIVERED:
      case AckStatus.ALREADY_DELIVERED: {
        // Only the recipient can say "delivered": believed with its proof, never without.
        peer.refused.add(message.key);
        if (!parcel) break; // delivered meanwhile: nothing left to drop
        const proof = message.proof && safeDecodeProof(message.proof);
        if (
          !proof || proof.key !== message.key ||
          !this.#verifier.verifyProof(proof, parcel.recipientId)
        ) {
          this.#misbehaved(
            peer.id,
            `acknowledged ${message.key.slice(0, 12)} as delivered without a valid proof`,
          );
          break;
        }
        if (parcel.origin === "local") {
          this.#store.later(() => this.#store.recordHandover(message.key, peer.id, true));
        }
        this.#deliveredWithProof(message.key, parcel, message.proof!);
        this.#emit("parcel:handed", { key: message.key, peer: peer.id, toRecipient: true });
        this.#syncAll(peer.id);
        break;
      }
      case AckStatus.STORED:
        if (parcel && !job.direct) {
          // Lost in a crash, it would only let a few more copies out.
          const copies = Math.max(1, parcel.copies - job.give);
          this.#store.later(() => this.#store.setCopies(message.key, copies));
        }
        // falls through
      case AckStatus.ALREADY_HELD:
        peer.refused.add(message.key); // it has it: no need to offer it again
        // Lost in a crash, the sender's app would only show "queued" until delivery.
        if (parcel?.origin === "local") {
          this.#store.later(() => this.#store.recordHandover(message.key, peer.id, false));
        }
        this.#emit("parcel:handed", { key: message.key, peer: peer.id, toRecipient: false });
        break;
    }
  }

  // Transfers, receiving side

  async #receiveParcels(stream: Stream, connection: Connection): Promise<void> {
    const from = connection.remotePeer.toString();
    const host = hostOf(connection.remoteAddr.toString());
    // Room for one frame beyond the one being read, and no more: the window is
    // enforced by not reading (and pausing the stream) while five await replies.
    const channel = this.#channel(stream, connection, MAX_FRAME_LENGTH, 2);
    const slot = this.#takeStream("transfer", from, host, TRANSFER_RECEIVERS);
    // While a parcel arrives, tell the sender now and then: its data may sit in
    // buffers for longer than the stall timeout before our acknowledgement comes.
    let reported = 0;
    const progress = setInterval(() => {
      if (channel.octetsSeen === reported) return;
      reported = channel.octetsSeen;
      channel.write(encodeTransfer({ type: "progress", received: reported % 2 ** 32 })).catch(
        () => {},
      );
    }, Math.max(250, Math.min(2000, Math.floor(this.#options.stallTimeoutMs / 4))));
    // Frames are read as they come and taken in batches (at most the sender's
    // window), so that the parcels of a batch are committed together.
    const queue: Extract<TransferMessage, { type: "parcel" }>[] = [];
    /** Parcels read and not yet answered: never more than the window. */
    let unanswered = 0;
    let room = Promise.withResolvers<void>();
    let ended = false;
    let failure: unknown = null;
    let arrived = Promise.withResolvers<void>();
    const reader = (async () => {
      try {
        for (;;) {
          while (unanswered >= MAX_IN_FLIGHT) {
            stream.pause();
            await room.promise;
            room = Promise.withResolvers();
          }
          stream.resume();
          const frame = await channel.read();
          if (frame === null) break;
          const message = decodeTransfer(frame);
          if (message.type !== "parcel") {
            throw new ProtocolError(`Unexpected ${message.type} on a transfer stream`);
          }
          this.stats.parcelsReceived++;
          this.stats.parcelBytesReceived += message.bytes.byteLength;
          unanswered++;
          queue.push(message);
          arrived.resolve();
        }
      } catch (error) {
        failure = error;
      } finally {
        ended = true;
        arrived.resolve();
      }
    })();
    try {
      if (!slot) throw new ProtocolError("Busy: too many transfers at once; try again later");
      for (;;) {
        if (queue.length === 0) {
          if (ended) break;
          await arrived.promise;
          arrived = Promise.withResolvers();
          continue;
        }
        if (queue.length < MAX_IN_FLIGHT && !ended) {
          // Group commit: a moment's wait lets the rest of the sender's window
          // arrive, so that one disk sync covers several parcels.
          await Promise.race([
            arrived.promise,
            new Promise((r) => setTimeout(r, GROUP_COMMIT_WAIT_MS)),
          ]);
          arrived = Promise.withResolvers();
        }
        const batch = queue.splice(0, MAX_IN_FLIGHT);
        const replies = await this.#takeBatch(batch, from, host);
        await channel.writeMany(replies.map(encodeTransfer));
        unanswered -= batch.length;
        room.resolve();
      }
      await reader;
      if (failure !== null) throw failure;
      await stream.close().catch(() => {});
    } catch (error) {
      await channel.write(
        encodeTransfer({ type: "error", message: String((error as Error)?.message ?? error) }),
      )
        .catch(() => {});
      stream.abort(error instanceof Error ? error : new Error(String(error)));
    } finally {
      slot?.release();
      clearInterval(progress);
      room.resolve();
      channel.dispose();
      this.stats.transferBytesSent += channel.bytesWritten;
      this.stats.transferBytesReceived += channel.bytesRead;
    }
  }

  /**
   * Takes a batch of incoming parcels: checked side by side (their digests and
   * signatures run off the event loop together), then placed in order: handed to
   * a hosted endpoint, or stored to carry, all of those in one transaction.
   */
  async #takeBatch(
    batch: Extract<TransferMessage, { type: "parcel" }>[],
    from: string,
    host: string,
  ): Promise<TransferMessage[]> {
    const seen = new Set<string>();
    const checked = await Promise.all(batch.map((message) => {
      if (seen.has(message.key)) {
        return { type: "ack", key: message.key, status: AckStatus.ALREADY_HELD } as TransferMessage;
      }
      seen.add(message.key);
      return this.#check(message, from, host);
    }));
    const replies: (TransferMessage | null)[] = [];
    const records: { index: number; record: ParcelRecord; release(): void }[] = [];
    try {
      for (const [i, message] of batch.entries()) {
        const check = checked[i];
        if (!("facts" in check)) {
          replies.push(check);
          continue;
        }
        const placed = await this.#place(message, check.facts, from, host);
        if ("record" in placed) {
          records.push({ index: replies.length, ...placed });
          replies.push(null);
        } else {
          replies.push(placed);
        }
      }
      if (records.length > 0) {
        try {
          this.#store.putMany(records.map((r) => r.record));
        } catch (error) {
          if (!(error instanceof StorageFullError)) throw error;
          // A full disk is a passing refusal: nothing of the batch was kept.
          for (const { index, record } of records) {
            replies[index] = this.#refusal(record.key, from, "quota", error.message, true);
          }
          return replies as TransferMessage[];
        }
        for (const { index, record } of records) {
          replies[index] = { type: "ack", key: record.key, status: AckStatus.STORED };
          this.#pushToHosts(record.key, record.recipientId);
          this.#emit("parcel:received", {
            key: record.key,
            from,
            recipientId: record.recipientId,
            delivered: false,
          });
        }
        this.#syncAll(from);
      }
    } finally {
      // Stored, they are counted by the store now; refused, their room is free again.
      for (const record of records) record.release();
    }
    return replies as TransferMessage[];
  }

  #refusal(
    key: string,
    from: string,
    code: RefusalCode,
    reason: string,
    transient: boolean,
    size?: number,
    byEndpoint = false,
  ): TransferMessage {
    this.stats.refusals++;
    this.#emit("parcel:refused", { key, from, code, reason, transient, size, byEndpoint });
    return { type: "refuse", key, code, transient, reason };
  }

  /** The answer for a parcel known delivered: with its proof, or "held" when this node has none. */
  #deliveredAck(key: string): TransferMessage {
    const proof = this.#store.proofOf(key);
    return proof
      ? { type: "ack", key, status: AckStatus.ALREADY_DELIVERED, proof }
      : { type: "ack", key, status: AckStatus.ALREADY_HELD };
  }

  /** Checks an incoming parcel: already known, over the rate limit, forged or invalid. */
  async #check(
    message: Extract<TransferMessage, { type: "parcel" }>,
    from: string,
    host: string,
  ): Promise<TransferMessage | { facts: ParcelFacts }> {
    const { key, bytes } = message;
    const refuse = (code: RefusalCode, reason: string, transient: boolean) =>
      this.#refusal(key, from, code, reason, transient, bytes.byteLength);
    // A known key is answered at once. A peer lying about a key only misleads itself.
    const known = this.#store.knows(key);
    if (known === "delivered") return this.#deliveredAck(key);
    if (known === "held") return { type: "ack", key, status: AckStatus.ALREADY_HELD };
    if (!this.#limiter.take([from, `host:${host}`], bytes.byteLength)) {
      return refuse("rate-limited", "Too many parcels from this peer or host: slow down", true);
    }
    const [actualKey, validation] = await Promise.all([
      sha256Hex(bytes),
      this.#validate(bytes).then(
        (facts) => ({ facts, error: null }),
        (error) => ({ facts: null, error }),
      ),
    ]);
    if (actualKey !== key) return refuse("malformed", "Parcel does not match its key", false);
    if (validation.error) {
      if (!(validation.error instanceof ParcelRefusedError)) throw validation.error;
      return refuse(
        validation.error.code,
        validation.error.message,
        validation.error.code === "future-dated",
      );
    }
    const facts = validation.facts!;
    // A peer's proof that could not be checked before can be now.
    const unverified = this.#store.unverifiedProof(key);
    if (unverified) {
      const proof = safeDecodeProof(unverified);
      if (proof && this.#verifier.verifyProof(proof, facts.recipientId)) {
        this.#store.markDelivered(key, facts.expiresAt, false, unverified);
        this.#store.noteKnownRecipient(facts.recipientId, facts.expiresAt);
        return { type: "ack", key, status: AckStatus.ALREADY_DELIVERED, proof: unverified };
      }
      this.#store.dropUnverified(key);
    }
    return { facts };
  }

  /**
   * Places a checked parcel: hands it to the endpoint this node hosts, or reserves
   * room for it and returns the record to store (the caller commits a batch, then
   * releases the reservation).
   */
  async #place(
    message: Extract<TransferMessage, { type: "parcel" }>,
    parcel: ParcelFacts,
    from: string,
    host: string,
  ): Promise<TransferMessage | { record: ParcelRecord; release(): void }> {
    const { key, bytes } = message;
    const refuse = (code: RefusalCode, reason: string, transient: boolean) =>
      this.#refusal(key, from, code, reason, transient);
    const hosted = this.#hosts.get(parcel.recipientId);
    if (hosted) {
      // The same parcel by two paths at once (a direct push and a reconciliation):
      // the second waits for the first instead of handing the endpoint a copy.
      const first = this.#handing.get(key);
      if (first) {
        const earlier = await first.catch(() => null);
        if (earlier && isSafelyStored(earlier)) return this.#deliveredAck(key);
      }
      let outcome: ReceiveOutcome;
      const handing = hosted.handler(bytes, { binding: "mesh", hop: from }, {
        key,
        recipientId: parcel.recipientId,
        expiresAt: parcel.expiresAt,
      });
      this.#handing.set(key, handing);
      try {
        outcome = await handing;
      } catch (error) {
        return refuse(
          "quota",
          `The recipient's node could not store it now: ${(error as Error)?.message}`,
          true,
        );
      } finally {
        this.#handing.delete(key);
      }
      if (outcome.status === "refused") {
        return this.#refusal(
          key,
          from,
          outcome.code,
          outcome.reason,
          false,
          bytes.byteLength,
          true,
        );
      }
      if (isSafelyStored(outcome)) {
        // The recipient's node holds it now: the tombstone may follow in a batch
        // (the store answers for it meanwhile). Without the endpoint's key there
        // is no proof, and this node answers as a relay would.
        const proof = hosted.signer && encodeProof(makeDeliveryProof(hosted.signer, key));
        this.#store.markDeliveredLater(key, parcel.expiresAt, false, proof);
        this.#emit("parcel:received", {
          key,
          from,
          recipientId: parcel.recipientId,
          delivered: true,
        });
        this.#syncAll(from);
        return proof
          ? { type: "ack", key, status: AckStatus.DELIVERED, proof }
          : { type: "ack", key, status: AckStatus.STORED };
      }
    }
    const knownRecipient = this.#store.isKnownRecipient(parcel.recipientId);
    const reservation = this.#quota.reserve({
      size: bytes.byteLength,
      senderId: parcel.senderId,
      recipientId: parcel.recipientId,
      fromPeer: from,
      fromHost: host,
      knownRecipient,
    });
    if ("refused" in reservation) return refuse("quota", reservation.refused, true);
    return {
      release: reservation.release,
      record: {
        key,
        recipientId: parcel.recipientId,
        senderId: parcel.senderId,
        size: bytes.byteLength,
        expiresAt: parcel.expiresAt,
        origin: "relay",
        copies: Math.max(1, message.copies),
        fromPeer: from,
        fromHost: host,
        knownRecipient,
        bytes,
      },
    };
  }

  #validate(bytes: Uint8Array): Promise<ParcelFacts> {
    return this.#validator.validate(bytes, {
      now: this.#options.now(),
      clockDriftToleranceMs: this.#options.clockDriftToleranceMs,
    });
  }

  readonly #validator = new FastParcelValidator();

  #log(message: string): void {
    if (Deno.env.get("RELAYMAIL_MESH_DEBUG")) {
      console.error(`mesh ${this.peerId.slice(-8)}: ${message}`);
    }
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

function expectSync<T extends SyncMessage["type"]>(
  frame: Uint8Array,
  type: T,
): Extract<SyncMessage, { type: T }> {
  const message = decodeSync(frame);
  if (message.type === "error") throw new ProtocolError(`Peer says: ${message.message}`);
  if (message.type !== type) {
    throw new ProtocolError(`Expected ${type.toUpperCase()}, got ${message.type}`);
  }
  return message as Extract<SyncMessage, { type: T }>;
}

/**
 * Whether sending every item beats coded symbols: the size difference is a lower
 * bound on the set difference, and each differing item costs about 1.5 coded
 * symbols of 49 octets against 37 octets per listed item.
 */
function preferFullList(ours: number, theirs: number): boolean {
  return ours <= 16 || Math.abs(ours - theirs) * 1.5 * (ITEM_LENGTH + 12) > ours * ITEM_LENGTH;
}

function concat(items: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(items.length * ITEM_LENGTH);
  items.forEach((item, i) => out.set(item, i * ITEM_LENGTH));
  return out;
}

function splitItems(bytes: Uint8Array): Uint8Array[] {
  if (bytes.length % ITEM_LENGTH !== 0) {
    throw new ProtocolError("Item list is not a whole number of items");
  }
  const items = [];
  for (let offset = 0; offset < bytes.length; offset += ITEM_LENGTH) {
    items.push(bytes.slice(offset, offset + ITEM_LENGTH));
  }
  return items;
}

function setDifference(theirs: Uint8Array[], ours: Uint8Array[]): [Uint8Array[], Uint8Array[]] {
  const key = (item: Uint8Array) => String.fromCharCode(...item);
  const theirKeys = new Set(theirs.map(key));
  const ourKeys = new Set(ours.map(key));
  return [theirs.filter((i) => !ourKeys.has(key(i))), ours.filter((i) => !theirKeys.has(key(i)))];
}

function safeDecodeProof(bytes: Uint8Array): DeliveryProof | null {
  try {
    return decodeProof(bytes);
  } catch {
    return null;
  }
}

/** The host of a remote address: the key of per-host limits (see admission.ts). */
function hostOf(address: string): string {
  try {
    return Admission.hostOf(address);
  } catch {
    return address;
  }
}

function safeDecodeItem(raw: Uint8Array): Item | null {
  try {
    return decodeItem(raw);
  } catch {
    return null;
  }
}
