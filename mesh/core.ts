/**
 * What a mesh node's services share: libp2p, the store, the options, the limits
 * and counters, the endpoints hosted here, the connected peers, and the checks
 * every service makes (hosting claims, stream caps, parcel validation).
 *
 * @module
 */
import type { Connection, Stream } from "@libp2p/interface";
import { type Libp2p } from "libp2p";
import { type ReceiveOutcome } from "../bindings/binding.ts";
import { FastParcelValidator, type ParcelFacts } from "../bindings/fast_validation.ts";
import { toHex } from "../bindings/validation.ts";
import {
  announcementTag,
  decodeProof,
  type DeliveryProof,
  type EndpointSigner,
  type HostingClaim,
  makeHostingClaim,
  openClaim,
  sealClaim,
  SignatureVerifier,
} from "./proofs.ts";
import { StorageQuota } from "./quota.ts";
import { Admission } from "./admission.ts";
import { Channel } from "./channel.ts";
import { FairGate } from "./fair.ts";
import { RateLimiter } from "./rate_limit.ts";
import { decodeItem, type Item, MeshStore, type StoredParcel } from "./store.ts";
import { ProtocolError } from "./wire.ts";
import type {
  MeshEventMap,
  MeshStats,
  ParcelHandler,
  PeerState,
  ResolvedOptions,
} from "./types.ts";
import { CLAIM_LIFETIME_MS, SYNC_RATE } from "./types.ts";

/** The state and checks a mesh node's services share. */
export class MeshCore {
  readonly libp2p: Libp2p;
  readonly store: MeshStore;
  readonly options: ResolvedOptions;
  readonly limiter: RateLimiter;
  readonly quota: StorageQuota;
  readonly verifier = new SignatureVerifier();
  /** Endpoints hosted here, with their signers and current hosting claims. */
  readonly hosts = new Map<
    string,
    { handler: ParcelHandler; signer?: EndpointSigner; claim?: HostingClaim }
  >();
  /** Streams being answered or received now, by peer and by host (see the limits in types.ts). */
  readonly streams = {
    sync: new Map<string, number>(),
    transfer: new Map<string, number>(),
  };
  /** Parcels (sender and parcel id) being stored right now, so two encodings are not both kept. */
  readonly placing = new Set<string>();
  /** Parcels being handed to a hosted endpoint right now (after that, the store knows). */
  readonly handing = new Map<string, Promise<ReceiveOutcome>>();
  readonly peers = new Map<string, PeerState>();
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
  readonly activity = new WeakMap<Connection, { last: number }>();
  readonly validator = new FastParcelValidator();
  /** Incoming batches of parcels, checked and stored by hosts in turn. */
  readonly gate = new FairGate();
  /** Reconciliations answered, per peer and per host (each "parcel" is one). */
  readonly syncLimiter = new RateLimiter(SYNC_RATE);

  // Set by the node once its services exist: what one service asks of another.
  /** Schedules a reconciliation with every peer but `except`. */
  syncAll: (except?: string) => void = () => {};
  /** Schedules a reconciliation with `peer` in `delayMs`. */
  scheduleSync: (peer: PeerState, delayMs: number) => void = () => {};
  /** Tries a failed exchange with `peer` again later, backing off. */
  retryLater: (peer: PeerState) => void = () => {};
  /** Starts pushing `peer`'s queue, if it is not being pushed. */
  push: (peer: PeerState) => void = () => {};
  /** Sends a parcel at once to every peer that proved it hosts its recipient. */
  pushToHosts: (key: string, recipientId: string) => void = () => {};

  constructor(
    libp2p: Libp2p,
    store: MeshStore,
    options: ResolvedOptions,
    limiter: RateLimiter,
    private readonly events: EventTarget,
    private readonly peerIdOf: () => string,
  ) {
    this.libp2p = libp2p;
    this.store = store;
    this.options = options;
    this.limiter = limiter;
    this.quota = new StorageQuota(store, options.quotaBytes, options.maxParcels, options.shares);
  }

  /** This node's peer id. */
  get peerId(): string {
    return this.peerIdOf();
  }

  /** The announcements of the endpoints this node can prove it hosts, sealed under `nonce`. */
  announcements(nonce: Uint8Array): { tag: Uint8Array; sealed: Uint8Array }[] {
    const now = Date.now();
    const out = [];
    for (const [id, hosted] of this.hosts) {
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
  peerHosts(peer: PeerState, recipientId: string): boolean {
    const known = peer.hosts.get(recipientId);
    if (known !== undefined) return known;
    let proven = false;
    if (peer.nonce && peer.announcements.size > 0) {
      const sealed = peer.announcements.get(toHex(announcementTag(recipientId, peer.nonce)));
      const claim = sealed && openClaim(sealed, recipientId, peer.nonce);
      if (sealed) {
        proven = !!claim &&
          this.verifier.verifyClaim(claim, peer.id, this.options.now()) === recipientId;
        if (proven) this.store.noteKnownRecipient(recipientId, claim!.expiresAt);
        else this.misbehaved(peer.id, `hosting claim for ${recipientId.slice(0, 13)} is false`);
      }
    }
    peer.hosts.set(recipientId, proven);
    return proven;
  }

  misbehaved(peer: string, reason: string): void {
    this.log(`peer ${peer} misbehaved: ${reason}`);
    this.emit("peer:misbehaved", { peer, reason });
  }

  emit<K extends keyof MeshEventMap>(type: K, detail: MeshEventMap[K]): void {
    this.events.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /**
   * Opens a stream to a peer on its current connection, with a framed channel
   * whose stall detection watches the whole connection.
   */
  async open(peer: PeerState, protocol: string, maxFrame: number): Promise<Channel> {
    const connection = this.libp2p.getConnections(peer.peerId)[0];
    if (!connection) throw new ProtocolError("Not connected");
    const stream = await connection.newStream(protocol, {
      signal: AbortSignal.timeout(this.options.stallTimeoutMs * 3),
    });
    return this.channel(stream, connection, maxFrame, 2);
  }

  /**
   * A framed channel over a stream. Octets moving on any stream of the connection
   * count as progress (a small exchange may wait behind a large parcel); a
   * connection with no progress at all for the stall timeout is dead: it is closed,
   * and the peer is dialled again or rediscovered.
   */
  channel(stream: Stream, connection: Connection, maxFrame: number, frames: number): Channel {
    let activity = this.activity.get(connection);
    if (!activity) {
      activity = { last: Date.now() };
      this.activity.set(connection, activity);
    }
    return new Channel(
      stream,
      maxFrame,
      this.options.stallTimeoutMs,
      frames,
      activity,
      (error) => {
        this.log(`closing the connection to ${connection.remotePeer}: ${error.message}`);
        connection.abort(error);
      },
    );
  }

  /**
   * Counts a stream of `kind` from `peer` at `host` against `limits`; null when one
   * of them is reached (the stream is then refused with ERROR).
   */
  takeStream(
    kind: "sync" | "transfer",
    peer: string,
    host: string,
    limits: { perPeer: number; perHost: number; total: number },
  ): { release(): void } | null {
    const counts = this.streams[kind];
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

  /** A held parcel reached its recipient, as a checked proof says: its copy goes. */
  deliveredWithProof(key: string, held: StoredParcel, proof: Uint8Array): void {
    this.store.markDeliveredLater(key, held.expiresAt, held.origin === "local", proof);
    this.store.noteKnownRecipient(held.recipientId, held.expiresAt);
    this.emit("parcel:delivered", { key });
  }

  validate(bytes: Uint8Array): Promise<ParcelFacts> {
    return this.validator.validate(bytes, {
      now: this.options.now(),
      clockDriftToleranceMs: this.options.clockDriftToleranceMs,
    });
  }

  log(message: string): void {
    if (Deno.env.get("RELAYMAIL_MESH_DEBUG")) {
      console.error(`mesh ${this.peerId.slice(-8)}: ${message}`);
    }
  }
}

/**
 * Refuses a stream over its caps: ERROR, then a graceful close, so that the
 * ERROR reaches the peer (sent just before a reset, it is dropped with the
 * reset); a peer that does not close its side within 2 s is reset.
 */
export async function refuseBusy(channel: Channel, error: Uint8Array): Promise<void> {
  const stream = channel.stream;
  try {
    await channel.write(error);
    await stream.close({ signal: AbortSignal.timeout(2_000) });
  } catch {
    stream.abort(new Error("Busy"));
  }
}

export function safeDecodeProof(bytes: Uint8Array): DeliveryProof | null {
  try {
    return decodeProof(bytes);
  } catch {
    return null;
  }
}

/** The host of a remote address: the key of per-host limits (see admission.ts). */
export function hostOf(address: string): string {
  try {
    return Admission.hostOf(address);
  } catch {
    return address;
  }
}

export function safeDecodeItem(raw: Uint8Array): Item | null {
  try {
    return decodeItem(raw);
  } catch {
    return null;
  }
}
