/**
 * Reconciliation (docs/mesh-protocol.md §2): when to compare stores with a peer,
 * both sides of the exchange (HELLO, ITEMS or coded symbols, DIFF, PROOFS), and
 * acting on the difference: checking delivery proofs, queueing pushes.
 *
 * @module
 */
import type { Connection, Stream } from "@libp2p/interface";
import { toHex } from "../bindings/validation.ts";
import { decodeProof, type DeliveryProof } from "./proofs.ts";
import { Channel } from "./channel.ts";
import { Decoder, Encoder } from "./riblt.ts";
import { route } from "./routing.ts";
import { encodeItem, ITEM_LENGTH, ItemKind } from "./store.ts";
import {
  decodeSync,
  encodeSync,
  MAX_PROOFS_PER_MESSAGE,
  MAX_SYNC_FRAME_LENGTH,
  NONCE_LENGTH,
  PROTOCOL_VERSION,
  ProtocolError,
  SYNC_PROTOCOL,
  type SyncMessage,
} from "./wire.ts";
import type { PeerState } from "./types.ts";
import {
  FIRST_RETRY_MS,
  FIRST_SYMBOL_BATCH,
  MAX_DIFF_ITEMS,
  MAX_EXPIRY_AHEAD_MS,
  MAX_ITEMS,
  MAX_RETRY_MS,
  MAX_SYMBOLS,
  MAX_SYMBOLS_PER_FRAME,
  SYNC_RESPONDERS,
} from "./types.ts";
import { hostOf, MeshCore, refuseBusy, safeDecodeItem } from "./core.ts";

/** Reconciles this node's store with its peers'. */
export class SyncService {
  constructor(private readonly core: MeshCore) {}

  /**
   * Schedules a reconciliation with every peer, but `except` the one the change
   * came from: it already knows what it just gave or was given.
   */
  syncAll(except?: string): void {
    for (const peer of this.core.peers.values()) {
      if (peer.id !== except) this.scheduleSync(peer, 200);
    }
  }

  scheduleSync(peer: PeerState, delayMs: number): void {
    if (peer.syncTimer !== undefined) return;
    peer.syncTimer = setTimeout(() => {
      peer.syncTimer = undefined;
      this.sync(peer).catch(() => {});
    }, delayMs);
  }

  /** Runs one reconciliation as initiator (or queues another if one is running). */
  sync(peer: PeerState): Promise<void> {
    if (peer.syncing) {
      peer.syncAgain = true;
      return peer.syncing;
    }
    peer.syncing = this.initiateSync(peer)
      .then(() => {
        peer.retryMs = FIRST_RETRY_MS;
      })
      .catch((error) => {
        this.core.log(`sync with ${peer.id} failed: ${error?.message ?? error}`);
        this.retryLater(peer);
      })
      .finally(() => {
        peer.syncing = null;
        if (peer.syncAgain && this.core.peers.has(peer.id)) {
          peer.syncAgain = false;
          this.scheduleSync(peer, 50);
        }
      });
    return peer.syncing;
  }

  /** Tries again after a failure, backing off while the peer keeps failing. */
  retryLater(peer: PeerState): void {
    if (!this.core.peers.has(peer.id)) return;
    this.scheduleSync(peer, peer.retryMs);
    peer.retryMs = Math.min(peer.retryMs * 2, MAX_RETRY_MS);
  }

  async initiateSync(peer: PeerState): Promise<void> {
    const channel = await this.core.open(peer, SYNC_PROTOCOL, MAX_SYNC_FRAME_LENGTH);
    const stream = channel.stream;
    try {
      const items = this.core.store.items(MAX_ITEMS);
      const encoded = items.map(encodeItem);
      const salt = crypto.getRandomValues(new Uint32Array(1))[0];
      const nonce = crypto.getRandomValues(new Uint8Array(NONCE_LENGTH));
      await channel.write(encodeSync({
        type: "hello",
        version: PROTOCOL_VERSION,
        salt,
        itemCount: items.length,
        nonce,
        announcements: this.core.announcements(nonce),
      }));
      const hello = expectSync(await channel.expect(), "hello");
      if (hello.version !== PROTOCOL_VERSION) {
        throw new ProtocolError(`Peer speaks version ${hello.version}`);
      }
      this.learnAnnouncements(peer, hello);

      let diff: Extract<SyncMessage, { type: "diff" }>;
      const fullList = this.core.options.reconciliation === "full-list" ||
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
          batch = Math.min(batch * 2, MAX_SYMBOLS_PER_FRAME);
        }
      }
      const ourOnly = splitItems(diff.initiatorOnly);
      const theirOnly = splitItems(diff.responderOnly);
      // Proofs of the tombstones each side lacks: ours first, then theirs.
      await channel.write(encodeSync({ type: "proofs", proofs: this.proofsFor(ourOnly) }));
      const proofs = expectSync(await channel.expect(), "proofs");
      await stream.close().catch(() => {});
      this.apply(peer, theirOnly, ourOnly, proofs.proofs, this.account(peer, channel));
      if (diff.truncated) this.scheduleSync(peer, 50);
    } catch (error) {
      await this.sendError(channel, error);
      stream.abort(error instanceof Error ? error : new Error(String(error)));
      throw error;
    } finally {
      channel.dispose();
    }
  }

  async respondToSync(stream: Stream, connection: Connection): Promise<void> {
    const id = connection.remotePeer.toString();
    const peer = this.core.peers.get(id);
    if (peer?.syncTimer !== undefined && !peer.syncAgain) {
      // The peer is reconciling with us: the one we had scheduled would be redundant.
      clearTimeout(peer.syncTimer);
      peer.syncTimer = undefined;
    }
    const channel = this.core.channel(stream, connection, MAX_SYNC_FRAME_LENGTH, 2);
    const host = hostOf(connection.remoteAddr.toString());
    // Reconciliations cost CPU whatever they carry: a budget per peer and per host.
    const slot = this.core.syncLimiter.take([id, `host:${host}`], 1)
      ? this.core.takeStream("sync", id, host, SYNC_RESPONDERS)
      : null;
    try {
      if (!slot) {
        await refuseBusy(
          channel,
          encodeSync({
            type: "error",
            message: "Busy: too many reconciliations at once; try again later",
          }),
        );
        return;
      }
      const hello = expectSync(await channel.expect(), "hello");
      if (hello.version !== PROTOCOL_VERSION) {
        throw new ProtocolError(
          `Peer speaks version ${hello.version}; this node speaks version ${PROTOCOL_VERSION}`,
        );
      }
      if (hello.itemCount > MAX_ITEMS) {
        throw new ProtocolError(`HELLO claims ${hello.itemCount} items, over ${MAX_ITEMS}`);
      }
      if (peer) this.learnAnnouncements(peer, hello);
      const items = this.core.store.items(MAX_ITEMS);
      const encoded = items.map(encodeItem);
      const nonce = crypto.getRandomValues(new Uint8Array(NONCE_LENGTH));
      await channel.write(encodeSync({
        type: "hello",
        version: PROTOCOL_VERSION,
        salt: hello.salt,
        itemCount: items.length,
        nonce,
        announcements: this.core.announcements(nonce),
      }));
      let theirs: Uint8Array[];
      let ours: Uint8Array[];
      const first = decodeSync(await channel.expect());
      if (first.type === "items") {
        const listed = splitItems(first.items);
        if (listed.length > MAX_ITEMS) {
          throw new ProtocolError(`ITEMS lists ${listed.length} items, over ${MAX_ITEMS}`);
        }
        [theirs, ours] = setDifference(listed, encoded);
      } else {
        // Both sides hold at most MAX_ITEMS, so a difference needs at most about
        // 1.5 × 2 × MAX_ITEMS coded symbols: a peer sending more is flooding.
        const limit = Math.min(
          MAX_SYMBOLS,
          Math.ceil(3 * (items.length + hello.itemCount)) + 256,
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
          if (message.symbols.length > MAX_SYMBOLS_PER_FRAME * (ITEM_LENGTH + 12)) {
            throw new ProtocolError(`SYMBOLS carries over ${MAX_SYMBOLS_PER_FRAME} coded symbols`);
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
      await channel.write(encodeSync({ type: "proofs", proofs: this.proofsFor(ours) }));
      await stream.close().catch(() => {});
      if (peer) this.apply(peer, theirs, ours, proofs.proofs, this.account(peer, channel));
      if (peer && truncated) this.scheduleSync(peer, 50);
    } catch (error) {
      this.core.log(`sync from ${id} failed: ${(error as Error)?.message ?? error}`);
      await this.sendError(channel, error);
      stream.abort(error instanceof Error ? error : new Error(String(error)));
    } finally {
      slot?.release();
      channel.dispose();
    }
  }

  /** Tells the peer why a stream ends, when the fault is in what it sent or in our limits. */
  async sendError(channel: Channel, error: unknown): Promise<void> {
    if (!(error instanceof ProtocolError || error instanceof RangeError)) return;
    if (error.message.startsWith("Peer says:")) return;
    await channel.write(encodeSync({ type: "error", message: error.message })).catch(() => {});
  }

  /** Keeps a peer's announcements, to check its claims when a parcel needs them. */
  learnAnnouncements(peer: PeerState, hello: Extract<SyncMessage, { type: "hello" }>): void {
    peer.nonce = hello.nonce;
    peer.announcements = new Map(hello.announcements.map((a) => [toHex(a.tag), a.sealed]));
    peer.hosts.clear();
  }

  /** The proofs of the tombstones among `items`, as many as fit one sync frame. */
  proofsFor(items: readonly Uint8Array[]): { expiresAt: Date; proof: Uint8Array }[] {
    const keys = [];
    for (const raw of items) {
      const item = safeDecodeItem(raw);
      if (item?.kind === ItemKind.DELIVERED) keys.push(item.key);
    }
    const out = [];
    let size = 3;
    for (const { expiresAt, proof } of this.core.store.proofs(keys)) {
      size += 6 + proof.length;
      if (out.length >= MAX_PROOFS_PER_MESSAGE || size > MAX_SYNC_FRAME_LENGTH) break;
      out.push({ expiresAt, proof });
    }
    return out;
  }

  account(
    peer: PeerState,
    channel: Channel,
  ): { peer: string; bytesSent: number; bytesReceived: number } {
    this.core.stats.syncs++;
    this.core.stats.syncBytesSent += channel.bytesWritten;
    this.core.stats.syncBytesReceived += channel.bytesRead;
    return { peer: peer.id, bytesSent: channel.bytesWritten, bytesReceived: channel.bytesRead };
  }

  /**
   * Acts on a reconciliation: checks the peer's delivery proofs (only for
   * tombstones it listed and this node lacks), then queues the parcels the peer
   * should get.
   */
  apply(
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
    const changed = this.learnProofs(peer, proofs, listed);
    const now = Date.now();
    for (const raw of ourOnly) {
      const item = safeDecodeItem(raw);
      if (item?.kind !== ItemKind.PARCEL) continue;
      const parcel = this.core.store.get(item.key);
      if (
        !parcel || peer.refused.has(item.key) || peer.sending.has(item.key) ||
        (peer.backoff.get(item.key) ?? 0) > now
      ) {
        continue;
      }
      const decision = route(parcel.copies, this.core.peerHosts(peer, parcel.recipientId));
      if (decision.send) peer.queue.set(item.key, { give: decision.give, direct: decision.direct });
    }
    this.core.emit("sync", { ...traffic, theirOnly: theirOnly.length, ourOnly: ourOnly.length });
    this.core.push(peer);
    if (changed) this.syncAll(peer.id);
  }

  /**
   * Takes a peer's delivery proofs: one for a parcel held here is checked against
   * its recipient (valid: the copy goes, a proven tombstone stays; false: the peer
   * lied); one for a parcel never held here is kept, within per-peer, per-host and
   * total bounds, to be checked if the parcel comes. Returns whether anything changed.
   */
  learnProofs(
    peer: PeerState,
    proofs: readonly { expiresAt: Date; proof: Uint8Array }[],
    listed: ReadonlySet<string>,
  ): boolean {
    let changed = false;
    const unverified = [];
    const now = this.core.options.now().getTime();
    for (const { expiresAt, proof: bytes } of proofs) {
      let proof: DeliveryProof;
      try {
        proof = decodeProof(bytes);
      } catch {
        this.core.misbehaved(peer.id, "sent a malformed delivery proof");
        continue;
      }
      if (!listed.has(proof.key) || this.core.store.knows(proof.key) === "delivered") continue;
      const held = this.core.store.get(proof.key);
      if (held) {
        if (this.core.verifier.verifyProof(proof, held.recipientId)) {
          this.core.deliveredWithProof(proof.key, held, bytes);
          changed = true;
        } else {
          this.core.misbehaved(peer.id, `false delivery proof for ${proof.key.slice(0, 12)}`);
        }
        continue;
      }
      const expiry = expiresAt.getTime();
      if (expiry <= now || expiry > now + MAX_EXPIRY_AHEAD_MS) continue;
      unverified.push({ key: proof.key, expiresAt, proof: bytes });
    }
    if (unverified.length > 0) {
      const kept = this.core.store.addUnverified(
        unverified,
        { peer: peer.id, host: peer.host },
        this.core.options.unverifiedTombstones,
      );
      if (kept > 0) changed = true;
    }
    return changed;
  }
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
