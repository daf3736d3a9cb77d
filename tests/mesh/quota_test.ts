/**
 * Storage shares (mesh/quota.ts) and bounded tombstones (mesh/store.ts): what one
 * sender, recipient, peer or host may fill, and what a peer's proofs may take.
 */
import assert from "node:assert/strict";
import { StorageQuota } from "../../mesh/quota.ts";
import { MeshStore, type ParcelRecord } from "../../mesh/store.ts";

const QUOTA = 100_000;
const DAY = 86_400_000;

function record(n: number, overrides: Partial<ParcelRecord> = {}): ParcelRecord {
  return {
    key: n.toString(16).padStart(64, "0"),
    recipientId: "0recipient",
    senderId: "0sender",
    size: 1000,
    expiresAt: new Date(Date.now() + DAY),
    origin: "relay",
    copies: 1,
    fromPeer: "peer",
    fromHost: "10.0.0.1",
    knownRecipient: true,
    bytes: new Uint8Array(1000),
    ...overrides,
  };
}

function claim(r: ParcelRecord) {
  return {
    size: r.size,
    senderId: r.senderId,
    recipientId: r.recipientId,
    fromPeer: r.fromPeer!,
    fromHost: r.fromHost!,
    knownRecipient: r.knownRecipient !== false,
  };
}

/** Stores records one by one while the quota lets them; returns how many it did. */
function fill(store: MeshStore, quota: StorageQuota, records: ParcelRecord[]): number {
  let stored = 0;
  for (const r of records) {
    const reservation = quota.reserve(claim(r));
    if ("refused" in reservation) continue;
    store.put(r);
    reservation.release();
    stored++;
  }
  return stored;
}

Deno.test("StorageQuota.reserve() holds room across concurrent checks, before anything commits", () => {
  const store = MeshStore.open(":memory:");
  try {
    const quota = new StorageQuota(store, QUOTA, 1000, {
      sender: 0.1,
      recipient: 1,
      peer: 1,
      host: 1,
      unknown: 1,
    });
    // Ten reservations, none committed yet: only the sender's 10 % passes.
    const results = Array.from({ length: 20 }, (_, i) => quota.reserve(claim(record(i))));
    const granted = results.filter((r) => !("refused" in r));
    assert.equal(granted.length, 10);
    const refused = results.find((r) => "refused" in r) as { refused: string };
    assert.match(refused.refused, /Sender 0sender already fills its share \(10000 bytes/);
    // Released (the parcels were dropped), the room is free again.
    for (const r of granted) (r as { release(): void }).release();
    assert.ok(!("refused" in quota.reserve(claim(record(99)))));
  } finally {
    store.close();
  }
});

Deno.test("StorageQuota keeps one host to its share whatever its peer ids and keys, and leaves honest room", () => {
  const store = MeshStore.open(":memory:");
  try {
    const quota = new StorageQuota(store, QUOTA, 1000);
    // A Sybil: 200 sender keys, 20 recipients it made, 10 peer ids, one host.
    const sybil = Array.from({ length: 200 }, (_, i) =>
      record(i, {
        senderId: `0sybil-sender-${i}`,
        recipientId: `0sybil-recipient-${i % 20}`,
        fromPeer: `sybil-peer-${i % 10}`,
        fromHost: "10.0.0.66",
        knownRecipient: false,
      }));
    const taken = fill(store, quota, sybil);
    assert.equal(taken * 1000, QUOTA * 0.25, "one host fills its 25 % share and no more");
    // An honest sender from another host still gets in.
    const honest = Array.from(
      { length: 10 },
      (_, i) => record(1000 + i, { senderId: "0honest", fromPeer: "honest", fromHost: "10.0.0.2" }),
    );
    assert.equal(fill(store, quota, honest), 10);
  } finally {
    store.close();
  }
});

Deno.test("StorageQuota gives recipients nobody vouched for half the quota, from all hosts together", () => {
  const store = MeshStore.open(":memory:");
  try {
    const quota = new StorageQuota(store, QUOTA, 1000);
    const unknown = Array.from({ length: 100 }, (_, i) =>
      record(i, {
        senderId: `0s${i}`,
        recipientId: `0r${i}`,
        fromPeer: `p${i}`,
        fromHost: `10.0.1.${i}`,
        knownRecipient: false,
      }));
    assert.equal(fill(store, quota, unknown), 50);
    const known = Array.from(
      { length: 10 },
      (_, i) =>
        record(500 + i, { senderId: `0k${i}`, recipientId: `0kr${i}`, fromHost: `10.0.2.${i}` }),
    );
    assert.equal(fill(store, quota, known), 10);
  } finally {
    store.close();
  }
});

Deno.test("MeshStore.addUnverified() keeps a peer's unverifiable proofs within per-peer, per-host and total bounds", () => {
  const store = MeshStore.open(":memory:");
  try {
    const limits = { perPeer: 5, perHost: 8, total: 12 };
    const proofs = (from: number) =>
      Array.from({ length: 20 }, (_, i) => ({
        key: (from + i).toString(16).padStart(64, "0"),
        expiresAt: new Date(Date.now() + DAY),
        proof: new Uint8Array([1, 2, 3]),
      }));
    assert.equal(store.addUnverified(proofs(0), { peer: "a", host: "h1" }, limits), 5);
    assert.equal(
      store.addUnverified(proofs(100), { peer: "b", host: "h1" }, limits),
      3,
      "host cap",
    );
    assert.equal(store.addUnverified(proofs(200), { peer: "c", host: "h2" }, limits), 5);
    // The total is full: newcomers evict the oldest.
    assert.equal(store.addUnverified(proofs(300), { peer: "d", host: "h3" }, limits), 5);
    const items = store.items();
    assert.equal(items.length, 12, "never more than the total");
    // None of them counts as delivered until checked against its parcel.
    assert.equal(store.knows(proofs(300)[0].key), null);
    assert.deepEqual(store.unverifiedProof(proofs(300)[0].key), new Uint8Array([1, 2, 3]));
  } finally {
    store.close();
  }
});

Deno.test("MeshStore.items() never lists more than asked, parcels first", () => {
  const store = MeshStore.open(":memory:");
  try {
    for (let i = 0; i < 30; i++) store.put(record(i));
    store.markDelivered("f".repeat(64), new Date(Date.now() + DAY), false, new Uint8Array([9]));
    store.markDelivered("e".repeat(64), new Date(Date.now() + DAY), false); // no proof: not an item
    assert.equal(store.items().length, 31);
    const capped = store.items(10);
    assert.equal(capped.length, 10);
    assert.ok(capped.every((item) => item.kind === 0));
  } finally {
    store.close();
  }
});
