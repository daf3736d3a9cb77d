/**
 * Broadcast posts against parcels, each beside its baseline measured in the same run.
 * Run with `deno run -A tests/bench/channel_bench.ts [--sizes 5,10,20] [--repeat 3] [--runs 200]`.
 *
 * - Propagation: one post (1 KiB of content) from a poster to N followers, in a line
 *   (poster — f1 — … — fN, every hop a follower) and in a star (the poster the hub, N
 *   follower leaves): the time until every follower has it, and the octets each node
 *   sent and received (reconciliation and transfer streams, after the mesh is connected
 *   and quiet). The baseline: the same content sent the current way, as N parcels (one
 *   per follower, each for an endpoint the follower hosts), on a mesh of the same shape.
 *   Spray-and-wait halves a parcel's copies at each relay (a u16 at most), so in a line a
 *   parcel cannot reach a follower more than 15 relays away: that case says so.
 * - Verification, the cost every hop pays for each post: Relaymail's PostVerifier cold
 *   (a new verifier each time), cached (one verifier, a new post each time of a channel
 *   it saw), and the same post again; against relaynet-core's own
 *   `Parcel.deserialize` + `validate([channel certificate])`.
 *
 * Every node runs in this process over loopback TCP, so the times include all of them
 * sharing one thread: a real mesh runs each on its own device.
 */
import "../../app/_quiet.ts";
import { generateRSAKeyPair, Parcel } from "@relaycorp/relaynet-core";
import { createParcelFixture } from "../../bindings/testing/fixtures.ts";
import { MeshNode, signerFromPkcs8, silentLogger } from "../../mesh/mod.ts";
import type { MeshStats } from "../../mesh/node.ts";
import { authorizeAuthor, createChannelKey, makePost, PostVerifier } from "../../mesh/posts.ts";

const LOOPBACK = ["/ip4/127.0.0.1/tcp/0"];
const CONTENT = 1024;
const TIMEOUT_MS = 120_000;
/** Copies a parcel starts with in the parcel runs: the most the wire carries (u16). */
const MAX_COPIES = 65_535;
/** Relays a parcel can cross in a line with {@linkcode MAX_COPIES} copies (log2, less one). */
const MAX_RELAYS = 15;

type Shape = "line" | "star";

interface Mesh {
  readonly poster: MeshNode;
  readonly followers: MeshNode[];
  readonly all: MeshNode[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + TIMEOUT_MS;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** Builds a mesh of `shape`; `prepare` runs on each follower before it connects. */
async function build(
  shape: Shape,
  n: number,
  prepare: (node: MeshNode, index: number) => void,
): Promise<Mesh> {
  const create = (peers: readonly string[] = []) =>
    MeshNode.create({
      storePath: ":memory:",
      listen: LOOPBACK,
      mdns: false,
      peers,
      rateLimit: { parcelsPerSecond: 1e9, bytesPerSecond: 1e12 },
      initialCopies: MAX_COPIES,
      // Every node here is one host (127.0.0.1): lift the per-host connection bounds.
      admission: { maxConnectionsPerHost: 1_000, maxPendingPerHost: 1_000 },
      // The hub refuses a third reconciliation at once from one host ("Busy", retried
      // later): the figures include those retries; the log would only repeat them.
      logger: silentLogger,
    });
  const poster = await create();
  await poster.start();
  const followers: MeshNode[] = [];
  for (let i = 0; i < n; i++) {
    const before = shape === "line" && i > 0 ? followers[i - 1] : poster;
    const node = await create([before.addresses[0]]);
    prepare(node, i);
    await node.start();
    followers.push(node);
  }
  const all = [poster, ...followers];
  const degree = (i: number) => shape === "star" ? (i === 0 ? n : 1) : (i === 0 || i === n ? 1 : 2);
  await until("every link up", () => all.every((node, i) => node.peers().length === degree(i)));
  // Each link reconciled once at least (a busy peer asks to retry later: wait for that too).
  await until("every link reconciled", () => all.every((node, i) => node.stats.syncs >= degree(i)));
  await quiet(all);
  return { poster, followers, all };
}

/** Waits until no node is reconciling or pushing. */
async function quiet(nodes: MeshNode[]): Promise<void> {
  for (let round = 0; round < 3; round++) {
    await Promise.all(nodes.map((node) => node.idle()));
    await sleep(100);
  }
}

const octets = (s: MeshStats) =>
  s.syncBytesSent + s.syncBytesReceived + s.transferBytesSent + s.transferBytesReceived;

interface Run {
  readonly ms: number;
  /** Octets sent and received, per node: the mean, and the busiest node's. */
  readonly meanOctets: number;
  readonly maxOctets: number;
}

/** Measures from `fire` until `done`, and the octets each node moved meanwhile. */
async function measure(mesh: Mesh, fire: () => Promise<unknown>, done: () => boolean) {
  const before = mesh.all.map((node) => octets(node.stats));
  const started = performance.now();
  await fire();
  await until("every follower served", done);
  const ms = performance.now() - started;
  await quiet(mesh.all);
  const moved = mesh.all.map((node, i) => octets(node.stats) - before[i]);
  await Promise.all(mesh.all.map((node) => node.stop()));
  return {
    ms,
    meanOctets: moved.reduce((a, b) => a + b, 0) / moved.length,
    maxOctets: Math.max(...moved),
  };
}

async function postRun(shape: Shape, n: number): Promise<Run> {
  const channel = await createChannelKey();
  const author = await generateRSAKeyPair();
  const authorCertificate = await authorizeAuthor({
    channel,
    authorPublicKey: author.publicKey,
    expiresAt: new Date(Date.now() + 86_400_000),
  });
  const post = await makePost({
    channelCertificate: channel.certificate,
    authorCertificate,
    authorPrivateKey: author.privateKey,
    payload: crypto.getRandomValues(new Uint8Array(CONTENT)),
  });
  let arrived = 0;
  const mesh = await build(shape, n, (node) => {
    node.follow(channel.id);
    node.addEventListener("post", () => arrived++);
  });
  return await measure(mesh, () => mesh.poster.publish(post), () => arrived === n);
}

async function parcelRun(shape: Shape, n: number): Promise<Run> {
  const fixtures = await Promise.all(Array.from({ length: n }, () => createParcelFixture()));
  const parcels = await Promise.all(fixtures.map((f) => f.makeParcel({ payloadSize: CONTENT })));
  let arrived = 0;
  const mesh = await build(shape, n, (node, i) => {
    node.host(fixtures[i].recipientId, () => {
      arrived++;
      return Promise.resolve({ status: "accepted" });
    }, { signer: signerFromPkcs8(fixtures[i].recipientPrivateKeyDer) });
  });
  return await measure(
    mesh,
    () => Promise.all(parcels.map((p) => mesh.poster.send(p))),
    () => arrived === n,
  );
}

/** The run of median time among `count` fresh meshes. */
async function middle(count: number, run: () => Promise<Run>): Promise<Run> {
  const runs: Run[] = [];
  for (let i = 0; i < count; i++) runs.push(await run());
  runs.sort((a, b) => a.ms - b.ms);
  return runs[Math.floor(runs.length / 2)];
}

// --- Verification at each hop ---

/** The median time of `fn` over `runs` runs, in ms, after a warm-up. */
async function median(fn: (i: number) => Promise<unknown>, runs: number): Promise<number> {
  for (let i = 0; i < 5; i++) await fn(i);
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    await fn(i);
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

async function verification(runs: number): Promise<Record<string, number>> {
  const channel = await createChannelKey();
  const author = await generateRSAKeyPair();
  const authorCertificate = await authorizeAuthor({
    channel,
    authorPublicKey: author.publicKey,
    expiresAt: new Date(Date.now() + 86_400_000),
  });
  const posts = await Promise.all(
    Array.from({ length: runs + 5 }, () =>
      makePost({
        channelCertificate: channel.certificate,
        authorCertificate,
        authorPrivateKey: author.privateKey,
        payload: crypto.getRandomValues(new Uint8Array(CONTENT)),
      })),
  );
  const cached = new PostVerifier();
  const again = new PostVerifier();
  return {
    "relaynet-core: deserialize + validate (baseline)": await median(async (i) => {
      const parcel = await Parcel.deserialize(posts[i].slice().buffer);
      await parcel.validate([channel.certificate]);
    }, runs),
    "PostVerifier, cold (new verifier each post)": await median(
      (i) => new PostVerifier().verify(posts[i]),
      runs,
    ),
    "PostVerifier, cached (a new post each time)": await median(
      (i) => cached.verify(posts[i]),
      runs,
    ),
    "PostVerifier, the same post again": await median(() => again.verify(posts[0]), runs),
  };
}

// --- Report ---

function table(heads: string[], rows: string[][]): void {
  const widths = heads.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join("  ");
  console.log(line(heads));
  for (const row of rows) console.log(line(row));
}

const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;

function flag(name: string): string | undefined {
  const at = Deno.args.indexOf(`--${name}`);
  return at === -1 ? undefined : Deno.args[at + 1];
}

async function main(): Promise<void> {
  const sizes = (flag("sizes") ?? "5,10,20").split(",").map(Number);
  const repeat = Number(flag("repeat") ?? 3);
  const rows: string[][] = [];
  for (const shape of ["star", "line"] as const) {
    for (const n of sizes) {
      const post = await middle(repeat, () => postRun(shape, n));
      const parcels = shape === "line" && n > MAX_RELAYS + 1
        ? null
        : await middle(repeat, () => parcelRun(shape, n));
      const vs = (a: number, b: number | undefined) =>
        b === undefined ? "—" : `${(a / b).toFixed(2)}×`;
      rows.push([
        `${shape}, ${n} followers`,
        `${post.ms.toFixed(0)} ms`,
        parcels ? `${parcels.ms.toFixed(0)} ms` : "unreachable",
        vs(post.ms, parcels?.ms),
        `${kib(post.meanOctets)} / ${kib(post.maxOctets)}`,
        parcels ? `${kib(parcels.meanOctets)} / ${kib(parcels.maxOctets)}` : "—",
        vs(post.meanOctets, parcels?.meanOctets),
      ]);
    }
  }
  console.log(
    `One post of ${CONTENT} octets of content to N followers, against N parcels; median of ` +
      `${repeat} meshes (every node in this process, loopback TCP; octets per node: mean / busiest)`,
  );
  table(
    ["case", "post: all have it", "N parcels", "ratio", "post octets/node", "parcels", "ratio"],
    rows,
  );
  console.log(
    `("unreachable": spray-and-wait halves a parcel's copies, at most ${MAX_COPIES}, at each ` +
      `relay: no parcel crosses more than ${MAX_RELAYS} relays of a line)\n`,
  );

  const runs = Number(flag("runs") ?? 200);
  const costs = await verification(runs);
  const base = costs["relaynet-core: deserialize + validate (baseline)"];
  console.log(
    `Verifying a post (${CONTENT} octets of content), the cost of each hop; median of ${runs}`,
  );
  table(
    ["check", "median", "vs relaynet-core"],
    Object.entries(costs).map(([name, ms]) => [
      name,
      `${(ms * 1000).toFixed(0)} µs`,
      `${(ms / base).toFixed(2)}×`,
    ]),
  );
}

if (import.meta.main) {
  await main();
  Deno.exit(0); // libp2p leaves timers that would keep the process alive
}
