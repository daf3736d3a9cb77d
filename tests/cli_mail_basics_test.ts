/**
 * The mail basics from the command line, each command as text and as `--json`,
 * alone and through a running daemon: `archive` (a message, or the archive's
 * listing), `unarchive`, `mark-read`, `mark-unread`, `forward`, `delete`,
 * `drafts` and `draft save|send|delete`; and the mistakes a person makes with
 * them (an unknown id, an ambiguous prefix, deleting twice).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { insertMessage } from "../app/core/message_rows.ts";
import { DaemonProcess, fails, json, ok } from "./_cli.ts";
import { carry, makeNode, pair, waitFor } from "./helpers.ts";

/** Two ids that share their first 8 characters, for an ambiguous prefix. */
const TWINS = ["abcd1234-0000-4000-8000-000000000001", "abcd1234-0000-4000-8000-000000000002"];

/**
 * Alice's and Bob's data directories, paired, with a message from Bob to Alice
 * carrying one attachment, and two old messages whose ids share a prefix.
 */
async function mailboxes(root: string): Promise<{ alice: string; bob: string; received: string }> {
  const alice = await makeNode("Alice", { dir: join(root, "alice") });
  const bob = await makeNode("Bob", { dir: join(root, "bob") });
  await pair(alice, bob);
  const sent = await bob.node.mailbox.send({
    to: ["Alice"],
    subject: "Minutes",
    body: "The minutes of Tuesday.",
    attachments: [{ fileName: "minutes.txt", content: new TextEncoder().encode("minutes") }],
  });
  await carry(bob.node, alice.node);
  for (const [n, id] of TWINS.entries()) {
    insertMessage(
      alice.node.ctx.db,
      bob.node.identity.id,
      "inbox",
      {
        messageId: id,
        threadId: id,
        inReplyTo: "",
        sentAt: new Date(Date.UTC(2020, 0, 1 + n)),
        subject: `Twin ${n}`,
        body: "",
        recipients: [alice.node.identity.id],
        attachments: [],
      },
      Date.UTC(2020, 0, 1 + n),
      Date.UTC(2020, 0, 1 + n),
    );
  }
  alice.node.close();
  bob.node.close();
  return { alice: alice.dir, bob: bob.dir, received: sent.id };
}

/** Each command, as text and as JSON, on the directory `dir` (with or without a daemon). */
async function exercise(dir: string, received: string): Promise<void> {
  const short = received.slice(0, 8);

  // Archive and unarchive
  assert.match(await ok(dir, ["archive", short]), /^Archived [0-9a-f]{8} "Minutes"$/m);
  assert.doesNotMatch(await ok(dir, ["inbox"]), /Minutes/);
  const archive = await ok(dir, ["archive"]);
  assert.match(archive, /FROM\/TO/);
  assert.match(archive, new RegExp(`${short}.*from Bob.*Minutes \\[1 att\\]`));
  const archived = await json(dir, ["archive", "--limit", "5"]);
  assert.deepEqual(archived.messages.map((m: { id: string }) => m.id), [received]);
  assert.equal(archived.next, null);
  assert.equal((await json(dir, ["archive", received])).folder, "archive");
  assert.equal((await json(dir, ["status"])).mail.archive, 1);
  assert.match(await ok(dir, ["unarchive", short]), /^Moved [0-9a-f]{8} "Minutes" back to inbox$/m);
  const back = await json(dir, ["unarchive", received]);
  assert.deepEqual([back.folder, back.archived], ["inbox", false]);

  // Read state
  assert.match(await ok(dir, ["mark-read", short]), /Marked [0-9a-f]{8} "Minutes" read/);
  assert.equal((await json(dir, ["mark-unread", short])).read, false);
  assert.match(await ok(dir, ["inbox"]), new RegExp(`\\*${short}`));
  assert.match(await ok(dir, ["mark-unread", short]), /"Minutes" unread/);
  assert.equal((await json(dir, ["mark-read", short])).read, true);

  // Forward, with the original's attachment and one more
  const extra = join(await Deno.makeTempDir(), "agenda.txt");
  await Deno.writeTextFile(extra, "agenda");
  assert.match(
    await ok(dir, ["forward", short, "--to", "Bob", "--body", "FYI"]),
    /^Forwarded as [0-9a-f]{8} "Fwd: Minutes" for Bob \(queued\)$/m,
  );
  const forwarded = await json(dir, ["forward", short, "--to", "Bob", "--attach", extra]);
  assert.equal(forwarded.subject, "Fwd: Minutes");
  assert.deepEqual(
    forwarded.attachments.map((a: { fileName: string }) => a.fileName),
    ["minutes.txt", "agenda.txt"],
  );
  assert.match(forwarded.body, /> The minutes of Tuesday\./);

  // Drafts
  assert.match(
    await ok(dir, ["draft", "save", "--to", "Bob", "--subject", "Plans"]),
    /^Saved draft [0-9a-f]{8}$/m,
  );
  const draft = await json(dir, ["draft", "save", "--subject", "Lunch", "--body", "Noon?"]);
  const changed = await json(dir, [
    "draft",
    "save",
    "--id",
    draft.id.slice(0, 8),
    "--to",
    "Bob",
  ]);
  assert.deepEqual([changed.subject, changed.body, changed.to.length], ["Lunch", "Noon?", 1]);
  const drafts = await json(dir, ["drafts"]);
  assert.deepEqual(drafts.map((d: { subject: string }) => d.subject), ["Lunch", "Plans"]);
  assert.match(await ok(dir, ["drafts"]), /ID\s+SAVED\s+TO\s+SUBJECT\n[0-9a-f]{8} .*Bob\s+Lunch/);
  const sent = await json(dir, ["draft", "send", draft.id.slice(0, 8)]);
  assert.equal(sent.subject, "Lunch");
  const plans = (await json(dir, ["drafts"]))[0];
  assert.match(await ok(dir, ["draft", "send", plans.id]), /^Queued [0-9a-f]{8} "Plans" for Bob/m);
  const dropped = await json(dir, ["draft", "save", "--body", "never mind"]);
  assert.match(await ok(dir, ["draft", "delete", dropped.id]), /^Deleted draft [0-9a-f]{8}$/m);
  const other = await json(dir, ["draft", "save"]);
  assert.deepEqual(await json(dir, ["draft", "delete", other.id]), { deleted: other.id });
  assert.deepEqual(await json(dir, ["drafts"]), []);
  await fails(dir, ["draft", "send", draft.id], 1, /No draft/);
  await fails(dir, ["draft", "delete", "ffffffff"], 1, /No draft "ffffffff"/);

  // Delete: a queued forward is cancelled; received mail goes with its attachment.
  assert.match(
    await ok(dir, ["delete", forwarded.id.slice(0, 8)]),
    /^Deleted [0-9a-f]{8}, with its 2 attachment\(s\)\nDelivery cancelled for Bob: its copy had not left this device \(1 parcel\(s\) dropped\)$/m,
  );
  const purged = await json(dir, ["delete", received]);
  assert.deepEqual(
    [purged.deleted, purged.attachments, purged.parcels, purged.cancelled],
    [received, 1, 0, []],
  );
  // Only the forward that is left quotes it now.
  const found = await json(dir, ["search", "Tuesday"]);
  assert.deepEqual(found.map((m: { subject: string }) => m.subject), ["Fwd: Minutes"]);
  assert.doesNotMatch(await ok(dir, ["search", "Tuesday"]), new RegExp(short));
}

/** The mistakes, and what each says. */
async function mistakes(dir: string): Promise<void> {
  await fails(dir, ["delete", "ffffffff"], 1, /No message "ffffffff"/);
  await fails(dir, ["archive", "ffffffff"], 1, /No message "ffffffff"/);
  await fails(dir, ["delete", "abcd1234"], 1, /"abcd1234" matches several messages/);
  await fails(dir, ["mark-unread", "abc"], 1, /too short/);
  await fails(dir, ["archive", TWINS[0], "--limit", "3"], 1, /give no message/);
  await fails(dir, ["forward", TWINS[0]], 2, /--to/);
  await fails(dir, ["mark-read"], 2, /missing required argument/);
  await fails(dir, ["forward", TWINS[0], "--to", "Nobody"], 1, /No contact/);
  assert.match(await ok(dir, ["delete", TWINS[1]]), /^Deleted abcd1234$/m);
  await fails(dir, ["delete", TWINS[1]], 1, /No message/);
  assert.equal((await json(dir, ["delete", "abcd1234"])).deleted, TWINS[0], "now unique");
}

Deno.test("relaymail archive, mark-unread, forward, drafts and delete, as text and --json", async () => {
  const root = await Deno.makeTempDir({ prefix: "relaymail-cli-basics-" });
  try {
    const { alice, received } = await mailboxes(root);
    await exercise(alice, received);
    await mistakes(alice);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("relaymail mail basics through a running daemon", async () => {
  const root = await Deno.makeTempDir({ prefix: "relaymail-cli-basics-daemon-" });
  let daemon: DaemonProcess | undefined;
  try {
    const { alice, received } = await mailboxes(root);
    daemon = new DaemonProcess(alice);
    await daemon.waitForLog(/mesh node \S+ listening on /);
    await waitFor("control.json", () => Deno.stat(join(alice, "control.json")).then(() => true));
    await exercise(alice, received);
    await mistakes(alice);
    const { code } = await daemon.stop();
    daemon = undefined;
    assert.equal(code, 0);
    // What the daemon did is on disk: the directory opened alone agrees.
    assert.deepEqual(await json(alice, ["drafts"]), []);
    assert.equal((await json(alice, ["status"])).mail.archive, 0);
  } finally {
    await daemon?.stop();
    await Deno.remove(root, { recursive: true });
  }
});
