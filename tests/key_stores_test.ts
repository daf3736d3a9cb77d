/**
 * Private keys at rest: a data directory from before RMS2 is resealed when it is
 * opened, the mesh node's libp2p key lives sealed in the key store (moved there
 * from mesh.sqlite, where older versions kept it in the clear), and a passphrase
 * change reseals every key.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createCipheriv, randomBytes, scryptSync } from "node:crypto";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { privateKeyFromProtobuf } from "@libp2p/crypto/keys";
import { Daemon, MESH_STORE_FILE } from "../app/services/daemon.ts";
import { KeySealer, WrongPassphraseError } from "../app/core/keys/sealing.ts";
import { DATABASE_FILE, Relaymail } from "../app/services/relaymail.ts";
import { MeshNode } from "../mesh/mod.ts";
import { carry, makeNode } from "./helpers.ts";

const PASSPHRASE = "correct horse";
const LOOPBACK = ["/ip4/127.0.0.1/tcp/0"];

interface KeyRow {
  rowid: number;
  key_id: string;
  kind: string;
  key: Uint8Array;
  sealed: number;
}

function startDaemon(node: Relaymail): Promise<Daemon> {
  return Daemon.start(node, { listen: LOOPBACK, mdns: false, log: () => {} });
}

/** Reads a data directory's database with a connection of the test's own. */
function withDatabase<T>(dir: string, fn: (db: DatabaseSync) => T): T {
  const db = new DatabaseSync(join(dir, DATABASE_FILE));
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

function keyRows(db: DatabaseSync): KeyRow[] {
  return db.prepare("SELECT rowid, key_id, kind, key, sealed FROM private_keys ORDER BY rowid")
    .all() as unknown as KeyRow[];
}

function meta(db: DatabaseSync, key: string): Uint8Array {
  const row = db.prepare("SELECT value FROM meta WHERE key = ?").get(key) as { value: string };
  return new Uint8Array(Buffer.from(row.value, "hex"));
}

function magic(sealed: Uint8Array): string {
  return new TextDecoder().decode(sealed.subarray(0, 4));
}

function contains(haystack: Uint8Array, needle: Uint8Array): boolean {
  return Buffer.from(haystack).indexOf(Buffer.from(needle)) !== -1;
}

/**
 * Sealing as it was before RMS2 (app/core/keys/sealing.ts at RMS1): scrypt N = 2^15,
 * r = 8, p = 1 under the directory's salt, "RMS1" ‖ nonce ‖ ciphertext ‖ tag.
 */
function rms1Sealer(passphrase: string, salt: Uint8Array) {
  const key = scryptSync(passphrase.normalize("NFC"), salt, 32, {
    N: 2 ** 15,
    r: 8,
    p: 1,
    maxmem: 64 * 1024 * 1024,
  });
  return (plaintext: Uint8Array, label: string): Uint8Array => {
    const nonce = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", key, nonce);
    cipher.setAAD(new TextEncoder().encode(label));
    const body = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    return new Uint8Array(Buffer.concat([new TextEncoder().encode("RMS1"), nonce, body]));
  };
}

/** What schema V5 added (mail at scale), taken away again as a V3 directory never had it. */
const UNDO_V5 = `
DROP TRIGGER messages_added;
DROP TRIGGER messages_removed;
DROP TRIGGER messages_retexted;
DROP TRIGGER messages_redated;
DROP TRIGGER messages_recounted;
DROP TRIGGER attachments_added;
DROP TRIGGER attachments_removed;
DROP TRIGGER attachments_renamed;
DROP TABLE message_counts;
DROP TABLE message_search;
DROP VIEW message_search_text;
DROP INDEX deliveries_by_state;
DROP INDEX messages_by_folder_key;
DROP INDEX messages_by_key;
ALTER TABLE messages DROP COLUMN list_key;
`;

/** What schema V7 added (deleted mail remembered), taken away again before V6 is. */
const UNDO_V7 = `
DROP TABLE deleted_mail;
`;

/** What schema V6 added (archive, drafts), taken away again before V5 is. */
const UNDO_V6 = `
DROP TABLE drafts;
DROP INDEX messages_archived;
DROP INDEX messages_by_place;
CREATE INDEX messages_by_folder_key ON messages (folder, list_key);
`;

/** private_keys as schema V1 to V3 made it. */
const V3_PRIVATE_KEYS = `
CREATE TABLE private_keys_v3 (
  key_id TEXT PRIMARY KEY,
  kind TEXT NOT NULL CHECK (kind IN ('identity', 'session')),
  node_id TEXT NOT NULL,
  peer_id TEXT,
  key BLOB NOT NULL,
  sealed INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  superseded_at INTEGER
);
INSERT INTO private_keys_v3
  (rowid, key_id, kind, node_id, peer_id, key, sealed, created_at, superseded_at)
  SELECT rowid, key_id, kind, node_id, peer_id, key, sealed, created_at, superseded_at
  FROM private_keys;
DROP TABLE private_keys;
ALTER TABLE private_keys_v3 RENAME TO private_keys;
CREATE INDEX private_keys_by_peer ON private_keys (node_id, peer_id, created_at);
${UNDO_V7}
${UNDO_V6}
${UNDO_V5}
ALTER TABLE messages DROP COLUMN archived;
PRAGMA user_version = 3;
`;

/**
 * Turns a closed data directory into what the code before RMS2 and schema V4
 * left: every key and the check sealed in RMS1 under a salt in meta, and
 * private_keys as V3 defined it. Returns each key's plaintext by id.
 */
function makeRms1Directory(dir: string, passphrase: string): Map<string, Uint8Array> {
  return withDatabase(dir, (db) => {
    const current = KeySealer.fromPassphrase(passphrase, meta(db, "passphrase.salt"));
    const salt = KeySealer.newSalt();
    const seal = rms1Sealer(passphrase, salt);
    const plaintexts = new Map<string, Uint8Array>();
    db.exec("BEGIN");
    for (const row of keyRows(db)) {
      const plain = current.open(row.key, row.key_id);
      plaintexts.set(row.key_id, plain);
      db.prepare("UPDATE private_keys SET key = ? WHERE key_id = ?")
        .run(seal(plain, row.key_id), row.key_id);
    }
    const check = seal(new TextEncoder().encode("relaymail passphrase check"), "check");
    db.prepare("UPDATE meta SET value = ? WHERE key = 'passphrase.salt'")
      .run(Buffer.from(salt).toString("hex"));
    db.prepare("UPDATE meta SET value = ? WHERE key = 'passphrase.check'")
      .run(Buffer.from(check).toString("hex"));
    db.exec(V3_PRIVATE_KEYS);
    db.exec("COMMIT");
    // As the old code left it: no copy of the RMS2 keys in the space the rebuild freed.
    db.exec("VACUUM");
    return plaintexts;
  });
}

Deno.test("Relaymail.open() reseals an RMS1 directory's keys and check in RMS2, all or none", async () => {
  const alice = await makeNode("Alice", { passphrase: PASSPHRASE });
  const bob = await makeNode("Bob");
  try {
    const id = alice.node.identity.id;
    const invitation = await alice.node.pairing.createInvitation({ contactName: "Bob" });
    alice.node.close();
    const plaintexts = makeRms1Directory(alice.dir, PASSPHRASE);
    const before = withDatabase(alice.dir, keyRows);
    assert.ok(before.length >= 2, "the identity key and the invitation's session key");
    assert.ok(before.every((row) => magic(row.key) === "RMS1" && row.sealed === 1));
    const salt = withDatabase(alice.dir, (db) => meta(db, "passphrase.salt"));

    // A wrong passphrase changes nothing.
    await assert.rejects(Relaymail.open(alice.dir, { passphrase: "wrong" }), WrongPassphraseError);
    // The keys and the check are resealed in one transaction: a failure at the
    // check (the last write) leaves every key as it was.
    withDatabase(
      alice.dir,
      (db) =>
        db.exec(`CREATE TRIGGER refuse_check BEFORE UPDATE ON meta WHEN new.key = 'passphrase.check'
               BEGIN SELECT RAISE(ABORT, 'injected failure'); END`),
    );
    await assert.rejects(Relaymail.open(alice.dir, { passphrase: PASSPHRASE }), /injected/);
    withDatabase(alice.dir, (db) => {
      assert.deepEqual(keyRows(db), before);
      assert.equal(magic(meta(db, "passphrase.check")), "RMS1");
      db.exec("DROP TRIGGER refuse_check");
    });

    const node = await Relaymail.open(alice.dir, { passphrase: PASSPHRASE });
    const after = withDatabase(alice.dir, keyRows);
    const check = withDatabase(alice.dir, (db) => meta(db, "passphrase.check"));
    assert.deepEqual(after.map((r) => [r.rowid, r.key_id]), before.map((r) => [r.rowid, r.key_id]));
    for (const sealed of [...after.map((row) => row.key), check]) {
      assert.equal(magic(sealed), "RMS2");
      assert.deepEqual([...sealed.subarray(4, 7)], [17, 8, 1]);
      assert.deepEqual(sealed.subarray(7, 23), salt);
    }
    const sealer = KeySealer.fromPassphrase(PASSPHRASE, salt);
    for (const row of after) {
      assert.deepEqual(sealer.open(row.key, row.key_id), plaintexts.get(row.key_id));
    }
    sealer.verifyCheck(check);
    assert.equal(sealer.derivations, 1);

    // The keys still work: the identity, and the session key the invitation handed out.
    assert.equal((await node.identity.endpoint()).id, id);
    await bob.node.pairing.acceptInvitation(invitation.text, { name: "Alice" });
    await carry(bob.node, node);
    await carry(node, bob.node);
    assert.equal(bob.node.contacts.find("Alice").state, "active");
    assert.equal(node.contacts.find("Bob").state, "active");
    node.close();

    // What the keys were no longer lingers in the file, cheaper to attack than what they are.
    const file = await Deno.readFile(join(alice.dir, DATABASE_FILE));
    assert.ok(before.every((row) => !contains(file, row.key)));

    // Opened again, nothing is left to reseal.
    const resealed = withDatabase(alice.dir, keyRows);
    (await Relaymail.open(alice.dir, { passphrase: PASSPHRASE })).close();
    assert.deepEqual(withDatabase(alice.dir, keyRows), resealed);
  } finally {
    await alice.close();
    await bob.close();
  }
});

Deno.test("Daemon.start() keeps the mesh key sealed in the key store, and its peer id across restarts", async () => {
  const alice = await makeNode("Alice", { passphrase: PASSPHRASE });
  let node = alice.node;
  try {
    let daemon = await startDaemon(node);
    const peerId = daemon.mesh.peerId;
    await daemon.stop();

    const [row] = withDatabase(alice.dir, keyRows).filter((r) => r.kind === "mesh");
    assert.equal(row.key_id, peerId);
    assert.equal(row.sealed, 1);
    assert.equal(magic(row.key), "RMS2");
    const salt = withDatabase(alice.dir, (db) => meta(db, "passphrase.salt"));
    const protobuf = KeySealer.fromPassphrase(PASSPHRASE, salt).open(row.key, peerId);
    const seed = privateKeyFromProtobuf(protobuf).raw.subarray(0, 32);
    assert.ok(!contains(row.key, protobuf) && !contains(row.key, seed));
    // Neither database ever held it in the clear.
    for (const file of [DATABASE_FILE, MESH_STORE_FILE]) {
      assert.ok(!contains(await Deno.readFile(join(alice.dir, file)), seed), file);
    }

    daemon = await startDaemon(node);
    assert.equal(daemon.mesh.peerId, peerId);
    await daemon.stop();
    node.close();
    node = await Relaymail.open(alice.dir, { passphrase: PASSPHRASE });
    daemon = await startDaemon(node);
    assert.equal(daemon.mesh.peerId, peerId);
    await daemon.stop();
    assert.equal(withDatabase(alice.dir, keyRows).filter((r) => r.kind === "mesh").length, 1);
  } finally {
    node.close();
    await alice.close();
  }
});

Deno.test("Daemon.start() moves the mesh key older versions kept in mesh.sqlite, keeping the peer id", async () => {
  const alice = await makeNode("Alice", { passphrase: PASSPHRASE });
  const storePath = join(alice.dir, MESH_STORE_FILE);
  const legacyKey = (): Uint8Array | undefined => {
    const db = new DatabaseSync(storePath, { readOnly: true });
    try {
      const row = db.prepare("SELECT value FROM meta WHERE key = 'libp2p.private-key'").get();
      return (row as { value: Uint8Array } | undefined)?.value;
    } finally {
      db.close();
    }
  };
  try {
    // What the daemon did before the key store kept the key: the mesh made one and kept it.
    const old = await MeshNode.create({ storePath, listen: LOOPBACK, mdns: false });
    const peerId = old.peerId;
    await old.stop();
    assert.ok(legacyKey());

    let daemon = await startDaemon(alice.node);
    assert.equal(daemon.mesh.peerId, peerId);
    await daemon.stop();
    assert.equal(legacyKey(), undefined, "mesh.sqlite no longer holds the key");
    const [row] = withDatabase(alice.dir, keyRows).filter((r) => r.kind === "mesh");
    assert.equal(row.key_id, peerId);
    assert.equal(magic(row.key), "RMS2");

    daemon = await startDaemon(alice.node);
    assert.equal(daemon.mesh.peerId, peerId);
    await daemon.stop();
  } finally {
    await alice.close();
  }
});

Deno.test("Relaymail.setPassphrase() reseals every private key, the mesh key among them", async () => {
  const alice = await makeNode("Alice", { passphrase: PASSPHRASE });
  let node = alice.node;
  try {
    await node.pairing.createInvitation({ contactName: "Bob" });
    let daemon = await startDaemon(node);
    const peerId = daemon.mesh.peerId;
    await daemon.stop();
    node.close();
    node = await Relaymail.open(alice.dir, { passphrase: PASSPHRASE });
    const oldRows = withDatabase(alice.dir, keyRows);
    const oldSalt = withDatabase(alice.dir, (db) => meta(db, "passphrase.salt"));
    const oldSealer = KeySealer.fromPassphrase(PASSPHRASE, oldSalt);
    const plaintexts = new Map(
      withDatabase(alice.dir, keyRows).map((r) => [r.key_id, oldSealer.open(r.key, r.key_id)]),
    );
    assert.deepEqual(
      new Set(withDatabase(alice.dir, keyRows).map((r) => r.kind)),
      new Set(["identity", "session", "mesh"]),
    );

    node.setPassphrase("battery staple");
    const salt = withDatabase(alice.dir, (db) => meta(db, "passphrase.salt"));
    assert.notDeepEqual(salt, oldSalt);
    const sealer = KeySealer.fromPassphrase("battery staple", salt);
    for (const row of withDatabase(alice.dir, keyRows)) {
      assert.equal(row.sealed, 1);
      assert.deepEqual(row.key.subarray(7, 23), salt);
      assert.deepEqual(sealer.open(row.key, row.key_id), plaintexts.get(row.key_id));
      assert.throws(() => oldSealer.open(row.key, row.key_id), WrongPassphraseError);
    }
    node.close();
    // Keys sealed under the old passphrase do not linger in the file.
    const file = await Deno.readFile(join(alice.dir, DATABASE_FILE));
    assert.ok(oldRows.every((row) => !contains(file, row.key)));
    node = await Relaymail.open(alice.dir, { passphrase: "battery staple" });
    daemon = await startDaemon(node);
    assert.equal(daemon.mesh.peerId, peerId);
    await daemon.stop();

    // Without a passphrase the mesh key is kept in the clear, like the others.
    node.setPassphrase(null);
    for (const row of withDatabase(alice.dir, keyRows)) {
      assert.equal(row.sealed, 0);
      assert.deepEqual(row.key, plaintexts.get(row.key_id));
    }
    node.close();
    node = await Relaymail.open(alice.dir);
    daemon = await startDaemon(node);
    assert.equal(daemon.mesh.peerId, peerId);
    await daemon.stop();

    // Sealed again, the keys in the clear do not linger in the file.
    node.setPassphrase(PASSPHRASE);
    node.close();
    const clear = await Deno.readFile(join(alice.dir, DATABASE_FILE));
    assert.ok([...plaintexts.values()].every((plain) => !contains(clear, plain)));
  } finally {
    node.close();
    await alice.close();
  }
});
