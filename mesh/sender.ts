/**
 * The sending side of transfer (docs/mesh-protocol.md §3): pushing a peer the
 * parcels queued for it, five at most in flight on one stream, and acting on
 * its answers: a parcel handed to a relay stays here, one delivered goes only
 * with the recipient's proof.
 *
 * @module
 */
import {
  asError,
  logFailure,
  recordDelivery,
  reportMisbehaviour,
  safeDecodeProof,
} from "./core.ts";
import type { Logger } from "./log.ts";
import type { NodeParts } from "./parts.ts";
import type { TaskGroup } from "./tasks.ts";
import {
  AckStatus,
  decodeTransfer,
  encodeParcelFrame,
  encodePostFrame,
  MAX_IN_FLIGHT,
  ProtocolError,
  TRANSFER_PROTOCOL,
  type TransferMessage,
} from "./wire.ts";
import type { PostHandler } from "./post_intake.ts";
import type { PeerState, PushJob } from "./types.ts";
import { FIRST_RETRY_MS, TRANSIENT_BACKOFF_MS } from "./types.ts";

/** What {@linkcode ParcelSender} needs. */
export interface SenderDeps extends NodeParts {
  /** The transfer service's running work: pushes start only while it is open. */
  readonly tasks: TaskGroup;
  /** Schedules a reconciliation with every peer but `except` (a parcel was delivered). */
  readonly syncAll: (except?: string) => void;
  /** Tries a failed exchange with `peer` again later, backing off. */
  readonly retryLater: (peer: PeerState) => void;
  /** Checks again a post a peer refused for good (the channel service). */
  readonly posts: Pick<PostHandler, "recheck">;
}

/** Final refusals of a post that say it is not valid (or no longer): the holder checks it again. */
const INVALID_POST = new Set(["unauthorized", "expired", "malformed", "bad-signature"]);

/** Pushes parcels to peers. */
export class ParcelSender {
  readonly #deps: SenderDeps;
  readonly #log: Logger;

  constructor(deps: SenderDeps) {
    this.#deps = deps;
    this.#log = deps.logger;
  }

  /**
   * Sends a parcel at once to every connected peer that hosts its recipient, without
   * waiting for the next reconciliation: that is the path of least latency.
   */
  pushToHosts(key: string, recipientId: string): void {
    for (const peer of this.#deps.peers.values()) {
      if (
        !this.#deps.hosting.peerHosts(peer, recipientId) || peer.refused.has(key) ||
        peer.sending.has(key)
      ) continue;
      peer.queue.set(key, { give: 0, direct: true });
      this.push(peer);
    }
  }

  /** Starts pushing `peer`'s queue, unless it is being pushed or the service is stopping. */
  push(peer: PeerState): void {
    if (peer.pushing || peer.queue.size === 0 || !this.#deps.peers.has(peer.id)) return;
    const running = this.#deps.tasks.run((signal) =>
      this.#pushQueue(peer, signal)
        .then(() => {
          peer.retryMs = FIRST_RETRY_MS;
        })
        .catch((error) => {
          // The parcels in flight were not acknowledged: a new reconciliation offers them again.
          peer.queue.clear();
          logFailure(this.#log, signal, "Transfer to a peer failed", { peer: peer.id, error });
          this.#deps.retryLater(peer);
        })
        .finally(() => {
          peer.pushing = null;
          if (peer.queue.size > 0 && this.#deps.peers.has(peer.id)) this.push(peer);
        })
    );
    if (running) peer.pushing = running;
  }

  async #pushQueue(peer: PeerState, signal: AbortSignal): Promise<void> {
    const { links, store, stats } = this.#deps;
    const channel = await links.open(peer.peerId, TRANSFER_PROTOCOL, 4096, signal);
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
          this.#settle(peer, message, sent.job);
          slot.resolve();
        }
      } catch (error) {
        failed ??= error;
        slot.resolve();
      }
    })();
    try {
      while (peer.queue.size > 0 && failed === null) {
        const [key, job] = peer.queue.entries().next().value!;
        peer.queue.delete(key);
        const bytes = job.post ? store.posts.bytes(key) : store.bytes(key);
        if (!bytes) continue; // delivered, expired or unfollowed meanwhile
        // Claimed now, not once the window has room: a reconciliation meanwhile
        // must not queue it again, or it would go twice on this stream.
        peer.sending.add(key);
        while (inFlight.size >= MAX_IN_FLIGHT && failed === null) {
          await slot.promise;
          slot = Promise.withResolvers();
        }
        if (failed !== null) {
          peer.sending.delete(key);
          peer.queue.set(key, job);
          break;
        }
        inFlight.set(key, { job });
        if (job.post) {
          await channel.write(encodePostFrame(key, bytes));
          stats.postsSent++;
          continue;
        }
        const copies = job.direct ? 0 : job.give;
        await channel.write(encodeParcelFrame(key, copies, bytes));
        stats.parcelsSent++;
        stats.parcelBytesSent += bytes.byteLength;
      }
      while (inFlight.size > 0 && failed === null) {
        await slot.promise;
        slot = Promise.withResolvers();
      }
      if (failed !== null) {
        // The receiver ended the stream (ERROR): what we still had to write goes nowhere.
        stream.abort(asError(failed));
      } else {
        try {
          await stream.close();
        } catch (error) {
          // Every parcel was answered: a close that fails loses nothing.
          this.#log.debug("Could not close a transfer stream", { peer: peer.id, error });
        }
      }
    } catch (error) {
      failed ??= error;
      // The reader ends once the stream is aborted.
      stream.abort(asError(error));
    }
    await reader;
    channel.dispose();
    stats.transferBytesSent += channel.bytesWritten;
    stats.transferBytesReceived += channel.bytesRead;
    // What went unanswered may be offered again.
    for (const key of inFlight.keys()) peer.sending.delete(key);
    if (failed !== null) {
      stream.abort(asError(failed));
      // Unacknowledged parcels stay here and are offered again after the next sync.
      throw failed;
    }
  }

  #settle(peer: PeerState, message: TransferMessage, job: PushJob): void {
    const { store, stats, emit } = this.#deps;
    if (job.post && (message.type === "ack" || message.type === "refuse")) {
      // A post refused for good is not offered again. One the peer took is offered
      // again only if a reconciliation finds it lacks it once more: a peer forgets
      // posts (it unfollows their channel, or evicts them).
      if (message.type === "refuse" && message.transient) {
        peer.backoff.set(message.key, Date.now() + TRANSIENT_BACKOFF_MS);
      } else if (message.type === "refuse") peer.refused.add(message.key);
      if (message.type === "refuse") {
        this.#log.debug("A peer refused a post", { peer: peer.id, code: message.code });
        if (!message.transient && INVALID_POST.has(message.code)) {
          this.#deps.posts.recheck(message.key);
        }
      }
      return;
    }
    if (message.type === "refuse") {
      stats.refusals++;
      if (message.transient) peer.backoff.set(message.key, Date.now() + TRANSIENT_BACKOFF_MS);
      else peer.refused.add(message.key);
      emit("parcel:refused", {
        key: message.key,
        peer: peer.id,
        code: message.code,
        reason: message.reason,
      });
      return;
    }
    if (message.type !== "ack") return;
    const parcel = store.get(message.key);
    switch (message.status) {
      case AckStatus.DELIVERED:
      case AckStatus.ALREADY_DELIVERED: {
        // Only the recipient can say "delivered": believed with its proof, never without.
        peer.refused.add(message.key);
        if (!parcel) break; // delivered meanwhile: nothing left to drop
        const proof = message.proof && safeDecodeProof(message.proof);
        if (
          !proof || proof.key !== message.key ||
          !this.#deps.verifier.verifyProof(proof, parcel.recipientId)
        ) {
          const reason = `acknowledged ${
            message.key.slice(0, 12)
          } as delivered without a valid proof`;
          reportMisbehaviour(this.#deps, peer.id, reason);
          break;
        }
        if (parcel.origin === "local") {
          store.later(() => store.recordHandover(message.key, peer.id, true));
        }
        recordDelivery(this.#deps, message.key, parcel, message.proof!);
        emit("parcel:handed", { key: message.key, peer: peer.id, toRecipient: true });
        this.#deps.syncAll(peer.id);
        break;
      }
      case AckStatus.STORED:
        if (parcel && !job.direct) {
          // Lost in a crash, it would only let a few more copies out.
          const copies = Math.max(1, parcel.copies - job.give);
          store.later(() => store.setCopies(message.key, copies));
        }
        // falls through
      case AckStatus.ALREADY_HELD:
        peer.refused.add(message.key); // it has it: no need to offer it again
        // Lost in a crash, the sender's app would only show "queued" until delivery.
        if (parcel?.origin === "local") {
          store.later(() => store.recordHandover(message.key, peer.id, false));
        }
        emit("parcel:handed", { key: message.key, peer: peer.id, toRecipient: false });
        break;
    }
  }
}
