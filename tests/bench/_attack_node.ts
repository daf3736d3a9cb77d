/**
 * Attack benchmark helper: a mesh node in a process of its own, in one of the
 * roles mesh_attack_bench.ts gives it (victim relay, honest sender, recipient).
 * Every node runs without mDNS and listens on loopback only.
 *
 * Usage: deno run -A _attack_node.ts '<JSON of NodeConfig>'
 *
 * Prints one JSON line `{"type":"ready","address","pid","peerId","dir"}` (`dir`
 * holds its store, deleted when it exits), then answers commands read from
 * stdin, one a line, each with one JSON line:
 *
 * - `stats`: `{"type":"stats","rss","heap","external","stats","lagMs","unverified",...}`,
 *   `unverified` counting the unverified tombstones in its store and `lagMs`
 *   being how late a 10 ms timer fired since the last `stats` (mean and worst);
 * - `push <multiaddr> <count> <deadline ms>`: dials the address (again, until
 *   the deadline, if the dial fails) and waits until `count` parcels were
 *   acknowledged by peers; `{"type":"pushed","ms","handed","refused","dials",
 *   "connectedMs","handInMs","latencyMs"}`. With `pace` set, it hands the node
 *   its parcels at that rate meanwhile, from the moment the command comes (as an
 *   app would, connected or not), and `latencyMs` says how long they took from
 *   hand-in to acknowledgement (median, 95th percentile, worst);
 * - `await <count> <deadline ms>`: waits until `count` parcels arrived (stored
 *   or handed to the hosted endpoint); `{"type":"arrived","ms","count"}`.
 *
 * It stops, deletes its store and exits when stdin closes.
 */
import "../../app/_quiet.ts";
import { createHash } from "node:crypto";
import { DatabaseSync } from "node:sqlite";
import { MeshNode, signerFromPkcs8 } from "../../mesh/mod.ts";
import { readParcels } from "./_attack_parcels.ts";

/** What the node is and does. */
export interface NodeConfig {
  /** Lift the rate limits and the quota (a relay measured for speed, not defended). */
  readonly unlimited?: boolean;
  /** Endpoint id to host; its parcels are accepted at once. */
  readonly host?: string;
  /** File with the hosted endpoint's identity key (DER PKCS#8): it then signs delivery proofs. */
  readonly signerFile?: string;
  /** File of parcels (see _attack_parcels.ts) to hand the node before it starts. */
  readonly parcelsFile?: string;
  /**
   * Parcels per second: the parcels of `parcelsFile` are handed to the node at
   * this rate once `push` comes, instead of all before it starts.
   */
  readonly pace?: number;
  /** Multiaddrs to keep dialling. */
  readonly peers?: string[];
  /** Parcels per second per peer (hosts get twice); default the node's own default. */
  readonly parcelsPerSecond?: number;
}

const config = JSON.parse(Deno.args[0] ?? "{}") as NodeConfig;
const dir = await Deno.makeTempDir({ prefix: "relaymail-attack-node-" });
const node = await MeshNode.create({
  // A real file, committed like a daemon's store: storing means on disk.
  storePath: `${dir}/mesh.sqlite`,
  listen: ["/ip4/127.0.0.1/tcp/0"],
  mdns: false,
  peers: config.peers,
  ...(config.unlimited
    ? {
      rateLimit: { parcelsPerSecond: 1e9, bytesPerSecond: 1e12 },
      quotaBytes: 8 * 1024 ** 3,
      maxParcels: 10_000_000,
      senderShare: 1,
    }
    : config.parcelsPerSecond
    ? { rateLimit: { parcelsPerSecond: config.parcelsPerSecond } }
    : {}),
});

// Event-loop lag: how late a 10 ms timer fires, summed and at worst, since the last `stats`.
const lag = { total: 0, worst: 0, ticks: 0 };
let tick = performance.now();
setInterval(() => {
  const now = performance.now();
  const late = Math.max(0, now - tick - 10);
  lag.total += late;
  lag.worst = Math.max(lag.worst, late);
  lag.ticks++;
  tick = now;
}, 10);

let arrived = 0;
let onArrival = () => {};
node.on("parcel:received", () => {
  arrived++;
  onArrival();
});
if (config.host) {
  const signer = config.signerFile
    ? signerFromPkcs8(await Deno.readFile(config.signerFile))
    : undefined;
  node.host(config.host, () => Promise.resolve({ status: "accepted" }), { signer });
}
/** Parcels to hand in at `pace` when `push` comes. */
let heldBack: Uint8Array[] = [];
if (config.parcelsFile) {
  const parcels = await readParcels(config.parcelsFile);
  if (config.pace) heldBack = parcels;
  else for (const parcel of parcels) await node.send(parcel);
}
/** When each parcel handed in at `pace` was handed in, until it is acknowledged. */
const handedInAt = new Map<string, number>();
const latencies: number[] = [];

let handed = 0;
let onHanded = () => {};
const refused: Record<string, number> = {};
node.on("parcel:handed", (event) => {
  const at = handedInAt.get(event.key);
  if (at !== undefined) {
    latencies.push(performance.now() - at);
    handedInAt.delete(event.key);
  }
  handed++;
  onHanded();
});
node.on("parcel:refused", (event) => {
  if (event.peer) refused[event.code] = (refused[event.code] ?? 0) + 1;
});

await node.start();
say({ type: "ready", address: node.addresses[0], pid: Deno.pid, peerId: node.peerId, dir });

/** Resolves when `done()` holds, checked whenever `wake` is called, or at the deadline. */
function until(done: () => boolean, deadline: number, hook: (wake: () => void) => void) {
  return new Promise<void>((resolve) => {
    const check = () => {
      if (done() || performance.now() >= deadline) {
        clearTimeout(timer);
        hook(() => {});
        resolve();
      }
    };
    const timer = setTimeout(check, Math.max(0, deadline - performance.now()));
    hook(check);
    check();
  });
}

/** Hands in `count` held-back parcels, the i-th at `start` + i / pace; resolves after the last. */
async function handIn(count: number, start: number): Promise<void> {
  const parcels = heldBack.splice(0, count);
  for (const [i, parcel] of parcels.entries()) {
    const due = start + (i * 1000) / config.pace!;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    // Keyed before the node may push it, so that no acknowledgement comes first.
    handedInAt.set(createHash("sha256").update(parcel).digest("hex"), performance.now());
    await node.send(parcel);
  }
}

async function push(address: string, count: number, deadlineMs: number): Promise<void> {
  const start = performance.now();
  const deadline = start + deadlineMs;
  let dials = 0;
  let connectedMs: number | null = null;
  let handInMs = 0;
  const target = handed + count;
  latencies.length = 0;
  const handing = config.pace
    ? handIn(count, start).then(() => (handInMs = performance.now() - start))
    : Promise.resolve();
  for (;;) {
    dials++;
    try {
      await node.dial(address);
      connectedMs = performance.now() - start;
      break;
    } catch {
      if (performance.now() >= deadline) break;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  await until(() => handed >= target, deadline, (wake) => (onHanded = wake));
  const ms = performance.now() - start;
  await handing;
  const sorted = latencies.toSorted((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  say({
    type: "pushed",
    ms,
    handed: handed - (target - count),
    refused,
    dials,
    connectedMs,
    handInMs,
    latencyMs: sorted.length ? { p50: at(0.5), p95: at(0.95), worst: sorted.at(-1) } : null,
  });
}

async function awaitArrivals(count: number, deadlineMs: number): Promise<void> {
  const start = performance.now();
  await until(() => arrived >= count, start + deadlineMs, (wake) => (onArrival = wake));
  say({ type: "arrived", ms: performance.now() - start, count: arrived });
}

/** Unverified tombstones in the store, read from its file beside the node (WAL lets both in). */
function unverifiedTombstones(): number {
  const db = new DatabaseSync(`${dir}/mesh.sqlite`, { readOnly: true });
  try {
    const row = db.prepare("SELECT count(*) AS n FROM delivered WHERE state = 'unverified'").get();
    return Number(row?.n ?? 0);
  } finally {
    db.close();
  }
}

function say(message: unknown): void {
  console.log(JSON.stringify(message));
}

const decoder = new TextDecoder();
let buffer = "";
for await (const chunk of Deno.stdin.readable) {
  buffer += decoder.decode(chunk, { stream: true });
  let newline;
  while ((newline = buffer.indexOf("\n")) >= 0) {
    const [command, ...args] = buffer.slice(0, newline).trim().split(" ");
    buffer = buffer.slice(newline + 1);
    if (command === "stats") {
      const memory = Deno.memoryUsage();
      say({
        type: "stats",
        rss: memory.rss,
        heap: memory.heapUsed,
        external: memory.external,
        arrived,
        unverified: unverifiedTombstones(),
        stats: node.stats,
        lagMs: { mean: lag.ticks ? lag.total / lag.ticks : 0, worst: lag.worst },
      });
      Object.assign(lag, { total: 0, worst: 0, ticks: 0 });
    } else if (command === "push") {
      push(args[0], Number(args[1]), Number(args[2]));
    } else if (command === "await") {
      awaitArrivals(Number(args[0]), Number(args[1]));
    }
  }
}
await node.stop();
await Deno.remove(dir, { recursive: true });
Deno.exit(0);
