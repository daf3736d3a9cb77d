/**
 * Parcel collection over PoWeb (RS-016): the WebSocket at `/v1/parcel-collection`.
 * The handshake is checked as RFC 6455 §4.2.1 asks before the upgrade, so a
 * malformed one gets a 4xx saying what is wrong; then the server sends a nonce,
 * the client signs it for each of its nodes, and parcels go out while
 * acknowledgements come in.
 *
 * @module
 */
import type { Buffer } from "node:buffer";
import type http from "node:http";
import type { Duplex } from "node:stream";
import {
  type Certificate,
  HandshakeChallenge,
  HandshakeResponse,
  ParcelCollectionHandshakeVerifier,
  ParcelDelivery,
} from "@relaycorp/relaynet-core";
// @deno-types="@types/ws"
import { type WebSocket, WebSocketServer } from "ws";
import { errorMessage, toArrayBuffer } from "../validation.ts";
import type { HttpRefusal } from "./http_front.ts";
import { CloseCode, COLLECTION_WINDOW_HEADER } from "./rs016.ts";
import type { GatewayStore } from "./store.ts";

/** RS-000: at most five parcels in flight awaiting acknowledgement per connection. */
export const MAX_COLLECTION_WINDOW = 5;

/** Handshake responses (a signature per node) and acknowledgements are all a client sends. */
const MAX_CLIENT_MESSAGE = 1024 * 1024;

/** What {@linkcode ParcelCollection} needs. */
export interface ParcelCollectionOptions {
  /** The certificate that issued the certificates of the nodes that may collect. */
  readonly gatewayCertificate: Certificate;
  readonly store: GatewayStore;
  /** Calls `wake` whenever a parcel is queued for one of `nodeIds`; returns the unsubscriber. */
  readonly subscribe: (nodeIds: readonly string[], wake: () => void) => () => void;
  /** A client that does not answer the challenge for this long is cut off (default 15 000 ms). */
  readonly handshakeTimeoutMs?: number;
  /**
   * How often every socket is pinged, busy or idle (default 3 000 ms:
   * Relaycorp's client drops a socket that got no ping for 7 s). A socket from
   * which nothing, not even a pong, came for three intervals is dropped.
   */
  readonly pingIntervalMs?: number;
  /** Called on every refusal, for logs. */
  readonly onRefusal?: (what: string, status: number, reason: string) => void;
}

/** The parcel-collection endpoint and its open sockets. */
export class ParcelCollection {
  readonly #options: ParcelCollectionOptions;
  readonly #webSockets = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    maxPayload: MAX_CLIENT_MESSAGE,
  });
  readonly #sockets = new Set<WebSocket>();

  constructor(options: ParcelCollectionOptions) {
    this.#options = options;
  }

  /**
   * Takes a WebSocket handshake and its connection, or returns the refusal to
   * answer: 403 from a Web browser (an `Origin` header), a 4xx from
   * {@linkcode handshakeProblem} otherwise.
   */
  upgrade(incoming: http.IncomingMessage, socket: Duplex, head: Buffer): HttpRefusal | null {
    const fromBrowser = incoming.headers.origin !== undefined;
    const problem = handshakeProblem(incoming);
    if (problem) return fromBrowser ? BROWSER_REFUSAL : problem;
    const mode = header(incoming, "x-awala-streaming-mode") ??
      header(incoming, "x-relaynet-streaming-mode") ?? "keep-alive";
    const window = collectionWindow(header(incoming, COLLECTION_WINDOW_HEADER));
    this.#webSockets.handleUpgrade(incoming, socket, head, (webSocket) => {
      webSocket.binaryType = "arraybuffer";
      if (fromBrowser) {
        // Refused as a WebSocket, so that a page's script sees why.
        this.#options.onRefusal?.("parcel collection", CloseCode.VIOLATED_POLICY, "Origin header");
        webSocket.close(CloseCode.VIOLATED_POLICY, "Web browsers are not allowed");
        return;
      }
      this.#sockets.add(webSocket);
      webSocket.once("close", () => this.#sockets.delete(webSocket));
      new CollectionSession(webSocket, {
        closeWhenDone: mode.toLowerCase() === "close-upon-completion",
        window,
        options: this.#options,
      }).run();
    });
    return null;
  }

  /** The refusal for a request to the endpoint that is no upgrade at all. */
  refusalOf(incoming: http.IncomingMessage): HttpRefusal {
    if (incoming.headers.origin !== undefined) return BROWSER_REFUSAL;
    return handshakeProblem(incoming) ?? { status: 400, reason: "Not a WebSocket handshake" };
  }

  /** Closes every socket with 4000, which tells clients to try again. */
  closeAll(reason: string): void {
    for (const socket of this.#sockets) {
      try {
        socket.close(CloseCode.TRY_AGAIN, reason);
      } catch { /* already closing */ }
    }
  }
}

/** What {@linkcode CollectionSession} needs besides its socket. */
interface SessionOptions {
  /** Close once the queue is empty and every delivery acknowledged (close-upon-completion). */
  readonly closeWhenDone: boolean;
  /** Deliveries sent ahead of their acknowledgement, 1 to {@linkcode MAX_COLLECTION_WINDOW}. */
  readonly window: number;
  readonly options: ParcelCollectionOptions;
}

/**
 * One parcel-collection WebSocket: handshake, then parcels out, acknowledgements
 * in, and a ping every few seconds whatever the traffic.
 *
 * A client gets one delivery at a time unless it asked for more (see
 * {@linkcode COLLECTION_WINDOW_HEADER}): the next goes once the last one is
 * acknowledged. Relaycorp's client reads frames through a byte stream, which
 * joins the frames that wait unread into one chunk, of which it parses the first
 * delivery only; with one frame in flight there is never a second one waiting.
 */
class CollectionSession {
  readonly #sent = new Set<string>();
  #nodeIds: string[] = [];
  #state: "challenged" | "verifying" | "collecting" = "challenged";
  #unsubscribe: () => void = () => {};
  /** Pings sent since the client was last heard from. */
  #unanswered = 0;

  constructor(private readonly socket: WebSocket, private readonly session: SessionOptions) {}

  run(): void {
    const options = this.session.options;
    const nonce = crypto.getRandomValues(new Uint8Array(new ArrayBuffer(32)));
    const handshakeTimer = setTimeout(
      () => this.#close(CloseCode.CANNOT_ACCEPT, "No handshake response"),
      options.handshakeTimeoutMs ?? 15_000,
    );
    const pingEvery = options.pingIntervalMs ?? 3_000;
    const pinger = setInterval(() => this.#ping(pingEvery), pingEvery);
    this.socket.on("pong", () => (this.#unanswered = 0));
    this.socket.on("message", (data: ArrayBuffer, isBinary: boolean) => {
      this.#unanswered = 0;
      if (this.#state === "challenged") clearTimeout(handshakeTimer);
      this.#take(data, isBinary, nonce);
    });
    this.socket.on("error", () => {/* a close event follows */});
    this.socket.on("close", () => {
      clearTimeout(handshakeTimer);
      clearInterval(pinger);
      this.#unsubscribe();
    });
    this.socket.send(new HandshakeChallenge(nonce.buffer).serialize());
  }

  #take(data: ArrayBuffer, isBinary: boolean, nonce: Uint8Array<ArrayBuffer>): void {
    switch (this.#state) {
      case "challenged":
        this.#state = "verifying";
        void this.#handshake(isBinary ? data : null, nonce);
        return;
      case "verifying":
        this.#close(CloseCode.CANNOT_ACCEPT, "Sent more before the handshake was verified");
        return;
      case "collecting": {
        const deliveryId = isBinary ? null : new TextDecoder().decode(data);
        if (deliveryId === null || !this.#sent.has(deliveryId)) {
          this.#close(CloseCode.CANNOT_ACCEPT, "Unknown or malformed acknowledgement");
          return;
        }
        this.session.options.store.acknowledge(deliveryId);
        this.#sent.delete(deliveryId);
        this.#pump();
      }
    }
  }

  async #handshake(data: ArrayBuffer | null, nonce: Uint8Array<ArrayBuffer>): Promise<void> {
    const options = this.session.options;
    try {
      if (data === null) throw new Error("The handshake response must be binary");
      const response = HandshakeResponse.deserialize(data);
      if (response.nonceSignatures.length === 0) throw new Error("No nonce signature");
      const verifier = new ParcelCollectionHandshakeVerifier([options.gatewayCertificate]);
      const ids = [];
      for (const signature of response.nonceSignatures) {
        const certificate = await verifier.verify(signature, nonce.buffer);
        ids.push(await certificate.calculateSubjectId());
      }
      if (!this.#open()) return; // the server may be stopping: its store with it
      // A valid signature is not enough: the registration must still stand.
      const unregistered = ids.filter((id) => !options.store.isRegistered(id));
      if (unregistered.length > 0) {
        throw new Error(`Node ${unregistered[0]} is not registered here`);
      }
      this.#nodeIds = [...new Set(ids)];
    } catch (error) {
      options.onRefusal?.("parcel collection", CloseCode.CANNOT_ACCEPT, errorMessage(error));
      this.#close(CloseCode.CANNOT_ACCEPT, "Invalid handshake response");
      return;
    }
    this.#state = "collecting";
    this.#unsubscribe = options.subscribe(this.#nodeIds, () => this.#pump());
    this.#pump();
  }

  #pump(): void {
    if (!this.#open()) return;
    const room = this.session.window - this.#sent.size;
    if (room <= 0) return; // the next acknowledgement makes room
    const waiting = this.session.options.store.waiting(this.#nodeIds, this.#sent, room);
    for (const parcel of waiting) {
      this.#sent.add(parcel.deliveryId);
      this.socket.send(
        new ParcelDelivery(parcel.deliveryId, toArrayBuffer(parcel.bytes)).serialize(),
      );
    }
    if (this.session.closeWhenDone && waiting.length === 0 && this.#sent.size === 0) {
      this.#close(CloseCode.NORMAL, "All parcels collected");
    }
  }

  /**
   * Pings, busy or idle; drops a client that answered none of the last three
   * pings. Counted in pings rather than measured in time, so that a late timer
   * on a busy machine never drops a client before its third ping.
   */
  #ping(intervalMs: number): void {
    if (!this.#open()) return;
    if (this.#unanswered >= 3) {
      this.session.options.onRefusal?.(
        "parcel collection",
        1006,
        `The client answered none of 3 pings, sent every ${intervalMs} ms`,
      );
      this.socket.terminate();
      return;
    }
    this.#unanswered++;
    this.socket.ping();
  }

  #open(): boolean {
    return this.socket.readyState === this.socket.OPEN;
  }

  #close(code: number, reason: string): void {
    try {
      this.socket.close(code, reason);
    } catch { /* already closed */ }
  }
}

/** RS-016: no CORS; a Web page must not reach a private gateway. */
export const BROWSER_REFUSAL: HttpRefusal = {
  status: 403,
  reason: "Requests from Web browsers (with an Origin header) are refused",
};

/**
 * What makes `incoming` something other than the WebSocket opening handshake of
 * RFC 6455 §4.2.1, or null if it is one: 405 for a method other than GET, 426
 * (naming what to send) without `Upgrade: websocket` or without version 13, and
 * 400 for the rest.
 */
export function handshakeProblem(incoming: http.IncomingMessage): HttpRefusal | null {
  if (incoming.method !== "GET") {
    return {
      status: 405,
      reason: `Parcel collection is a WebSocket opened with GET, not ${incoming.method}`,
      headers: { allow: "GET" },
    };
  }
  if (incoming.httpVersion !== "1.1") {
    return {
      status: 400,
      reason: `A WebSocket handshake needs HTTP/1.1, not ${incoming.httpVersion}`,
    };
  }
  if (!incoming.headers.host) return { status: 400, reason: "The Host header is missing" };
  if (!tokens(incoming.headers.upgrade).includes("websocket")) {
    return {
      status: 426,
      reason:
        "Parcel collection needs a WebSocket: send Upgrade: websocket and Connection: Upgrade",
      headers: { upgrade: "websocket", connection: "Upgrade" },
    };
  }
  const connection = incoming.headers.connection;
  if (!tokens(connection).includes("upgrade")) {
    return {
      status: 400,
      reason: connection === undefined
        ? "The Connection header is missing: a WebSocket handshake sends Connection: Upgrade"
        : `The Connection header must include Upgrade: received "${connection}"`,
    };
  }
  const key = header(incoming, "sec-websocket-key");
  if (key === undefined) return { status: 400, reason: "The Sec-WebSocket-Key header is missing" };
  if (!/^[A-Za-z0-9+/]{21}[AQgw]==$/.test(key.trim())) {
    return {
      status: 400,
      reason: `The Sec-WebSocket-Key header must be 16 octets in base64: received "${key}"`,
    };
  }
  const version = header(incoming, "sec-websocket-version");
  if (version?.trim() !== "13") {
    return {
      status: 426,
      reason: version === undefined
        ? "The Sec-WebSocket-Version header is missing: this server speaks version 13"
        : `WebSocket version ${version} is not supported: this server speaks version 13`,
      headers: { "sec-websocket-version": "13" },
    };
  }
  return null;
}

/** A header's value; repeated headers are joined with commas. */
function header(incoming: http.IncomingMessage, name: string): string | undefined {
  const value = incoming.headers[name];
  return Array.isArray(value) ? value.join(", ") : value;
}

/** The lower-cased tokens of a comma-separated header such as `Connection`. */
function tokens(value: string | string[] | undefined): string[] {
  return [value ?? ""].flat().join(",").split(",").map((t) => t.trim().toLowerCase());
}

/** The window a collector asked for in {@linkcode COLLECTION_WINDOW_HEADER}: 1 unless it did. */
function collectionWindow(value: string | undefined): number {
  const asked = Number(value);
  return Number.isInteger(asked) && asked >= 1 ? Math.min(asked, MAX_COLLECTION_WINDOW) : 1;
}
