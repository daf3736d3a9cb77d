/**
 * A framed stream: length-prefixed frames (an unsigned varint length, as
 * libp2p's `lpStream` writes them), flow control that keeps what a peer can
 * make us buffer to the frame we are reading, counters of the octets that
 * crossed it, and a watchdog that declares a stall when a read or write waits
 * while the connection moves no octet for the stall timeout.
 *
 * @module
 */
import type { Stream } from "@libp2p/interface";
import { Uint8ArrayList } from "uint8arraylist";
import { ByteQueue } from "./byte_queue.ts";
import { asError } from "./core.ts";
import { ProtocolError } from "./wire.ts";

/**
 * Octets a channel keeps unread beyond the frame being read before it pauses
 * the stream (docs/mesh-protocol.md §4.3).
 */
export const READ_AHEAD = 64 * 1024;

/**
 * The largest receive window yamux may grant a stream (its smallest allowed):
 * what a sender can have in flight when the channel pauses, and the largest
 * data frame it sends, as yamux frames as much as the window allows. Small
 * frames keep a slow link alive to the keep-alive (keepalive.ts: at 1 Mbit/s a
 * frame takes 2 s) and keep pings from waiting long behind parcels; a stream
 * still moves 256 KiB per round trip: 50 MiB/s at 5 ms (docs/mesh-protocol.md §4.3).
 */
export const MAX_STREAM_WINDOW = 256 * 1024;

/** Raised when a peer makes no progress for the stall timeout. */
export class StallError extends Error {
  /** Creates the error for a peer silent for `ms` milliseconds. */
  constructor(ms: number) {
    super(`Peer made no progress for ${ms} ms`);
    this.name = "StallError";
  }
}

/** When octets last moved on a connection, on any of its streams. */
export interface Activity {
  /** Octets arrived, or a read or write of ours ended: progress, for the stall watchdog. */
  last: number;
  /** Octets arrived from the peer: it is alive. */
  heard: number;
}

/** A frame's length prefix, once all of it has arrived. */
interface Header {
  /** Octets of the prefix. */
  readonly size: number;
  /** Octets of the frame after it. */
  readonly length: number;
}

/**
 * A framed stream: length-prefixed frames, counters of the octets that crossed
 * it, and a watchdog that declares a stall when a read or write waits while the
 * connection moves no octet for the stall timeout.
 *
 * Flow control: past the frame being read (once its length has arrived) and
 * {@linkcode READ_AHEAD} octets more, the channel pauses the stream, and a
 * paused yamux stream grants the sender no more window. What arrives meanwhile
 * (at most the window granted, {@linkcode MAX_STREAM_WINDOW}) waits in the
 * stream; resuming hands it over and grants a whole window again. So a sender
 * that ignores the protocol's own window (five parcels in flight, say) can make
 * a channel hold at most the frame being read, the read-ahead and two windows,
 * in flight or arrived.
 */
export class Channel {
  readonly #buffer = new ByteQueue();
  readonly #maxFrame: number;
  /** Octets of the largest length prefix: a longer one is an error. */
  readonly #maxPrefix: number;
  readonly #watchdog: ReturnType<typeof setInterval>;
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort: () => void;
  /** The next frame's prefix, decoded once it has arrived. */
  #header: Header | null = null;
  /** Woken when octets arrive or the stream ends. */
  #wake: PromiseWithResolvers<void> | null = null;
  /** The peer closed its side, or the stream closed. */
  #ended = false;
  /** Why the stream closed, when it failed. */
  #failure: Error | null = null;
  #pending = 0;
  #reading = 0;
  #paused = false;
  /** What arrives is dropped: the stream is ending and nothing more will be read. */
  #discarding = false;
  /** A pause or resume is under way. */
  #switching = false;
  /** Flow control must be decided again once the switch under way is done. */
  #switchAgain = false;
  bytesRead = 0;
  bytesWritten = 0;
  /** Octets that arrived on the stream so far, whole frames or not. */
  octetsSeen = 0;

  /** `signal`, when given, aborts the stream (its node is stopping, say). */
  constructor(
    readonly stream: Stream,
    maxFrame: number,
    stallMs: number,
    private readonly activity: Activity,
    onStall: (error: StallError) => void,
    signal?: AbortSignal,
  ) {
    this.#maxFrame = maxFrame;
    this.#maxPrefix = varintLength(maxFrame);
    const touch = () => (this.activity.last = Date.now());
    stream.addEventListener("message", (event) => {
      if (this.#discarding) return;
      this.#buffer.push(event.data);
      this.octetsSeen += event.data.byteLength;
      this.activity.heard = this.activity.last = Date.now();
      this.#regulate();
      this.#wakeReader();
    });
    stream.addEventListener("remoteCloseWrite", () => {
      this.#ended = true;
      this.#wakeReader();
    });
    stream.addEventListener("close", (event) => {
      clearInterval(this.#watchdog);
      this.#ended = true;
      this.#failure = (event as unknown as { error?: Error }).error ?? null;
      this.#wakeReader();
    }, { once: true });
    stream.addEventListener("drain", touch);
    this.#watchdog = setInterval(() => {
      if (this.#pending > 0 && Date.now() - this.activity.last > stallMs) {
        clearInterval(this.#watchdog);
        const error = new StallError(stallMs);
        stream.abort(error);
        onStall(error);
      }
    }, Math.max(100, Math.floor(stallMs / 4)));
    this.#signal = signal;
    this.#onAbort = () => stream.abort(asError(signal?.reason ?? "Aborted"));
    if (signal?.aborted) this.#onAbort();
    else signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  /** Octets arrived and not yet read as frames. */
  get unread(): number {
    return this.#buffer.length;
  }

  /** The next frame, or null once the peer has closed its side between frames. */
  async read(): Promise<Uint8Array | null> {
    this.#pending++;
    this.#reading++;
    try {
      for (;;) {
        const frame = this.#take();
        if (frame) return frame;
        if (this.#failure) throw this.#failure;
        if (
          this.#paused && this.stream.readStatus === "paused" && this.stream.readBufferLength > 0
        ) {
          // What arrived while paused is still in the stream: let it through first.
          this.#apply(false);
          continue;
        }
        if (this.#ended || this.stream.status !== "open") {
          if (this.#buffer.length === 0) return null;
          throw new ProtocolError(
            `Peer closed the stream inside a frame (${this.#buffer.length} octets of it)`,
          );
        }
        this.#regulate();
        this.#wake = Promise.withResolvers();
        await this.#wake.promise;
      }
    } finally {
      this.#pending--;
      this.#reading--;
      this.activity.last = Date.now();
      this.#regulate();
    }
  }

  /** The next frame; the peer closing first is an error. */
  async expect(): Promise<Uint8Array> {
    const frame = await this.read();
    if (frame === null) throw new ProtocolError("Peer closed the stream early");
    return frame;
  }

  async write(frame: Uint8Array | Uint8ArrayList): Promise<void> {
    await this.writeMany([frame]);
  }

  /** Writes several frames with one send. */
  async writeMany(frames: readonly (Uint8Array | Uint8ArrayList)[]): Promise<void> {
    this.#pending++;
    try {
      const data = new Uint8ArrayList();
      for (const frame of frames) data.append(encodeVarint(frame.byteLength), frame);
      if (!this.stream.send(data)) await drained(this.stream);
      this.bytesWritten += data.byteLength;
    } finally {
      this.#pending--;
      this.activity.last = Date.now();
    }
  }

  /**
   * Drops what arrived and all that will: the stream is ending, nothing more will
   * be read, and a peer still writing must not be held up waiting for window (it
   * would never read the ERROR that ends the stream).
   */
  discard(): void {
    this.#discarding = true;
    this.#buffer.clear();
    this.#header = null;
    this.#apply(false);
  }

  /** Stops the watchdog (it also stops when the stream closes) and forgets the signal. */
  dispose(): void {
    clearInterval(this.#watchdog);
    this.#signal?.removeEventListener("abort", this.#onAbort);
  }

  /** The next whole frame, taken from the buffer, or null while it has not all arrived. */
  #take(): Uint8Array | null {
    const header = this.#nextHeader();
    if (!header || this.#buffer.length < header.size + header.length) return null;
    const frame = this.#buffer.take(header.size, header.length);
    this.#header = null;
    this.bytesRead += header.size + header.length;
    return frame;
  }

  /** The next frame's length prefix, once it has arrived; a bad one is the peer's error. */
  #nextHeader(): Header | null {
    if (this.#header) return this.#header;
    let length = 0;
    const available = Math.min(this.#buffer.length, this.#maxPrefix);
    for (let i = 0; i < available; i++) {
      const byte = this.#buffer.at(i);
      length += (byte & 0x7f) * 2 ** (7 * i);
      if (byte < 0x80) {
        if (length > this.#maxFrame) {
          throw new ProtocolError(`Frame of ${length} octets exceeds ${this.#maxFrame}`);
        }
        return this.#header = { size: i + 1, length };
      }
    }
    if (available === this.#maxPrefix) {
      throw new ProtocolError(`Frame length prefix longer than ${this.#maxPrefix} octets`);
    }
    return null;
  }

  /** Pauses the stream past what the frame being read needs; resumes it when a read needs more. */
  #regulate(): void {
    let need = 0;
    if (this.#reading > 0) {
      try {
        const header = this.#nextHeader();
        need = header ? header.size + header.length : 0;
      } catch {
        // The read reports the bad prefix.
      }
    }
    this.#apply(!this.#discarding && this.#buffer.length > need + READ_AHEAD);
  }

  /**
   * Pauses or resumes the stream. Resuming hands us at once what the stream kept
   * while paused, and our listener may then want to pause again: that waits
   * until the resume is complete, or the stream would be paused while yamux,
   * resumed, goes on granting window.
   */
  #apply(pause: boolean): void {
    if (this.#switching) {
      this.#switchAgain = true;
      return;
    }
    if (pause === this.#paused) return;
    const status = this.stream.readStatus;
    if (status !== "readable" && status !== "paused") return;
    this.#switching = true;
    try {
      this.#paused = pause;
      if (pause) this.stream.pause();
      else this.stream.resume();
    } catch {
      // The stream closed meanwhile: what it handed over before is ours to read,
      // and its closing reaches the reader by its own event.
    } finally {
      this.#switching = false;
    }
    if (this.#switchAgain) {
      this.#switchAgain = false;
      this.#regulate();
    }
  }

  #wakeReader(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.resolve();
  }
}

/** Resolves when the stream can take more; rejects if it closes first. */
function drained(stream: Stream): Promise<void> {
  return new Promise((resolve, reject) => {
    const onDrain = () => {
      stream.removeEventListener("close", onClose);
      resolve();
    };
    const onClose = (event: Event) => {
      stream.removeEventListener("drain", onDrain);
      reject((event as unknown as { error?: Error }).error ?? new Error("The stream closed"));
    };
    stream.addEventListener("drain", onDrain, { once: true });
    stream.addEventListener("close", onClose, { once: true });
  });
}

function encodeVarint(n: number): Uint8Array {
  const out = new Uint8Array(varintLength(n));
  for (let i = 0; i < out.length; i++) {
    out[i] = (n % 0x80) | (i < out.length - 1 ? 0x80 : 0);
    n = Math.floor(n / 0x80);
  }
  return out;
}

function varintLength(n: number): number {
  let length = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    length++;
  }
  return length;
}
