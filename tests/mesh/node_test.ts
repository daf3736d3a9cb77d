/**
 * What a mesh node stores and refuses, exercised on loopback (mDNS off) with a
 * raw peer that speaks the documented transfer protocol.
 *
 * Deno's op and resource sanitizers are on: `MeshNode.stop()` resolves only once
 * the node's stream handlers, exchanges, dials and pings are over, so a test that
 * stops its nodes leaves nothing running.
 */
import assert from "node:assert/strict";
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import { tcp } from "@libp2p/tcp";
import { lpStream } from "@libp2p/utils";
import { multiaddr } from "@multiformats/multiaddr";
import { createLibp2p } from "libp2p";
import {
  createParcelFixture,
  MAX_FIXTURE_PAYLOAD,
  type ParcelFixture,
} from "../../bindings/testing/fixtures.ts";
import { sha256Hex } from "../../bindings/validation.ts";
import { variant } from "../bench/_attack_parcels.ts";
import { waitFor } from "../helpers.ts";
import { MeshNode, type MeshNodeOptions, signerFromPkcs8 } from "../../mesh/mod.ts";
import {
  decodeTransfer,
  encodeTransfer,
  MAX_FRAME_LENGTH,
  MAX_IN_FLIGHT,
  TRANSFER_PROTOCOL,
  type TransferMessage,
} from "../../mesh/wire.ts";

const LOOPBACK = ["/ip4/127.0.0.1/tcp/0"];

async function node(options: Partial<MeshNodeOptions> = {}): Promise<MeshNode> {
  const mesh = await MeshNode.create({
    storePath: ":memory:",
    listen: LOOPBACK,
    mdns: false,
    ...options,
  });
  await mesh.start();
  return mesh;
}

/** Pushes parcels to a node the way a (possibly hostile) peer would, and returns its answers. */
async function push(
  address: string,
  parcels: { bytes: Uint8Array; key?: string; copies?: number }[],
): Promise<TransferMessage[]> {
  const peer = await createLibp2p({
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
  });
  try {
    const stream = await peer.dialProtocol(multiaddr(address), TRANSFER_PROTOCOL);
    const lp = lpStream(stream, { maxDataLength: MAX_FRAME_LENGTH + 1024 });
    const replies: TransferMessage[] = [];
    for (const parcel of parcels) {
      const key = parcel.key ?? await sha256Hex(parcel.bytes);
      await lp.write(
        encodeTransfer({ type: "parcel", key, copies: parcel.copies ?? 4, bytes: parcel.bytes }),
      );
      for (;;) {
        const reply = decodeTransfer((await lp.read()).slice());
        if (reply.type !== "progress") {
          replies.push(reply);
          break;
        }
      }
    }
    await stream.close();
    return replies;
  } finally {
    await peer.stop();
  }
}

function codes(replies: TransferMessage[]): string[] {
  return replies.map((r) =>
    r.type === "refuse" ? `refuse:${r.code}` : r.type === "ack" ? `ack:${r.status}` : r.type
  );
}

let shared: Promise<ParcelFixture> | null = null;
const fixture = () => (shared ??= createParcelFixture());

Deno.test({
  name:
    "MeshNode refuses expired, future-dated, forged and mislabelled parcels and stores none of them",
  async fn() {
    const relay = await node();
    try {
      const fx = await fixture();
      const now = Date.now();
      const good = await fx.makeParcel();
      const replies = await push(relay.addresses[0], [
        {
          bytes: await fx.makeParcel({ creationDate: new Date(now - 7_200_000), ttlSeconds: 3600 }),
        },
        { bytes: await fx.makeParcel({ creationDate: new Date(now + 3 * 3_600_000) }) },
        { bytes: good.map((b, i) => (i === good.length - 300 ? b ^ 1 : b)) },
        { bytes: good, key: "00".repeat(32) },
        { bytes: new TextEncoder().encode("not a parcel at all") },
      ]);
      assert.deepEqual(codes(replies), [
        "refuse:expired",
        "refuse:future-dated",
        "refuse:bad-signature",
        "refuse:malformed",
        "refuse:malformed",
      ]);
      assert.equal(relay.store.list().length, 0);
    } finally {
      await relay.stop();
    }
  },
});

Deno.test({
  name: "MeshNode stores a parcel once, however often it is offered",
  async fn() {
    const relay = await node();
    try {
      const bytes = await (await fixture()).makeParcel();
      const replies = await push(relay.addresses[0], [{ bytes }, { bytes }, { bytes }]);
      assert.deepEqual(codes(replies), ["ack:0", "ack:2", "ack:2"]);
      assert.equal(relay.store.list().length, 1);
    } finally {
      await relay.stop();
    }
  },
});

Deno.test({
  name: "MeshNode keeps one sender from filling its quota, and stops at the quota",
  async fn() {
    const quota = 40_000;
    // Only the sender's share is under test here: the other shares are opened wide.
    const relay = await node({
      quotaBytes: quota,
      senderShare: 0.5,
      shares: { recipient: 1, peer: 1, host: 1, unknown: 1 },
    });
    try {
      const flooder = await fixture();
      const other = await createParcelFixture();
      const flood = [];
      for (let i = 0; i < 8; i++) {
        flood.push({ bytes: await flooder.makeParcel({ payloadSize: 1000 }) });
      }
      const floodReplies = codes(await push(relay.addresses[0], flood));
      const stored = floodReplies.filter((c) => c === "ack:0").length;
      assert.ok(stored >= 3 && stored < 8, `the flooder stored ${stored} parcels`);
      assert.ok(floodReplies.slice(stored).every((c) => c === "refuse:quota"));
      assert.ok(relay.store.usage(flooder.senderId).bytes <= quota / 2);
      // Another sender still gets in.
      assert.deepEqual(
        codes(await push(relay.addresses[0], [{ bytes: await other.makeParcel() }])),
        ["ack:0"],
      );
      const big = [];
      for (let i = 0; i < 8; i++) {
        big.push({ bytes: await other.makeParcel({ payloadSize: 1000 }) });
      }
      const bigReplies = codes(await push(relay.addresses[0], big));
      assert.ok(bigReplies.includes("refuse:quota"));
      assert.ok(relay.store.usage().bytes <= quota);
    } finally {
      await relay.stop();
    }
  },
});

Deno.test({
  name: "MeshNode refuses a peer over its rate limit, for now only",
  async fn() {
    const relay = await node({ rateLimit: { parcelsPerSecond: 2, burstSeconds: 1 } });
    try {
      const fx = await fixture();
      const parcels = [];
      for (let i = 0; i < 5; i++) parcels.push({ bytes: await fx.makeParcel() });
      const replies = await push(relay.addresses[0], parcels);
      assert.deepEqual(codes(replies).slice(0, 2), ["ack:0", "ack:0"]);
      const limited = replies.filter((r) => r.type === "refuse" && r.code === "rate-limited");
      assert.ok(limited.length >= 2, codes(replies).join(" "));
      assert.ok(limited.every((r) => r.type === "refuse" && r.transient));
    } finally {
      await relay.stop();
    }
  },
});

Deno.test({
  name:
    "MeshNode sprays copies, delivers to the recipient's node, and purges copies once delivered",
  async fn() {
    const fx = await fixture();
    const a = await node();
    const b = await node();
    const c = await node();
    const received: Uint8Array[] = [];
    try {
      const bytes = await fx.makeParcel();
      const { key } = await a.send(bytes);
      await a.dial(b.addresses[0]);
      await a.syncNow();
      assert.deepEqual([a.store.get(key)?.copies, b.store.get(key)?.copies], [4, 4]);
      await b.dial(c.addresses[0]);
      await b.syncNow();
      assert.deepEqual([b.store.get(key)?.copies, c.store.get(key)?.copies], [2, 2]);

      // The recipient's node appears next to C; C hands it over; tombstones spread.
      const recipient = await node();
      recipient.host(fx.recipientId, (parcel) => {
        received.push(parcel);
        return Promise.resolve({ status: "accepted" });
      }, { signer: signerFromPkcs8(fx.recipientPrivateKeyDer) });
      try {
        await recipient.dial(c.addresses[0]);
        await c.syncNow();
        assert.equal(received.length, 1);
        assert.deepEqual(received[0], bytes);
        for (let i = 0; i < 3; i++) for (const n of [c, b, a]) await n.syncNow();
        assert.deepEqual([a, b, c].map((n) => n.store.knows(key)), [
          "delivered",
          "delivered",
          "delivered",
        ]);
        assert.equal(received.length, 1, "delivered twice");
      } finally {
        await recipient.stop();
      }
    } finally {
      for (const n of [a, b, c]) await n.stop();
    }
  },
});

Deno.test({
  name: "MeshNode purges parcels once they expire",
  async fn() {
    let offset = 0;
    const now = () => new Date(Date.now() + offset);
    const relay = await node({ now });
    try {
      const fx = await fixture();
      await relay.send(await fx.makeParcel({ ttlSeconds: 600 }));
      assert.equal(relay.store.list().length, 1);
      offset = 3_600_000;
      assert.equal(relay.store.purgeExpired(), 1);
      assert.equal(relay.store.list().length, 0);
      assert.equal(relay.store.usage().bytes, 0);
    } finally {
      await relay.stop();
    }
  },
});

Deno.test({
  name:
    "MeshNode stores one parcel once, whatever its encoding (a BER re-encoding is the same parcel)",
  async fn() {
    const relay = await node();
    try {
      const fx = await fixture();
      const parcel = await fx.makeParcel();
      const copies = [parcel, variant(parcel, 1), variant(parcel, 2)];
      assert.notDeepEqual(copies[0], copies[1], "the re-encoding differs octet for octet");
      assert.deepEqual(
        codes(await push(relay.addresses[0], copies.map((bytes) => ({ bytes })))),
        ["ack:0", "ack:2", "ack:2"],
      );
      assert.equal(relay.store.list().length, 1);
    } finally {
      await relay.stop();
    }
  },
});

Deno.test({
  name: "MeshNode caps the copies a peer grants at the copies a parcel starts with",
  async fn() {
    const relay = await node({ initialCopies: 8 });
    try {
      const fx = await fixture();
      const bytes = await fx.makeParcel();
      const key = await sha256Hex(bytes);
      assert.deepEqual(codes(await push(relay.addresses[0], [{ bytes, copies: 65_535 }])), [
        "ack:0",
      ]);
      assert.equal(relay.store.get(key)?.copies, 8);
    } finally {
      await relay.stop();
    }
  },
});

Deno.test({
  name: "MeshNode takes a full window of the largest parcels on one stream, each received once",
  async fn() {
    const fx = await fixture();
    const a = await node();
    const b = await node();
    let delivered = 0;
    b.host(fx.recipientId, () => {
      delivered++;
      return Promise.resolve({ status: "accepted" });
    }, { signer: signerFromPkcs8(fx.recipientPrivateKeyDer) });
    try {
      const count = MAX_IN_FLIGHT + 3;
      for (let i = 0; i < count; i++) {
        await a.send(await fx.makeParcel({ payloadSize: MAX_FIXTURE_PAYLOAD }));
      }
      await a.dial(b.addresses[0]);
      await a.syncNow();
      const deadline = Date.now() + 60_000;
      while (delivered < count && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(delivered, count);
      // A stream reset mid-window would have made the sender send some again.
      assert.equal(a.stats.parcelsSent, count, "each parcel sent once");
    } finally {
      await a.stop();
      await b.stop();
    }
  },
});

Deno.test({
  name:
    "MeshNode sends a parcel waiting for room in the window once, however often peers reconcile",
  async fn() {
    const fx = await fixture();
    const a = await node();
    const b = await node();
    // The recipient's node holds its answers until told: the window fills, and the
    // next parcel waits for room with reconciliations going on meanwhile.
    const gate = Promise.withResolvers<void>();
    let delivered = 0;
    let reached = 0;
    b.host(fx.recipientId, async () => {
      reached++;
      await gate.promise;
      delivered++;
      return { status: "accepted" };
    }, { signer: signerFromPkcs8(fx.recipientPrivateKeyDer) });
    try {
      const count = MAX_IN_FLIGHT + 2;
      for (let i = 0; i < count; i++) await a.send(await fx.makeParcel());
      await a.dial(b.addresses[0]);
      // Not awaited, here and below: a reconciliation waits for the pushes it starts,
      // which wait for the gate.
      const syncs: Promise<unknown>[] = [a.syncNow().catch(() => {})];
      await waitFor("the first parcel to reach the recipient's node", () => reached > 0);
      // Answers held for a while (a duration, well under the stall timeout), while peers
      // reconcile again and again.
      for (let i = 0; i < 10; i++) {
        syncs.push(a.syncNow().catch(() => {}));
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      gate.resolve();
      await Promise.all(syncs);
      await waitFor("every parcel delivered", () => delivered === count);
      await a.syncNow();
      assert.equal(a.stats.parcelsSent, count, "each parcel sent once");
    } finally {
      gate.resolve();
      await a.stop();
      await b.stop();
    }
  },
});
