/**
 * Mail that stays as the person left it: a received message deleted does not
 * come back when a copy of it arrives again; deleting a sent message that rides
 * in a pairing request says it will still be delivered; a draft survives a crash
 * while it is being sent; deleted mail leaves none of its text in the database
 * file; a kept version 1 invitation text is sealed. And two command-line
 * mistakes: restoring a file that does not exist, and `invite --format 3`.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { forgetInvitationText, invitationText } from "../app/core/invitations.ts";
import { decodeInvitation } from "../app/core/protocol/invitation.ts";
import { relaymail } from "./_cli.ts";
import { carry, DAY, makeNode, pair, pendingBytes, statuses, type TestNode } from "./helpers.ts";

/** Bob accepted Alice's invitation; his first mail to her rides in his pairing request. */
async function pairing(): Promise<{ alice: TestNode; bob: TestNode; sent: string }> {
  const alice = await makeNode("Alice");
  const bob = await makeNode("Bob");
  const invitation = await alice.node.pairing.createInvitation({ contactName: "Bob" });
  await bob.node.pairing.acceptInvitation(invitation.text, { name: "Alice" });
  const sent = await bob.node.mailbox.send({ to: ["Alice"], subject: "first", body: "rides" });
  return { alice, bob, sent: sent.id };
}

Deno.test("a received message deleted stays deleted when a copy of it arrives again", async () => {
  const { alice, bob, sent } = await pairing();
  try {
    assert.deepEqual(statuses(await carry(bob.node, alice.node)), ["accepted"]);
    const received = alice.node.mailbox.list("inbox");
    assert.deepEqual(received.map((m) => m.id), [sent]);
    alice.node.mailbox.delete(sent);
    // Only Alice's answer reaches Bob, not her receipt: Bob sends the mail again.
    const [answer] = await pendingBytes(alice.node);
    await bob.node.receiveParcel(answer, { binding: "test" });
    assert.ok(bob.node.ctx.db.get("SELECT 1 AS found FROM outgoing_parcels WHERE kind = 'mail'"));
    assert.deepEqual(statuses(await carry(bob.node, alice.node)), ["accepted"]);
    assert.deepEqual(alice.node.mailbox.list("inbox"), [], "not stored again");
    // Answered with a receipt all the same: Bob's copy is delivered.
    await carry(alice.node, bob.node);
    const [mine] = bob.node.mailbox.list("sent");
    assert.deepEqual(mine.deliveries.map((d) => d.state), ["delivered"]);

    // Remembered for two parcel lifetimes (an answer may take one to arrive, and
    // the copy re-sent then another), then forgotten by maintenance.
    const { parcelTtlMs } = alice.node.ctx.tunables;
    alice.clock.advance(parcelTtlMs + DAY);
    assert.deepEqual(alice.node.mailbox.purgeDeleted().forgotten, 0);
    alice.clock.advance(parcelTtlMs + DAY);
    assert.deepEqual(alice.node.mailbox.purgeDeleted().forgotten, 1);
  } finally {
    await alice.close();
    await bob.close();
  }
});

Deno.test("deleting a sent message does not remember it as deleted mail", async () => {
  const alice = await makeNode("Alice");
  const bob = await makeNode("Bob");
  try {
    await pair(alice, bob);
    const sent = await alice.node.mailbox.send({ to: ["Bob"], subject: "hi", body: "x" });
    alice.node.mailbox.delete(sent.id);
    assert.equal(
      alice.node.ctx.db.get<{ n: number }>("SELECT count(*) AS n FROM deleted_mail")!.n,
      0,
    );
  } finally {
    await alice.close();
    await bob.close();
  }
});

Deno.test("deleting a message packed with a pairing request says it will still arrive", async () => {
  const { alice, bob, sent } = await pairing();
  try {
    const result = bob.node.mailbox.delete(sent);
    assert.deepEqual(result.cancelled, []);
    assert.deepEqual(result.riding.map((p) => p.name), ["Alice"]);
    assert.deepEqual(result.parcels, 0);
    await carry(bob.node, alice.node);
    assert.deepEqual(alice.node.mailbox.list("inbox").map((m) => m.subject), ["first"]);
  } finally {
    await alice.close();
    await bob.close();
  }
});

Deno.test("relaymail delete says a message packed with a pairing request still arrives", async () => {
  const root = await Deno.makeTempDir({ prefix: "relaymail-riding-" });
  try {
    const alice = await makeNode("Alice", { dir: join(root, "alice") });
    const bob = await makeNode("Bob", { dir: join(root, "bob") });
    const invitation = await alice.node.pairing.createInvitation({ contactName: "Bob" });
    await bob.node.pairing.acceptInvitation(invitation.text, { name: "Alice" });
    const sent = await bob.node.mailbox.send({ to: ["Alice"], subject: "first", body: "x" });
    alice.node.close();
    bob.node.close();
    const run = await relaymail(bob.dir, ["delete", sent.id]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(
      run.stdout,
      /Already packed with the pairing request to Alice: it will still be delivered/,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

/**
 * Runs a process that sends draft `draftId` from the node in `dir` and dies (exit
 * 137) inside the transaction that stores the message, before it commits.
 */
async function crashWhileSending(dir: string, draftId: string): Promise<number> {
  const script = join(dir, "..", "crash.ts");
  const url = (path: string) => new URL(path, import.meta.url).href;
  await Deno.writeTextFile(
    script,
    `import { Outbox } from "${url("../app/core/outbox.ts")}";
     import { Relaymail } from "${url("../app/services/relaymail.ts")}";
     const node = await Relaymail.open(${JSON.stringify(dir)}, {});
     Outbox.prototype.insert = () => Deno.exit(137); // the power goes mid-commit
     await node.mailbox.sendDraft(${JSON.stringify(draftId)});`,
  );
  const config = new URL("../deno.json", import.meta.url).pathname;
  const { code } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "-A", "--config", config, script],
    stdout: "null",
    stderr: "null",
  }).output();
  return code;
}

Deno.test("a draft survives a crash while it is being sent", async () => {
  const root = await Deno.makeTempDir({ prefix: "relaymail-crash-" });
  try {
    const alice = await makeNode("Alice", { dir: join(root, "alice") });
    const bob = await makeNode("Bob", { dir: join(root, "bob") });
    await pair(alice, bob);
    const draft = alice.node.mailbox.drafts.create({ to: ["Bob"], subject: "long letter" });
    alice.node.close();
    assert.equal(await crashWhileSending(alice.dir, draft.id), 137);

    const reopened = await makeNode("Alice", { dir: alice.dir });
    try {
      assert.deepEqual(reopened.node.mailbox.drafts.list().map((d) => d.id), [draft.id]);
      assert.equal(reopened.node.mailbox.counts().sent, 0);
      // Sent for real, the draft and the message change places in one commit.
      await reopened.node.mailbox.sendDraft(draft.id);
      assert.deepEqual(reopened.node.mailbox.drafts.list(), []);
      assert.equal(reopened.node.mailbox.counts().sent, 1);
    } finally {
      reopened.node.close();
    }
    bob.node.close();
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

/** How many times `word` occurs in the database file and its write-ahead log. */
async function occurrences(dir: string, word: string): Promise<number> {
  let n = 0;
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.name.startsWith("relaymail.sqlite")) continue;
    const text = new TextDecoder("latin1").decode(await Deno.readFile(join(dir, entry.name)));
    n += text.split(word).length - 1;
  }
  return n;
}

Deno.test("mail deleted for good leaves none of its text in the database file", async () => {
  const alice = await makeNode("Alice");
  const bob = await makeNode("Bob");
  try {
    await pair(alice, bob);
    const secret = new TextEncoder().encode("ATTACHMENTSECRETBYTES-".repeat(200));
    const gone = await bob.node.mailbox.send({
      to: ["Alice"],
      subject: "xylophonesubject",
      body: "quizzicalbodyword",
      attachments: [{ fileName: "f.bin", content: secret }],
    });
    await bob.node.mailbox.send({ to: ["Alice"], subject: "kept", body: "stays" });
    await carry(bob.node, alice.node);
    alice.node.ctx.db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    assert.ok(await occurrences(alice.dir, "quizzicalbodyword") > 0, "the probe finds it");

    alice.node.mailbox.delete(gone.id);
    assert.equal(await occurrences(alice.dir, "ATTACHMENTSECRETBYTES"), 0);
    assert.equal(alice.node.mailbox.searchPage("xylophonesubject").messages.length, 0);
    // Its words stay in the search index's pages until maintenance rewrites it.
    assert.deepEqual(alice.node.mailbox.purgeDeleted().indexCompacted, true);
    for (const word of ["xylophonesubject", "quizzicalbodyword", "ATTACHMENTSECRETBYTES"]) {
      assert.equal(await occurrences(alice.dir, word), 0, word);
    }
    assert.deepEqual(alice.node.mailbox.searchPage("stays").messages.map((m) => m.subject), [
      "kept",
    ]);
    assert.deepEqual(alice.node.mailbox.purgeDeleted().indexCompacted, false, "once");
  } finally {
    await alice.close();
    await bob.close();
  }
});

Deno.test("a kept version 1 invitation text is sealed, shown again, and forgotten", async () => {
  const alice = await makeNode("Alice", { passphrase: "correct horse battery" });
  try {
    const created = await alice.node.pairing.createInvitation({ contactName: "Bob", format: 1 });
    assert.ok((await decodeInvitation(created.text, new Date())).invitationKey, "holds K");
    const kept = alice.node.ctx.db.all<{ value: string }>(
      "SELECT value FROM meta WHERE key LIKE 'invitation.text.%'",
    );
    assert.equal(kept.length, 1);
    assert.ok(!kept[0].value.includes(created.text.slice(20, 60)), "not in the clear");
    assert.match(kept[0].value, /^sealed /);
    const shown = await invitationText(alice.node.ctx, alice.node.identity, created.id);
    assert.equal(shown.text, created.text);

    forgetInvitationText(alice.node.ctx, created.id);
    await assert.rejects(
      invitationText(alice.node.ctx, alice.node.identity, created.id),
      /made before texts were kept/,
    );
  } finally {
    await alice.close();
  }
});

Deno.test("restore names a missing file before asking for a passphrase", async () => {
  const dir = await Deno.makeTempDir({ prefix: "relaymail-restore-" });
  try {
    const missing = join(dir, "nonexistent.rmbackup");
    const run = await relaymail(join(dir, "data"), ["restore", missing]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /No backup at .*nonexistent\.rmbackup: the file does not exist/);
    assert.doesNotMatch(run.stderr, /passphrase/i);
    const folder = await relaymail(join(dir, "data"), ["restore", dir]);
    assert.match(folder.stderr, /is not a file: give the backup file itself/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("invite --format 3 is a usage error", async () => {
  const alice = await makeNode("Alice");
  alice.node.close();
  try {
    const run = await relaymail(alice.dir, ["invite", "--format", "3"]);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /--format takes 1 or 2, not "3"/);
  } finally {
    await Deno.remove(alice.dir, { recursive: true });
  }
});
