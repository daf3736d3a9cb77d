/**
 * Backups under attack: crafted files, whose maker knows the passphrase because
 * they made them and talked someone into restoring them, must do no more than
 * "you now are that identity"; a header must not ask for a ruinous key
 * derivation; two restores at once must not both land; and a backup made
 * `--without-mail` must hold no mail at all.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { BackupUnreadableError, openBackup, writeBackup } from "../app/core/backup_format.ts";
import { ConflictError, UserInputError } from "../app/core/errors.ts";
import { KeySealer, type ScryptParams } from "../app/core/keys/sealing.ts";
import { Settings } from "../app/core/settings.ts";
import { DATABASE_FILE, Relaymail } from "../app/services/relaymail.ts";
import { carry, makeNode, pair, randomBytes, type TestNode, waitFor } from "./helpers.ts";
import { startWeb } from "./web/_web.ts";

const PASSPHRASE = "the attacker's own passphrase";
/** A cheap scrypt cost: the attacker picks what they like, and tests want speed. */
const CHEAP: ScryptParams = { log2N: 10, r: 8, p: 1 };

/** Decrypts the payload (a database) of backup `file` into `to`. */
async function decrypt(file: string, to: string): Promise<KeySealer> {
  using input = await Deno.open(file, { read: true });
  const opened = await openBackup(input, PASSPHRASE, "the backup");
  using out = await Deno.open(to, { write: true, createNew: true });
  await opened.payloadTo(out);
  return opened.sealer;
}

/**
 * A backup of `source` whose database `mutate` changed, sealed again, validly,
 * under the same passphrase: what someone who made the file can do.
 */
async function crafted(
  source: TestNode,
  dir: string,
  name: string,
  mutate: (db: DatabaseSync, sealer: KeySealer) => void,
): Promise<string> {
  const honest = join(dir, `${name}.honest.rmbackup`);
  await source.node.backup(honest, { passphrase: PASSPHRASE, params: CHEAP });
  const payload = join(dir, `${name}.sqlite`);
  const sealer = await decrypt(honest, payload);
  const db = new DatabaseSync(payload);
  try {
    mutate(db, sealer);
  } finally {
    db.close();
  }
  using input = await Deno.open(honest, { read: true });
  const { manifest } = await openBackup(input, PASSPHRASE, "the backup");
  const file = join(dir, `${name}.rmbackup`);
  using out = await Deno.open(file, { write: true, createNew: true });
  const payloadBytes = (await Deno.stat(payload)).size;
  await writeBackup(out, sealer, { ...manifest, payloadBytes }, payload);
  return file;
}

/** The schema objects of the database in `dir`: type, name and SQL. */
function schemaOf(dir: string): string[] {
  const db = new DatabaseSync(join(dir, DATABASE_FILE), { readOnly: true });
  try {
    return db.prepare("SELECT type, name, sql FROM sqlite_master ORDER BY type, name").all()
      .map((row) => `${row.type} ${row.name}: ${row.sql}`);
  } finally {
    db.close();
  }
}

Deno.test("restore refuses a database with objects Relaymail never makes, installing nothing", async () => {
  const alice = await makeNode("Alice");
  const work = await Deno.makeTempDir();
  try {
    const cases: [string, string, RegExp][] = [
      [
        "trigger",
        // Would wipe every contact a message arrives from, long after the restore.
        "CREATE TRIGGER evil AFTER INSERT ON messages BEGIN DELETE FROM contacts; END",
        /trigger evil/,
      ],
      ["table", "CREATE TABLE stash (x)", /table stash/],
      ["view", "CREATE VIEW watch AS SELECT * FROM private_keys", /view watch/],
      [
        "changed trigger",
        "DROP TRIGGER messages_added; CREATE TRIGGER messages_added AFTER INSERT ON messages " +
        "BEGIN DELETE FROM identity_certificates; END",
        /trigger messages_added/,
      ],
      ["dropped index", "DROP INDEX messages_by_folder", /index messages_by_folder/],
      // SQLite's backup API would fail to write it into the open database, with no clear error.
      ["page size", "PRAGMA journal_mode = DELETE; PRAGMA page_size = 512; VACUUM", /pages of 512/],
    ];
    for (const [name, sql, what] of cases) {
      const file = await crafted(alice, work, name.replace(" ", "-"), (db) => db.exec(sql));
      const freshDir = await Deno.makeTempDir();
      const fresh = await Relaymail.open(freshDir);
      const before = schemaOf(freshDir);
      try {
        await assert.rejects(
          () => fresh.restore(file, PASSPHRASE),
          (error) =>
            error instanceof BackupUnreadableError &&
            /not as Relaymail makes it/.test(error.message) && what.test(error.message),
          name,
        );
        assert.equal(fresh.identity.exists(), false, name);
      } finally {
        fresh.close();
      }
      assert.deepEqual(schemaOf(freshDir), before, `${name}: the directory is as it was`);
      await Deno.remove(freshDir, { recursive: true });
    }
  } finally {
    await alice.close();
    await Deno.remove(work, { recursive: true });
  }
});

Deno.test("restore leaves a crafted backup's mesh keys and this device's network settings out", async () => {
  const alice = await makeNode("Alice");
  const work = await Deno.makeTempDir();
  const freshDir = await Deno.makeTempDir();
  try {
    const file = await crafted(alice, work, "mesh", (db, sealer) => {
      // A mesh key the attacker knows would let them pass for this device on the mesh.
      db.prepare(
        "INSERT INTO private_keys (key_id, kind, node_id, key, sealed, created_at) " +
          "VALUES ('peer-the-attacker-knows', 'mesh', 'peer-the-attacker-knows', ?, 1, 0)",
      ).run(sealer.seal(new Uint8Array(8), "peer-the-attacker-knows"));
      // And the device would serve PoWeb to the whole network.
      const set = db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)");
      set.run("setting.poweb.serve", "true");
      set.run("setting.poweb.listen", JSON.stringify("0.0.0.0:13276"));
      set.run("setting.mesh.listen", JSON.stringify(["/ip4/0.0.0.0/tcp/1"]));
      set.run("setting.web.port", "1");
      set.run("setting.gateway.url", JSON.stringify("http://127.0.0.1:13999"));
    });
    const fresh = await Relaymail.open(freshDir);
    try {
      // The device's own choice, made before the restore, stays.
      new Settings(fresh.ctx.db).set("web.port", "9000");
      await fresh.restore(file, PASSPHRASE);
      assert.equal(fresh.identity.id, alice.node.identity.id);
      assert.equal(fresh.ctx.keys.privateKeyStore.retrieveMeshKey(), null);
      const settings = new Settings(fresh.ctx.db);
      for (const name of ["poweb.serve", "poweb.listen", "mesh.listen"] as const) {
        assert.equal(settings.isSet(name), false, name);
      }
      assert.equal(settings.get("web.port"), 9000);
      // What belongs to the identity rather than to a device comes along.
      assert.equal(settings.get("gateway.url"), "http://127.0.0.1:13999");
    } finally {
      fresh.close();
    }
  } finally {
    await alice.close();
    await Deno.remove(work, { recursive: true });
    await Deno.remove(freshDir, { recursive: true });
  }
});

Deno.test("restore refuses keys not sealed as a backup seals them, with a clear error", async () => {
  const alice = await makeNode("Alice");
  const work = await Deno.makeTempDir();
  try {
    const cases: [string, (db: DatabaseSync, sealer: KeySealer) => void, RegExp][] = [
      // Each key under a salt of its own would cost a key derivation each: a
      // thousand of them would hold the restore (and the web app) for an hour.
      ["salted", (db) => {
        const other = KeySealer.fromPassphrase(PASSPHRASE, undefined, { params: CHEAP });
        for (const row of db.prepare("SELECT key_id FROM private_keys").all()) {
          const id = String(row.key_id);
          db.prepare("UPDATE private_keys SET key = ? WHERE key_id = ?")
            .run(other.seal(new Uint8Array(8), id), id);
        }
      }, /keys are not sealed as a backup seals them/],
      ["clear", (db) => {
        db.exec("UPDATE private_keys SET sealed = 0, key = x'00'");
      }, /keys are not sealed as a backup seals them/],
      ["damaged", (db) => {
        for (const row of db.prepare("SELECT key_id, key FROM private_keys").all()) {
          const key = row.key as Uint8Array;
          key[key.length - 1] ^= 1; // the tag no longer fits
          db.prepare("UPDATE private_keys SET key = ? WHERE key_id = ?").run(key, row.key_id);
        }
      }, /its keys cannot be opened/],
      ["check", (db, sealer) => {
        const other = KeySealer.fromPassphrase("another passphrase", sealer.salt, {
          params: CHEAP,
        });
        db.prepare("UPDATE meta SET value = ? WHERE key = 'passphrase.check'")
          .run(Array.from(other.makeCheck(), (b) => b.toString(16).padStart(2, "0")).join(""));
      }, /its keys cannot be opened/],
    ];
    for (const [name, mutate, message] of cases) {
      const file = await crafted(alice, work, name, mutate);
      const freshDir = await Deno.makeTempDir();
      const fresh = await Relaymail.open(freshDir);
      try {
        await assert.rejects(
          () => fresh.restore(file, PASSPHRASE),
          (error) => error instanceof BackupUnreadableError && message.test(error.message),
          `${name}`,
        );
        assert.equal(fresh.identity.exists(), false, name);
      } finally {
        fresh.close();
        await Deno.remove(freshDir, { recursive: true });
      }
    }
  } finally {
    await alice.close();
    await Deno.remove(work, { recursive: true });
  }
});

Deno.test("restore refuses a header asking for a key derivation dearer than Relaymail makes", async () => {
  const alice = await makeNode("Alice");
  const work = await Deno.makeTempDir();
  const freshDir = await Deno.makeTempDir();
  try {
    const file = join(work, "alice.rmbackup");
    await alice.node.backup(file, { passphrase: PASSPHRASE, params: CHEAP });
    const bytes = await Deno.readFile(file);
    // 256 MiB (within what a sealed key may ask), but 4 × 2^21 rounds: 8 times the dearest cost.
    bytes.set([21, 1, 4], 9);
    bytes.set([21, 1, 4], 44 + 4 + 4); // and the first chunk's RMS2 header says the same
    const dear = join(work, "dear.rmbackup");
    await Deno.writeFile(dear, bytes);
    const fresh = await Relaymail.open(freshDir);
    try {
      await assert.rejects(
        () => fresh.restore(dear, PASSPHRASE),
        (error) =>
          error instanceof BackupUnreadableError &&
          /key derivation.*is dearer than any Relaymail makes/.test(error.message),
      );
      // The honest file, at a cost below the default, still opens.
      await fresh.restore(file, PASSPHRASE);
      assert.equal(fresh.identity.id, alice.node.identity.id);
    } finally {
      fresh.close();
    }
  } finally {
    await alice.close();
    await Deno.remove(work, { recursive: true });
    await Deno.remove(freshDir, { recursive: true });
  }
});

Deno.test("two restores at once into one directory: one lands, the other is refused", async () => {
  const alice = await makeNode("Alice");
  const carol = await makeNode("Carol");
  const work = await Deno.makeTempDir();
  const freshDir = await Deno.makeTempDir();
  try {
    const a = join(work, "alice.rmbackup");
    const c = join(work, "carol.rmbackup");
    await alice.node.backup(a, { passphrase: PASSPHRASE, params: CHEAP });
    await carol.node.backup(c, { passphrase: PASSPHRASE, params: CHEAP });
    const fresh = await Relaymail.open(freshDir, { passphrase: "the new device's own" });
    let winner = "";
    try {
      const results = await Promise.allSettled([
        fresh.restore(a, PASSPHRASE),
        fresh.restore(c, PASSPHRASE),
      ]);
      const landed = results.filter((r) => r.status === "fulfilled");
      const refused = results.filter((r) => r.status === "rejected");
      assert.equal(landed.length, 1, JSON.stringify(results.map((r) => r.status)));
      assert.ok(refused[0].reason instanceof ConflictError, String(refused[0].reason));
      winner = landed[0].value.identity.id;
      assert.equal(fresh.identity.id, winner);
      assert.ok([alice.node.identity.id, carol.node.identity.id].includes(winner));
    } finally {
      fresh.close();
    }
    // And the directory opens again, with its own passphrase, as that identity.
    const again = await Relaymail.open(freshDir, { passphrase: "the new device's own" });
    try {
      assert.equal(again.identity.id, winner);
    } finally {
      again.close();
    }
  } finally {
    await alice.close();
    await carol.close();
    await Deno.remove(work, { recursive: true });
    await Deno.remove(freshDir, { recursive: true });
  }
});

Deno.test("a backup made without mail holds none of its words, attachments or parcels", async () => {
  const alice = await makeNode("Alice");
  const bob = await makeNode("Bob");
  const work = await Deno.makeTempDir();
  try {
    await pair(alice, bob);
    const secret = "zebra-umbrella-quartz";
    const attachment = randomBytes(4096);
    await alice.node.mailbox.send({
      to: ["Bob"],
      subject: `subject ${secret}`,
      body: `body ${secret}`,
      attachments: [{ fileName: `${secret}.bin`, content: attachment }],
    });
    await bob.node.mailbox.send({ to: ["Alice"], subject: `reply ${secret}`, body: secret });
    await carry(bob.node, alice.node);
    // One of Alice's messages waits, unsent, in her outbox.
    const file = join(work, "small.rmbackup");
    await alice.node.backup(file, { passphrase: PASSPHRASE, params: CHEAP, withoutMail: true });
    const payload = join(work, "small.sqlite");
    await decrypt(file, payload);
    const bytes = await Deno.readFile(payload);
    const text = new TextDecoder("latin1").decode(bytes);
    assert.equal(text.includes(secret), false, "no word of the mail");
    const probe = new TextDecoder("latin1").decode(attachment.subarray(100, 164));
    assert.equal(text.includes(probe), false, "no attachment");
    const db = new DatabaseSync(payload, { readOnly: true });
    try {
      for (const table of ["messages", "attachments", "deliveries", "drafts"]) {
        assert.equal(db.prepare(`SELECT count(*) AS n FROM ${table}`).get()!.n, 0, table);
      }
      assert.equal(
        db.prepare("SELECT count(*) AS n FROM outgoing_parcels WHERE kind = 'mail'").get()!.n,
        0,
      );
    } finally {
      db.close();
    }
  } finally {
    await alice.close();
    await bob.close();
    await Deno.remove(work, { recursive: true });
  }
});

Deno.test("restore refuses a manifest whose fields are not what Relaymail writes", async () => {
  const alice = await makeNode("Alice");
  const work = await Deno.makeTempDir();
  const freshDir = await Deno.makeTempDir();
  try {
    const honest = join(work, "alice.rmbackup");
    await alice.node.backup(honest, { passphrase: PASSPHRASE, params: CHEAP });
    const payload = join(work, "alice.sqlite");
    const sealer = await decrypt(honest, payload);
    using input = await Deno.open(honest, { read: true });
    const { manifest } = await openBackup(input, PASSPHRASE, "the backup");
    const odd = [
      { createdAt: { toString: "x" } },
      { payloadBytes: -1 },
      { includesMail: "yes" },
      { identity: null },
    ];
    const fresh = await Relaymail.open(freshDir);
    try {
      for (const [i, change] of odd.entries()) {
        const file = join(work, `odd-${i}.rmbackup`);
        {
          using out = await Deno.open(file, { write: true, createNew: true });
          await writeBackup(out, sealer, { ...manifest, ...change } as never, payload);
        }
        await assert.rejects(
          () => fresh.restore(file, PASSPHRASE),
          (error) =>
            error instanceof BackupUnreadableError &&
            /its manifest is not as Relaymail writes it/.test(error.message),
          JSON.stringify(change),
        );
        assert.equal(fresh.identity.exists(), false);
      }
    } finally {
      fresh.close();
    }
  } finally {
    await alice.close();
    await Deno.remove(work, { recursive: true });
    await Deno.remove(freshDir, { recursive: true });
  }
});

Deno.test("web: one backup upload at a time, and one cut off leaves no file", async () => {
  const fresh = await Relaymail.open(await Deno.makeTempDir());
  const { web, base, bearer } = await startWeb(fresh);
  const uploads = () =>
    [...Deno.readDirSync(fresh.dataDir)].filter((e) => e.name.endsWith(".upload"));
  const headers = { ...bearer(), "content-type": "application/octet-stream" };
  try {
    // A first upload that does not end (a slow link, or a page filling the disk).
    let sender!: ReadableStreamDefaultController<Uint8Array>;
    const slow = new ReadableStream<Uint8Array>({ start: (c) => void (sender = c) });
    const abort = new AbortController();
    const first = fetch(`${base}/api/restore/upload`, {
      method: "POST",
      headers,
      body: slow,
      signal: abort.signal,
    }).catch((error) => error);
    sender.enqueue(new Uint8Array(1024));
    await waitFor("the first upload to be received", () => uploads().length === 1);
    const second = await fetch(`${base}/api/restore/upload`, {
      method: "POST",
      headers,
      body: new Uint8Array(1024),
    });
    assert.equal(second.status, 409);
    assert.match((await second.json()).error, /being sent already/);
    // The first is cut off: its part goes, and the next upload is taken.
    abort.abort();
    await first;
    await waitFor("the cut-off upload to go", () => uploads().length === 0);
    const third = await fetch(`${base}/api/restore/upload`, {
      method: "POST",
      headers,
      body: new Uint8Array(1024),
    });
    assert.equal(third.status, 200, await third.clone().text());
    assert.equal((await third.json()).bytes, 1024);
    assert.equal(uploads().length, 1);
  } finally {
    await web.stop();
    fresh.close();
    await Deno.remove(fresh.dataDir, { recursive: true });
  }
});

Deno.test("a backup of sealed keys needs their passphrase, over the control API and the web", async () => {
  // Changing or removing the passphrase asks for it; a backup carries the keys
  // away under another one, and must not be the way around it.
  const own = "alice's own passphrase";
  const alice = await makeNode("Alice", { passphrase: own });
  const out = await Deno.makeTempDir();
  const { web, base, bearer } = await startWeb(alice.node);
  try {
    const control = (input: Record<string, unknown>) =>
      web.runtime.serve("backup.create", { passphrase: PASSPHRASE, ...input });
    await assert.rejects(
      () => control({ file: join(out, "none.rmbackup") }),
      (error) => error instanceof UserInputError && /current passphrase/.test(error.message),
    );
    await assert.rejects(
      () => control({ file: join(out, "wrong.rmbackup"), current: "not alice's passphrase" }),
      (error) => error instanceof UserInputError && /passphrase/i.test(error.message),
    );
    assert.deepEqual([...Deno.readDirSync(out)], [], "nothing was written");
    const made = await control({ file: join(out, "right.rmbackup"), current: own });
    assert.equal((made as { contacts: number }).contacts, 0);

    const json = { ...bearer(), "content-type": "application/json" };
    const post = (body: Record<string, unknown>) =>
      fetch(`${base}/api/backup`, {
        method: "POST",
        headers: json,
        body: JSON.stringify({ passphrase: PASSPHRASE, withoutMail: true, ...body }),
      });
    const missing = await post({});
    assert.equal(missing.status, 400);
    assert.match((await missing.json()).error, /current passphrase/);
    const wrong = await post({ current: "not alice's passphrase" });
    assert.equal(wrong.status, 403);
    await wrong.body?.cancel();
    const right = await post({ current: own });
    assert.equal(right.status, 200);
    assert.match((await right.json()).download, /^\/api\/backup\//);
  } finally {
    await web.stop();
    await alice.close();
    await Deno.remove(out, { recursive: true });
  }
});
