/**
 * The mesh node's store (mesh/store.ts): parcels held, tombstones and their
 * states, the shares relayed parcels count against, expiry, migrations and
 * reopening. Every store is a file in a temporary directory, on a clock the test
 * moves.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { SqliteDatabase } from "../../bindings/durable.ts";
import {
  decodeItem,
  encodeItem,
  ITEM_LENGTH,
  ItemKind,
  MeshStore,
  type ParcelRecord,
  shareKeys,
} from "../../mesh/store.ts";
import { MIGRATIONS } from "../../mesh/store_schema.ts";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T0 = Date.parse("2030-01-01T00:00:00Z");

/** A clock the test moves by hand. */
class Clock {
  ms = T0;
  readonly now = (): Date => new Date(this.ms);
  advance(ms: number): void {
    this.ms += ms;
  }
}

function key(n: number): string {
  return n.toString(16).padStart(64, "0");
}

/** A relayed parcel of 100 octets, expiring a day after T0, unless overridden. */
function parcel(n: number, overrides: Partial<ParcelRecord> = {}): ParcelRecord {
  const size = overrides.size ?? 100;
  return {
    key: key(n),
    recipientId: "0recipient",
    senderId: "0sender",
    size,
    expiresAt: new Date(T0 + DAY),
    origin: "relay",
    copies: 4,
    fromPeer: "peerA",
    fromHost: "10.0.0.1",
    knownRecipient: true,
    parcelId: `parcel-${n}`,
    bytes: new Uint8Array(size).fill(n),
    ...overrides,
  };
}

interface Context {
  readonly clock: Clock;
  readonly path: string;
  /** Opens the store at `path` again (the test closes it). */
  readonly reopen: () => MeshStore;
}

/** Runs `fn` with a store in a fresh temporary directory, closed and removed afterwards. */
async function withStore(fn: (store: MeshStore, context: Context) => void): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "relaymail-mesh-store-" });
  try {
    const clock = new Clock();
    const path = join(dir, "mesh.sqlite");
    const store = MeshStore.open(path, clock.now);
    try {
      fn(store, { clock, path, reopen: () => MeshStore.open(path, clock.now) });
    } finally {
      store.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Runs `fn` with a fresh temporary directory, removed afterwards. */
async function withDir(fn: (dir: string) => void): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "relaymail-mesh-store-" });
  try {
    fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("MeshStore.put() stores a parcel that get(), bytes(), heldFor() and list() return, oldest first", async () => {
  await withStore((store, { clock }) => {
    assert.equal(store.put(parcel(1)), true);
    clock.advance(1000);
    assert.equal(store.put(parcel(2, { recipientId: "0other" })), true);
    clock.advance(1000);
    assert.equal(store.put(parcel(3)), true);

    assert.deepEqual(store.get(key(1)), {
      key: key(1),
      recipientId: "0recipient",
      senderId: "0sender",
      size: 100,
      expiresAt: new Date(T0 + DAY),
      origin: "relay",
      copies: 4,
    });
    assert.deepEqual(store.bytes(key(1)), new Uint8Array(100).fill(1));
    assert.deepEqual(store.list().map((p) => p.key), [key(1), key(2), key(3)]);
    assert.deepEqual(store.heldFor("0recipient").map((p) => p.key), [key(1), key(3)]);
    assert.deepEqual(store.heldFor("0nobody"), []);
    assert.equal(store.knows(key(1)), "held");

    assert.equal(store.get(key(9)), undefined);
    assert.equal(store.bytes(key(9)), undefined);
    assert.equal(store.knows(key(9)), null);
  });
});

Deno.test("MeshStore.put() keeps the first copy of a key and counts it once", async () => {
  await withStore((store) => {
    assert.equal(store.put(parcel(1)), true);
    const again = parcel(1, { copies: 9, size: 50, bytes: new Uint8Array(50).fill(7) });
    assert.equal(store.put(again), false);
    assert.equal(store.get(key(1))?.copies, 4);
    assert.deepEqual(store.bytes(key(1)), new Uint8Array(100).fill(1));
    assert.deepEqual(store.usage(), { bytes: 100, parcels: 1 });

    // In a batch too: the held one is skipped, the new one stored.
    store.putMany([parcel(1), parcel(2)]);
    assert.equal(store.list().length, 2);
    assert.deepEqual(store.usage(), { bytes: 200, parcels: 2 });
  });
});

Deno.test("MeshStore.knowsId() names a parcel by (sender, parcel id) whatever its key, held then delivered", async () => {
  await withStore((store) => {
    store.put(parcel(1, { senderId: "0alice", parcelId: "p-1" }));
    assert.equal(store.knowsId("0alice", "p-1"), "held");
    assert.equal(store.knowsId("0bob", "p-1"), null, "another sender's parcel of the same id");
    assert.equal(store.knowsId("0alice", "p-2"), null);

    assert.equal(store.markDelivered(key(1), new Date(T0 + DAY)), true);
    // Another encoding of the same parcel (other octets, so another key) is known delivered.
    assert.equal(store.knows(key(2)), null);
    assert.equal(store.knowsId("0alice", "p-1"), "delivered");
    assert.equal(store.knowsId("0bob", "p-1"), null);
  });
});

Deno.test("MeshStore.markDelivered() replaces the parcel by a local tombstone, and a proof makes it proven", async () => {
  await withStore((store) => {
    const expiresAt = new Date(T0 + DAY);
    store.put(parcel(1));
    assert.equal(store.handover(key(1)), undefined);

    assert.equal(store.markDelivered(key(1), expiresAt), true);
    assert.equal(store.get(key(1)), undefined);
    assert.equal(store.bytes(key(1)), undefined);
    assert.equal(store.knows(key(1)), "delivered");
    assert.deepEqual(store.handover(key(1)), { peer: null, toRecipient: true });
    // Local: nothing a peer could check, so no proof and no reconciliation item.
    assert.equal(store.proofOf(key(1)), undefined);
    assert.deepEqual(store.proofs([key(1)]), []);
    assert.deepEqual(store.items(), []);
    assert.equal(store.markDelivered(key(1), expiresAt), false, "no news the second time");

    const proof = new Uint8Array([1, 2, 3]);
    assert.equal(store.markDelivered(key(1), expiresAt, false, proof), true, "a proof is news");
    assert.deepEqual(store.proofOf(key(1)), proof);
    assert.deepEqual(store.proofs([key(1), key(2)]), [{ key: key(1), expiresAt, proof }]);
    assert.deepEqual(store.items(), [{ kind: ItemKind.DELIVERED, key: key(1), expiresAt }]);

    // A proven tombstone keeps its proof.
    assert.equal(store.markDelivered(key(1), expiresAt, false, new Uint8Array([9])), false);
    assert.deepEqual(store.proofOf(key(1)), proof);
  });
});

Deno.test("MeshStore.isLocal() tells parcels this node's host handed in, held and delivered", async () => {
  await withStore((store) => {
    store.put(parcel(1, { origin: "local" }));
    store.put(parcel(2));
    assert.equal(store.isLocal(key(1)), true);
    assert.equal(store.isLocal(key(2)), false);

    store.markDelivered(key(1), new Date(T0 + DAY), true);
    store.markDelivered(key(2), new Date(T0 + DAY), false);
    assert.equal(store.isLocal(key(1)), true);
    assert.equal(store.isLocal(key(2)), false);
    assert.equal(store.isLocal(key(3)), false);
  });
});

Deno.test("MeshStore unverified tombstones count as delivered only once proven, and go when dropped", async () => {
  await withStore((store) => {
    const expiresAt = new Date(T0 + DAY);
    const from = { peer: "peerB", host: "10.0.0.2" };
    const limits = { perPeer: 10, perHost: 10, total: 10 };
    const proof = new Uint8Array([4, 5, 6]);

    assert.equal(store.addUnverified([{ key: key(1), expiresAt, proof }], from, limits), 1);
    assert.equal(store.addUnverified([{ key: key(1), expiresAt, proof }], from, limits), 0);
    assert.equal(store.knows(key(1)), null);
    assert.equal(store.proofOf(key(1)), undefined);
    assert.deepEqual(store.unverifiedProof(key(1)), proof);
    // Still worth passing on: a peer can check it against the parcel.
    assert.deepEqual(store.proofs([key(1)]), [{ key: key(1), expiresAt, proof }]);
    assert.deepEqual(store.items(), [{ kind: ItemKind.DELIVERED, key: key(1), expiresAt }]);

    store.dropUnverified(key(1));
    assert.equal(store.unverifiedProof(key(1)), undefined);
    assert.deepEqual(store.items(), []);

    // A proof checked here turns an unverified tombstone into a proven one.
    store.addUnverified([{ key: key(2), expiresAt, proof }], from, limits);
    const checked = new Uint8Array([7, 8]);
    assert.equal(store.markDelivered(key(2), expiresAt, false, checked), true);
    assert.equal(store.knows(key(2)), "delivered");
    assert.equal(store.unverifiedProof(key(2)), undefined);
    assert.deepEqual(store.proofOf(key(2)), checked);
    store.dropUnverified(key(2));
    assert.equal(store.knows(key(2)), "delivered", "dropUnverified() leaves proven ones");
  });
});

Deno.test("MeshStore.markDeliveredLater() answers at once and writes with the next batch", async () => {
  await withStore((store) => {
    const proof = new Uint8Array([1]);
    store.put(parcel(1, { origin: "local" }));
    store.markDeliveredLater(key(1), new Date(T0 + DAY), true, proof);
    assert.equal(store.knows(key(1)), "delivered");
    assert.deepEqual(store.proofOf(key(1)), proof);
    assert.deepEqual(store.handover(key(1)), { peer: null, toRecipient: true });
    assert.equal(store.isLocal(key(1)), true);
    assert.notEqual(store.get(key(1)), undefined, "not written yet");

    store.flush();
    assert.equal(store.get(key(1)), undefined);
    assert.equal(store.knows(key(1)), "delivered");
    assert.deepEqual(store.proofOf(key(1)), proof);
  });
});

Deno.test("MeshStore.recordHandover() keeps the first peer, and remembers a hand to the recipient", async () => {
  await withStore((store) => {
    store.put(parcel(1, { origin: "local" }));
    assert.equal(store.handover(key(1)), undefined);
    store.recordHandover(key(1), "peerA", false);
    assert.deepEqual(store.handover(key(1)), { peer: "peerA", toRecipient: false });
    store.recordHandover(key(1), "peerB", true);
    assert.deepEqual(store.handover(key(1)), { peer: "peerA", toRecipient: true });
    store.recordHandover(key(1), "peerC", false);
    assert.deepEqual(store.handover(key(1)), { peer: "peerA", toRecipient: true });

    store.setCopies(key(1), 1);
    assert.equal(store.get(key(1))?.copies, 1);
  });
});

Deno.test("shareKeys() lists the sender, the recipient, then the peer, the host and 'unknown' when they apply", () => {
  assert.deepEqual(
    shareKeys({
      senderId: "0s",
      recipientId: "0r",
      fromPeer: "p",
      fromHost: "h",
      knownRecipient: false,
    }),
    ["sender:0s", "recipient:0r", "peer:p", "host:h", "unknown"],
  );
  assert.deepEqual(shareKeys({ senderId: "0s", recipientId: "0r", fromPeer: null }), [
    "sender:0s",
    "recipient:0r",
  ]);
});

Deno.test("MeshStore.usage() and share() count relayed parcels by each share key, and not local ones", async () => {
  await withStore((store) => {
    store.put(parcel(1, { senderId: "0s1", recipientId: "0r1", fromPeer: "P1", fromHost: "H" }));
    store.put(
      parcel(2, {
        senderId: "0s1",
        recipientId: "0r2",
        fromPeer: "P2",
        fromHost: "H",
        knownRecipient: false,
        size: 200,
      }),
    );
    store.put(parcel(3, { senderId: "0s2", origin: "local", size: 1000 }));

    assert.deepEqual(store.usage(), { bytes: 300, parcels: 2 });
    assert.deepEqual(store.usage("0s1"), { bytes: 300, parcels: 2 });
    assert.deepEqual(store.usage("0s2"), { bytes: 0, parcels: 0 }, "local parcels count not");
    assert.deepEqual(store.share("recipient:0r1"), { bytes: 100, parcels: 1 });
    assert.deepEqual(store.share("recipient:0r2"), { bytes: 200, parcels: 1 });
    assert.deepEqual(store.share("peer:P1"), { bytes: 100, parcels: 1 });
    assert.deepEqual(store.share("host:H"), { bytes: 300, parcels: 2 });
    assert.deepEqual(store.share("unknown"), { bytes: 200, parcels: 1 });

    store.markDelivered(key(2), new Date(T0 + DAY));
    assert.deepEqual(store.usage(), { bytes: 100, parcels: 1 });
    assert.deepEqual(store.share("host:H"), { bytes: 100, parcels: 1 });
    assert.deepEqual(store.share("unknown"), { bytes: 0, parcels: 0 });
    assert.deepEqual(store.share("peer:P2"), { bytes: 0, parcels: 0 });

    store.markDelivered(key(3), new Date(T0 + DAY), true);
    assert.deepEqual(store.usage(), { bytes: 100, parcels: 1 });
  });
});

Deno.test("MeshStore.purgeExpired() drops what expired, parcels and tombstones, and counts usage again", async () => {
  await withStore((store, { clock }) => {
    const soon = new Date(T0 + HOUR);
    const later = new Date(T0 + 2 * DAY);
    store.put(parcel(1, { expiresAt: soon }));
    store.put(parcel(2, { expiresAt: later, size: 300 }));
    store.markDelivered(key(3), soon, false, new Uint8Array([1]));
    store.markDelivered(key(4), later, false, new Uint8Array([2]));
    store.addUnverified(
      [{ key: key(5), expiresAt: soon, proof: new Uint8Array([3]) }],
      { peer: "p", host: "h" },
      { perPeer: 5, perHost: 5, total: 5 },
    );
    assert.equal(store.purgeExpired(), 0, "nothing expired yet");
    assert.equal(store.items().length, 5);

    clock.advance(HOUR); // exactly when the first ones expire
    // Expired items are no longer offered, even before the sweep.
    assert.deepEqual(store.items().map((i) => i.key).sort(), [key(2), key(4)]);

    assert.equal(store.purgeExpired(), 1);
    assert.deepEqual(store.list().map((p) => p.key), [key(2)]);
    assert.deepEqual(store.usage(), { bytes: 300, parcels: 1 });
    assert.equal(store.knows(key(3)), null);
    assert.deepEqual(store.proofs([key(3)]), []);
    assert.equal(store.unverifiedProof(key(5)), undefined);
    assert.equal(store.knows(key(4)), "delivered");
    assert.equal(store.purgeExpired(), 0);

    clock.advance(2 * DAY);
    assert.equal(store.purgeExpired(), 1);
    assert.deepEqual(store.usage(), { bytes: 0, parcels: 0 });
    assert.deepEqual(store.items(), []);
  });
});

Deno.test("MeshStore.open() keeps parcels, tombstones, meta and known recipients across a close", async () => {
  await withStore((first, { clock, reopen }) => {
    const proof = new Uint8Array([9, 9]);
    first.put(parcel(1));
    first.put(parcel(2, { origin: "local" }));
    first.recordHandover(key(1), "peerB", false);
    first.setCopies(key(1), 2);
    first.markDelivered(key(2), new Date(T0 + DAY), true, proof);
    first.markDeliveredLater(key(3), new Date(T0 + DAY), true); // never held; close() writes it
    first.setMeta("libp2p-key", new Uint8Array([1, 2, 3]));
    first.noteKnownRecipient("0known", new Date(T0 + HOUR));
    first.close();

    const second = reopen();
    try {
      assert.equal(second.get(key(1))?.copies, 2);
      assert.deepEqual(second.bytes(key(1)), new Uint8Array(100).fill(1));
      assert.deepEqual(second.handover(key(1)), { peer: "peerB", toRecipient: false });
      assert.deepEqual(second.usage(), { bytes: 100, parcels: 1 }, "usage counted from the table");
      assert.deepEqual(second.share("peer:peerA"), { bytes: 100, parcels: 1 });
      assert.deepEqual(second.proofOf(key(2)), proof);
      assert.equal(second.isLocal(key(2)), true);
      assert.equal(second.knows(key(3)), "delivered");
      assert.equal(second.isLocal(key(3)), true);
      assert.deepEqual(second.getMeta("libp2p-key"), new Uint8Array([1, 2, 3]));
      assert.equal(second.isKnownRecipient("0known"), true);
      assert.equal(second.isKnownRecipient("0stranger"), false);
      second.deleteMeta("libp2p-key");
      assert.equal(second.getMeta("libp2p-key"), undefined);
    } finally {
      second.close();
    }

    // A known recipient is known until the time it was noted with.
    clock.advance(HOUR);
    const third = reopen();
    try {
      assert.equal(third.isKnownRecipient("0known"), false);
    } finally {
      third.close();
    }
  });
});

Deno.test("MeshStore.open() migrates a store of the first schema, keeping its parcels and tombstones", async () => {
  await withDir((dir) => {
    const path = join(dir, "mesh.sqlite");
    const old = SqliteDatabase.open(path, { migrations: MIGRATIONS.slice(0, 1) });
    old.run(
      `INSERT INTO parcels (key, recipient_id, sender_id, size, expires_at, received_at, origin,
         copies, from_peer, bytes)
       VALUES (?, '0recipient', '0sender', 3, ?, ?, 'relay', 2, 'peerA', ?)`,
      key(1),
      T0 + DAY,
      T0,
      new Uint8Array([1, 2, 3]),
    );
    old.run(
      "INSERT INTO delivered (key, expires_at, delivered_at, local) VALUES (?, ?, ?, 1)",
      key(2),
      T0 + DAY,
      T0,
    );
    old.close();

    const clock = new Clock();
    const store = MeshStore.open(path, clock.now);
    try {
      assert.deepEqual(store.get(key(1)), {
        key: key(1),
        recipientId: "0recipient",
        senderId: "0sender",
        size: 3,
        expiresAt: new Date(T0 + DAY),
        origin: "relay",
        copies: 2,
      });
      assert.deepEqual(store.bytes(key(1)), new Uint8Array([1, 2, 3]));
      // Columns added later take their defaults: a known recipient, a local tombstone.
      assert.deepEqual(store.usage(), { bytes: 3, parcels: 1 });
      assert.deepEqual(store.share("unknown"), { bytes: 0, parcels: 0 });
      assert.equal(store.knows(key(2)), "delivered");
      assert.equal(store.isLocal(key(2)), true);
      assert.equal(store.proofOf(key(2)), undefined);
      // And what the later schema added works on the old rows.
      assert.equal(
        store.markDelivered(key(2), new Date(T0 + DAY), true, new Uint8Array([5])),
        true,
      );
      assert.deepEqual(store.proofOf(key(2)), new Uint8Array([5]));
      store.put(parcel(3, { parcelId: "p-3" }));
      assert.equal(store.knowsId("0sender", "p-3"), "held");
    } finally {
      store.close();
    }

    const reopened = SqliteDatabase.open(path, { migrations: MIGRATIONS });
    try {
      const version = reopened.get<{ user_version: number }>("PRAGMA user_version");
      assert.equal(version?.user_version, MIGRATIONS.length);
    } finally {
      reopened.close();
    }
  });
});

Deno.test("MeshStore.open() refuses a store of a newer schema than it knows", async () => {
  await withDir((dir) => {
    const path = join(dir, "mesh.sqlite");
    SqliteDatabase.open(path, { migrations: [...MIGRATIONS, "CREATE TABLE later (x)"] }).close();
    assert.throws(
      () => MeshStore.open(path),
      (error: Error) =>
        error instanceof RangeError &&
        error.message.includes(`version ${MIGRATIONS.length + 1} is newer`),
    );
  });
});

Deno.test("encodeItem() and decodeItem() round-trip a parcel and a tombstone, to the second", () => {
  const expiresAt = new Date(T0 + 1999); // the milliseconds are dropped, not rounded
  for (const kind of [ItemKind.PARCEL, ItemKind.DELIVERED]) {
    const bytes = encodeItem({ kind, key: key(7), expiresAt });
    assert.equal(bytes.length, ITEM_LENGTH);
    assert.deepEqual(decodeItem(bytes), { kind, key: key(7), expiresAt: new Date(T0 + 1000) });
  }
});

Deno.test("decodeItem() refuses an unknown kind and a wrong length with RangeError", () => {
  const bytes = encodeItem({ kind: ItemKind.PARCEL, key: key(1), expiresAt: new Date(T0) });
  const unknown = bytes.slice();
  unknown[0] = 3; // 0 parcel, 1 tombstone, 2 post (protocol 3)
  for (
    const bad of [unknown, bytes.subarray(0, ITEM_LENGTH - 1), new Uint8Array(ITEM_LENGTH + 1)]
  ) {
    assert.throws(() => decodeItem(bad), {
      name: "RangeError",
      message: "Not a reconciliation item",
    });
  }
});
