/**
 * Identity backup and restore (issue 12, "Restore"): a backup restored into a
 * fresh data directory carries its conversations on, contacts writing to it and
 * it writing to them, with real parcels; a wrong passphrase, a damaged file or a
 * directory that has an identity already are refused with nothing written.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { BackupUnreadableError } from "../app/core/backup_format.ts";
import { ConflictError, UserInputError } from "../app/core/errors.ts";
import { PassphraseRequiredError } from "../app/core/keys/key_stores.ts";
import { DATABASE_FILE, Relaymail } from "../app/services/relaymail.ts";
import { DaemonProcess, relaymail } from "./_cli.ts";
import { carry, makeNode, pair, randomBytes, type TestNode } from "./helpers.ts";

const PASSPHRASE = "a long backup passphrase";

/** Alice and Bob, paired, having written to each other once each way. */
async function conversation(options: { alicePassphrase?: string } = {}) {
  const alice = await makeNode("Alice", { passphrase: options.alicePassphrase });
  const bob = await makeNode("Bob");
  await pair(alice, bob);
  await alice.node.mailbox.send({
    to: ["Bob"],
    subject: "Before the backup",
    body: "Hello Bob",
    attachments: [{ fileName: "photo.bin", content: randomBytes(300_000) }],
  });
  await carry(alice.node, bob.node);
  await bob.node.mailbox.send({ to: ["Alice"], subject: "Re: before", body: "Hello Alice" });
  await carry(bob.node, alice.node);
  await carry(alice.node, bob.node); // receipts
  return { alice, bob };
}

/** Subjects in `node`'s folder, oldest first. */
function subjects(node: Relaymail, folder: "inbox" | "sent"): string[] {
  return node.mailbox.list(folder).map((m) => m.subject).sort();
}

/** What is in directory `dir`. */
function entries(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
}

/** Mail goes both ways between the restored Alice and Bob, over real parcels. */
async function carriesOn(restored: Relaymail, bob: TestNode, tag: string): Promise<void> {
  await bob.node.mailbox.send({ to: ["Alice"], subject: `Bob after ${tag}`, body: "Still there?" });
  await carry(bob.node, restored);
  assert.ok(subjects(restored, "inbox").includes(`Bob after ${tag}`), "restored Alice reads Bob");
  await restored.mailbox.send({ to: ["Bob"], subject: `Alice after ${tag}`, body: "Yes" });
  await carry(restored, bob.node);
  assert.ok(subjects(bob.node, "inbox").includes(`Alice after ${tag}`), "Bob reads restored Alice");
  await carry(bob.node, restored); // Bob's receipt
  const sent = restored.mailbox.list("sent").find((m) => m.subject === `Alice after ${tag}`)!;
  assert.deepEqual(sent.deliveries.map((d) => d.state), ["delivered"]);
  // And once more each way, on the session keys the first exchange moved to.
  await bob.node.mailbox.send({ to: ["Alice"], subject: `Bob again ${tag}`, body: "Good" });
  await carry(bob.node, restored);
  assert.ok(subjects(restored, "inbox").includes(`Bob again ${tag}`));
}

Deno.test("restore() into a fresh directory carries the conversation on, both ways", async () => {
  const { alice, bob } = await conversation({ alicePassphrase: "alice's own passphrase" });
  const out = await Deno.makeTempDir();
  const fresh = await Deno.makeTempDir();
  try {
    // A mesh key belongs to one install: the restored copy must make its own.
    alice.node.ctx.keys.privateKeyStore.saveMeshKey("peer-of-the-original", new Uint8Array(8));
    const report = await alice.node.backup(join(out, "alice.rmbackup"), { passphrase: PASSPHRASE });
    assert.equal(report.includesMail, true);
    assert.equal(report.contacts, 1);
    assert.equal(report.messages, 2);
    assert.equal((await Deno.stat(report.file)).mode! & 0o777, 0o600);
    assert.deepEqual(entries(out), ["alice.rmbackup"], "no temporary file is left beside it");
    const aliceId = alice.node.identity.id;
    alice.node.close(); // the old device is put away

    const restored = await Relaymail.open(fresh, { passphrase: "the new device's passphrase" });
    try {
      const result = await restored.restore(report.file, PASSPHRASE);
      assert.equal(result.identity.id, aliceId);
      assert.equal(result.contacts, 1);
      assert.equal(result.messages, 2);
      assert.deepEqual(subjects(restored, "inbox"), ["Re: before"]);
      assert.deepEqual(subjects(restored, "sent"), ["Before the backup"]);
      const [sent] = restored.mailbox.list("sent");
      assert.equal(restored.mailbox.attachments(sent.id)[0].content.length, 300_000);
      assert.equal(restored.contacts.list()[0].state, "active");
      assert.equal(restored.ctx.keys.privateKeyStore.retrieveMeshKey(), null);
      await carriesOn(restored, bob, "the restore");
    } finally {
      restored.close();
    }
    // Keys at rest are sealed under the new directory's passphrase, and only it.
    const db = new DatabaseSync(join(fresh, DATABASE_FILE), { readOnly: true });
    try {
      const keys = db.prepare("SELECT sealed, count(*) AS n FROM private_keys GROUP BY sealed")
        .all();
      assert.deepEqual(keys.map((row) => row.sealed), [1], "every key is sealed");
    } finally {
      db.close();
    }
    await assert.rejects(() => Relaymail.open(fresh), PassphraseRequiredError);
    const again = await Relaymail.open(fresh, { passphrase: "the new device's passphrase" });
    try {
      await carriesOn(again, bob, "reopening");
    } finally {
      again.close();
    }
    assert.deepEqual(entries(fresh).filter((name) => name.startsWith(".backup-")), []);
  } finally {
    await bob.close();
    await Deno.remove(alice.dir, { recursive: true });
    await Deno.remove(out, { recursive: true });
    await Deno.remove(fresh, { recursive: true });
  }
});

Deno.test("backup({ withoutMail }) restores contacts without mail, and they carry on", async () => {
  const { alice, bob } = await conversation();
  const out = await Deno.makeTempDir();
  const fresh = await Deno.makeTempDir();
  try {
    const full = await alice.node.backup(join(out, "full.rmbackup"), { passphrase: PASSPHRASE });
    const small = await alice.node.backup(join(out, "small.rmbackup"), {
      passphrase: PASSPHRASE,
      withoutMail: true,
    });
    assert.equal(small.includesMail, false);
    assert.equal(small.messages, 0);
    // The 300 kB attachment is in one only.
    assert.ok(small.bytes + 250_000 < full.bytes, `${small.bytes} + 250000 < ${full.bytes}`);
    alice.node.close();
    const restored = await Relaymail.open(fresh);
    try {
      const result = await restored.restore(small.file, PASSPHRASE);
      assert.equal(result.backup.includesMail, false);
      assert.equal(result.messages, 0);
      assert.deepEqual(restored.contacts.list().map((c) => c.name), ["Bob"]);
      assert.deepEqual(restored.mailbox.list("inbox"), []);
      assert.equal(restored.hasPassphrase, false);
      await carriesOn(restored, bob, "a backup without mail");
    } finally {
      restored.close();
    }
  } finally {
    await bob.close();
    await Deno.remove(alice.dir, { recursive: true });
    await Deno.remove(out, { recursive: true });
    await Deno.remove(fresh, { recursive: true });
  }
});

Deno.test("restore() refuses a wrong passphrase, a damaged file and a used directory, writing nothing", async () => {
  const { alice, bob } = await conversation();
  const out = await Deno.makeTempDir();
  const fresh = await Deno.makeTempDir();
  try {
    await assert.rejects(
      () => alice.node.backup(join(out, "short.rmbackup"), { passphrase: "too short" }),
      (error) =>
        error instanceof UserInputError && /at least 10 characters, not 9/.test(error.message),
    );
    const { file } = await alice.node.backup(join(out, "alice.rmbackup"), {
      passphrase: PASSPHRASE,
    });
    await assert.rejects(
      () => alice.node.backup(file, { passphrase: PASSPHRASE }),
      (error) => error instanceof ConflictError && /exists already/.test(error.message),
    );
    const bytes = await Deno.readFile(file);
    const tampered = join(out, "tampered.rmbackup");
    const flipped = bytes.slice();
    flipped[Math.floor(bytes.length / 2)] ^= 1;
    await Deno.writeFile(tampered, flipped);
    const truncated = join(out, "truncated.rmbackup");
    await Deno.writeFile(truncated, bytes.subarray(0, bytes.length - 100));
    const notABackup = join(out, "notes.txt");
    await Deno.writeTextFile(notABackup, "shopping list");

    const node = await Relaymail.open(fresh);
    try {
      const before = entries(fresh);
      const cases: [string, string, RegExp][] = [
        [
          file,
          "a wrong passphrase!",
          /wrong passphrase, or the backup is damaged; nothing was restored/,
        ],
        [tampered, PASSPHRASE, /wrong passphrase, or the backup is damaged/],
        [truncated, PASSPHRASE, /damaged \(it is cut short\)/],
        [notABackup, PASSPHRASE, /not a Relaymail backup/],
      ];
      for (const [path, passphrase, message] of cases) {
        await assert.rejects(
          () => node.restore(path, passphrase),
          (error) => error instanceof BackupUnreadableError && message.test(error.message),
          path,
        );
        assert.equal(node.identity.exists(), false);
        assert.deepEqual(entries(fresh), before, "no file is left behind");
      }
      // The directory still takes the right backup afterwards.
      await node.restore(file, PASSPHRASE);
      assert.equal(node.identity.info().name, "Alice");
      await assert.rejects(
        () => node.restore(file, PASSPHRASE),
        (error) =>
          error instanceof ConflictError && /already has an identity \(Alice/.test(error.message),
      );
    } finally {
      node.close();
    }
    await assert.rejects(
      () => bob.node.restore(file, PASSPHRASE),
      (error) =>
        error instanceof ConflictError && /already has an identity \(Bob/.test(error.message),
    );
    assert.equal(bob.node.identity.info().name, "Bob");
  } finally {
    await alice.close();
    await bob.close();
    await Deno.remove(out, { recursive: true });
    await Deno.remove(fresh, { recursive: true });
  }
});

Deno.test("relaymail backup and restore: a round trip with --json, through a running daemon", async () => {
  const { alice, bob } = await conversation();
  const aliceDir = alice.dir;
  const aliceId = alice.node.identity.id;
  alice.node.close();
  const out = await Deno.makeTempDir();
  const fresh = join(await Deno.makeTempDir(), "restored");
  const env = { RELAYMAIL_BACKUP_PASSPHRASE: PASSPHRASE };
  const daemon = new DaemonProcess(aliceDir);
  try {
    await daemon.waitForLog(/mesh node \S+ listening on /);
    const short = await relaymail(aliceDir, ["backup", out], {
      env: { RELAYMAIL_BACKUP_PASSPHRASE: "short" },
    });
    assert.equal(short.code, 1, short.stderr);
    assert.match(short.stderr, /at least 10 characters, not 5/);
    // A directory gets a dated file inside it.
    const made = await relaymail(aliceDir, ["--json", "backup", out], { env });
    assert.equal(made.code, 0, made.stderr);
    const report = JSON.parse(made.stdout);
    assert.match(report.file, /relaymail-backup-\d{4}-\d\d-\d\d\.rmbackup$/);
    assert.equal(report.identity.id, aliceId);
    assert.equal(report.messages, 2);
    await daemon.stop();

    const wrong = await relaymail(fresh, ["restore", report.file], {
      env: { RELAYMAIL_BACKUP_PASSPHRASE: "not the passphrase" },
    });
    assert.equal(wrong.code, 1, wrong.stderr);
    assert.match(wrong.stderr, /wrong passphrase, or the backup is damaged; nothing was restored/);
    const done = await relaymail(fresh, ["--json", "restore", report.file], { env });
    assert.equal(done.code, 0, done.stderr);
    const restored = JSON.parse(done.stdout);
    assert.equal(restored.identity.id, aliceId);
    assert.equal(restored.contacts, 1);
    assert.equal(restored.messages, 2);
    assert.equal((await Deno.stat(fresh)).mode! & 0o777, 0o700);
    assert.equal((await Deno.stat(join(fresh, DATABASE_FILE))).mode! & 0o777, 0o600);
    const show = await relaymail(fresh, ["--json", "identity", "show"]);
    assert.equal(JSON.parse(show.stdout).id, aliceId);
    const twice = await relaymail(fresh, ["restore", report.file], { env });
    assert.equal(twice.code, 1, twice.stderr);
    assert.match(twice.stderr, /already has an identity \(Alice/);

    const node = await Relaymail.open(fresh);
    try {
      await carriesOn(node, bob, "a CLI restore");
    } finally {
      node.close();
    }
  } finally {
    await daemon.stop();
    await bob.close();
    await Deno.remove(aliceDir, { recursive: true });
    await Deno.remove(out, { recursive: true });
    await Deno.remove(join(fresh, ".."), { recursive: true });
  }
});
