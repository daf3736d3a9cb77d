/**
 * Transfer (docs/mesh-protocol.md §3): the `/relaymail/mesh/parcels` protocol as
 * a service. Pushing goes through the sender (sender.ts); a peer's stream is
 * read here, five parcels at most unanswered, and its parcels are taken in
 * batches by the intake (intake.ts), hosts taking turns (fair.ts).
 *
 * @module
 */
import type { Connection, Stream } from "@libp2p/interface";
import type { ParcelFacts } from "../bindings/fast_validation.ts";
import { asError, logFailure, type Registrar, type Service } from "./core.ts";
import { FairGate } from "./fair.ts";
import { hostOf } from "./host_key.ts";
import { ParcelIntake, type ParcelMessage } from "./intake.ts";
import { endWithError, StreamSlots } from "./links.ts";
import type { Logger } from "./log.ts";
import type { NodeParts } from "./parts.ts";
import type { PostHandler, PostMessage } from "./post_intake.ts";
import type { StorageQuota } from "./quota.ts";
import type { RateLimiter } from "./rate_limit.ts";
import { ParcelSender } from "./sender.ts";
import { TaskGroup } from "./tasks.ts";
import {
  decodeTransfer,
  encodeTransfer,
  MAX_FRAME_LENGTH,
  MAX_IN_FLIGHT,
  ProtocolError,
  TRANSFER_PROTOCOL,
} from "./wire.ts";
import type { PeerState, ResolvedOptions } from "./types.ts";
import { GROUP_COMMIT_WAIT_MS, TRANSFER_RECEIVERS } from "./types.ts";

/** What {@linkcode TransferService} needs. */
export interface TransferDeps extends NodeParts {
  readonly registrar: Registrar;
  readonly quota: StorageQuota;
  /** Parcels and octets per second, per peer and per host. */
  readonly limiter: RateLimiter;
  /** Checks a parcel as RS-001 requires. */
  readonly validate: (bytes: Uint8Array) => Promise<ParcelFacts>;
  readonly options: Pick<ResolvedOptions, "stallTimeoutMs" | "initialCopies">;
  /** Takes the posts peers push, and checks again those they refuse (the channel service). */
  readonly posts: PostHandler;
  /** Schedules a reconciliation with every peer but `except` (the sync service's). */
  readonly syncAll: (except?: string) => void;
  /** Tries a failed exchange with `peer` again later (the sync service's). */
  readonly retryLater: (peer: PeerState) => void;
}

/** Moves parcels to and from peers. */
export class TransferService implements Service {
  readonly #deps: TransferDeps;
  readonly #log: Logger;
  readonly #tasks = new TaskGroup();
  readonly #sender: ParcelSender;
  readonly #intake: ParcelIntake;
  /** Transfer streams received at once, per peer, per host and in all. */
  readonly #slots = new StreamSlots(TRANSFER_RECEIVERS);
  /** Incoming batches of parcels, checked and stored by hosts in turn. */
  readonly #gate = new FairGate();

  constructor(deps: TransferDeps) {
    this.#deps = deps;
    this.#log = deps.logger;
    this.#sender = new ParcelSender({ ...deps, tasks: this.#tasks });
    this.#intake = new ParcelIntake({
      ...deps,
      initialCopies: deps.options.initialCopies,
      pushToHosts: (key, recipientId) => this.pushToHosts(key, recipientId),
    });
  }

  /** Takes peers' parcels from now on. */
  async start(): Promise<void> {
    await this.#deps.registrar.handle(
      TRANSFER_PROTOCOL,
      (stream, connection) => this.#handle(stream, connection),
      { maxInboundStreams: 4 },
    );
  }

  /**
   * Stops: no new transfer starts, and those running are aborted (their parcels
   * stay with their senders, unacknowledged) and waited for.
   */
  async stop(): Promise<void> {
    const stopping = this.#tasks.close(new Error("The node is stopping"));
    await this.#deps.registrar.unhandle(TRANSFER_PROTOCOL).catch((error) =>
      this.#log.debug("Could not unregister the protocol", { error })
    );
    await stopping;
  }

  /** Starts pushing `peer`'s queue, if it is not being pushed. */
  push(peer: PeerState): void {
    this.#sender.push(peer);
  }

  /** Sends a parcel at once to every peer that proved it hosts its recipient. */
  pushToHosts(key: string, recipientId: string): void {
    this.#sender.pushToHosts(key, recipientId);
  }

  #handle(stream: Stream, connection: Connection): Promise<void> | undefined {
    const running = this.#tasks.run((signal) => this.#receive(stream, connection, signal));
    if (!running) stream.abort(new Error("The node is stopping"));
    return running;
  }

  async #receive(stream: Stream, connection: Connection, signal: AbortSignal): Promise<void> {
    const { links, stats, options } = this.#deps;
    const from = connection.remotePeer.toString();
    const host = hostOf(connection.remoteAddr.toString());
    // The window of five parcels is enforced by not reading while five await
    // replies; what a sender writes past it waits in the channel, which then pauses
    // the stream (channel.ts).
    const channel = links.accept(stream, connection, MAX_FRAME_LENGTH, signal);
    const account = () => {
      channel.dispose();
      stats.transferBytesSent += channel.bytesWritten;
      stats.transferBytesReceived += channel.bytesRead;
    };
    const slot = this.#slots.take(from, host);
    if (!slot) {
      this.#log.debug("Transfer refused: busy", { peer: from, host });
      const message = "Busy: too many transfers at once; try again later";
      await endWithError(channel, encodeTransfer({ type: "error", message }), this.#log);
      account();
      return;
    }
    // While a parcel arrives, tell the sender now and then: its data may sit in
    // buffers for longer than the stall timeout before our acknowledgement comes.
    let reported = 0;
    const progress = setInterval(() => {
      if (channel.octetsSeen === reported) return;
      reported = channel.octetsSeen;
      channel.write(encodeTransfer({ type: "progress", received: reported % 2 ** 32 })).catch(
        (error) => this.#log.debug("Could not send PROGRESS", { peer: from, error }),
      );
    }, Math.max(250, Math.min(2000, Math.floor(options.stallTimeoutMs / 4))));
    // Frames are read as they come and taken in batches (at most the sender's
    // window), so that the parcels of a batch are committed together.
    const queue: (ParcelMessage | PostMessage)[] = [];
    /** Parcels read and not yet answered: never more than the window. */
    let unanswered = 0;
    let room = Promise.withResolvers<void>();
    let ended = false;
    /** Set once this side is done: the reader stops waiting for room. */
    let done = false;
    let failure: unknown = null;
    let arrived = Promise.withResolvers<void>();
    const reader = (async () => {
      try {
        for (;;) {
          // Past the window, nothing more is read: what a sender writes beyond it
          // waits in the channel, which pauses the stream (channel.ts).
          while (unanswered >= MAX_IN_FLIGHT && !done) {
            await room.promise;
            room = Promise.withResolvers();
          }
          if (done) break;
          const frame = await channel.read();
          if (frame === null) break;
          const message = decodeTransfer(frame);
          if (message.type !== "parcel" && message.type !== "post") {
            throw new ProtocolError(`Unexpected ${message.type} on a transfer stream`);
          }
          if (message.type === "parcel") {
            stats.parcelsReceived++;
            stats.parcelBytesReceived += message.bytes.byteLength;
          }
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
          let timer: ReturnType<typeof setTimeout> | undefined;
          await Promise.race([
            arrived.promise,
            new Promise((r) => timer = setTimeout(r, GROUP_COMMIT_WAIT_MS)),
          ]);
          clearTimeout(timer);
          arrived = Promise.withResolvers();
        }
        const batch = queue.splice(0, MAX_IN_FLIGHT);
        // Hosts take turns: one with many streams gets no more of the CPU than one.
        const leave = await this.#gate.enter(host);
        let replies;
        try {
          const parcels = batch.filter((m): m is ParcelMessage => m.type === "parcel");
          const posts = batch.filter((m): m is PostMessage => m.type === "post");
          replies = [
            ...(parcels.length > 0 ? await this.#intake.takeBatch(parcels, from, host) : []),
            ...(posts.length > 0 ? await this.#deps.posts.takePosts(posts, from, host) : []),
          ];
        } finally {
          leave();
        }
        await channel.writeMany(replies.map(encodeTransfer));
        unanswered -= batch.length;
        room.resolve();
      }
      await reader;
      if (failure !== null) throw failure;
      await stream.close().catch((error) =>
        // Every parcel was answered: a close that fails loses nothing.
        this.#log.debug("Could not close a transfer stream", { peer: from, error })
      );
    } catch (error) {
      logFailure(this.#log, signal, "Transfer from a peer failed", { peer: from, host, error });
      // The reader takes no more frames, nothing else is written, and what was read is
      // let go while the ERROR goes; the stream no longer counts against the caps.
      done = true;
      room.resolve();
      clearInterval(progress);
      queue.length = 0;
      slot.release();
      const message = asError(error).message;
      await endWithError(channel, encodeTransfer({ type: "error", message }), this.#log);
    } finally {
      done = true;
      room.resolve();
      clearInterval(progress);
      // The stream is closed or aborted by now: the reader ends.
      await reader;
      slot.release();
      account();
    }
  }
}
