/**
 * Attack benchmark helper: one attacking process flooding a mesh node, over
 * loopback only, from the source addresses it is given (127.x.y.z; Linux routes
 * all of 127/8 to `lo`). Kinds of flood:
 *
 * - `parcels`: a Sybil swarm (many peer ids on each source address) pushing
 *   valid self-authorised parcels as fast as the node answers, five in flight
 *   per stream as the protocol allows. The parcels are distinct (each its own
 *   parcel id and signature, made beforehand: `signedCopies` in
 *   _attack_parcels.ts): sent in turn, again while the node refuses them for
 *   now (rate limits, full shares), never again once it stored them. Each
 *   costs the node a full validation and, stored, room in its shares;
 * - `variants`: the same swarm pushing re-encodings of a few signed parcels
 *   (`variant` in _attack_parcels.ts): every one is new octet for octet, so the
 *   node validates it, then answers "already held" (it keeps one parcel per
 *   sender and parcel id). CPU, and no storage;
 * - `window`: re-encodings ignoring the window: PARCEL frames written without
 *   waiting for answers, only for the transport's own back-pressure;
 * - `sync`: reconciliations that never converge: HELLO claiming 100 000 items,
 *   then random coded symbols, as many a frame as a SYMBOLS message may carry,
 *   until the node gives up on the stream; then again;
 * - `proofs`: tombstone poisoning: reconciliations listing random "delivered"
 *   items, followed by PROOFS of random delivery proofs for them;
 * - `handshake`: TCP connections that never finish Noise (half a multistream
 *   header, then silence), one per source address, reopened when the node
 *   closes them.
 *
 * Usage: deno run -A _attack_flood.ts '<JSON of FloodConfig>'
 *
 * Prints `{"type":"ready",...}` once its first connections are up, the same
 * counters as `{"type":"stats",...}` for each `stats` line on stdin, and exits
 * when stdin closes.
 */
import "../../app/_quiet.ts";
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import type { Stream } from "@libp2p/interface";
import { tcp } from "@libp2p/tcp";
import { lpStream } from "@libp2p/utils";
import { multiaddr } from "@multiformats/multiaddr";
import { createLibp2p, type Libp2p } from "libp2p";
import { createHash } from "node:crypto";
import net from "node:net";
import {
  AckStatus,
  decodeSync,
  decodeTransfer,
  encodeParcelFrame,
  encodeSync,
  MAX_FRAME_LENGTH,
  MAX_IN_FLIGHT,
  MAX_PROOFS_PER_MESSAGE,
  MAX_SYNC_FRAME_LENGTH,
  PROTOCOL_VERSION,
  SYNC_PROTOCOL,
  TRANSFER_PROTOCOL,
} from "../../mesh/wire.ts";
import { MAX_SYMBOLS_PER_FRAME } from "../../mesh/types.ts";
import { readParcels, variant } from "./_attack_parcels.ts";

/** What to flood, from where. */
export interface FloodConfig {
  readonly kind: "parcels" | "variants" | "window" | "sync" | "proofs" | "handshake";
  /** The node's multiaddr, with its peer id. */
  readonly target: string;
  /** Loopback addresses to connect from. */
  readonly sources: string[];
  /** Peer ids per source address (not for `handshake`). */
  readonly peersPerSource?: number;
  /** Streams each peer id keeps open (the node refuses those over its limits). */
  readonly streamsPerPeer?: number;
  /** Signed parcels: sent as they are (`parcels`) or re-cut (`variants`, `window`). */
  readonly parcelsFile?: string;
  /** Use only the first n parcels of the file (default all). */
  readonly parcelsUsed?: number;
}

const SYMBOL_LENGTH = 37 + 12;
const ITEM_LENGTH = 37;
/** As many coded symbols as a SYMBOLS message may carry (more is refused at once). */
const SYMBOLS_PER_FRAME = Math.min(
  MAX_SYMBOLS_PER_FRAME,
  Math.floor((MAX_SYNC_FRAME_LENGTH - 16) / SYMBOL_LENGTH),
);
/** A claimed item count that gives the node's decoder its largest allowance. */
const CLAIMED_ITEMS = 100_000;
/** Random delivery proofs per PROOFS message. */
const PROOFS_PER_ROUND = MAX_PROOFS_PER_MESSAGE;

const config = JSON.parse(Deno.args[0]) as FloodConfig;
/** Flood kinds that push parcels (all but `window` within the window). */
const PUSHING = ["parcels", "variants", "window"];
const counters = {
  peers: 0,
  streams: 0,
  streamErrors: 0,
  busy: 0,
  framesSent: 0,
  octetsSent: 0,
  stored: 0,
  held: 0,
  /** Distinct parcels (`parcels`) not stored by the node yet. */
  fresh: 0,
  /** Times the `parcels` flood went through its whole supply. */
  passes: 0,
  refused: {} as Record<string, number>,
  syncRounds: 0,
  proofsSent: 0,
  connects: 0,
  closedByTarget: 0,
};
let running = true;

function say(message: Record<string, unknown>): void {
  console.log(JSON.stringify({ ...message, ...counters }));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function randomBytes(n: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(n);
  for (let offset = 0; offset < n; offset += 65_536) {
    crypto.getRandomValues(out.subarray(offset, Math.min(n, offset + 65_536)));
  }
  return out;
}

// Peers

async function startPeer(source: string): Promise<Libp2p | null> {
  // net.connect takes the source address; @libp2p/tcp passes it on, though its types omit it.
  const dialOpts = { noDelay: true, localAddress: source };
  const node = await createLibp2p({
    transports: [tcp({ dialOpts })],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
  });
  // libp2p refuses more than a few new connections per second from one address: retry.
  for (let attempt = 0; running && attempt < 40; attempt++) {
    try {
      await node.dial(multiaddr(config.target), { signal: AbortSignal.timeout(10_000) });
      counters.peers++;
      return node;
    } catch {
      await sleep(250);
    }
  }
  await node.stop();
  return null;
}

/** Runs `round` on fresh streams of `protocol` until the flood stops. */
async function loopStreams(
  node: Libp2p,
  protocol: string,
  round: (stream: Stream) => Promise<void>,
): Promise<void> {
  while (running) {
    let stream: Stream | null = null;
    try {
      stream = await node.dialProtocol(multiaddr(config.target), protocol, {
        signal: AbortSignal.timeout(10_000),
      });
      counters.streams++;
      await round(stream);
      await stream.close().catch(() => {});
    } catch (error) {
      counters.streamErrors++;
      if (String((error as Error)?.message).includes("Busy")) counters.busy++;
      stream?.abort(error instanceof Error ? error : new Error(String(error)));
      await sleep(20);
    }
  }
}

// Parcels, within the window or not

let bases: Uint8Array[] = [];
let nextVariant = 0;

/** The `parcels` flood's supply: distinct parcels, their keys, and which the node stored. */
let supply: { key: string; bytes: Uint8Array }[] = [];
const storedKeys = new Set<string>();
let nextInSupply = 0;

function keyOf(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

function freshParcel(): { key: string; bytes: Uint8Array } {
  if (config.kind === "parcels") {
    // The next one the node has not stored; once it stored them all, any (it
    // answers "held" without a look, which the counters show).
    for (let tries = 0; tries < supply.length; tries++) {
      const parcel = supply[nextInSupply];
      nextInSupply = (nextInSupply + 1) % supply.length;
      if (nextInSupply === 0) counters.passes++;
      if (!storedKeys.has(parcel.key)) return parcel;
    }
    return supply[nextInSupply];
  }
  const n = nextVariant++;
  const bytes = variant(bases[n % bases.length], Math.floor(n / bases.length));
  return { key: keyOf(bytes), bytes };
}

async function pushParcels(stream: Stream, respectWindow: boolean): Promise<void> {
  const lp = lpStream(stream, { maxDataLength: MAX_FRAME_LENGTH });
  let inFlight = 0;
  let slot = Promise.withResolvers<void>();
  let failed: unknown = null;
  const reader = (async () => {
    try {
      while (running) {
        const message = decodeTransfer((await lp.read()).subarray());
        if (message.type === "ack") {
          if (message.status === AckStatus.STORED) {
            counters.stored++;
            if (!storedKeys.has(message.key)) {
              storedKeys.add(message.key);
              counters.fresh = Math.max(0, counters.fresh - 1);
            }
          } else counters.held++;
        } else if (message.type === "refuse") {
          counters.refused[message.code] = (counters.refused[message.code] ?? 0) + 1;
        } else if (message.type === "error") {
          throw new Error(`Node says: ${message.message}`);
        } else continue;
        inFlight--;
        slot.resolve();
      }
    } catch (error) {
      failed = error;
      slot.resolve();
    }
  })();
  while (running && failed === null) {
    while (respectWindow && inFlight >= MAX_IN_FLIGHT && failed === null) {
      await slot.promise;
      slot = Promise.withResolvers();
    }
    if (failed !== null) break;
    const { key, bytes } = freshParcel();
    inFlight++;
    await lp.write(encodeParcelFrame(key, 8, bytes));
    counters.framesSent++;
    counters.octetsSent += bytes.byteLength;
  }
  stream.abort(new Error("Flood over"));
  await reader;
  if (failed !== null && running) throw failed;
}

// Reconciliation floods

function hello(itemCount: number): Uint8Array {
  return encodeSync({
    type: "hello",
    version: PROTOCOL_VERSION,
    salt: crypto.getRandomValues(new Uint32Array(1))[0],
    itemCount,
    nonce: randomBytes(16),
    announcements: [],
  });
}

/** Random octets to cut coded symbols from, shared by every stream. */
let noisePool = new Uint8Array(0);

async function symbolFlood(stream: Stream): Promise<void> {
  const lp = lpStream(stream, { maxDataLength: MAX_SYNC_FRAME_LENGTH });
  await lp.write(hello(CLAIMED_ITEMS));
  const reply = decodeSync((await lp.read()).subarray());
  if (reply.type !== "hello") throw new Error(`Node says: ${JSON.stringify(reply)}`);
  counters.syncRounds++;
  for (let start = 0; running;) {
    const offset = SYMBOL_LENGTH *
      Math.floor(Math.random() * (noisePool.length / SYMBOL_LENGTH - SYMBOLS_PER_FRAME));
    const symbols = noisePool.subarray(offset, offset + SYMBOLS_PER_FRAME * SYMBOL_LENGTH);
    await lp.write(encodeSync({ type: "symbols", start, symbols }));
    counters.framesSent++;
    counters.octetsSent += symbols.byteLength;
    start += SYMBOLS_PER_FRAME;
    const answer = decodeSync((await lp.read()).subarray());
    if (answer.type === "more") continue;
    if (answer.type === "error") throw new Error(`Node says: ${answer.message}`);
    return; // a DIFF out of random symbols: start again
  }
}

/** A random delivery proof as encodeProof lays it out: key, SPKI, signature. */
function randomProof(key: Uint8Array): Uint8Array {
  const out = new Uint8Array(32 + 2 + 294 + 2 + 256);
  out.set(key, 0);
  out.set([294 >> 8, 294 & 0xff], 32);
  out.set(randomBytes(294), 34);
  out.set([1, 0], 328);
  out.set(randomBytes(256), 330);
  return out;
}

async function tombstoneFlood(stream: Stream): Promise<void> {
  const lp = lpStream(stream, { maxDataLength: MAX_SYNC_FRAME_LENGTH });
  await lp.write(hello(PROOFS_PER_ROUND));
  const reply = decodeSync((await lp.read()).subarray());
  if (reply.type !== "hello") throw new Error(`Node says: ${JSON.stringify(reply)}`);
  const expiry = Math.floor(Date.now() / 1000) + 86_400;
  const items = new Uint8Array(PROOFS_PER_ROUND * ITEM_LENGTH);
  const proofs = [];
  for (let i = 0; i < PROOFS_PER_ROUND; i++) {
    const key = randomBytes(32);
    const item = items.subarray(i * ITEM_LENGTH, (i + 1) * ITEM_LENGTH);
    item[0] = 1; // delivered, with a proof
    item.set(key, 1);
    new DataView(item.buffer, item.byteOffset).setUint32(33, expiry);
    proofs.push({ expiresAt: new Date(expiry * 1000), proof: randomProof(key) });
  }
  await lp.write(encodeSync({ type: "items", items }));
  const diff = decodeSync((await lp.read()).subarray());
  if (diff.type !== "diff") throw new Error(`Node says: ${JSON.stringify(diff)}`);
  const proofsFrame = encodeSync({ type: "proofs", proofs });
  await lp.write(proofsFrame);
  counters.framesSent += 2;
  counters.octetsSent += items.byteLength + proofsFrame.byteLength;
  counters.proofsSent += proofs.length;
  await lp.read(); // its PROOFS
  counters.syncRounds++;
}

// Handshakes that never finish

/** Half of "\x13/multistream/1.0.0\n": a client that stalls mid-header. */
const PARTIAL_HEADER = new TextEncoder().encode("\x13/multist");
const sockets = new Set<net.Socket>();

function holdHandshake(source: string, host: string, port: number): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port, localAddress: source });
    let connected = false;
    socket.once("connect", () => {
      connected = true;
      counters.connects++;
      sockets.add(socket);
      socket.write(PARTIAL_HEADER);
      resolve();
    });
    socket.on("data", () => {/* never answered */});
    socket.on("error", () => {/* "close" follows */});
    socket.once("close", () => {
      sockets.delete(socket);
      if (!connected) resolve();
      if (!running) return;
      if (connected) counters.closedByTarget++;
      setTimeout(() => holdHandshake(source, host, port), connected ? 10 : 100);
    });
  });
}

// Main

const peers: Libp2p[] = [];
const work: Promise<void>[] = [];
if (config.kind === "handshake") {
  const parts = multiaddr(config.target).toString().split("/");
  await Promise.all(config.sources.map((s) => holdHandshake(s, parts[2], Number(parts[4]))));
} else {
  if (config.parcelsFile) {
    bases = (await readParcels(config.parcelsFile)).slice(0, config.parcelsUsed);
    if (config.kind === "parcels") {
      supply = bases.map((bytes) => ({ key: keyOf(bytes), bytes }));
      counters.fresh = supply.length;
    }
  }
  if (config.kind === "sync") noisePool = randomBytes(SYMBOLS_PER_FRAME * SYMBOL_LENGTH * 4);
  const started = await Promise.all(
    config.sources.flatMap((source) =>
      Array.from({ length: config.peersPerSource ?? 1 }, () => startPeer(source))
    ),
  );
  for (const node of started) {
    if (!node) continue;
    peers.push(node);
    for (let i = 0; i < (config.streamsPerPeer ?? 1); i++) {
      work.push(
        PUSHING.includes(config.kind)
          ? loopStreams(node, TRANSFER_PROTOCOL, (s) => pushParcels(s, config.kind !== "window"))
          : config.kind === "sync"
          ? loopStreams(node, SYNC_PROTOCOL, symbolFlood)
          : loopStreams(node, SYNC_PROTOCOL, tombstoneFlood),
      );
    }
  }
}
say({ type: "ready" });

const decoder = new TextDecoder();
let buffer = "";
for await (const chunk of Deno.stdin.readable) {
  buffer += decoder.decode(chunk, { stream: true });
  let newline;
  while ((newline = buffer.indexOf("\n")) >= 0) {
    if (buffer.slice(0, newline).trim() === "stats") say({ type: "stats" });
    buffer = buffer.slice(newline + 1);
  }
}
running = false;
for (const socket of sockets) socket.destroy();
await Promise.race([Promise.allSettled(peers.map((p) => p.stop())), sleep(2000)]);
Deno.exit(0);
