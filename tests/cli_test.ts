/**
 * End-to-end tests of the `relaymail` command, run as a person would: one process
 * per command, three data directories (Alice, Bob, Mallory), parcels carried on
 * a "USB stick" directory.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { relaymail } from "./_cli.ts";

const FORGE = join(import.meta.dirname!, "fixtures", "forge_parcel.ts");

/** Runs a command that must succeed; returns its stdout. */
async function ok(dataDir: string, ...args: string[]): Promise<string> {
  const run = await relaymail(dataDir, args);
  assert.equal(run.code, 0, `relaymail ${args.join(" ")} failed: ${run.stderr}`);
  return run.stdout;
}

/** Runs a `--json` command that must succeed; returns its parsed output. */
async function json<T = any>(dataDir: string, ...args: string[]): Promise<T> {
  return JSON.parse(await ok(dataDir, "--json", ...args));
}

async function parcelFiles(dir: string): Promise<string[]> {
  const names = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.name.endsWith(".parcel")) names.push(entry.name);
  }
  return names.sort();
}

Deno.test("relaymail CLI: Alice and Bob pair and mail each other by USB stick; Mallory gets nothing in", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "relaymail-cli-" });
  const alice = join(root, "alice");
  const bob = join(root, "bob");
  const mallory = join(root, "mallory");
  const stick = join(root, "stick");
  const malloryStick = join(root, "mallory-stick");
  // Export writes only into a folder that exists, as a plugged-in stick does.
  await Deno.mkdir(stick);
  await Deno.mkdir(malloryStick);
  try {
    let invitation = "";
    await t.step("identities and a one-line invitation", async () => {
      for (const [dir, name] of [[alice, "Alice"], [bob, "Bob"], [mallory, "Mallory"]]) {
        const identity = await json(dir, "identity", "create", "--name", name);
        assert.equal(identity.name, name);
        assert.match(identity.id, /^0[0-9a-f]{64}$/);
      }
      const created = await json(alice, "invite", "--name", "Bob", "--expires", "2d");
      invitation = created.text;
      assert.match(invitation, /^relaymail-invite:2:[A-Z2-7]+$/);
      assert.equal((await Deno.readTextFile(created.file)).trim(), invitation);
      const plain = await ok(alice, "invite", "--name", "Carol");
      assert.equal(plain.trim().split("\n").length, 1, "the invitation is a single line");
    });

    await t.step("Bob accepts; the stick carries the pairing both ways", async () => {
      const contact = await json(bob, "accept", invitation, "--name", "Alice");
      assert.equal(contact.state, "pairing");
      await ok(bob, "sneakernet", "export", stick);
      const imported = await json(alice, "sneakernet", "import", stick);
      assert.equal(imported.accepted, 1);
      await ok(alice, "sneakernet", "export", stick);
      await ok(bob, "sneakernet", "import", stick);
      const [aliceAtBob] = await json(bob, "contacts");
      const [bobAtAlice] = await json(alice, "contacts");
      assert.deepEqual([aliceAtBob.name, aliceAtBob.state], ["Alice", "active"]);
      assert.deepEqual([bobAtAlice.name, bobAtAlice.state, bobAtAlice.nameHint], [
        "Bob",
        "active",
        "Bob",
      ]);
    });

    let helloId = "";
    let replyFiles: string[] = [];
    const attachment = join(root, "notes.txt");
    await t.step("mail with an attachment, a threaded reply, and receipts", async () => {
      await Deno.writeTextFile(attachment, "Meet at the old mill.\n");
      const sent = await json(
        alice,
        "send",
        "--to",
        "Bob",
        "--subject",
        "Hello",
        "--body",
        "Hi Bob!",
        "--attach",
        attachment,
      );
      helloId = sent.id;
      assert.deepEqual(sent.deliveries.map((d: any) => d.state), ["queued"]);
      assert.equal((await json(alice, "outbox"))[0].id, helloId);
      await ok(alice, "sneakernet", "export", stick);
      assert.equal((await json(alice, "sent"))[0].deliveries[0].state, "sent", "left this device");
      await ok(bob, "sneakernet", "import", stick);

      const [hello] = await json(bob, "inbox");
      assert.deepEqual([hello.subject, hello.from.name, hello.read], ["Hello", "Alice", false]);
      const saved = join(root, "saved");
      const read = await json(bob, "read", hello.id.slice(0, 8), "--save-attachments", saved);
      assert.equal(read.body, "Hi Bob!");
      assert.equal(await Deno.readTextFile(join(saved, "notes.txt")), "Meet at the old mill.\n");
      assert.equal((await json(bob, "inbox"))[0].read, true);

      const reply = await json(
        bob,
        "send",
        "--reply-to",
        hello.id.slice(0, 8),
        "--body",
        "See you there.",
      );
      assert.equal(reply.subject, "Re: Hello");
      const onStick = new Set(await parcelFiles(stick));
      await ok(bob, "sneakernet", "export", stick);
      replyFiles = (await parcelFiles(stick)).filter((n) => !onStick.has(n));
      await ok(alice, "sneakernet", "import", stick);
      await ok(alice, "sneakernet", "export", stick);
      await ok(bob, "sneakernet", "import", stick);

      const thread = await json(alice, "thread", helloId);
      assert.deepEqual(thread.map((m: any) => m.subject), ["Hello", "Re: Hello"]);
      assert.equal((await json(alice, "sent"))[0].deliveries[0].state, "delivered");
      assert.equal((await json(bob, "sent"))[0].deliveries[0].state, "delivered");
      assert.deepEqual(await json(alice, "outbox"), []);
    });

    await t.step("a reused invitation is refused with its reason", async () => {
      await ok(mallory, "accept", invitation); // Mallory intercepted Bob's invitation
      await ok(mallory, "sneakernet", "export", malloryStick);
      const report = await json(alice, "sneakernet", "import", malloryStick);
      assert.deepEqual(report.refused.map((r: any) => r.code), ["invitation-used"]);
      assert.match(report.refused[0].reason, /already used/);
    });

    await t.step("Mallory's forged parcel is refused", async () => {
      const aliceId = (await json(alice, "identity", "show")).id;
      await Deno.remove(malloryStick, { recursive: true });
      const forged = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", FORGE, aliceId, malloryStick],
      }).output();
      assert.equal(forged.code, 0, new TextDecoder().decode(forged.stderr));
      const report = await json(alice, "sneakernet", "import", malloryStick);
      assert.deepEqual(report.refused.map((r: any) => r.code), ["unauthorized"]);
    });

    await t.step(
      "a flipped byte, an expired parcel and a replay are refused; nothing is duplicated",
      async () => {
        const source = join(root, "tamper-source");
        await Deno.mkdir(source);
        await ok(bob, "send", "--to", "Alice", "--subject", "Tampered", "--body", "x".repeat(5000));
        await ok(bob, "sneakernet", "export", source);
        const sizes = await Promise.all((await parcelFiles(source)).map(async (name) => ({
          name,
          size: (await Deno.stat(join(source, name))).size,
        })));
        const mail = sizes.sort((a, b) => b.size - a.size)[0].name; // the 5 KB mail, not a receipt
        const bytes = await Deno.readFile(join(source, mail));
        const tamperedDir = join(root, "tampered");
        await Deno.mkdir(tamperedDir);
        bytes[Math.floor(bytes.length / 2)] ^= 0x40;
        await Deno.writeFile(join(tamperedDir, "flipped.parcel"), bytes);
        const tampered = await json(alice, "sneakernet", "import", tamperedDir);
        assert.equal(tampered.accepted, 0);
        assert.equal(tampered.refused.length, 1);
        assert.ok(
          ["bad-signature", "malformed", "unauthorized"].includes(tampered.refused[0].code),
        );

        // A parcel written 181 days ago (Bob's clock injected), arriving only now.
        const lateStick = join(root, "late");
        await Deno.mkdir(lateStick);
        const past = { RELAYMAIL_CLOCK_OFFSET: "-181d" };
        const sentLate = await relaymail(bob, [
          "send",
          "--to",
          "Alice",
          "--subject",
          "Late",
          "--body",
          "long ago",
        ], { env: past });
        assert.equal(sentLate.code, 0, sentLate.stderr);
        assert.equal(
          (await relaymail(bob, ["sneakernet", "export", lateStick], { env: past })).code,
          0,
        );
        const late = await json(alice, "sneakernet", "import", lateStick);
        assert.deepEqual(late.refused.map((r: any) => r.code), ["expired"]);

        const inboxBefore = (await json(alice, "inbox")).length;
        // The same stick again, and copies of Bob's accepted parcels (his reply and
        // its receipt) under other names: a replay.
        assert.equal(replyFiles.length, 2);
        for (const [i, name] of replyFiles.entries()) {
          await Deno.copyFile(join(stick, name), join(stick, `replay-${i}.parcel`));
        }
        const again = await json(alice, "sneakernet", "import", stick);
        assert.equal(again.accepted, 0);
        assert.ok(again.duplicates >= 4, `only ${again.duplicates} duplicates`);
        assert.equal((await json(alice, "inbox")).length, inboxBefore);
        assert.deepEqual((await json(alice, "inbox")).map((m: any) => m.subject), ["Re: Hello"]);

        const refused = await json(alice, "refused");
        const codes = new Set(refused.map((r: any) => r.code));
        for (const code of ["invitation-used", "unauthorized", "expired", "duplicate"]) {
          assert.ok(codes.has(code), `no ${code} refusal in ${[...codes]}`);
        }
        assert.ok(refused.every((r: any) => r.reason.length > 0));
      },
    );

    await t.step("blocking a contact refuses their parcels", async () => {
      await ok(alice, "contacts", "block", "Bob");
      const blockedStick = join(root, "blocked");
      await Deno.mkdir(blockedStick);
      await ok(bob, "send", "--to", "Alice", "--subject", "Blocked", "--body", "hello?");
      await ok(bob, "sneakernet", "export", blockedStick);
      const report = await json(alice, "sneakernet", "import", blockedStick);
      assert.ok(report.refused.some((r: any) => r.code === "blocked"));
      assert.equal((await json(alice, "contacts"))[0].state, "blocked");
    });

    await t.step("failures print one line and exit non-zero", async () => {
      const missing = await relaymail(alice, ["read", "ffffffff"]);
      assert.equal(missing.code, 1);
      assert.equal(missing.stderr.trim().split("\n").length, 1);
      assert.match(missing.stderr, /^relaymail: No message "ffffffff"/);
      const usage = await relaymail(alice, ["sned"]);
      assert.equal(usage.code, 2);
      const locked = await relaymail(join(root, "locked"), ["identity", "create", "--name", "L"], {
        env: { RELAYMAIL_PASSPHRASE: "s3cret" },
      });
      assert.equal(locked.code, 0, locked.stderr);
      const noPassphrase = await relaymail(join(root, "locked"), ["identity", "show"]);
      assert.equal(noPassphrase.code, 1);
      assert.match(noPassphrase.stderr, /passphrase/);
      const wrong = await relaymail(join(root, "locked"), ["identity", "show"], {
        env: { RELAYMAIL_PASSPHRASE: "nope" },
      });
      assert.match(wrong.stderr, /^relaymail: Wrong passphrase/);
    });

    await t.step("a message exports as an .eml file", async () => {
      const file = join(root, "hello.eml");
      await ok(alice, "export-eml", helloId, "--thread", "--out", file);
      const eml = await Deno.readTextFile(file);
      assert.match(eml, /^Subject: Conversation: Hello$/m);
      assert.match(eml, /Content-Type: message\/rfc822/);
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
