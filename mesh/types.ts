/**
 * The mesh node's options, events and public types, and the limits its services
 * share (docs/mesh-protocol.md §1 has the table).
 *
 * @module
 */
// `@internal` marks types of npm packages that our public API names: they are documented
// upstream, and `deno doc --lint` should not ask us to export them (denoland/deno#27364).
import type { PeerId } from "@libp2p/interface";
import type {
  /** @internal */
  Ping,
} from "@libp2p/ping";
import type {
  /** @internal */
  Libp2p,
  /** @internal */
  Libp2pOptions,
} from "libp2p";
import { type ParcelOrigin, type ReceiveOutcome, type RefusalCode } from "../bindings/binding.ts";
import { MAX_CLOCK_DRIFT_TOLERANCE_MS, RAMF_MAX_TTL_SECONDS } from "../bindings/validation.ts";
import { type EndpointSigner } from "./proofs.ts";
import { type QuotaShares } from "./quota.ts";
import type { PostQuotaOptions, ResolvedPostQuota } from "./post_quota.ts";
import type { PostFacts } from "./posts.ts";
import { type AdmissionLimits } from "./admission.ts";
import type { Logger } from "./log.ts";
import type { RateLimit } from "./rate_limit.ts";
import { ITEM_LENGTH } from "./store.ts";
import { MAX_SYNC_FRAME_LENGTH } from "./wire.ts";

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
  /**
   * Bounds on broadcast posts: those of channels this node does not follow
   * (default 64 MiB and 10 000 posts, shared per channel, peer and host) and
   * those of each followed channel (default 256 MiB and 10 000 posts).
   */
  readonly postQuota?: PostQuotaOptions;
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
  /** Purge expired parcels, posts and tombstones this often (default 60 000 ms). */
  readonly purgeIntervalMs?: number;
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
  /**
   * Builds the node's libp2p host from the configuration the node asks for
   * (default: libp2p's `createLibp2p`). Replace it to run nodes over another
   * transport: tests run whole meshes in memory this way.
   */
  readonly createLibp2p?: Libp2pFactory;
  /**
   * Where the node logs, each service under its own component (`mesh/sync`,
   * `mesh/transfer`, …). Default: warnings and errors on stderr (see
   * `createLogger`).
   */
  readonly logger?: Logger;
}

/** The libp2p services a mesh node uses: ping, for its keep-alive. */
export type MeshServices = { ping: Ping };

/**
 * Builds a node's libp2p host. `config` has the node's key, listen addresses,
 * TCP transport, Noise, Yamux, connection gater and limits, and ping service,
 * with `start: false`; a replacement may change any of it (say, swap TCP for an
 * in-memory transport) and must leave the node to start the host.
 *
 * @example A node over an in-memory transport
 * ```ts
 * import assert from "node:assert/strict";
 * import { memory } from "@libp2p/memory";
 * import { createLibp2p } from "libp2p";
 * import { type Libp2pFactory, MeshNode } from "./mod.ts";
 *
 * const inMemory: Libp2pFactory = (config) => createLibp2p({ ...config, transports: [memory()] });
 * const node = await MeshNode.create({
 *   storePath: ":memory:",
 *   listen: ["/memory/libp2p-factory-example"],
 *   mdns: false,
 *   createLibp2p: inMemory,
 * });
 * await node.start();
 * assert.ok(node.addresses[0].startsWith("/memory/libp2p-factory-example/p2p/"));
 * await node.stop();
 * ```
 */
export type Libp2pFactory = (
  config: Libp2pOptions<MeshServices>,
) => Promise<Libp2p<MeshServices>>;

/** What the node already knows of a parcel it hands to a hosted endpoint (it was validated). */
export interface HostedParcel {
  /** Hex SHA-256 of its bytes. */
  readonly key: string;
  /** Id of the hosted endpoint it is addressed to. */
  readonly recipientId: string;
  /** When it expires. */
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
  /** Its libp2p peer id. */
  readonly id: string;
  /** Remote multiaddrs of its connections when it connected. */
  readonly addresses: readonly string[];
  /**
   * Endpoints the peer proved it hosts (a verified hosting claim), among those
   * this node asked about: the ids of the parcels it holds.
   */
  readonly endpoints: readonly string[];
  /** When it connected (the node's clock). */
  readonly connectedAt: Date;
}

/** Counters since the node started. */
export interface MeshStats {
  /** Octets of reconciliation messages sent. */
  syncBytesSent: number;
  /** Octets of reconciliation messages received. */
  syncBytesReceived: number;
  /** Reconciliations finished. */
  syncs: number;
  /** Parcels pushed to peers. */
  parcelsSent: number;
  /** Parcels that arrived from peers. */
  parcelsReceived: number;
  /** Octets of the parcels pushed to peers. */
  parcelBytesSent: number;
  /** Octets of the parcels that arrived from peers. */
  parcelBytesReceived: number;
  /** Octets of transfer-stream frames sent (parcels and their headers, acknowledgements). */
  transferBytesSent: number;
  /** Octets of transfer-stream frames received. */
  transferBytesReceived: number;
  /** Parcels refused, by this node or by its peers. */
  refusals: number;
  /** Posts pushed to peers. */
  postsSent: number;
  /** Posts that arrived from peers (stored or not). */
  postsReceived: number;
  /** Posts refused by this node (forged, expired, unwanted, over a bound). */
  postsRefused: number;
  /** Posts held now, of the channels this node follows (read when `stats` is read). */
  postsFollowed: number;
  /** Posts held now for neighbours, of channels this node does not follow. */
  postsCarried: number;
  /** Interest tokens remembered from peers now (bounded: mesh/interest.ts). */
  interestTokens: number;
}

/** Details of the events a node dispatches. */
export interface MeshEventMap {
  /** A peer connected (its first connection). */
  "peer:connect": MeshPeer;
  /** A peer's last connection closed. */
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
  /**
   * A post of a channel this node follows was stored: arrived from peer `from`,
   * published here (no `from`), or held already when the channel was followed.
   * Dispatched once per post.
   */
  "post": { facts: PostFacts; bytes: Uint8Array; from?: string };
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
  /** Hex SHA-256 of the parcel. */
  readonly key: string;
  /** `stored` to carry, `delivered` to a hosted endpoint, `known` if already held or delivered. */
  readonly status: "stored" | "delivered" | "known";
}

export interface PushJob {
  readonly give: number;
  readonly direct: boolean;
  /** A broadcast post, not a parcel. */
  readonly post?: boolean;
}

export interface PeerState {
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
  /** A reconciliation is scheduled that one the peer starts does not replace (news in our HELLO). */
  mustSync?: boolean;
  syncTimer?: ReturnType<typeof setTimeout>;
  readonly queue: Map<string, PushJob>;
  /** Keys pushed to this peer and not yet answered: not queued again meanwhile. */
  readonly sending: Set<string>;
  pushing: Promise<void> | null;
  /** Keys this peer refused for good, or said it holds (so it is not offered them again). */
  readonly refused: Set<string>;
  /** Keys this peer refused for now, and until when. */
  readonly backoff: Map<string, number>;
  /** Delay before retrying a failed reconciliation or transfer; doubles up to 30 s. */
  retryMs: number;
}

/** The options the node goes on reading once created, with their defaults. */
export type ResolvedOptions =
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
      | "createLibp2p"
      | "logger"
      | "postQuota"
    >
  >
  & {
    postQuota: ResolvedPostQuota;
    peers: readonly string[];
    shares: QuotaShares;
    unverifiedTombstones: { perPeer: number; perHost: number; total: number };
  };

export const TRANSIENT_BACKOFF_MS = 30_000;
/** A dial not connected by then has failed (the reconnection service tries again). */
export const DIAL_TIMEOUT_MS = 5_000;
export const GROUP_COMMIT_WAIT_MS = 2;
export const FIRST_RETRY_MS = 1000;
export const MAX_RETRY_MS = 30_000;
export const MAX_SYMBOLS = 250_000;
/** Reconciliation items a node offers at most: they always fit one sync frame. */
export const MAX_ITEMS = 100_000;
/** Items a DIFF reports in each direction at most (the rest come in the next round). */
export const MAX_DIFF_ITEMS = Math.floor((MAX_SYNC_FRAME_LENGTH - 16) / 2 / ITEM_LENGTH);
/** Sync streams a node answers at once: from one peer, one remote host, and in all. */
export const SYNC_RESPONDERS = { perPeer: 1, perHost: 2, total: 8 };
/** Inbound transfer streams at once: from one peer, one remote host, and in all. */
export const TRANSFER_RECEIVERS = { perPeer: 2, perHost: 4, total: 32 };
/** A hosting claim lasts this long, and is signed again when a day of it is left. */
export const CLAIM_LIFETIME_MS = 7 * 86_400_000;
/** The latest a legitimate parcel can expire: 180 days (RS-000) past a clock 2 h ahead. */
export const MAX_EXPIRY_AHEAD_MS = RAMF_MAX_TTL_SECONDS * 1000 + MAX_CLOCK_DRIFT_TOLERANCE_MS;
export const FIRST_SYMBOL_BATCH = 16;
/** Coded symbols one SYMBOLS message may carry. */
export const MAX_SYMBOLS_PER_FRAME = 8192;
/**
 * Reconciliations a node answers per second, per peer (a host gets twice it), with
 * 10 s of burst: honest nodes sync when what they hold changes (debounced) and
 * every minute.
 */
export const SYNC_RATE = { parcelsPerSecond: 2, bytesPerSecond: 2, burstSeconds: 10 };
