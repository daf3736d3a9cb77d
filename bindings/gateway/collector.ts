/**
 * Parcel collection for the gateway binding (./client.ts): one keep-alive
 * WebSocket to the gateway's `/v1/parcel-collection` (RS-016), kept open
 * whatever happens to the gateway. It answers the handshake, pings the gateway
 * itself (servers ping only idle sockets), recycles a socket that has brought
 * nothing for too long, and reconnects with jittered exponential backoff.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import {
  HandshakeChallenge,
  HandshakeResponse,
  MAX_RAMF_MESSAGE_LENGTH,
  ParcelCollectionHandshakeSigner,
  ParcelDelivery,
} from "@relaycorp/relaynet-core";
// @deno-types="@types/ws"
import WebSocket from "ws";
import type { ParcelNode, ParcelOrigin, ReceiveOutcome } from "../binding.ts";
import { sha256Hex, toArrayBuffer } from "../validation.ts";
import type { GatewayBindingOptions, GatewayBindingStatus } from "./types.ts";
import { CloseCode, COLLECTION_WINDOW_HEADER } from "./rs016.ts";

/** What the collector needs of the binding's options. */
export type CollectorOptions = Pick<
  GatewayBindingOptions,
  | "address"
  | "credentials"
  | "initialBackoffMs"
  | "maxBackoffMs"
  | "pingIntervalMs"
  | "recycleAfterMs"
  | "onCollected"
  | "onUnauthorized"
>;

/**
 * Keeps one keep-alive collection socket open, whatever happens to the gateway.
 * Parcels are handled one at a time, in order, and each is acknowledged once the
 * node stored it (or refused it for good: redelivery would not change that).
 */
export class ParcelCollector {
  #socket: WebSocket | null = null;
  #state: GatewayBindingStatus["collecting"] = "waiting";
  #connectedSince: Date | null = null;
  #lastError: string | null = null;
  #collected = 0;
  #backoffMs: number;
  #retry: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;
  #closed = Promise.resolve();

  constructor(
    private readonly options: CollectorOptions,
    private readonly node: ParcelNode,
    private readonly origin: ParcelOrigin,
    private readonly log: (line: string) => void,
  ) {
    this.#backoffMs = options.initialBackoffMs ?? 1000;
  }

  start(): void {
    this.#connect();
  }

  status(): Omit<GatewayBindingStatus, "delivered"> {
    return {
      collecting: this.#state,
      connectedSince: this.#connectedSince,
      lastError: this.#lastError,
      collected: this.#collected,
    };
  }

  /** Replaces the current socket with a new one, at once. */
  recycle(reason: string): void {
    if (this.#stopped) return;
    this.log(`collection socket recycled: ${reason}`);
    this.#backoffMs = this.options.initialBackoffMs ?? 1000;
    const socket = this.#socket;
    if (socket) {
      socket.terminate();
    } else {
      clearTimeout(this.#retry);
      this.#connect();
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#retry);
    this.#socket?.close(CloseCode.NORMAL, "Node stopping");
    await this.#closed;
  }

  #connect(): void {
    if (this.#stopped) return;
    this.#state = "connecting";
    const wsUrl = this.options.address.url.replace(/^http/, "ws") + "/v1/parcel-collection";
    const socket = new WebSocket(wsUrl, {
      // Each message is read on its own here, so up to five deliveries may wait.
      headers: { "X-Awala-Streaming-Mode": "keep-alive", [COLLECTION_WINDOW_HEADER]: "5" },
      maxPayload: MAX_RAMF_MESSAGE_LENGTH + 1024,
      handshakeTimeout: 15_000,
    });
    this.#socket = socket;
    const closed = Promise.withResolvers<void>();
    this.#closed = closed.promise;

    let nonce: ArrayBuffer | null = null;
    let lastFrameAt = Date.now();
    let awaitingPong = false;
    let work = Promise.resolve();
    let queued = 0;
    let ended = false;
    const pingTimer = setInterval(() => {
      if (socket.readyState !== WebSocket.OPEN) return;
      if (awaitingPong) {
        this.#lastError = "the gateway stopped answering pings";
        socket.terminate();
        return;
      }
      if (Date.now() - lastFrameAt > (this.options.recycleAfterMs ?? 300_000)) {
        this.#lastError = null;
        this.log("collection socket idle for long: replacing it");
        this.#backoffMs = 0;
        socket.close(CloseCode.NORMAL, "Recycling an idle socket");
        return;
      }
      awaitingPong = true;
      socket.ping();
    }, this.options.pingIntervalMs ?? 15_000);

    socket.on("pong", () => (awaitingPong = false));
    socket.on("message", (data: Buffer, isBinary: boolean) => {
      lastFrameAt = Date.now();
      awaitingPong = false;
      if (!isBinary) {
        socket.close(CloseCode.CANNOT_ACCEPT, "Expected binary frames");
        return;
      }
      const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
      if (nonce === null) {
        work = work.then(() => this.#answerChallenge(socket, bytes, (n) => (nonce = n)));
        return;
      }
      queued++;
      work = work.then(async () => {
        await this.#takeDelivery(socket, bytes);
        // Deferred work (receipts) is done once per burst, not once per parcel.
        if (--queued === 0) await this.node.flush?.();
      }).catch((error) => {
        this.#lastError = `collection failed: ${error?.message ?? error}`;
        socket.terminate();
      });
    });
    socket.on("error", (error: Error) => {
      this.#lastError = error.message;
    });
    socket.on("close", (code: number, reason: Buffer) => {
      if (ended) return;
      ended = true;
      clearInterval(pingTimer);
      const text = reason.toString("utf8");
      if (code === CloseCode.CANNOT_ACCEPT || code === CloseCode.VIOLATED_POLICY) {
        this.#lastError = `gateway closed the collection: ${code} ${text}`;
        this.options.onUnauthorized?.(this.#lastError);
      } else if (code !== CloseCode.NORMAL && code !== CloseCode.NO_STATUS) {
        this.#lastError ??= `collection socket closed: ${code}${text ? ` ${text}` : ""}`;
      }
      this.#socket = null;
      this.#connectedSince = null;
      this.#state = "waiting";
      work.finally(() => closed.resolve());
      if (this.#stopped) return;
      const delay = this.#backoffMs;
      this.#backoffMs = Math.min(
        Math.max(delay * 2, this.options.initialBackoffMs ?? 1000),
        this.options.maxBackoffMs ?? 60_000,
      );
      // Jitter, so that many nodes do not reconnect in step after a gateway restart.
      const jittered = delay * (0.75 + Math.random() / 2);
      if (delay > 0) this.log(`collection reconnects in ${Math.round(jittered)} ms`);
      this.#retry = setTimeout(() => this.#connect(), jittered);
    });
  }

  async #answerChallenge(
    socket: WebSocket,
    bytes: Uint8Array,
    accept: (nonce: ArrayBuffer) => void,
  ): Promise<void> {
    let challenge: HandshakeChallenge;
    try {
      challenge = HandshakeChallenge.deserialize(toArrayBuffer(bytes));
    } catch {
      this.#lastError = "the gateway sent a malformed handshake challenge";
      socket.close(CloseCode.CANNOT_ACCEPT, "Malformed handshake challenge");
      return;
    }
    const { certificate, privateKey } = await this.options.credentials();
    const signer = new ParcelCollectionHandshakeSigner(certificate, privateKey);
    const response = new HandshakeResponse([await signer.sign(challenge.nonce)]);
    accept(challenge.nonce);
    if (socket.readyState !== WebSocket.OPEN) return;
    socket.send(Buffer.from(response.serialize()));
    this.#state = "connected";
    this.#connectedSince = new Date();
    this.#lastError = null;
    this.#backoffMs = this.options.initialBackoffMs ?? 1000;
  }

  async #takeDelivery(socket: WebSocket, bytes: Uint8Array): Promise<void> {
    if (socket.readyState !== WebSocket.OPEN) return; // unacknowledged: the gateway sends it again
    let delivery: ParcelDelivery;
    try {
      delivery = ParcelDelivery.deserialize(toArrayBuffer(bytes));
    } catch {
      this.#lastError = "the gateway sent a malformed parcel delivery";
      socket.close(CloseCode.CANNOT_ACCEPT, "Malformed parcel delivery");
      return;
    }
    const parcel = new Uint8Array(delivery.parcelSerialized);
    let outcome: ReceiveOutcome;
    try {
      outcome = await this.node.receiveParcel(parcel, this.origin);
    } catch (error) {
      // The node could not decide (its storage failed): no acknowledgement, so the
      // gateway keeps the parcel; try again on a fresh socket.
      this.#lastError = `could not store a collected parcel: ${(error as Error).message}`;
      socket.close(CloseCode.SERVER_ERROR, "Could not store the parcel");
      return;
    }
    this.#collected++;
    if (socket.readyState === WebSocket.OPEN) socket.send(delivery.deliveryId);
    this.options.onCollected?.(parcel, await sha256Hex(parcel), outcome);
    if (outcome.status === "refused") {
      this.log(`collected parcel refused: ${outcome.code}: ${outcome.reason}`);
    }
  }
}
