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
import { Buffer } from "node:buffer";
import { createPublicKey } from "node:crypto";
import { StorageFullError } from "../durable.ts";
// `@internal` marks types of npm packages that our public API names: they are documented
// upstream, and `deno doc --lint` should not ask us to export them (denoland/deno#27364).
import {
  /** @internal */
  type Certificate,
  derSerializePublicKey,
  generateRSAKeyPair,
  getIdFromIdentityKey,
  getPublicKeyDigestHex,
  issueEndpointCertificate,
  issueGatewayCertificate,
  ParcelDeliveryVerifier,
  PrivateNodeRegistration,
  PrivateNodeRegistrationAuthorization,
  PrivateNodeRegistrationRequest,
} from "@relaycorp/relaynet-core";
import { Hono } from "hono";
import type { RefusalCode } from "../binding.ts";
import {
  errorMessage,
  MAX_PARCEL_LENGTH,
  ParcelRefusedError,
  sha256Hex,
  toArrayBuffer,
} from "../validation.ts";
import { HttpFront, type HttpFrontOptions, type HttpRefusal, pathOf } from "./http_front.ts";
import { BROWSER_REFUSAL, ParcelCollection } from "./parcel_collection.ts";
import { ContentType } from "./rs016.ts";
import type { GatewayStore } from "./store.ts";

export { CloseCode, COLLECTION_WINDOW_HEADER, ContentType } from "./rs016.ts";

/**
 * The Internet gateway address this server gives registering nodes when it has
 * none: PoWeb requires a syntactically valid domain name, and `.invalid` (RFC 2606)
 * can never resolve, so nobody mistakes it for a real Internet gateway.
 */
export const NO_INTERNET_GATEWAY = "relaymail-mesh.invalid";

/** The gateway identity that issues registered nodes' certificates. */
export interface GatewayIdentity {
  /** The gateway's private key, which signs the certificates it issues. */
  readonly privateKey: CryptoKey;
  /** The gateway's public key. */
  readonly publicKey: CryptoKey;
  /** The gateway's self-issued certificate (relaynet-core's `Certificate`). */
  readonly certificate: Certificate;
}

/** What the server does with a parcel a registered node delivered. */
export type ParcelSink = (bytes: Uint8Array, fromNodeId: string) => Promise<void>;

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

/** RS-018: node keys are RSA keys with a modulus of 2048 bits or more. */
export const MIN_RSA_MODULUS_BITS = 2048;

const COLLECTION_PATH = "/v1/parcel-collection";
const MAX_PRE_REGISTRATION_BODY = 128; // a hex SHA-256 digest, maybe with whitespace
const MAX_REGISTRATION_BODY = 1024 * 1024;
const PNRA_TTL_MS = 9_000;
/** How long `stop()` lets requests under way finish before it cuts every connection. */
const STOP_GRACE_MS = 1_000;

/**
 * Makes a gateway identity: an RSA key pair (`keyPair`, or a new one) and a
 * self-issued gateway certificate, back-dated by `backdateMs` for peers whose
 * clocks run behind.
 */
export async function makeGatewayIdentity(
  validityMs = 360 * 86_400_000,
  now = new Date(),
  backdateMs = 2 * 3_600_000,
  keyPair?: CryptoKeyPair,
): Promise<GatewayIdentity> {
  const { privateKey, publicKey } = keyPair ?? await generateRSAKeyPair();
  const certificate = await issueGatewayCertificate({
    issuerPrivateKey: privateKey,
    subjectPublicKey: publicKey,
    validityStartDate: new Date(now.getTime() - backdateMs),
    validityEndDate: new Date(now.getTime() + validityMs),
  });
  return { privateKey, publicKey, certificate };
}

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

  /** 401, as Relaycorp's gateways answer a missing or invalid countersignature. */
  #unauthenticated(reason: string): Response {
    return this.#refuse("parcel delivery", 401, reason, {
      "www-authenticate": "Awala-Countersignature",
    });
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
    const preRegister = async (request: Request) => {
      if (!contentTypeIs(request, "text/plain")) {
        return this.#refuse("pre-registration", 400, "Content type must be text/plain");
      }
      const body = await this.#readBody(request, MAX_PRE_REGISTRATION_BODY);
      if (body instanceof Response) return body;
      const digest = new TextDecoder().decode(body).trim();
      if (!/^[0-9a-f]{64}$/i.test(digest)) {
        return this.#refuse(
          "pre-registration",
          400,
          "Body must be the hex SHA-256 digest of the node's public key",
        );
      }
      const now = this.#now();
      const pnra = new PrivateNodeRegistrationAuthorization(
        new Date(now.getTime() + PNRA_TTL_MS),
        toArrayBuffer(new TextEncoder().encode(digest.toLowerCase())),
      );
      return new Response(await pnra.serialize(this.#options.identity.privateKey), {
        status: 200,
        headers: { "content-type": ContentType.PNRA },
      });
    };
    app.post("/v1/pre-registrations", (c) => preRegister(c.req.raw));
    app.post("/v1/pre-registration", (c) => preRegister(c.req.raw));
    app.post("/v1/nodes", (c) => this.#register(c.req.raw));
    app.post("/v1/parcels", (c) => this.#deliver(c.req.raw));
    app.notFound((c) => this.#refuse(c.req.path, 404, "No such PoWeb endpoint"));
    app.onError((error) => {
      this.#options.onRefusal?.("request", 500, error.message);
      return Response.json({ message: "Internal error" }, { status: 500 });
    });
  }

  async #register(request: Request): Promise<Response> {
    if (!contentTypeIs(request, ContentType.PNRR)) {
      return this.#refuse("registration", 415, `Content type must be ${ContentType.PNRR}`);
    }
    const body = await this.#readBody(request, MAX_REGISTRATION_BODY);
    if (body instanceof Response) return body;
    let pnrr: PrivateNodeRegistrationRequest;
    let pnra: PrivateNodeRegistrationAuthorization;
    try {
      pnrr = await PrivateNodeRegistrationRequest.deserialize(toArrayBuffer(body));
      pnra = await PrivateNodeRegistrationAuthorization.deserialize(
        pnrr.pnraSerialized,
        this.#options.identity.publicKey,
      );
    } catch (error) {
      return this.#refuse(
        "registration",
        400,
        `Malformed or badly signed registration request: ${errorMessage(error)}`,
      );
    }
    const bits = await rsaModulusBits(pnrr.privateNodePublicKey);
    if (bits === null) {
      return this.#refuse("registration", 400, "The node's key must be an RSA key (RS-018)");
    }
    if (bits < MIN_RSA_MODULUS_BITS) {
      return this.#refuse(
        "registration",
        400,
        `The node's RSA key must have at least ${MIN_RSA_MODULUS_BITS} bits (RS-018): ` +
          `received a ${bits}-bit key`,
      );
    }
    if (pnra.expiryDate <= this.#now()) {
      return this.#refuse("registration", 400, "The registration authorization has expired");
    }
    const keyDigest = await getPublicKeyDigestHex(pnrr.privateNodePublicKey);
    if (new TextDecoder().decode(pnra.gatewayData) !== keyDigest) {
      return this.#refuse(
        "registration",
        403,
        "The registration authorization was issued for another node",
      );
    }
    const now = this.#now().getTime();
    const identity = this.#options.identity;
    const certificate = await issueEndpointCertificate({
      issuerCertificate: identity.certificate,
      issuerPrivateKey: identity.privateKey,
      subjectPublicKey: pnrr.privateNodePublicKey,
      validityStartDate: new Date(now - 2 * 3_600_000),
      validityEndDate: new Date(now + (this.#options.certificateValidityMs ?? 180 * 86_400_000)),
    });
    const nodeId = await getIdFromIdentityKey(pnrr.privateNodePublicKey);
    this.#options.store.register(
      nodeId,
      new Uint8Array(certificate.serialize()),
      certificate.expiryDate,
    );
    this.#options.onRegistered?.(nodeId);
    const registration = new PrivateNodeRegistration(
      certificate,
      identity.certificate,
      this.#options.internetAddress ?? NO_INTERNET_GATEWAY,
    );
    return new Response(await registration.serialize(), {
      status: 200,
      headers: { "content-type": ContentType.PNR },
    });
  }

  async #deliver(request: Request): Promise<Response> {
    if (!contentTypeIs(request, ContentType.PARCEL)) {
      return this.#refuse("parcel delivery", 415, `Content type must be ${ContentType.PARCEL}`);
    }
    const authorization = request.headers.get("authorization") ?? "";
    const match = /^(?:Awala|Relaynet)-Countersignature ([A-Za-z0-9+/=]+)$/.exec(
      authorization.trim(),
    );
    if (!match) {
      return this.#unauthenticated(
        "The Awala-Countersignature authorization is missing or malformed",
      );
    }
    const body = await this.#readBody(request, MAX_PARCEL_LENGTH);
    if (body instanceof Response) return body;
    let signer: Certificate;
    try {
      signer = await new ParcelDeliveryVerifier([this.#options.identity.certificate]).verify(
        toArrayBuffer(new Uint8Array(Buffer.from(match[1], "base64"))),
        toArrayBuffer(body),
      );
    } catch (error) {
      return this.#unauthenticated(`The countersignature is invalid: ${errorMessage(error)}`);
    }
    const nodeId = await signer.calculateSubjectId();
    if (!this.#options.store.isRegistered(nodeId)) {
      return this.#refuse("parcel delivery", 403, `Node ${nodeId} is no longer registered here`);
    }
    // `accept` validates the parcel (a node must anyway, to carry it): its
    // refusal says whether it was malformed (400) or invalid (422).
    try {
      await this.#options.accept(body, nodeId);
    } catch (error) {
      if (error instanceof StorageFullError) {
        // A full disk passes: the node may deliver again later.
        return this.#refuse("parcel delivery", 503, error.message, { "retry-after": "60" });
      }
      if (!(error instanceof ParcelRefusedError)) throw error;
      const status = statusFor(error.code);
      return this.#refuse(
        "parcel delivery",
        status,
        error.message,
        status === 503 ? { "retry-after": "60" } : undefined,
      );
    }
    return new Response(null, { status: 202 });
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

/** The modulus length of an RSA key, or null if it is not an RSA key. */
async function rsaModulusBits(key: CryptoKey): Promise<number | null> {
  try {
    const spki = Buffer.from(await derSerializePublicKey(key));
    const details = createPublicKey({ key: spki, format: "der", type: "spki" })
      .asymmetricKeyDetails;
    return details?.modulusLength ?? null;
  } catch {
    return null;
  }
}

function contentTypeIs(request: Request, expected: string): boolean {
  return (request.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase() ===
    expected;
}

/**
 * RS-016 status for a refused parcel: 400 if it is not a parcel at all, 503 if it
 * may be retried later, 422 if it is well-formed but invalid (bad signature,
 * expired, not authorised by its recipient, …).
 */
function statusFor(code: RefusalCode): number {
  switch (code) {
    case "malformed":
      return 400;
    case "too-large":
      return 413;
    case "quota":
    case "rate-limited":
      return 503;
    default:
      return 422;
  }
}
