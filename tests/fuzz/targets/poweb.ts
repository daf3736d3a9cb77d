/**
 * Fuzz target for the PoWeb server (bindings/gateway/poweb_server.ts). It parses
 * its request bodies inline (relaynet-core deserialisers inside its route
 * handlers), so it is fuzzed over HTTP and WebSocket: a server on 127.0.0.1 (port
 * 0) in the fuzzing worker, and mutated pre-registrations, registration requests,
 * parcel deliveries (body, countersignature) and collection handshake responses.
 *
 * Property: every HTTP answer is 2xx or 4xx, never 5xx and never none; every
 * handshake ends in the socket closing with 1000 (collected) or 1003 (refused), or
 * in a delivery on a keep-alive socket, never 1011 or silence; the server never
 * reports an internal error; and every 200 cases it still registers, accepts and
 * delivers to a real node.
 *
 * A case replays its choices from the seed, but not its octets exactly: the
 * gateway's and the nodes' RSA keys are made at setup, RSA-PSS signatures are
 * salted, and a handshake signs the socket's fresh nonce.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import {
  derSerializePublicKey,
  generateRSAKeyPair,
  HandshakeChallenge,
  HandshakeResponse,
  ParcelCollectionHandshakeSigner,
  ParcelDelivery,
  ParcelDeliverySigner,
  PrivateNodeRegistration,
  PrivateNodeRegistrationRequest,
} from "@relaycorp/relaynet-core";
import {
  CloseCode,
  ContentType,
  makeGatewayIdentity,
  PoWebServer,
} from "../../../bindings/gateway/poweb_server.ts";
import { GatewayStore } from "../../../bindings/gateway/store.ts";
import { sha256Hex, toArrayBuffer, validateParcel } from "../../../bindings/validation.ts";
import type { Target } from "../_harness.ts";
import { derNodes, hex, mutate, mutateDer, mutateText, Rng, unhex } from "../_rng.ts";
import type { Corpus } from "../make_corpus.ts";

/** How long an answer may take before it counts as none. */
const ANSWER_MS = 10_000;
/** Cases between checks that the server still serves a real node. */
const HEALTH_EVERY = 200;

interface Node {
  readonly key: NodeKey;
  readonly deliverySigner: ParcelDeliverySigner;
  readonly handshakeSigner: ParcelCollectionHandshakeSigner;
}

interface Context {
  readonly server: PoWebServer;
  readonly store: GatewayStore;
  readonly base: string;
  readonly node: Node;
  readonly nodeId: string;
  /** Internal errors the server reported (`onRefusal` with status 500). */
  readonly internalErrors: string[];
  /** A key pre-registered again and again, never registered. */
  readonly pendingKey: NodeKey;
  /**
   * A registration request of a pre-registered node, not sent, made again every
   * few seconds: its authorization (from the server) lasts 9 s.
   */
  pnrr: Uint8Array;
  pnrrMadeAt: number;
  readonly parcels: Uint8Array[];
  readonly countersignatures: Uint8Array[];
  /** A handshake response signing some other nonce (the real nonce is per socket). */
  readonly staleHandshake: Uint8Array;
  cases: number;
}

type PoWebCase =
  | { kind: "pre-registration"; contentType: string; body: string }
  | { kind: "registration"; contentType: string; body: Uint8Array }
  | {
    kind: "delivery";
    contentType: string;
    /** Countersign the body afresh (reaching the parcel's validation) or send this header. */
    authorization: "countersign" | string;
    body: Uint8Array;
  }
  | {
    kind: "handshake";
    headers: Record<string, string>;
    /** Sign the socket's nonce and mutate the response, or send these octets or text. */
    response: { sign: true; seed: number } | { frame: Uint8Array | string };
  };

/** A key pair, and its digest as pre-registration takes it. */
interface NodeKey {
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
  readonly digest: string;
}

async function nodeKey(): Promise<NodeKey> {
  const { privateKey, publicKey } = await generateRSAKeyPair();
  const digest = await sha256Hex(new Uint8Array(await derSerializePublicKey(publicKey)));
  return { privateKey, publicKey, digest };
}

/** Pre-registers `key` and returns its registration request (not sent). */
async function preRegister(base: string, key: NodeKey, signal: AbortSignal): Promise<Uint8Array> {
  const pnra = await fetch(`${base}/v1/pre-registrations`, {
    method: "POST",
    headers: { "content-type": "text/plain" },
    body: key.digest,
    signal,
  });
  if (pnra.status !== 200) throw new Error(`Pre-registration refused: ${pnra.status}`);
  const request = new PrivateNodeRegistrationRequest(key.publicKey, await pnra.arrayBuffer());
  return new Uint8Array(await request.serialize(key.privateKey));
}

async function setup(): Promise<Context> {
  const corpus: Corpus = JSON.parse(
    await Deno.readTextFile(new URL("../corpus.json", import.meta.url)),
  );
  const validAt = new Date(corpus.now);
  const store = GatewayStore.open(":memory:");
  const internalErrors: string[] = [];
  const server = new PoWebServer({
    identity: await makeGatewayIdentity(),
    store,
    hostname: "127.0.0.1",
    port: 0,
    stallTimeoutMs: 2_000,
    accept: async (bytes) => {
      await validateParcel(bytes, { now: validAt });
    },
    onRefusal: (what, status, reason) => {
      if (status >= 500 && status < 600) internalErrors.push(`${what} ${status} ${reason}`);
    },
  });
  await server.start();
  const base = `http://127.0.0.1:${server.port}`;
  const signal = AbortSignal.timeout(60_000);
  const [key, pendingKey] = await Promise.all([nodeKey(), nodeKey()]);
  const answer = await fetch(`${base}/v1/nodes`, {
    method: "POST",
    headers: { "content-type": ContentType.PNRR },
    body: (await preRegister(base, key, signal)).slice(),
    signal,
  });
  if (answer.status !== 200) throw new Error(`Registration refused: ${answer.status}`);
  const registration = await PrivateNodeRegistration.deserialize(await answer.arrayBuffer());
  const certificate = registration.privateNodeCertificate;
  const node = {
    key,
    deliverySigner: new ParcelDeliverySigner(certificate, key.privateKey),
    handshakeSigner: new ParcelCollectionHandshakeSigner(certificate, key.privateKey),
  };
  const parcels = corpus.parcels.map(unhex).filter((p) => p.length < 10_000);
  const countersignatures = await Promise.all(
    parcels.map(async (p) => new Uint8Array(await node.deliverySigner.sign(toArrayBuffer(p)))),
  );
  const staleNonce = new Uint8Array(32).fill(7).buffer;
  const staleHandshake = new Uint8Array(
    new HandshakeResponse([await node.handshakeSigner.sign(staleNonce)]).serialize(),
  );
  const context: Context = {
    server,
    store,
    base,
    node,
    nodeId: await certificate.calculateSubjectId(),
    internalErrors,
    pendingKey,
    pnrr: await preRegister(base, pendingKey, signal),
    pnrrMadeAt: Date.now(),
    parcels,
    countersignatures,
    staleHandshake,
    cases: 0,
  };
  await enqueueParcel(context);
  return context;
}

async function teardown(context: Context): Promise<void> {
  await context.server.stop();
  context.store.close();
}

const HEX = [..."0123456789abcdefABCDEF"];
/** What an HTTP header value may hold (fetch refuses the rest before sending). */
const HEADER_ALPHABET = [..."ABCXYZabcxyz0189+/=-_ :;,.\t\"'"];
const CONTENT_TYPES = [
  "text/plain",
  "text/plain; charset=utf-8",
  ContentType.PNRR,
  ContentType.PARCEL,
  "application/octet-stream",
  "",
  "TEXT/PLAIN",
  ";",
];

/** The right content type mostly, another now and then. */
function contentType(rng: Rng, right: string): string {
  return rng.chance(0.85) ? right : rng.pick(CONTENT_TYPES);
}

function derMutant(rng: Rng, bytes: Uint8Array): Uint8Array {
  if (rng.chance(0.1)) return rng.bytes(rng.size(600));
  return rng.chance(0.6)
    ? mutateDer(rng, bytes, derNodes(bytes))
    : mutate(rng, bytes, { maxGrowth: 128 });
}

const KINDS = [
  ...Array(2).fill("pre-registration"),
  ...Array(2).fill("registration"),
  ...Array(3).fill("delivery"),
  "handshake",
] as const;

function generate(rng: Rng, context: Context): PoWebCase {
  // Handshakes and countersigned deliveries cost tens of milliseconds of
  // relaynet-core each, the rest a few: weighted so the run fits CI.
  switch (rng.pick(KINDS)) {
    case "pre-registration":
      return {
        kind: "pre-registration",
        contentType: contentType(rng, "text/plain"),
        body: rng.chance(0.1)
          ? context.pendingKey.digest
          : mutateText(rng, context.pendingKey.digest, {
            alphabet: rng.chance(0.7) ? HEX : undefined,
            tokens: [" ", "\n", "\t", "0x"],
          }),
      };
    case "registration":
      return {
        kind: "registration",
        contentType: contentType(rng, ContentType.PNRR),
        body: derMutant(rng, context.pnrr),
      };
    case "delivery": {
      const which = rng.int(context.parcels.length);
      const parcel = context.parcels[which];
      const signature = context.countersignatures[which];
      const scheme = rng.pick(["Awala-Countersignature", "Relaynet-Countersignature"]);
      const roll = rng.float();
      if (roll < 0.25) {
        return {
          kind: "delivery",
          contentType: contentType(rng, ContentType.PARCEL),
          authorization: "countersign",
          body: derMutant(rng, parcel),
        };
      }
      const authorization = roll < 0.8
        ? `${scheme} ${Buffer.from(derMutant(rng, signature)).toString("base64")}`
        : mutateText(rng, `${scheme} ${Buffer.from(signature).toString("base64")}`, {
          alphabet: HEADER_ALPHABET,
          tokens: [" ", "=", "+", "/", "Bearer ", "\t"],
        }).replace(/[^\t\x20-\x7e]/g, "");
      return {
        kind: "delivery",
        contentType: contentType(rng, ContentType.PARCEL),
        authorization,
        body: parcel,
      };
    }
    default: {
      const headers: Record<string, string> = rng.chance(0.9)
        ? { "x-awala-streaming-mode": "close-upon-completion" }
        : {
          "x-relaynet-streaming-mode": rng.pick([
            "keep-alive",
            "close-upon-completion",
            "CLOSE-UPON-COMPLETION",
            "nonsense",
          ]),
        };
      const roll = rng.float();
      if (roll < 0.3) {
        return { kind: "handshake", headers, response: { sign: true, seed: rng.u32() } };
      }
      const frame = roll < 0.85
        ? derMutant(rng, context.staleHandshake)
        : rng.chance(0.5)
        ? rng.bytes(rng.size(100))
        : mutateText(rng, "ack", {});
      return { kind: "handshake", headers, response: { frame } };
    }
  }
}

/** A request's status; throws if there is none within {@linkcode ANSWER_MS}. */
async function post(
  context: Context,
  path: string,
  headers: Record<string, string>,
  body: Uint8Array | string,
) {
  let response: Response;
  try {
    response = await fetch(context.base + path, {
      method: "POST",
      headers,
      body: typeof body === "string" ? body : body.slice(),
      signal: AbortSignal.timeout(ANSWER_MS),
    });
  } catch (error) {
    throw new Error(`No answer to POST ${path}: ${error}`, { cause: error });
  }
  const text = await response.text();
  return { status: response.status, text };
}

/** How a collection went. */
interface Collection {
  /** Close code, or 0 when this side closed after a delivery on a keep-alive socket. */
  readonly code: number;
  readonly reason: string;
  readonly deliveries: number;
}

/**
 * Opens a collection socket, answers the challenge with `respond`, and says how
 * it ended. In close-upon-completion mode every parcel delivered is acknowledged
 * (and queued again); a keep-alive socket that delivered is closed by this side
 * without acknowledging. A socket that stays silent is a failure: a parcel always
 * waits for the node, so an accepted handshake delivers.
 */
async function collect(
  context: Context,
  headers: Record<string, string>,
  respond: (nonce: ArrayBuffer) => Promise<ArrayBuffer | string>,
): Promise<Collection> {
  const url = `${context.base.replace("http", "ws")}/v1/parcel-collection`;
  const keepAlive = !/close-upon-completion/i.test(Object.values(headers).join(" "));
  const socket = new WebSocket(url, { headers });
  socket.binaryType = "arraybuffer";
  const ended = Promise.withResolvers<Collection>();
  let messages = 0;
  let deliveries = 0;
  socket.onmessage = async (event) => {
    try {
      if (++messages === 1) {
        socket.send(await respond(HandshakeChallenge.deserialize(event.data).nonce));
        return;
      }
      const delivery = ParcelDelivery.deserialize(event.data);
      deliveries++;
      if (keepAlive) {
        // Not acknowledged: the parcel stays queued for the next collection.
        socket.close();
        ended.resolve({ code: 0, reason: "closed by the client after a delivery", deliveries });
      } else {
        socket.send(delivery.deliveryId);
      }
    } catch (error) {
      ended.reject(new Error(`Unexpected message ${messages} from the server: ${error}`));
    }
  };
  socket.onclose = (event) => ended.resolve({ code: event.code, reason: event.reason, deliveries });
  socket.onerror = () => {};
  const timer = setTimeout(() => {
    ended.reject(new Error(`The collection socket went silent after ${messages} messages`));
    socket.close();
  }, ANSWER_MS);
  try {
    const collection = await ended.promise;
    // Acknowledged (the server closed after taking the acknowledgement): queue it again.
    if (collection.deliveries > 0 && !keepAlive) await enqueueParcel(context);
    return collection;
  } finally {
    clearTimeout(timer);
  }
}

/** Queues the corpus's first parcel for the node. */
async function enqueueParcel(context: Context): Promise<void> {
  await context.server.enqueue(
    context.parcels[0],
    context.nodeId,
    new Date(Date.now() + 86_400_000),
  );
}

async function check(input: PoWebCase, context: Context): Promise<void> {
  if (++context.cases % HEALTH_EVERY === 0) await checkHealth(context);
  if (Date.now() - context.pnrrMadeAt > 5_000) {
    context.pnrr = await preRegister(
      context.base,
      context.pendingKey,
      AbortSignal.timeout(ANSWER_MS),
    );
    context.pnrrMadeAt = Date.now();
  }
  let outcome: string;
  let bad: boolean;
  switch (input.kind) {
    case "pre-registration":
    case "registration": {
      const path = input.kind === "registration" ? "/v1/nodes" : preRegistrationPath(input.body);
      const { status, text } = await post(
        context,
        path,
        { "content-type": input.contentType },
        input.body,
      );
      outcome = `${status} ${text.slice(0, 200)}`;
      bad = status >= 500 || status < 200;
      break;
    }
    case "delivery": {
      const authorization = input.authorization === "countersign"
        ? `Awala-Countersignature ${
          Buffer.from(await context.node.deliverySigner.sign(toArrayBuffer(input.body))).toString(
            "base64",
          )
        }`
        : input.authorization;
      const { status, text } = await post(context, "/v1/parcels", {
        "content-type": input.contentType,
        authorization,
      }, input.body);
      outcome = `${status} ${text.slice(0, 200)}`;
      bad = status >= 500 || status < 200;
      break;
    }
    case "handshake": {
      const response = input.response;
      const closure = await collect(context, input.headers, async (nonce) => {
        if (!("sign" in response)) {
          return typeof response.frame === "string"
            ? response.frame
            : toArrayBuffer(response.frame);
        }
        const signed = new Uint8Array(
          new HandshakeResponse([await context.node.handshakeSigner.sign(nonce)]).serialize(),
        );
        // Seeded apart from the case: the nonce, and so these octets, differ every run.
        const rng = new Rng(response.seed);
        return toArrayBuffer(rng.chance(0.1) ? signed : derMutant(rng, signed));
      });
      outcome = `closed ${closure.code} ${closure.reason} after ${closure.deliveries} deliveries`;
      bad = ![0, CloseCode.NORMAL, CloseCode.CANNOT_ACCEPT].includes(closure.code);
      break;
    }
  }
  if (bad) throw new Error(`Server answered ${outcome}`);
  if (context.internalErrors.length) {
    throw new Error(
      `Server reported internal errors: ${context.internalErrors.splice(0).join("; ")}`,
    );
  }
}

/** Either spelling of the pre-registration path (both are served), by the body's length. */
function preRegistrationPath(body: string): string {
  return body.length % 2 ? "/v1/pre-registrations" : "/v1/pre-registration";
}

/** The server still registers the node (again), takes its parcel and lets it collect. */
async function checkHealth(context: Context): Promise<void> {
  const pnrr = await preRegister(context.base, context.node.key, AbortSignal.timeout(ANSWER_MS));
  const { status, text } = await post(
    context,
    "/v1/nodes",
    { "content-type": ContentType.PNRR },
    pnrr,
  );
  if (status !== 200) throw new Error(`The server no longer registers nodes: ${status} ${text}`);
  const parcel = context.parcels[0];
  const delivery = await post(context, "/v1/parcels", {
    "content-type": ContentType.PARCEL,
    authorization: `Awala-Countersignature ${
      Buffer.from(context.countersignatures[0]).toString("base64")
    }`,
  }, parcel);
  // The corpus parcel is not addressed through this gateway, but is well-formed and valid.
  if (delivery.status !== 202) {
    throw new Error(`The server no longer accepts parcels: ${delivery.status} ${delivery.text}`);
  }
  const closure = await collect(
    context,
    { "x-awala-streaming-mode": "close-upon-completion" },
    async (nonce) =>
      new HandshakeResponse([await context.node.handshakeSigner.sign(nonce)]).serialize(),
  );
  if (closure.code !== CloseCode.NORMAL || closure.deliveries !== 1) {
    throw new Error(
      `The server no longer lets nodes collect: ${closure.code}, ${closure.deliveries} parcels`,
    );
  }
}

function show(input: PoWebCase): string {
  return JSON.stringify(input, (_k, v) => v instanceof Uint8Array ? `hex:${hex(v)}` : v);
}

export const targets: Target[] = [
  {
    name: "poweb-bodies",
    module: import.meta.url,
    property:
      "the PoWeb server answers mutated requests with 2xx/4xx and handshakes with 1000/1003, never 5xx, and keeps serving",
    // About 7 ms a case (relaynet-core on both sides, sockets): 10 000 take ~70 s on two idle cores.
    cases: 10_000,
    setup,
    teardown,
    generate,
    check,
    show,
  },
];
