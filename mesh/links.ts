/**
 * The streams a node's protocols run on: opening and accepting them as framed
 * channels whose stall detection watches the whole connection, and counting the
 * ones answered against per-peer, per-host and total caps
 * (docs/mesh-protocol.md §1 and §4.2).
 *
 * @module
 */
import type { Connection, PeerId, Stream } from "@libp2p/interface";
import { type Activity, Channel } from "./channel.ts";
import type { Logger } from "./log.ts";
import { ProtocolError } from "./wire.ts";

/** What {@linkcode Links} needs. */
export interface LinksDeps {
  /** The open connections to a peer (libp2p's `getConnections`). */
  readonly connections: (peer: PeerId) => Connection[];
  /** A connection on which no octet moves for this long while a stream waits is dead. */
  readonly stallTimeoutMs: number;
  readonly logger: Logger;
}

/** Opens and accepts framed streams. */
export class Links {
  /** When octets last moved on each connection, whatever the stream. */
  readonly #activity = new WeakMap<Connection, Activity>();

  constructor(private readonly deps: LinksDeps) {}

  /**
   * Opens a stream to a peer on its current connection, with a framed channel;
   * `signal` aborts the opening and, later, the stream.
   */
  async open(
    peer: PeerId,
    protocol: string,
    maxFrame: number,
    signal: AbortSignal,
  ): Promise<Channel> {
    const connection = this.deps.connections(peer)[0];
    if (!connection) throw new ProtocolError("Not connected");
    const stream = await connection.newStream(protocol, {
      signal: AbortSignal.any([AbortSignal.timeout(this.deps.stallTimeoutMs * 3), signal]),
    });
    return this.accept(stream, connection, maxFrame, signal);
  }

  /** When a frame last arrived on `connection`, on any mesh stream (0: never). */
  heardAt(connection: Connection): number {
    return this.#activity.get(connection)?.heard ?? 0;
  }

  /**
   * A framed channel over a stream whose frames are at most `maxFrame` octets,
   * flow-controlled (see {@linkcode Channel}). Octets moving on any stream of the connection
   * count as progress (a small exchange may wait behind a large parcel); a
   * connection with no progress at all for the stall timeout is dead: it is
   * closed, and the peer is dialled again or rediscovered. `signal` aborts the
   * stream.
   */
  accept(
    stream: Stream,
    connection: Connection,
    maxFrame: number,
    signal: AbortSignal,
  ): Channel {
    let activity = this.#activity.get(connection);
    if (!activity) {
      activity = { last: Date.now(), heard: 0 };
      this.#activity.set(connection, activity);
    }
    return new Channel(stream, maxFrame, this.deps.stallTimeoutMs, activity, (error) => {
      this.deps.logger.warn("Closing a stalled connection", {
        peer: connection.remotePeer.toString(),
        error,
      });
      connection.abort(error);
    }, signal);
  }
}

/** Caps on streams answered at once: from one peer, one remote host, and in all. */
export interface StreamLimits {
  readonly perPeer: number;
  readonly perHost: number;
  readonly total: number;
}

/** Counts the streams of one protocol being answered, against {@linkcode StreamLimits}. */
export class StreamSlots {
  readonly #counts = new Map<string, number>();

  constructor(private readonly limits: StreamLimits) {}

  /** A slot for a stream from `peer` at `host`, or null when a cap is reached. */
  take(peer: string, host: string): { release(): void } | null {
    const counts = this.#counts;
    const keys = [`peer:${peer}`, `host:${host}`, "total"];
    const caps = [this.limits.perPeer, this.limits.perHost, this.limits.total];
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
}

/** How long a peer has to take our ERROR and close its side, before the stream is reset. */
const END_GRACE_MS = 2_000;

/**
 * Ends a stream with an ERROR frame (a refusal over our caps, or what was wrong
 * with what the peer sent): the ERROR, then our side closed, so that the ERROR
 * reaches the peer (sent just before a reset, it may be dropped with the reset).
 * Meanwhile what the peer sends is dropped unread, so that a peer still writing
 * is not held up by flow control and gets to read the ERROR. A peer that has not
 * taken the ERROR and closed its side within 2 s each is reset.
 */
export async function endWithError(
  channel: Channel,
  error: Uint8Array,
  logger: Logger,
): Promise<void> {
  const stream = channel.stream;
  channel.discard();
  try {
    await within(END_GRACE_MS, "take the ERROR", channel.write(error));
    await stream.close({ signal: AbortSignal.timeout(END_GRACE_MS) });
    await within(END_GRACE_MS, "close its side", peerClosed(stream));
  } catch (failure) {
    logger.debug("A stream ended with ERROR did not close in time: reset", { error: failure });
    stream.abort(new Error("Ended with ERROR"));
  }
}

/** Resolves once the peer has closed its side of `stream` (or the stream has closed). */
function peerClosed(stream: Stream): Promise<void> {
  if (stream.remoteWriteStatus !== "writable" || stream.status !== "open") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      stream.removeEventListener("remoteCloseWrite", done);
      stream.removeEventListener("close", done);
      resolve();
    };
    stream.addEventListener("remoteCloseWrite", done);
    stream.addEventListener("close", done);
  });
}

/** `promise`, or a rejection naming what the peer did not do within `ms`. */
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`The peer did not ${what} within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
