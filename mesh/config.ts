/**
 * From {@linkcode MeshNodeOptions} to what a node's parts read: the options with
 * their defaults, the node's libp2p key, and the configuration its libp2p host
 * is built from.
 *
 * @module
 */
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from "@libp2p/crypto/keys";
import type { PrivateKey } from "@libp2p/interface";
import { ping } from "@libp2p/ping";
import { tcp } from "@libp2p/tcp";
import type { Libp2pOptions } from "libp2p";
import { MAX_CLOCK_DRIFT_TOLERANCE_MS } from "../bindings/validation.ts";
import type { Admission } from "./admission.ts";
import { MAX_STREAM_WINDOW } from "./channel.ts";
import type { DiscoveryOptions } from "./peers.ts";
import { resolvePostQuota } from "./post_quota.ts";
import { DEFAULT_QUOTA_SHARES } from "./quota.ts";
import { DEFAULT_INITIAL_COPIES } from "./routing.ts";
import type { MeshStore } from "./store.ts";
import type { MeshNodeOptions, MeshServices, ResolvedOptions } from "./types.ts";

/** Where the node's libp2p key is kept when the caller does not keep it. */
const KEY_META = "libp2p.private-key";

/** The options a node goes on reading, with their defaults. */
export function resolveOptions(options: MeshNodeOptions): ResolvedOptions {
  return {
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
    postQuota: resolvePostQuota(options.postQuota),
    initialCopies: options.initialCopies ?? DEFAULT_INITIAL_COPIES,
    stallTimeoutMs: options.stallTimeoutMs ?? 20_000,
    syncIntervalMs: options.syncIntervalMs ?? 60_000,
    purgeIntervalMs: options.purgeIntervalMs ?? 60_000,
    clockDriftToleranceMs: options.clockDriftToleranceMs ?? MAX_CLOCK_DRIFT_TOLERANCE_MS,
    now: options.now ?? (() => new Date()),
    reconciliation: options.reconciliation ?? "auto",
  };
}

/** mDNS as the options ask for it, or null when it is off. */
export function discoveryOf(options: MeshNodeOptions): DiscoveryOptions | null {
  if (!(options.mdns ?? true)) return null;
  return { intervalMs: options.mdnsIntervalMs ?? 10_000, interfaces: options.mdnsInterfaces };
}

/**
 * The node's libp2p key: the caller's (and then the store keeps no copy), or
 * the one kept in the store, made the first time.
 */
export async function privateKeyOf(
  options: MeshNodeOptions,
  store: MeshStore,
): Promise<PrivateKey> {
  if (options.privateKey) {
    const privateKey = privateKeyFromProtobuf(options.privateKey);
    store.deleteMeta(KEY_META);
    return privateKey;
  }
  const kept = store.getMeta(KEY_META);
  if (kept) return privateKeyFromProtobuf(kept);
  const privateKey = await generateKeyPair("Ed25519");
  store.setMeta(KEY_META, privateKeyToProtobuf(privateKey));
  return privateKey;
}

/** What the node asks of libp2p: TCP, Noise, Yamux, admission's gater and limits, ping. */
export function libp2pConfig(
  privateKey: PrivateKey,
  listen: readonly string[] | undefined,
  admission: Admission,
): Libp2pOptions<MeshServices> {
  return {
    ...admission.libp2pOptions(),
    privateKey,
    start: false,
    addresses: { listen: [...(listen ?? ["/ip4/0.0.0.0/tcp/0"])] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    // A stream's window stays small: it is what a sender can push past a paused
    // channel (channel.ts, docs/mesh-protocol.md §4.3).
    streamMuxers: [yamux({ streamOptions: { maxStreamWindowSize: MAX_STREAM_WINDOW } })],
    // Our keep-alive (keepalive.ts) decides when a connection is dead; libp2p's own
    // monitor would abort a connection whose second concurrent ping it could not open.
    services: { ping: ping({ maxInboundStreams: 2, maxOutboundStreams: 2, timeout: 5_000 }) },
    connectionMonitor: { enabled: false },
  };
}
