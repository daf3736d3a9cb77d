/**
 * Helpers for the PoWeb server tests: a gateway on a loopback port with a clock
 * the test moves, nodes registered through Relaycorp's own client, real parcels,
 * and raw HTTP and WebSocket clients for the requests that client never sends.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import {
  type Certificate,
  generateRSAKeyPair,
  getIdFromIdentityKey,
  HandshakeChallenge,
  HandshakeResponse,
  issueDeliveryAuthorization,
  issueEndpointCertificate,
  Parcel,
  ParcelCollectionHandshakeSigner,
  ParcelDeliverySigner,
  type PrivateNodeRegistration,
  PrivateNodeRegistrationRequest,
  type StreamingMode,
} from "@relaycorp/relaynet-core";
import { PoWebClient } from "@relaycorp/relaynet-poweb";
import {
  ContentType,
  type GatewayIdentity,
  makeGatewayIdentity,
  PoWebServer,
  type PoWebServerOptions,
} from "../../bindings/gateway/poweb_server.ts";
import { GatewayStore } from "../../bindings/gateway/store.ts";
import { toArrayBuffer, validateParcel } from "../../bindings/validation.ts";

export const MINUTE = 60_000;
export { HOUR, TestClock } from "../helpers.ts";
import { HOUR, TestClock } from "../helpers.ts";

/**
 * How long a helper waits for something that should happen at once before it
 * gives up, so that a broken server fails the test instead of hanging it. Not a
 * speed requirement: loopback answers take milliseconds.
 */
export const SAFETY_MS = 10_000;

let sharedIdentity: Promise<GatewayIdentity> | undefined;
let strangerIdentity: Promise<GatewayIdentity> | undefined;

/** The gateway identity of every test server (an RSA key pair is slow to make). */
export function gatewayIdentity(): Promise<GatewayIdentity> {
  return sharedIdentity ??= makeGatewayIdentity();
}

/** Another gateway's identity, which the test servers do not trust. */
export function otherGatewayIdentity(): Promise<GatewayIdentity> {
  return strangerIdentity ??= makeGatewayIdentity();
}

/** What a test server's `accept` callback took. */
export interface AcceptedParcel {
  readonly bytes: Uint8Array;
  readonly fromNodeId: string;
}

/** Options of {@linkcode withGateway}: each defaults to the server's own. */
export type TestGatewayOptions = Pick<
  PoWebServerOptions,
  | "stallTimeoutMs"
  | "certificateValidityMs"
  | "headersTimeoutMs"
  | "idleTimeoutMs"
  | "maxConnectionsPerAddress"
  | "maxConnections"
  | "pingIntervalMs"
>;

/** A PoWeb server on a loopback port, with its store, clock and a client for it. */
export interface TestGateway {
  readonly server: PoWebServer;
  readonly store: GatewayStore;
  readonly identity: GatewayIdentity;
  readonly clock: TestClock;
  readonly client: PoWebClient;
  /** Parcels the `accept` callback took, in order. */
  readonly accepted: AcceptedParcel[];
  /** Refusals the server reported, as `status reason`. */
  readonly refusals: string[];
}

/**
 * Runs `test` against a fresh server, then stops the server and closes its store.
 * The server's `accept` validates each parcel as a real node does, letting its
 * {@linkcode ParcelRefusedError} through.
 */
export async function withGateway(
  options: TestGatewayOptions,
  test: (gateway: TestGateway) => Promise<void>,
): Promise<void> {
  const clock = new TestClock();
  const identity = await gatewayIdentity();
  const store = GatewayStore.open(":memory:", clock.now);
  const accepted: AcceptedParcel[] = [];
  const refusals: string[] = [];
  const server = new PoWebServer({
    identity,
    store,
    hostname: "127.0.0.1",
    port: 0,
    now: clock.now,
    ...options,
    async accept(bytes, fromNodeId) {
      await validateParcel(bytes, { now: clock.now() });
      accepted.push({ bytes: bytes.slice(), fromNodeId });
    },
    onRefusal: (_what, status, reason) => refusals.push(`${status} ${reason}`),
  });
  try {
    await server.start();
    const client = PoWebClient.initLocal(server.port);
    await test({ server, store, identity, clock, client, accepted, refusals });
  } finally {
    try {
      await server.stop();
    } finally {
      store.close();
    }
  }
}

/** A private node registered with a test gateway. */
export interface RegisteredNode {
  readonly nodeId: string;
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
  readonly registration: PrivateNodeRegistration;
  readonly certificate: Certificate;
  readonly deliverySigner: ParcelDeliverySigner;
  readonly handshakeSigner: ParcelCollectionHandshakeSigner;
}

/** Registers a new node through Relaycorp's client, as an Awala endpoint would. */
export async function registerNode(gateway: TestGateway): Promise<RegisteredNode> {
  const { privateKey, publicKey } = await generateRSAKeyPair();
  const pnra = await gateway.client.preRegisterNode(publicKey);
  const pnrr = new PrivateNodeRegistrationRequest(publicKey, pnra);
  const registration = await gateway.client.registerNode(await pnrr.serialize(privateKey));
  const certificate = registration.privateNodeCertificate;
  return {
    nodeId: await getIdFromIdentityKey(publicKey),
    privateKey,
    publicKey,
    registration,
    certificate,
    deliverySigner: new ParcelDeliverySigner(certificate, privateKey),
    handshakeSigner: new ParcelCollectionHandshakeSigner(certificate, privateKey),
  };
}

/** A key pair with a certificate issued by `issuer` (a gateway the server may not trust). */
export async function certifiedKey(
  issuer?: GatewayIdentity,
): Promise<{ privateKey: CryptoKey; certificate: Certificate }> {
  const { privateKey, publicKey } = await generateRSAKeyPair();
  const certificate = await issueEndpointCertificate({
    issuerCertificate: issuer?.certificate,
    issuerPrivateKey: issuer?.privateKey ?? privateKey,
    subjectPublicKey: publicKey,
    validityStartDate: new Date(Date.now() - HOUR),
    validityEndDate: new Date(Date.now() + 24 * HOUR),
  });
  return { privateKey, certificate };
}

interface Party {
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
  readonly certificate: Certificate;
}

let parties: Promise<{ recipient: Party; stranger: Party; sender: CryptoKeyPair }> | undefined;

async function selfIssued(): Promise<Party> {
  const { privateKey, publicKey } = await generateRSAKeyPair();
  const certificate = await issueEndpointCertificate({
    issuerPrivateKey: privateKey,
    subjectPublicKey: publicKey,
    validityStartDate: new Date(Date.now() - HOUR),
    validityEndDate: new Date(Date.now() + 30 * 24 * HOUR),
  });
  return { privateKey, publicKey, certificate };
}

/** Options of {@linkcode makeParcel}. */
export interface MakeParcelOptions {
  /** Default: one minute ago. */
  readonly creationDate?: Date;
  /** Default: one day. */
  readonly ttlSeconds?: number;
  /**
   * Who issues the sender's PDA: its recipient (default), or a stranger, which
   * leaves the sender unauthorised by the recipient.
   */
  readonly pdaIssuer?: "recipient" | "stranger";
}

/** A serialised parcel and the facts a test checks it against. */
export interface TestParcel {
  readonly bytes: Uint8Array;
  readonly payload: Uint8Array;
  readonly recipientId: string;
  readonly expiresAt: Date;
}

/**
 * A real parcel: a recipient with a self-issued endpoint certificate authorised
 * the sender with a PDA, and the sender signed the parcel.
 */
export async function makeParcel(options: MakeParcelOptions = {}): Promise<TestParcel> {
  parties ??= (async () => ({
    recipient: await selfIssued(),
    stranger: await selfIssued(),
    sender: await generateRSAKeyPair(),
  }))();
  const { recipient, stranger, sender } = await parties;
  const issuer = options.pdaIssuer === "stranger" ? stranger : recipient;
  const pda = await issueDeliveryAuthorization({
    issuerCertificate: issuer.certificate,
    issuerPrivateKey: issuer.privateKey,
    subjectPublicKey: sender.publicKey,
    validityStartDate: new Date(Date.now() - 2 * HOUR),
    validityEndDate: new Date(Date.now() + 7 * 24 * HOUR),
  });
  const recipientId = await getIdFromIdentityKey(recipient.publicKey);
  const payload = crypto.getRandomValues(new Uint8Array(64));
  const parcel = new Parcel({ id: recipientId }, pda, Buffer.from(payload), {
    creationDate: options.creationDate ?? new Date(Date.now() - MINUTE),
    ttl: options.ttlSeconds ?? 86_400,
    senderCaCertificateChain: [recipient.certificate],
  });
  return {
    bytes: new Uint8Array(await parcel.serialize(sender.privateKey)),
    payload,
    recipientId,
    expiresAt: parcel.expiryDate,
  };
}

/** The `Authorization` header value countersigning `body` with `signer`. */
export async function countersignature(
  signer: ParcelDeliverySigner,
  body: Uint8Array,
  scheme = "Awala-Countersignature",
): Promise<string> {
  const signature = await signer.sign(toArrayBuffer(body));
  return `${scheme} ${Buffer.from(signature).toString("base64")}`;
}

/** A response read in full. */
export interface TestResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Uint8Array;
}

/** The base URL of the PoWeb API, `http://127.0.0.1:<port>/v1`. */
export function apiUrl(gateway: TestGateway, scheme = "http"): string {
  return `${scheme}://127.0.0.1:${gateway.server.port}/v1`;
}

/** POSTs `body` to `path` (under `/v1`) and reads the whole response. */
export async function post(
  gateway: TestGateway,
  path: string,
  body: Uint8Array | string,
  headers: Record<string, string>,
): Promise<TestResponse> {
  const response = await fetch(apiUrl(gateway) + path, {
    method: "POST",
    headers,
    body: typeof body === "string" ? body : body.slice(),
  });
  return {
    status: response.status,
    headers: response.headers,
    body: new Uint8Array(await response.arrayBuffer()),
  };
}

/** Delivers a parcel by plain HTTP, countersigned by `node` unless `authorization` is given. */
export async function postParcel(
  gateway: TestGateway,
  bytes: Uint8Array,
  node: RegisteredNode,
  authorization?: string,
): Promise<TestResponse> {
  return await post(gateway, "/parcels", bytes, {
    "content-type": ContentType.PARCEL,
    authorization: authorization ?? await countersignature(node.deliverySigner, bytes),
  });
}

/** What came back on a raw TCP connection. */
export type RawOutcome =
  | { readonly kind: "response"; readonly status: number; readonly head: string }
  | { readonly kind: "closed" }
  | { readonly kind: "no answer" };

/**
 * Sends raw octets on a new TCP connection and reads the response head, the
 * connection's closure, or nothing within {@linkcode SAFETY_MS}. The connection is
 * left open after the octets, as a client that stalls leaves it.
 */
export async function rawExchange(port: number, ...parts: Uint8Array[]): Promise<RawOutcome> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port, transport: "tcp" });
  let gaveUp = false;
  const safety = setTimeout(() => {
    gaveUp = true;
    conn.close();
  }, SAFETY_MS);
  try {
    for (const part of parts) {
      for (let written = 0; written < part.length;) {
        written += await conn.write(part.subarray(written));
      }
    }
    let received = "";
    const buffer = new Uint8Array(4096);
    const decoder = new TextDecoder();
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) return received === "" ? { kind: "closed" } : headOf(received);
      received += decoder.decode(buffer.subarray(0, n), { stream: true });
      if (received.includes("\r\n\r\n")) return headOf(received);
    }
  } catch (error) {
    if (gaveUp) return { kind: "no answer" };
    // Reset by the server: it hung up on us.
    if (error instanceof Deno.errors.ConnectionReset || error instanceof Deno.errors.BrokenPipe) {
      return { kind: "closed" };
    }
    throw error;
  } finally {
    clearTimeout(safety);
    if (!gaveUp) conn.close();
  }
}

function headOf(received: string): RawOutcome {
  const head = received.split("\r\n\r\n")[0];
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1]);
  return Number.isNaN(status) ? { kind: "closed" } : { kind: "response", status, head };
}

/** A message or the socket's closure, whichever comes first. */
export type SocketEvent =
  | { readonly kind: "message"; readonly data: ArrayBuffer | string }
  | { readonly kind: "close"; readonly code: number; readonly reason: string }
  | { readonly kind: "timeout" };

/** A plain WebSocket to `/v1/parcel-collection`, read one event at a time. */
export class CollectionSocket {
  readonly #socket: WebSocket;
  readonly #messages: (ArrayBuffer | string)[] = [];
  #closure: { code: number; reason: string } | null = null;
  #wake: (() => void) | null = null;
  readonly #closed = Promise.withResolvers<void>();

  private constructor(socket: WebSocket) {
    this.#socket = socket;
    socket.binaryType = "arraybuffer";
    socket.onmessage = (event) => {
      this.#messages.push(event.data);
      this.#wake?.();
    };
    socket.onclose = (event) => {
      this.#closure = { code: event.code, reason: event.reason };
      this.#closed.resolve();
      this.#wake?.();
    };
    socket.onerror = () => {/* a close event follows */};
  }

  /** Opens a collection socket with these handshake headers. */
  static open(gateway: TestGateway, headers: Record<string, string> = {}): CollectionSocket {
    const url = `${apiUrl(gateway, "ws")}/parcel-collection`;
    return new CollectionSocket(new WebSocket(url, { headers }));
  }

  /** The next message, or the closure once every message was read, or a timeout after `waitMs`. */
  async next(waitMs = SAFETY_MS): Promise<SocketEvent> {
    const deadline = Date.now() + waitMs;
    while (this.#messages.length === 0 && this.#closure === null) {
      const left = deadline - Date.now();
      if (left <= 0) return { kind: "timeout" };
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
      this.#wake = null;
    }
    const data = this.#messages.shift();
    if (data !== undefined) return { kind: "message", data };
    return { kind: "close", ...this.#closure! };
  }

  /** Reads the handshake challenge and answers it with `signers`' nonce signatures. */
  async handshake(...signers: ParcelCollectionHandshakeSigner[]): Promise<void> {
    const event = await this.next();
    if (event.kind !== "message" || typeof event.data === "string") {
      throw new Error(`Expected a handshake challenge, got ${JSON.stringify(event)}`);
    }
    const challenge = HandshakeChallenge.deserialize(event.data);
    const signatures = await Promise.all(signers.map((s) => s.sign(challenge.nonce)));
    this.send(new HandshakeResponse(signatures).serialize());
  }

  send(data: ArrayBuffer | string): void {
    this.#socket.send(data);
  }

  /** Closes the socket (if the server has not) and waits until it is closed. */
  async close(): Promise<void> {
    if (this.#closure === null) {
      try {
        this.#socket.close(1000);
      } catch { /* closing already */ }
    }
    await this.#closed.promise;
  }
}

/** Options of {@linkcode collectWithClient}. */
export interface CollectOptions {
  /** Whether to acknowledge each parcel (default true). */
  readonly ack?: boolean;
  /** Stop after this many parcels (default: when the server closes). */
  readonly stopAfter?: number;
  readonly onHandshake?: () => void;
}

/**
 * Collects parcels for `node` with Relaycorp's client and returns their bytes. If
 * the collection has not ended after {@linkcode SAFETY_MS}, the server is stopped
 * so that the client gives up and the test fails instead of hanging.
 */
export async function collectWithClient(
  gateway: TestGateway,
  node: RegisteredNode,
  mode: StreamingMode,
  options: CollectOptions = {},
): Promise<Uint8Array[]> {
  const collected: Uint8Array[] = [];
  let hung = false;
  const safety = setTimeout(() => {
    hung = true;
    void gateway.server.stop();
  }, SAFETY_MS);
  try {
    const collections = gateway.client.collectParcels(
      [node.handshakeSigner],
      mode,
      options.onHandshake,
    );
    for await (const collection of collections) {
      collected.push(new Uint8Array(collection.parcelSerialized));
      if (options.ack ?? true) await collection.ack();
      if (collected.length === options.stopAfter) break;
    }
  } finally {
    clearTimeout(safety);
  }
  if (hung) throw new Error(`The collection did not end within ${SAFETY_MS} ms`);
  return collected;
}
