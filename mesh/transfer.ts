/**
 * Transfer (docs/mesh-protocol.md §3): pushing parcels to a peer, five at most in
 * flight, and taking a peer's parcels: checked, placed with a hosted endpoint or
 * stored within the shares, acknowledged only once committed.
 *
 * @module
 */
import type { Connection, Stream } from "@libp2p/interface";
import { isSafelyStored, type ReceiveOutcome, type RefusalCode } from "../bindings/binding.ts";
import { StorageFullError } from "../bindings/durable.ts";
import { type ParcelFacts } from "../bindings/fast_validation.ts";
import { ParcelRefusedError, sha256Hex } from "../bindings/validation.ts";
import { encodeProof, makeDeliveryProof } from "./proofs.ts";
import { type ParcelRecord } from "./store.ts";
import {
  AckStatus,
  decodeTransfer,
  encodeParcelFrame,
  encodeTransfer,
  MAX_FRAME_LENGTH,
  MAX_IN_FLIGHT,
  ProtocolError,
  TRANSFER_PROTOCOL,
  type TransferMessage,
} from "./wire.ts";
import type { PeerState, PushJob } from "./types.ts";
import {
  FIRST_RETRY_MS,
  GROUP_COMMIT_WAIT_MS,
  TRANSFER_RECEIVERS,
  TRANSIENT_BACKOFF_MS,
} from "./types.ts";
import { hostOf, MeshCore, refuseBusy, safeDecodeProof } from "./core.ts";

/** Moves parcels to and from peers. */
export class TransferService {
  constructor(private readonly core: MeshCore) {}

  /**
   * Sends a parcel at once to every connected peer that hosts its recipient, without
   * waiting for the next reconciliation: that is the path of least latency.
   */
  pushToHosts(key: string, recipientId: string): void {
    for (const peer of this.core.peers.values()) {
      if (
        !this.core.peerHosts(peer, recipientId) || peer.refused.has(key) || peer.sending.has(key)
      ) continue;
      peer.queue.set(key, { give: 0, direct: true });
      this.push(peer);
    }
  }

  push(peer: PeerState): void {
    if (peer.pushing || peer.queue.size === 0 || !this.core.peers.has(peer.id)) return;
    peer.pushing = this.pushQueue(peer)
      .then(() => {
        peer.retryMs = FIRST_RETRY_MS;
      })
      .catch((error) => {
        this.core.log(`transfer to ${peer.id} failed: ${error?.message ?? error}`);
        // The parcels in flight were not acknowledged: a new reconciliation offers them again.
        peer.queue.clear();
        this.core.retryLater(peer);
      })
      .finally(() => {
        peer.pushing = null;
        if (peer.queue.size > 0 && this.core.peers.has(peer.id)) this.push(peer);
      });
  }

  async pushQueue(peer: PeerState): Promise<void> {
    const channel = await this.core.open(peer, TRANSFER_PROTOCOL, 4096);
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
          peer.sending.delete(message.key);
          this.settle(peer, message, sent.job);
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
        const bytes = this.core.store.bytes(key);
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
        peer.sending.add(key);
        const copies = job.direct ? 0 : job.give;
        await channel.write(encodeParcelFrame(key, copies, bytes));
        this.core.stats.parcelsSent++;
        this.core.stats.parcelBytesSent += bytes.byteLength;
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
    this.core.stats.transferBytesSent += channel.bytesWritten;
    this.core.stats.transferBytesReceived += channel.bytesRead;
    // What went unanswered may be offered again.
    for (const key of inFlight.keys()) peer.sending.delete(key);
    if (failed !== null) {
      stream.abort(failed instanceof Error ? failed : new Error(String(failed)));
      // Unacknowledged parcels stay here and are offered again after the next sync.
      throw failed;
    }
  }

  settle(peer: PeerState, message: TransferMessage, job: PushJob): void {
    if (message.type === "refuse") {
      this.core.stats.refusals++;
      if (message.transient) peer.backoff.set(message.key, Date.now() + TRANSIENT_BACKOFF_MS);
      else peer.refused.add(message.key);
      this.core.emit("parcel:refused", {
        key: message.key,
        peer: peer.id,
        code: message.code,
        reason: message.reason,
      });
      return;
    }
    if (message.type !== "ack") return;
    const parcel = this.core.store.get(message.key);
    switch (message.status) {
      case AckStatus.DELIVERED:
      case AckStatus.ALREADY_DELIVERED: {
        // Only the recipient can say "delivered": believed with its proof, never without.
        peer.refused.add(message.key);
        if (!parcel) break; // delivered meanwhile: nothing left to drop
        const proof = message.proof && safeDecodeProof(message.proof);
        if (
          !proof || proof.key !== message.key ||
          !this.core.verifier.verifyProof(proof, parcel.recipientId)
        ) {
          this.core.misbehaved(
            peer.id,
            `acknowledged ${message.key.slice(0, 12)} as delivered without a valid proof`,
          );
          break;
        }
        if (parcel.origin === "local") {
          this.core.store.later(() => this.core.store.recordHandover(message.key, peer.id, true));
        }
        this.core.deliveredWithProof(message.key, parcel, message.proof!);
        this.core.emit("parcel:handed", { key: message.key, peer: peer.id, toRecipient: true });
        this.core.syncAll(peer.id);
        break;
      }
      case AckStatus.STORED:
        if (parcel && !job.direct) {
          // Lost in a crash, it would only let a few more copies out.
          const copies = Math.max(1, parcel.copies - job.give);
          this.core.store.later(() => this.core.store.setCopies(message.key, copies));
        }
        // falls through
      case AckStatus.ALREADY_HELD:
        peer.refused.add(message.key); // it has it: no need to offer it again
        // Lost in a crash, the sender's app would only show "queued" until delivery.
        if (parcel?.origin === "local") {
          this.core.store.later(() => this.core.store.recordHandover(message.key, peer.id, false));
        }
        this.core.emit("parcel:handed", { key: message.key, peer: peer.id, toRecipient: false });
        break;
    }
  }

  async receiveParcels(stream: Stream, connection: Connection): Promise<void> {
    const from = connection.remotePeer.toString();
    const host = hostOf(connection.remoteAddr.toString());
    // Room for the sender's window of five frames (they may all arrive before the
    // first is read) and one more, and no more: a sender past it is reset. The
    // window itself is enforced by not reading while five await replies.
    const channel = this.core.channel(stream, connection, MAX_FRAME_LENGTH, MAX_IN_FLIGHT + 1);
    const slot = this.core.takeStream("transfer", from, host, TRANSFER_RECEIVERS);
    // While a parcel arrives, tell the sender now and then: its data may sit in
    // buffers for longer than the stall timeout before our acknowledgement comes.
    let reported = 0;
    const progress = setInterval(() => {
      if (channel.octetsSeen === reported) return;
      reported = channel.octetsSeen;
      channel.write(encodeTransfer({ type: "progress", received: reported % 2 ** 32 })).catch(
        () => {},
      );
    }, Math.max(250, Math.min(2000, Math.floor(this.core.options.stallTimeoutMs / 4))));
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
          // Past the window, nothing more is read: what a sender writes beyond it
          // waits in the stream's buffer, which is reset past the window and one frame.
          while (unanswered >= MAX_IN_FLIGHT) {
            await room.promise;
            room = Promise.withResolvers();
          }
          const frame = await channel.read();
          if (frame === null) break;
          const message = decodeTransfer(frame);
          if (message.type !== "parcel") {
            throw new ProtocolError(`Unexpected ${message.type} on a transfer stream`);
          }
          this.core.stats.parcelsReceived++;
          this.core.stats.parcelBytesReceived += message.bytes.byteLength;
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
      if (!slot) {
        await refuseBusy(
          channel,
          encodeTransfer({
            type: "error",
            message: "Busy: too many transfers at once; try again later",
          }),
        );
        return;
      }
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
        // Hosts take turns: one with many streams gets no more of the CPU than one.
        const leave = await this.core.gate.enter(host);
        let replies;
        try {
          replies = await this.takeBatch(batch, from, host);
        } finally {
          leave();
        }
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
      this.core.stats.transferBytesSent += channel.bytesWritten;
      this.core.stats.transferBytesReceived += channel.bytesRead;
    }
  }

  /**
   * Takes a batch of incoming parcels: checked side by side (their digests and
   * signatures run off the event loop together), then placed in order: handed to
   * a hosted endpoint, or stored to carry, all of those in one transaction.
   */
  async takeBatch(
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
      return this.check(message, from, host);
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
        const placed = await this.place(message, check.facts, from, host);
        if ("record" in placed) {
          records.push({ index: replies.length, ...placed });
          replies.push(null);
        } else {
          replies.push(placed);
        }
      }
      if (records.length > 0) {
        try {
          this.core.store.putMany(records.map((r) => r.record));
        } catch (error) {
          if (!(error instanceof StorageFullError)) throw error;
          // A full disk is a passing refusal: nothing of the batch was kept.
          for (const { index, record } of records) {
            replies[index] = this.refusal(record.key, from, "quota", error.message, true);
          }
          return replies as TransferMessage[];
        }
        for (const { index, record } of records) {
          replies[index] = { type: "ack", key: record.key, status: AckStatus.STORED };
          this.pushToHosts(record.key, record.recipientId);
          this.core.emit("parcel:received", {
            key: record.key,
            from,
            recipientId: record.recipientId,
            delivered: false,
          });
        }
        this.core.syncAll(from);
      }
    } finally {
      // Stored, they are counted by the store now; refused, their room is free again.
      for (const record of records) record.release();
    }
    return replies as TransferMessage[];
  }

  refusal(
    key: string,
    from: string,
    code: RefusalCode,
    reason: string,
    transient: boolean,
    size?: number,
    byEndpoint = false,
  ): TransferMessage {
    this.core.stats.refusals++;
    this.core.emit("parcel:refused", { key, from, code, reason, transient, size, byEndpoint });
    return { type: "refuse", key, code, transient, reason };
  }

  /** The answer for a parcel known delivered: with its proof, or "held" when this node has none. */
  deliveredAck(key: string): TransferMessage {
    const proof = this.core.store.proofOf(key);
    return proof
      ? { type: "ack", key, status: AckStatus.ALREADY_DELIVERED, proof }
      : { type: "ack", key, status: AckStatus.ALREADY_HELD };
  }

  /** Checks an incoming parcel: already known, over the rate limit, forged or invalid. */
  async check(
    message: Extract<TransferMessage, { type: "parcel" }>,
    from: string,
    host: string,
  ): Promise<TransferMessage | { facts: ParcelFacts }> {
    const { key, bytes } = message;
    const refuse = (code: RefusalCode, reason: string, transient: boolean) =>
      this.refusal(key, from, code, reason, transient, bytes.byteLength);
    // A known key is answered at once. A peer lying about a key only misleads itself.
    const known = this.core.store.knows(key);
    if (known === "delivered") return this.deliveredAck(key);
    if (known === "held") return { type: "ack", key, status: AckStatus.ALREADY_HELD };
    if (!this.core.limiter.take([from, `host:${host}`], bytes.byteLength)) {
      return refuse("rate-limited", "Too many parcels from this peer or host: slow down", true);
    }
    const [actualKey, validation] = await Promise.all([
      sha256Hex(bytes),
      this.core.validate(bytes).then(
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
    const unverified = this.core.store.unverifiedProof(key);
    if (unverified) {
      const proof = safeDecodeProof(unverified);
      if (proof && this.core.verifier.verifyProof(proof, facts.recipientId)) {
        this.core.store.markDelivered(key, facts.expiresAt, false, unverified);
        this.core.store.noteKnownRecipient(facts.recipientId, facts.expiresAt);
        return { type: "ack", key, status: AckStatus.ALREADY_DELIVERED, proof: unverified };
      }
      this.core.store.dropUnverified(key);
    }
    return { facts };
  }

  /**
   * Places a checked parcel: hands it to the endpoint this node hosts, or reserves
   * room for it and returns the record to store (the caller commits a batch, then
   * releases the reservation).
   */
  async place(
    message: Extract<TransferMessage, { type: "parcel" }>,
    parcel: ParcelFacts,
    from: string,
    host: string,
  ): Promise<TransferMessage | { record: ParcelRecord; release(): void }> {
    const { key, bytes } = message;
    const refuse = (code: RefusalCode, reason: string, transient: boolean) =>
      this.refusal(key, from, code, reason, transient);
    const hosted = this.core.hosts.get(parcel.recipientId);
    if (hosted) {
      // The same parcel by two paths at once (a direct push and a reconciliation):
      // the second waits for the first instead of handing the endpoint a copy.
      const first = this.core.handing.get(key);
      if (first) {
        const earlier = await first.catch(() => null);
        if (earlier && isSafelyStored(earlier)) return this.deliveredAck(key);
      }
      let outcome: ReceiveOutcome;
      const handing = hosted.handler(bytes, { binding: "mesh", hop: from }, {
        key,
        recipientId: parcel.recipientId,
        expiresAt: parcel.expiresAt,
      });
      this.core.handing.set(key, handing);
      try {
        outcome = await handing;
      } catch (error) {
        return refuse(
          "quota",
          `The recipient's node could not store it now: ${(error as Error)?.message}`,
          true,
        );
      } finally {
        this.core.handing.delete(key);
      }
      if (outcome.status === "refused") {
        return this.refusal(
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
        this.core.store.markDeliveredLater(key, parcel.expiresAt, false, proof);
        this.core.emit("parcel:received", {
          key,
          from,
          recipientId: parcel.recipientId,
          delivered: true,
        });
        this.core.syncAll(from);
        return proof
          ? { type: "ack", key, status: AckStatus.DELIVERED, proof }
          : { type: "ack", key, status: AckStatus.STORED };
      }
    }
    const knownRecipient = this.core.store.isKnownRecipient(parcel.recipientId);
    const reservation = this.core.quota.reserve({
      size: bytes.byteLength,
      senderId: parcel.senderId,
      recipientId: parcel.recipientId,
      fromPeer: from,
      fromHost: host,
      knownRecipient,
    });
    if ("refused" in reservation) return refuse("quota", reservation.refused, true);
    // The same parcel in other octets (a BER re-encoding under the same signature)
    // is the same parcel: it neither takes room twice nor outlives its delivery.
    const id = `${parcel.senderId} ${parcel.id}`;
    if (this.core.placing.has(id) || this.core.store.knowsId(parcel.senderId, parcel.id)) {
      reservation.release();
      return { type: "ack", key, status: AckStatus.ALREADY_HELD };
    }
    this.core.placing.add(id);
    return {
      release: () => {
        reservation.release();
        this.core.placing.delete(id);
      },
      record: {
        key,
        recipientId: parcel.recipientId,
        senderId: parcel.senderId,
        size: bytes.byteLength,
        expiresAt: parcel.expiresAt,
        origin: "relay",
        // A peer cannot grant more copies than a parcel starts with.
        copies: Math.min(this.core.options.initialCopies, Math.max(1, message.copies)),
        fromPeer: from,
        fromHost: host,
        knownRecipient,
        parcelId: parcel.id,
        bytes,
      },
    };
  }
}
