/**
 * Whole meshes in memory: MeshNodes whose libp2p hosts are built by a factory
 * that swaps TCP for `@libp2p/memory`, so a scenario runs without sockets, and
 * what stopping a node and logging mean for its streams.
 */
import assert from "node:assert/strict";
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import { memory } from "@libp2p/memory";
import { lpStream } from "@libp2p/utils";
import { multiaddr } from "@multiformats/multiaddr";
import { createLibp2p } from "libp2p";
import { createParcelFixture } from "../../bindings/testing/fixtures.ts";
import {
  createLogger,
  type Libp2pFactory,
  type LogRecord,
  MeshNode,
  type MeshNodeOptions,
  signerFromPkcs8,
  silentLogger,
  SYNC_PROTOCOL,
} from "../../mesh/mod.ts";
import { decodeSync } from "../../mesh/wire.ts";

/** Builds a node's libp2p host as asked, over the in-memory transport instead of TCP. */
const inMemory: Libp2pFactory = (config) => createLibp2p({ ...config, transports: [memory()] });

/** A unique in-memory address: the transport's addresses are global to the process. */
const memoryAddress = () => `/memory/${crypto.randomUUID()}`;

async function node(options: Partial<MeshNodeOptions> = {}): Promise<MeshNode> {
  const mesh = await MeshNode.create({
    storePath: ":memory:",
    listen: [memoryAddress()],
    mdns: false,
    createLibp2p: inMemory,
    ...options,
  });
  await mesh.start();
  return mesh;
}

/** Resolves once `condition` holds, polling; throws after `ms`. */
async function until(condition: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

Deno.test("MeshNode carries a parcel over two hops in memory, without TCP", async () => {
  const fx = await createParcelFixture();
  const received: Uint8Array[] = [];
  const a = await node();
  const b = await node();
  const c = await node();
  try {
    c.host(fx.recipientId, (bytes) => {
      received.push(bytes);
      return Promise.resolve({ status: "accepted" });
    }, { signer: signerFromPkcs8(fx.recipientPrivateKeyDer) });
    for (const n of [a, b, c]) {
      assert.ok(n.addresses.every((address) => address.startsWith("/memory/")), n.addresses[0]);
    }

    const parcel = await fx.makeParcel();
    const { key } = await a.send(parcel);
    // A line: A meets B, B meets C; A and C never meet.
    await a.dial(b.addresses[0]);
    await a.syncNow();
    assert.equal(b.store.get(key)?.copies, 4, "B carries half of A's copies");
    await b.dial(c.addresses[0]);
    await b.syncNow();
    await c.idle();
    assert.deepEqual(received, [parcel], "C's endpoint got the parcel once, intact");

    // The recipient's proof travels back: every node drops its copy.
    await b.syncNow();
    await a.syncNow();
    assert.deepEqual([a, b, c].map((n) => n.store.knows(key)), [
      "delivered",
      "delivered",
      "delivered",
    ]);
    assert.equal(a.store.handover(key)?.toRecipient, true, "A saw it reach the recipient");
    for (const peer of [...a.peers(), ...b.peers(), ...c.peers()]) {
      assert.ok(peer.addresses.every((address) => address.startsWith("/memory/")));
    }
  } finally {
    for (const n of [a, b, c]) await n.stop();
  }
});

Deno.test("MeshNode logs a reconciliation it could not answer at warn, with the peer's id", async () => {
  const records: LogRecord[] = [];
  const logger = createLogger({ level: "debug", sink: (record) => records.push(record) });
  const relay = await node({ logger });
  // A peer that speaks the sync protocol badly: one frame of an unknown type.
  const stranger = await createLibp2p({
    addresses: { listen: [memoryAddress()] },
    transports: [memory()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
  });
  try {
    const stream = await stranger.dialProtocol(multiaddr(relay.addresses[0]), SYNC_PROTOCOL);
    const lp = lpStream(stream);
    await lp.write(new Uint8Array([0x42]));
    const answer = decodeSync((await lp.read()).slice());
    assert.equal(answer.type, "error", "the peer is told why");
    const peer = stranger.peerId.toString();
    await until(
      () => records.some((r) => r.level === "warn" && r.fields.peer === peer),
      "the warning",
    );
    const warning = records.find((r) => r.level === "warn" && r.fields.peer === peer)!;
    assert.equal(warning.component, "mesh/sync");
    assert.equal(warning.fields.node, relay.peerId);
    assert.ok(warning.fields.error instanceof Error, "the error itself is kept");
  } finally {
    await stranger.stop();
    await relay.stop();
  }
  assert.ok(
    records.some((r) => r.level === "debug" && r.component === "mesh/peers"),
    "debug records reach a sink that asks for them",
  );
});

Deno.test("MeshNode.stop() waits for a parcel being handed to its endpoint, then nothing runs", async () => {
  const fx = await createParcelFixture();
  const entered = Promise.withResolvers<void>();
  const release = Promise.withResolvers<void>();
  let calls = 0;
  let finished = false;
  // Both sides log the aborted transfer; the test looks at what stop() waits for.
  const sender = await node({ logger: silentLogger });
  const recipient = await node({ logger: silentLogger });
  try {
    recipient.host(fx.recipientId, async () => {
      calls++;
      entered.resolve();
      await release.promise;
      finished = true;
      return { status: "accepted" };
    }, { signer: signerFromPkcs8(fx.recipientPrivateKeyDer) });
    await sender.send(await fx.makeParcel());
    await sender.dial(recipient.addresses[0]);
    await entered.promise;

    let stopped = false;
    const stopping = recipient.stop().then(() => (stopped = true));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(stopped, false, "stop() waits for the endpoint's handler");
    release.resolve();
    await stopping;
    assert.ok(finished, "the handler finished before stop() resolved");
    assert.equal(calls, 1);
  } finally {
    release.resolve();
    await recipient.stop();
    await sender.stop();
  }
});
