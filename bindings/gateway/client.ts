/**
 * The gateway binding: a node talks PoWeb (RS-016) to an Awala gateway, either
 * the private gateway on its own machine (Awala Desktop listens on
 * 127.0.0.1:13276) or a Relaymail node serving PoWeb as an upstream gateway.
 *
 * Registration and parcel delivery use Relaycorp's own client
 * (`@relaycorp/relaynet-poweb`), which works under Deno. Parcel collection does
 * not: that client cannot be told to drop a socket that is up but has stopped
 * delivering (the failure Awala clients are known for), and it drops healthy
 * sockets on busy transfers, because its only liveness check is the server's
 * pings, which servers send only when the line is idle. So collection is ours,
 * on the `ws` package: it pings the gateway itself, recycles a socket that has
 * been silent for too long, and reconnects with exponential backoff.
 *
 * @module
 */
import { Buffer } from "node:buffer";
// `@internal` marks types of npm packages that our public API names: they are documented
// upstream, and `deno doc --lint` should not ask us to export them (denoland/deno#27364).
import {
  /** @internal */
  type Certificate,
  HandshakeChallenge,
  HandshakeResponse,
  MAX_RAMF_MESSAGE_LENGTH,
  ParcelCollectionHandshakeSigner,
  ParcelDelivery,
  ParcelDeliverySigner,
  /** @internal */
  PrivateNodeRegistration,
  PrivateNodeRegistrationRequest,
} from "@relaycorp/relaynet-core";
import { ParcelDeliveryError, PoWebClient, RefusedParcelError } from "@relaycorp/relaynet-poweb";
// @deno-types="@types/ws"
import WebSocket from "ws";
import type { OutgoingParcel, ParcelNode, ReceiveOutcome } from "../binding.ts";
import { sha256Hex, toArrayBuffer } from "../validation.ts";
import { CloseCode, COLLECTION_WINDOW_HEADER } from "./rs016.ts";

/** Name of this binding in handovers and refusal logs. */
export const GATEWAY = "gateway";

/** Where a PoWeb server is, parsed from a URL such as `http://127.0.0.1:13276`. */
export interface PoWebAddress {
  /** Host name or IP address (an IPv6 address without its brackets). */
  readonly host: string;
  /** TCP port (default 80, or 443 with TLS). */
  readonly port: number;
  /** Whether to speak HTTPS (an `https:` URL). */
  readonly tls: boolean;
  /** The URL in its canonical form, without `/v1`. */
  readonly url: string;
}

/** Parses a PoWeb URL (`http[s]://host[:port][/v1]`); throws a clear error when it is not one. */
export function parsePoWebUrl(text: string): PoWebAddress {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new TypeError(`Not a PoWeb URL: "${text}" (expected e.g. http://127.0.0.1:13276)`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new TypeError(`A PoWeb URL starts with http:// or https://, not "${url.protocol}//"`);
  }
  if (!/^\/?(v1\/?)?$/.test(url.pathname) || url.search || url.hash || url.username) {
    throw new TypeError(`A PoWeb URL has no path, query or credentials: "${text}"`);
  }
  const tls = url.protocol === "https:";
  const port = url.port ? Number(url.port) : tls ? 443 : 80;
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  return { host, port, tls, url: `${url.protocol}//${url.host}` };
}

/** Relaycorp's client for `address`: the library only offers TLS to hosts other than 127.0.0.1. */
export function poWebClient(address: PoWebAddress, timeoutMs = 10_000): PoWebClient {
  const Client = PoWebClient as unknown as new (
    host: string,
    port: number,
    tls: boolean,
    timeoutMs: number,
  ) => PoWebClient;
  return new Client(address.host, address.port, address.tls, timeoutMs);
}

/**
 * Registers a private node with the gateway at `address`: pre-registration, then
 * registration, as RS-016 describes. Returns the node's gateway-issued
 * certificate, the gateway's certificate and its Internet gateway address.
 */
export async function registerWithGateway(
  address: PoWebAddress,
  keyPair: CryptoKeyPair,
): Promise<PrivateNodeRegistration> {
  const client = poWebClient(address);
  const authorization = await client.preRegisterNode(keyPair.publicKey);
  const request = new PrivateNodeRegistrationRequest(keyPair.publicKey, authorization);
  return await client.registerNode(await request.serialize(keyPair.privateKey));
}

/** The node's standing with its gateway: its gateway-issued certificate and key. */
export interface GatewayCredentials {
  /** The node's certificate, issued by the gateway (relaynet-core's `Certificate`). */
  readonly certificate: Certificate;
  /** The node's private key, whose public key that certificate holds. */
  readonly privateKey: CryptoKey;
}

/** Options of {@linkcode attachGateway}. */
export interface GatewayBindingOptions {
  /** The gateway. */
  readonly address: PoWebAddress;
  /** The node's current credentials (they change when the registration is renewed). */
  readonly credentials: () => Promise<GatewayCredentials>;
  /**
   * How long a parcel waits for the other bindings before it goes to the gateway,
   * in ms from when it was queued (e.g. 0 when no mesh peer is known).
   */
  readonly delayMs: (parcel: OutgoingParcel) => number;
  /** How often to look for parcels that became due, in ms (default 5000). */
  readonly pollIntervalMs?: number;
  /** Collection: first reconnection delay (default 1000 ms), doubled up to `maxBackoffMs`. */
  readonly initialBackoffMs?: number;
  /** Collection: longest reconnection delay (default 60 000 ms). */
  readonly maxBackoffMs?: number;
  /** Collection: how often to ping the gateway (default 15 000 ms). */
  readonly pingIntervalMs?: number;
  /**
   * Collection: a socket that brought nothing for this long is replaced by a fresh
   * one (default 300 000 ms): it may be up but no longer delivering.
   */
  readonly recycleAfterMs?: number;
  /** Told about every parcel collected and what the node did with it. */
  readonly onCollected?: (bytes: Uint8Array, key: string, outcome: ReceiveOutcome) => void;
  /** Told when the gateway says the node is not (or no longer) registered. */
  readonly onUnauthorized?: (reason: string) => void;
  /** Where diagnostics go. */
  readonly log?: (line: string) => void;
}

/** What the gateway binding is doing, for status displays. */
export interface GatewayBindingStatus {
  /** State of the collection socket: `waiting` is between attempts to connect. */
  readonly collecting: "connecting" | "connected" | "waiting";
  /** When the collection socket came up, or null while it is not. */
  readonly connectedSince: Date | null;
  /** Why collection last failed; null once a collection socket is up again. */
  readonly lastError: string | null;
  /** Parcels delivered to the gateway since the node was joined to it. */
  readonly delivered: number;
  /** Parcels collected from the gateway since the node was joined to it. */
  readonly collected: number;
}

/** A node joined to its gateway. */
export interface GatewayBinding {
  /** Delivers every outgoing parcel that is due; returns how many went. */
  pump(): Promise<number>;
  /** What it is doing. */
  status(): GatewayBindingStatus;
  /** Drops the collection socket and reconnects at once (e.g. after re-registering). */
  reconnect(): void;
  /** Stops delivering and collecting. */
  stop(): Promise<void>;
}

/**
 * Joins `node` to a gateway: outgoing parcels that no other binding delivered in
 * time are delivered to it, and parcels for the node are collected from it and
 * acknowledged only once the node has stored them.
 */
export function attachGateway(node: ParcelNode, options: GatewayBindingOptions): GatewayBinding {
  const log = options.log ?? (() => {});
  const client = poWebClient(options.address);
  const refused = new Set<string>();
  let delivered = 0;
  let stopped = false;
  let pumping: Promise<number> | null = null;
  let wake: ReturnType<typeof setTimeout> | undefined;

  const pumpOnce = async (): Promise<number> => {
    let sent = 0;
    let nextDue = Infinity;
    const now = Date.now();
    let signer: ParcelDeliverySigner | undefined;
    for (const parcel of await node.outgoingParcels({ includeHandedOver: true })) {
      if (stopped) break;
      if (parcel.handedTo.includes(GATEWAY) || refused.has(parcel.key)) continue;
      const due = parcel.queuedAt.getTime() + options.delayMs(parcel);
      if (due > now) {
        nextDue = Math.min(nextDue, due);
        continue;
      }
      const bytes = await parcel.read();
      if (!bytes) continue;
      if (!signer) {
        const { certificate, privateKey } = await options.credentials();
        signer = new ParcelDeliverySigner(certificate, privateKey);
      }
      try {
        await client.deliverParcel(toArrayBuffer(bytes), signer);
      } catch (error) {
        if (error instanceof RefusedParcelError) {
          // Refused for good (422): the other bindings may still carry it.
          refused.add(parcel.key);
          log(`gateway refused parcel ${parcel.key.slice(0, 12)}: ${(error as Error).message}`);
          continue;
        }
        if (error instanceof ParcelDeliveryError && /HTTP 40[13]/.test(error.message)) {
          options.onUnauthorized?.(error.message);
        }
        throw error;
      }
      await node.parcelHandedOver(parcel.key, {
        binding: GATEWAY,
        hop: options.address.url,
        toRecipient: false,
      });
      delivered++;
      sent++;
    }
    clearTimeout(wake);
    if (nextDue < Infinity && !stopped) {
      wake = setTimeout(() => pump().catch(() => {}), Math.max(0, nextDue - Date.now()) + 10);
    }
    return sent;
  };
  const pump = () => {
    pumping ??= pumpOnce().finally(() => (pumping = null));
    return pumping;
  };
  const interval = setInterval(
    () => pump().catch((e) => log(`delivery to the gateway failed: ${e.message}`)),
    options.pollIntervalMs ?? 5000,
  );

  const collector = new ParcelCollector(options, node, log);
  collector.start();

  return {
    pump,
    status: () => ({ ...collector.status(), delivered }),
    reconnect: () => collector.recycle("reconnection requested"),
    async stop() {
      stopped = true;
      clearInterval(interval);
      clearTimeout(wake);
      await pumping?.catch(() => {});
      await collector.stop();
    },
  };
}

/**
 * Keeps one keep-alive collection socket open, whatever happens to the gateway.
 * Parcels are handled one at a time, in order, and each is acknowledged once the
 * node stored it (or refused it for good: redelivery would not change that).
 */
class ParcelCollector {
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
    private readonly options: GatewayBindingOptions,
    private readonly node: ParcelNode,
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
      outcome = await this.node.receiveParcel(parcel, {
        binding: GATEWAY,
        hop: this.options.address.url,
      });
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
