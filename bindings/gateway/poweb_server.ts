/**
 * A PoWeb server (RS-016): this node acting as the private gateway of Awala
 * endpoints, or as the upstream gateway of remote Relaymail nodes. Endpoints
 * register (the node's gateway identity issues their certificates), deliver
 * parcels, and collect the parcels addressed to them over a WebSocket
 * (./parcel_collection.ts). It serves through ./http_front.ts, which bounds
 * request heads, idle connections and connections per address.
 *
 * The reference client (`@relaycorp/relaynet-poweb`) is the wire reference where
 * it differs from the specification's prose, so both spellings are accepted:
 * `/pre-registrations` and `/pre-registration`, `Relaynet-Countersignature` and
 * `Awala-Countersignature`, `X-Relaynet-Streaming-Mode` and `X-Awala-Streaming-Mode`.
 *
 * @module
 */
import { Hono } from "hono";
import { MAX_PARCEL_LENGTH, sha256Hex } from "../validation.ts";
import { HttpFront, type HttpFrontOptions, type HttpRefusal, pathOf } from "./http_front.ts";
import type { GatewayIdentity } from "./identity.ts";
import { BROWSER_REFUSAL, ParcelCollection } from "./parcel_collection.ts";
import { countersignatureOf, type ParcelSink, takeDelivery } from "./parcel_delivery.ts";
import {
  MAX_PRE_REGISTRATION_BODY,
  MAX_REGISTRATION_BODY,
  preRegister,
  register,
  type RegistrationOptions,
} from "./registration.ts";
import { ContentType } from "./rs016.ts";
import type { GatewayStore } from "./store.ts";

// The server's vocabulary, importable from here as before the split.
export { type GatewayIdentity, makeGatewayIdentity } from "./identity.ts";
export type { ParcelSink } from "./parcel_delivery.ts";
export { MIN_RSA_MODULUS_BITS, NO_INTERNET_GATEWAY } from "./registration.ts";
export { CloseCode, COLLECTION_WINDOW_HEADER, ContentType } from "./rs016.ts";

/**
 * Options of {@linkcode PoWebServer}. The limits of its HTTP front (request heads,
 * idle connections, connections per address) are those of {@linkcode HttpFrontOptions}.
 */
export interface PoWebServerOptions extends
  Pick<
    HttpFrontOptions,
    | "headersTimeoutMs"
    | "requestTimeoutMs"
    | "idleTimeoutMs"
    | "maxConnectionsPerAddress"
    | "maxConnections"
  > {
  /** The gateway identity that issues registered nodes' certificates. */
  readonly identity: GatewayIdentity;
  /** Where registrations and the parcels waiting for collection are kept. */
  readonly store: GatewayStore;
  /**
   * Takes a delivered parcel: validates it (the server does not), then stores or
   * forwards it; throws {@linkcode ParcelRefusedError} to refuse it.
   */
  readonly accept: ParcelSink;
  /** Address to listen on (default 127.0.0.1: loopback only). */
  readonly hostname?: string;
  /** Port (default 13276, RS-016's for private gateways without privileges). */
  readonly port?: number;
  /**
   * The Internet gateway address given to registered nodes (default
   * {@linkcode NO_INTERNET_GATEWAY}: this node reaches the world through the mesh).
   */
  readonly internetAddress?: string;
  /** Lifetime of the certificates issued to nodes (default 180 days, capped by the gateway's). */
  readonly certificateValidityMs?: number;
  /**
   * A client that stops sending a request body, or that does not answer the
   * collection handshake, for this long is cut off (default 15 000 ms).
   */
  readonly stallTimeoutMs?: number;
  /**
   * How often every collection socket is pinged, busy or idle (default 3 000 ms:
   * Relaycorp's client drops a socket that got no ping for 7 s). A socket from
   * which nothing, not even a pong, came for three intervals is dropped.
   */
  readonly pingIntervalMs?: number;
  /** The clock (default: the machine's). */
  readonly now?: () => Date;
  /** Called on every refused request, for logs. */
  readonly onRefusal?: (what: string, status: number, reason: string) => void;
  /** Called when a node registers (or registers again). */
  readonly onRegistered?: (nodeId: string) => void;
}

const COLLECTION_PATH = "/v1/parcel-collection";
/** How long `stop()` lets requests under way finish before it cuts every connection. */
const STOP_GRACE_MS = 1_000;

/** A running PoWeb server. */
export class PoWebServer {
  readonly #options: PoWebServerOptions;
  readonly #app = new Hono();
  readonly #collection: ParcelCollection;
  #front: HttpFront | null = null;
  readonly #listeners = new Map<string, Set<() => void>>();

  /** Sets up the server; it listens once {@linkcode PoWebServer.start} is called. */
  constructor(options: PoWebServerOptions) {
    this.#options = options;
    this.#collection = new ParcelCollection({
      gatewayCertificate: options.identity.certificate,
      store: options.store,
      subscribe: (nodeIds, wake) => this.subscribe(nodeIds, wake),
      handshakeTimeoutMs: options.stallTimeoutMs,
      pingIntervalMs: options.pingIntervalMs,
      onRefusal: options.onRefusal,
    });
    this.#routes();
  }

  /** Starts listening. Throws `Deno.errors.AddrInUse` if the port is taken. */
  async start(): Promise<void> {
    const options = this.#options;
    this.#front = await HttpFront.listen({
      hostname: options.hostname ?? "127.0.0.1",
      port: options.port ?? 13276,
      headersTimeoutMs: options.headersTimeoutMs,
      requestTimeoutMs: options.requestTimeoutMs,
      idleTimeoutMs: options.idleTimeoutMs,
      maxConnectionsPerAddress: options.maxConnectionsPerAddress,
      maxConnections: options.maxConnections,
      onRefusal: options.onRefusal,
    }, {
      fetch: (request, incoming) =>
        pathOf(incoming.url) === COLLECTION_PATH
          ? this.#refuseWith("parcel collection", this.#collection.refusalOf(incoming))
          : this.#app.fetch(request),
      upgrade: (incoming, socket, head) =>
        pathOf(incoming.url) === COLLECTION_PATH
          ? this.#collection.upgrade(incoming, socket, head)
          : incoming.headers.origin !== undefined
          ? BROWSER_REFUSAL
          : { status: 404, reason: "No such PoWeb endpoint" },
    });
  }

  /** The PoWeb URL clients are given, e.g. `http://127.0.0.1:13276` (the API is under `/v1`). */
  get url(): string {
    const { address, port } = this.#listening().address;
    const host = address.includes(":") ? `[${address}]` : address;
    return `http://${host}:${port}`;
  }

  /** The port it listens on. */
  get port(): number {
    return this.#listening().address.port;
  }

  #listening(): HttpFront {
    if (!this.#front) throw new Error("The PoWeb server is not running");
    return this.#front;
  }

  /**
   * Stops listening and closes collection sockets (they may try again). Requests
   * under way get {@linkcode STOP_GRACE_MS} to finish; then every connection is cut.
   */
  async stop(): Promise<void> {
    const front = this.#front;
    if (!front) return;
    this.#front = null;
    this.#collection.closeAll("Server stopping");
    await front.close(STOP_GRACE_MS);
  }

  /** Whether a node is registered here. */
  isRegistered(nodeId: string): boolean {
    return this.#options.store.isRegistered(nodeId);
  }

  /**
   * Queues a parcel for a registered node's collection (committed when this
   * returns) and wakes its collection sockets. `key`, its hex SHA-256, is
   * computed when not given.
   */
  async enqueue(
    bytes: Uint8Array,
    recipientId: string,
    expiresAt: Date,
    key?: string,
  ): Promise<void> {
    this.#options.store.enqueue(recipientId, key ?? await sha256Hex(bytes), bytes, expiresAt);
    for (const wake of this.#listeners.get(recipientId) ?? []) wake();
  }

  /** Calls `wake` whenever a parcel is queued for one of `nodeIds`; returns the unsubscriber. */
  subscribe(nodeIds: readonly string[], wake: () => void): () => void {
    for (const id of nodeIds) {
      const set = this.#listeners.get(id) ?? new Set();
      set.add(wake);
      this.#listeners.set(id, set);
    }
    return () => {
      for (const id of nodeIds) this.#listeners.get(id)?.delete(wake);
    };
  }

  #refuse(what: string, status: number, reason: string, headers?: HeadersInit): Response {
    this.#options.onRefusal?.(what, status, reason);
    return Response.json({ message: reason }, { status, headers });
  }

  #refuseWith(what: string, refusal: HttpRefusal): Response {
    return this.#refuse(what, refusal.status, refusal.reason, refusal.headers);
  }

  /** The response of a handler, or its refusal (logged). */
  #answer(what: string, result: Response | HttpRefusal): Response {
    return result instanceof Response ? result : this.#refuseWith(what, result);
  }

  #routes(): void {
    const app = this.#app;
    // RS-016: no CORS; a Web page must not reach a private gateway.
    app.use("*", async (c, next) => {
      if (c.req.header("origin") !== undefined) {
        return this.#refuseWith(c.req.path, BROWSER_REFUSAL);
      }
      await next();
    });
    app.post("/v1/pre-registrations", (c) => this.#preRegister(c.req.raw));
    app.post("/v1/pre-registration", (c) => this.#preRegister(c.req.raw));
    app.post("/v1/nodes", (c) => this.#register(c.req.raw));
    app.post("/v1/parcels", (c) => this.#deliver(c.req.raw));
    app.notFound((c) => this.#refuse(c.req.path, 404, "No such PoWeb endpoint"));
    app.onError((error) => {
      this.#options.onRefusal?.("request", 500, error.message);
      return Response.json({ message: "Internal error" }, { status: 500 });
    });
  }

  async #preRegister(request: Request): Promise<Response> {
    if (!contentTypeIs(request, "text/plain")) {
      return this.#refuse("pre-registration", 400, "Content type must be text/plain");
    }
    const body = await this.#readBody(request, MAX_PRE_REGISTRATION_BODY);
    if (body instanceof Response) return body;
    return this.#answer("pre-registration", await preRegister(body, this.#registration()));
  }

  async #register(request: Request): Promise<Response> {
    if (!contentTypeIs(request, ContentType.PNRR)) {
      return this.#refuse("registration", 415, `Content type must be ${ContentType.PNRR}`);
    }
    const body = await this.#readBody(request, MAX_REGISTRATION_BODY);
    if (body instanceof Response) return body;
    return this.#answer("registration", await register(body, this.#registration()));
  }

  #registration(): RegistrationOptions {
    const options = this.#options;
    return {
      identity: options.identity,
      store: options.store,
      internetAddress: options.internetAddress,
      certificateValidityMs: options.certificateValidityMs,
      now: () => this.#now(),
      onRegistered: options.onRegistered,
    };
  }

  async #deliver(request: Request): Promise<Response> {
    if (!contentTypeIs(request, ContentType.PARCEL)) {
      return this.#refuse("parcel delivery", 415, `Content type must be ${ContentType.PARCEL}`);
    }
    const countersignature = countersignatureOf(request.headers.get("authorization"));
    if (!(countersignature instanceof Uint8Array)) {
      return this.#refuseWith("parcel delivery", countersignature);
    }
    const body = await this.#readBody(request, MAX_PARCEL_LENGTH);
    if (body instanceof Response) return body;
    const refusal = await takeDelivery(countersignature, body, {
      gatewayCertificate: this.#options.identity.certificate,
      store: this.#options.store,
      accept: this.#options.accept,
    });
    return refusal
      ? this.#refuseWith("parcel delivery", refusal)
      : new Response(null, { status: 202 });
  }

  /**
   * Reads a body of at most `limit` octets, giving up on a client that stalls.
   * When it gives up, the rest of the body is left unread: the response then
   * closes the connection.
   */
  async #readBody(request: Request, limit: number): Promise<Uint8Array | Response> {
    const declared = Number(request.headers.get("content-length") ?? "0");
    if (declared > limit) {
      return this.#refuse("request", 413, `Body exceeds ${limit} octets: declared ${declared}`);
    }
    const reader = request.body?.getReader();
    if (!reader) return new Uint8Array();
    const chunks: Uint8Array[] = [];
    let length = 0;
    const stall = this.#options.stallTimeoutMs ?? 15_000;
    try {
      for (;;) {
        const timer = Promise.withResolvers<never>();
        const timeout = setTimeout(() => timer.reject(new Error("stalled")), stall);
        let result: ReadableStreamReadResult<Uint8Array>;
        try {
          result = await Promise.race([reader.read(), timer.promise]);
        } finally {
          clearTimeout(timeout);
        }
        if (result.done) break;
        length += result.value.byteLength;
        if (length > limit) return this.#refuse("request", 413, `Body exceeds ${limit} octets`);
        chunks.push(result.value);
      }
    } catch {
      return this.#refuse("request", 408, `The client sent nothing for ${stall} ms`);
    }
    const body = new Uint8Array(length);
    let offset = 0;
    for (const chunk of chunks) {
      body.set(chunk, offset);
      offset += chunk.byteLength;
    }
    return body;
  }

  #now(): Date {
    return this.#options.now?.() ?? new Date();
  }
}

function contentTypeIs(request: Request, expected: string): boolean {
  return (request.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase() ===
    expected;
}
