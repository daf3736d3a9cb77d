/**
 * Mesh benchmarks, each beside its baseline measured in the same run. Part of
 * `deno task bench`; run alone with `deno run -A tests/bench/mesh_scenarios.ts`.
 *
 * - bulk: 8 MiB parcels A → B, against a raw libp2p stream on the same stack;
 * - relay rate: 1 KiB parcels a relay validates, stores and forwards per second,
 *   against relaynet-core validating them;
 * - reconnection: 10 000 parcels each side, 10 differing: octets beyond the 10
 *   parcels and time to converge, against exchanging full lists;
 * - latency: one-hop delivery from `send` to the recipient's inbox, p50 and p99,
 *   against the cryptographic floor (the same work in relaynet-core alone).
 *
 * Sender and receiver of the bulk and relay cases run in processes of their own,
 * as on real devices.
 */
import "../../app/_quiet.ts";
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import { tcp } from "@libp2p/tcp";
import { lpStream } from "@libp2p/utils";
import { multiaddr } from "@multiformats/multiaddr";
import { Parcel } from "@relaycorp/relaynet-core";
import { createLibp2p } from "libp2p";
import { join } from "node:path";
import { Relaymail } from "../../app/services/relaymail.ts";
import {
  createParcelFixture,
  MAX_FIXTURE_PAYLOAD,
  type ParcelFixture,
} from "../../bindings/testing/fixtures.ts";
import { attachParcelNode, MeshNode } from "../../mesh/mod.ts";
import { MAX_FRAME_LENGTH, MAX_IN_FLIGHT } from "../../mesh/wire.ts";
import { toHex } from "../../bindings/validation.ts";
import { pair } from "../helpers.ts";
import { RAW_PROTOCOL } from "./_raw.ts";

const PEER = join(import.meta.dirname!, "mesh_peer.ts");
const LOOPBACK = ["/ip4/127.0.0.1/tcp/0"];
const UNLIMITED = { parcelsPerSecond: 1e9, bytesPerSecond: 1e12 };

interface Peer {
  readonly address: string;
  readonly raw: string;
  readonly pid: number;
  readonly lines: AsyncIterator<string>;
  close(): Promise<void>;
}

/** A peer's options to host `fixture`'s recipient, with its key: it signs delivery proofs. */
function hosting(fixture: ParcelFixture): { host: string; hostKey: string } {
  return { host: fixture.recipientId, hostKey: toHex(fixture.recipientPrivateKeyDer) };
}

async function spawnPeer(
  options: { host?: string; hostKey?: string; peers?: string[] },
): Promise<Peer> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", PEER, JSON.stringify(options)],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).pipeThrough(lineSplitter())
    [Symbol.asyncIterator]();
  const first = await lines.next();
  const { address, raw, pid } = JSON.parse(first.value!);
  return {
    address,
    raw,
    pid,
    lines,
    async close() {
      await child.stdin.close();
      await child.status;
    },
  };
}

function lineSplitter(): TransformStream<string, string> {
  let buffer = "";
  return new TransformStream({
    transform(chunk, controller) {
      buffer += chunk;
      const parts = buffer.split("\n");
      buffer = parts.pop()!;
      for (const line of parts) if (line.trim()) controller.enqueue(line);
    },
  });
}

/** CPU seconds (user and system) a process has used so far, from /proc. */
async function cpuSeconds(pid: number): Promise<number> {
  const fields = (await Deno.readTextFile(`/proc/${pid}/stat`)).split(") ")[1].split(" ");
  // utime and stime are the 12th and 13th fields after the command name, in clock ticks.
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function parcels(
  fixture: ParcelFixture,
  count: number,
  payloadSize: number,
): Promise<Uint8Array[]> {
  const all = [];
  for (let i = 0; i < count; i++) all.push(await fixture.makeParcel({ payloadSize }));
  return all;
}

// Bulk

async function bulk(): Promise<void> {
  const PER_ROUND = 16;
  const ROUNDS = 3;
  const fixture = await createParcelFixture();
  const all = await parcels(fixture, PER_ROUND * ROUNDS, MAX_FIXTURE_PAYLOAD);
  const size = all[0].byteLength;
  const peer = await spawnPeer(hosting(fixture));
  const rawRates: number[] = [];
  const meshRates: number[] = [];
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const batch = all.slice(round * PER_ROUND, (round + 1) * PER_ROUND);
      rawRates.push(await rawTransfer(peer.raw, batch));
      meshRates.push(await meshTransfer(peer.address, batch));
    }
  } finally {
    await peer.close();
  }
  const raw = median(rawRates);
  const mesh = median(meshRates);
  report("bulk", [
    `${PER_ROUND} parcels of ${
      (size / 2 ** 20).toFixed(2)
    } MiB per round, median of ${ROUNDS} rounds`,
    `raw libp2p stream (TCP+Noise+Yamux): ${(raw / 2 ** 20).toFixed(1)} MiB/s`,
    `mesh (validated, acknowledged):      ${(mesh / 2 ** 20).toFixed(1)} MiB/s`,
    `mesh / raw = ${(mesh / raw).toFixed(2)}`,
  ]);
}

/** Octets per second through a plain stream, five frames in flight like the mesh. */
async function rawTransfer(address: string, frames: Uint8Array[]): Promise<number> {
  const node = await createLibp2p({
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
  });
  try {
    const start = performance.now();
    const stream = await node.dialProtocol(multiaddr(address), RAW_PROTOCOL);
    const lp = lpStream(stream, { maxDataLength: MAX_FRAME_LENGTH });
    let acknowledged = 0;
    const acks = (async () => {
      for await (const chunk of stream) acknowledged += chunk.byteLength;
    })();
    for (const [i, frame] of frames.entries()) {
      while (i - acknowledged >= MAX_IN_FLIGHT) await new Promise((r) => setTimeout(r, 1));
      await lp.write(frame);
    }
    while (acknowledged < frames.length) await new Promise((r) => setTimeout(r, 1));
    const seconds = (performance.now() - start) / 1000;
    await stream.close();
    await acks.catch(() => {});
    return frames.reduce((n, f) => n + f.byteLength, 0) / seconds;
  } finally {
    await node.stop();
  }
}

async function meshTransfer(address: string, batch: Uint8Array[]): Promise<number> {
  const node = await MeshNode.create({
    storePath: ":memory:",
    listen: LOOPBACK,
    mdns: false,
    rateLimit: UNLIMITED,
  });
  await node.start();
  try {
    for (const parcel of batch) await node.send(parcel);
    const delivered = Promise.withResolvers<void>();
    let count = 0;
    node.on("parcel:handed", (e) => {
      if (e.toRecipient && ++count === batch.length) delivered.resolve();
    });
    const start = performance.now();
    await node.dial(address);
    await delivered.promise;
    const seconds = (performance.now() - start) / 1000;
    return batch.reduce((n, p) => n + p.byteLength, 0) / seconds;
  } finally {
    await node.stop();
  }
}

// Relay rate

async function relayRate(): Promise<void> {
  const COUNT = 1500;
  const fixture = await createParcelFixture();
  const all = await parcels(fixture, COUNT, 1024);

  // Baseline: relaynet-core validating the same parcels.
  const sample = all.slice(0, 200);
  const startBaseline = performance.now();
  for (const bytes of sample) {
    const parcel = await Parcel.deserialize(bytes.slice().buffer);
    await parcel.validate([fixture.recipientCertificate]);
  }
  const baselineRate = sample.length / ((performance.now() - startBaseline) / 1000);

  const relay = await spawnPeer({});
  const recipient = await spawnPeer({ ...hosting(fixture), peers: [relay.address] });
  const senderDir = await Deno.makeTempDir();
  const sender = await MeshNode.create({
    storePath: join(senderDir, "mesh.sqlite"),
    listen: LOOPBACK,
    mdns: false,
    rateLimit: UNLIMITED,
  });
  await sender.start();
  try {
    for (const bytes of all) await sender.send(bytes);
    // Give the recipient's node time to connect to the relay first.
    await new Promise((r) => setTimeout(r, 1000));
    const cpuBefore = await cpuSeconds(relay.pid);
    const start = performance.now();
    await sender.dial(relay.address);
    let delivered = 0;
    while (delivered < COUNT) {
      const line = await recipient.lines.next();
      if (line.done) throw new Error("The recipient's node ended early");
      delivered = JSON.parse(line.value).delivered;
    }
    const rate = COUNT / ((performance.now() - start) / 1000);
    // What one core of the relay sustains: parcels per CPU-second it used.
    const capacity = COUNT / (await cpuSeconds(relay.pid) - cpuBefore);
    report("relay rate", [
      `${COUNT} parcels of 1 KiB payload (${
        all[0].byteLength
      } octets): sender → relay → recipient, each its own`,
      "process with its store on disk (SQLite, WAL, synchronous=FULL)",
      `relaynet-core deserialize + validate:         ${
        baselineRate.toFixed(0)
      } parcels/s (one core)`,
      `relay validating, storing and forwarding:     ${
        capacity.toFixed(0)
      } parcels per CPU-second of the relay`,
      `end to end, three processes sharing 2 cores: ${rate.toFixed(0)} parcels/s`,
      `relay / relaynet-core = ${(capacity / baselineRate).toFixed(2)} (per core), ${
        (rate / baselineRate).toFixed(2)
      } (end to end)`,
    ]);
  } finally {
    await sender.stop();
    await recipient.close();
    await relay.close();
    await Deno.remove(senderDir, { recursive: true });
  }
}

// Reconnection

async function reconnection(): Promise<void> {
  const rows = [];
  for (const mode of ["auto", "full-list"] as const) rows.push(await reconnect(mode));
  const [auto, full] = rows;
  report("reconnection", [
    "10 000 parcels on each node, 5 of each node's missing on the other (10 differing)",
    `rateless IBLT: ${auto.overhead} octets beyond the 10 parcels, converged in ${
      auto.ms.toFixed(0)
    } ms`,
    `full lists:    ${full.overhead} octets beyond the 10 parcels, converged in ${
      full.ms.toFixed(0)
    } ms`,
    `IBLT / full lists = ${(auto.overhead / full.overhead).toFixed(3)} of the octets`,
  ]);
}

async function reconnect(mode: "auto" | "full-list") {
  const fixture = await createParcelFixture();
  const options = {
    storePath: ":memory:",
    listen: LOOPBACK,
    mdns: false,
    reconciliation: mode,
    rateLimit: UNLIMITED,
  };
  const a = await MeshNode.create(options);
  const b = await MeshNode.create(options);
  const expiresAt = new Date(Date.now() + 86_400_000);
  const filler = new Uint8Array(64);
  for (let i = 0; i < 10_000; i++) {
    const key = Array.from(
      crypto.getRandomValues(new Uint8Array(32)),
      (x) => x.toString(16).padStart(2, "0"),
    ).join("");
    for (const node of [a, b]) {
      node.store.put({
        key,
        recipientId: "0shared",
        senderId: "0shared",
        size: filler.length,
        expiresAt,
        origin: "relay",
        copies: 1, // waiting for their recipient: never pushed
        bytes: filler,
      });
    }
  }
  let unique = 0;
  const keys: string[] = [];
  for (const node of [a, b]) {
    for (const parcel of await parcels(fixture, 5, 1024)) {
      keys.push((await node.send(parcel)).key);
      unique += parcel.byteLength;
    }
  }
  await a.start();
  await b.start();
  try {
    const start = performance.now();
    await a.dial(b.addresses[0]);
    while (!keys.every((key) => a.store.knows(key) && b.store.knows(key))) {
      await new Promise((r) => setTimeout(r, 2));
    }
    const ms = performance.now() - start;
    await a.idle();
    await b.idle();
    const octets = a.stats.syncBytesSent + b.stats.syncBytesSent + a.stats.transferBytesSent +
      b.stats.transferBytesSent;
    return { overhead: octets - unique, ms };
  } finally {
    await a.stop();
    await b.stop();
  }
}

// Latency

async function latency(): Promise<void> {
  const SAMPLES = 60;
  const dirs = [await Deno.makeTempDir(), await Deno.makeTempDir()];
  const [alice, bob] = await Promise.all(dirs.map((dir) => Relaymail.open(dir)));
  await alice.identity.create("Alice");
  await bob.identity.create("Bob");
  await pair({ node: alice }, { node: bob });
  const meshes = await Promise.all(
    dirs.map((dir) =>
      MeshNode.create({ storePath: join(dir, "mesh.sqlite"), listen: LOOPBACK, mdns: false })
    ),
  );
  const attachments = [
    // As the daemon does: the endpoints' keys sign hosting claims and delivery proofs.
    attachParcelNode(meshes[0], alice, {
      endpointIds: [alice.identity.id],
      signers: [await alice.identity.meshSigner()],
      pollIntervalMs: 0,
    }),
    attachParcelNode(meshes[1], bob, {
      endpointIds: [bob.identity.id],
      signers: [await bob.identity.meshSigner()],
      pollIntervalMs: 0,
    }),
  ];
  alice.events.addEventListener("outbox-changed", () => attachments[0].pump().catch(() => {}));
  for (const mesh of meshes) await mesh.start();
  await meshes[0].dial(meshes[1].addresses[0]);
  await new Promise((r) => setTimeout(r, 500));

  const times: number[] = [];
  const floor: number[] = [];
  try {
    for (let i = 0; i < SAMPLES + 5; i++) {
      const received = Promise.withResolvers<void>();
      const listener = () => received.resolve();
      bob.events.addEventListener("mail-received", listener, { once: true });
      const start = performance.now();
      await alice.mailbox.send({ to: ["Bob"], subject: `Ping ${i}`, body: "x".repeat(1024) });
      await received.promise;
      if (i >= 5) times.push(performance.now() - start); // the first ones warm up
    }
    // The floor: the same cryptography in relaynet-core, with no storage or network.
    const fixture = await createParcelFixture();
    for (let i = 0; i < 20; i++) {
      const start = performance.now();
      const bytes = await fixture.makeParcel({ payloadSize: 1100 });
      const parcel = await Parcel.deserialize(bytes.slice().buffer);
      await parcel.validate([fixture.recipientCertificate]);
      floor.push(performance.now() - start);
    }
  } finally {
    for (const attachment of attachments) attachment.stop();
    for (const mesh of meshes) await mesh.stop();
    alice.close();
    bob.close();
    for (const dir of dirs) await Deno.remove(dir, { recursive: true });
  }
  report("latency", [
    `one hop on loopback, send() to the recipient's inbox, ${SAMPLES} messages of 1 KiB`,
    `p50 ${percentile(times, 50).toFixed(1)} ms, p99 ${percentile(times, 99).toFixed(1)} ms`,
    `floor (relaynet-core sign + parse + validate, no encryption): p50 ${
      percentile(floor, 50).toFixed(1)
    } ms`,
    `p50 / floor = ${(percentile(times, 50) / percentile(floor, 50)).toFixed(2)}`,
  ]);
}

function report(name: string, lines: string[]): void {
  console.log(`\n${name}\n${lines.map((l) => `  ${l}`).join("\n")}`);
}

if (import.meta.main) {
  const only = Deno.args[0];
  for (
    const [name, run] of Object.entries({ bulk, "relay-rate": relayRate, reconnection, latency })
  ) {
    if (!only || only === name) await run();
  }
  Deno.exit(0);
}
