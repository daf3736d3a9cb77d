/**
 * A framed stream: length-prefixed frames (as libp2p's `lpStream` writes them),
 * counters of the octets that crossed it, and a watchdog that declares a stall
 * when a read or write waits while the connection moves no octet for the stall
 * timeout.
 *
 * @module
 */
import type { Stream } from "@libp2p/interface";
import { type LengthPrefixedStream, lpStream } from "@libp2p/utils";
import type { Uint8ArrayList } from "uint8arraylist";
import { ProtocolError } from "./wire.ts";

/** Raised when a peer makes no progress for the stall timeout. */
export class StallError extends Error {
  /** Creates the error for a peer silent for `ms` milliseconds. */
  constructor(ms: number) {
    super(`Peer made no progress for ${ms} ms`);
    this.name = "StallError";
  }
}

/**
 * A framed stream: length-prefixed frames, counters of the octets that crossed
 * it, and a watchdog that declares a stall when a read or write waits while the
 * connection moves no octet for the stall timeout.
 */
export class Channel {
  readonly #lp: LengthPrefixedStream<Stream>;
  readonly #watchdog: ReturnType<typeof setInterval>;
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort: () => void;
  #pending = 0;
  bytesRead = 0;
  bytesWritten = 0;
  /** Octets that arrived on the stream so far, whole frames or not. */
  octetsSeen = 0;

  /** `signal`, when given, aborts the stream (its node is stopping, say). */
  constructor(
    readonly stream: Stream,
    maxFrame: number,
    stallMs: number,
    frames: number,
    private readonly activity: { last: number },
    onStall: (error: StallError) => void,
    signal?: AbortSignal,
  ) {
    this.#lp = lpStream(stream, { maxDataLength: maxFrame, maxBufferSize: maxFrame * frames + 64 });
    const touch = () => (this.activity.last = Date.now());
    stream.addEventListener("message", (event) => {
      this.octetsSeen += event.data.byteLength;
      touch();
    });
    stream.addEventListener("drain", touch);
    this.#watchdog = setInterval(() => {
      if (this.#pending > 0 && Date.now() - this.activity.last > stallMs) {
        clearInterval(this.#watchdog);
        const error = new StallError(stallMs);
        stream.abort(error);
        onStall(error);
      }
    }, Math.max(100, Math.floor(stallMs / 4)));
    stream.addEventListener("close", () => clearInterval(this.#watchdog), { once: true });
    this.#signal = signal;
    this.#onAbort = () => stream.abort(asError(signal?.reason ?? "Aborted"));
    if (signal?.aborted) this.#onAbort();
    else signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  /** The next frame, or null once the peer has closed its side. */
  async read(): Promise<Uint8Array | null> {
    this.#pending++;
    try {
      // Gathered into a buffer of our own: the chunks may be views into buffers
      // the transport reuses.
      const list = await this.#lp.read();
      const bytes = new Uint8Array(list.byteLength);
      let offset = 0;
      for (const chunk of list) {
        bytes.set(chunk, offset);
        offset += chunk.byteLength;
      }
      this.bytesRead += bytes.byteLength + varintLength(bytes.byteLength);
      return bytes;
    } catch (error) {
      if ((error as Error)?.name === "UnexpectedEOFError") return null;
      throw error;
    } finally {
      this.#pending--;
      this.activity.last = Date.now();
    }
  }

  /** The next frame; the peer closing first is an error. */
  async expect(): Promise<Uint8Array> {
    const frame = await this.read();
    if (frame === null) throw new ProtocolError("Peer closed the stream early");
    return frame;
  }

  async write(frame: Uint8Array | Uint8ArrayList): Promise<void> {
    this.#pending++;
    try {
      await this.#lp.write(frame);
      this.bytesWritten += frame.byteLength + varintLength(frame.byteLength);
    } finally {
      this.#pending--;
      this.activity.last = Date.now();
    }
  }

  /** Writes several frames with one send. */
  async writeMany(frames: readonly Uint8Array[]): Promise<void> {
    this.#pending++;
    try {
      await this.#lp.writeV([...frames]);
      for (const frame of frames) {
        this.bytesWritten += frame.byteLength + varintLength(frame.byteLength);
      }
    } finally {
      this.#pending--;
      this.activity.last = Date.now();
    }
  }

  /** Stops the watchdog (it also stops when the stream closes) and forgets the signal. */
  dispose(): void {
    clearInterval(this.#watchdog);
    this.#signal?.removeEventListener("abort", this.#onAbort);
  }
}

function asError(reason: unknown): Error {
  return reason instanceof Error ? reason : new Error(String(reason));
}

function varintLength(n: number): number {
  let length = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    length++;
  }
  return length;
}
