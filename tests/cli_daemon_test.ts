/**
 * `relaymail daemon` holds its data directory, and the other commands reach it
 * through its control API: they need no passphrase (the daemon has the keys
 * open), a settings change restarts the daemon, each job is done once, a second
 * daemon is turned away, and without a daemon a command opens the directory
 * itself and leaves nothing behind.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DaemonProcess, relaymail, type RelaymailOptions } from "./_cli.ts";
import { waitFor } from "./helpers.ts";

const PASSPHRASE = "correct horse battery staple";

/** Runs a `--json` command that must succeed; returns its parsed output. */
async function json<T = any>(
  dataDir: string,
  args: string[],
  options: RelaymailOptions = {},
): Promise<T> {
  const run = await relaymail(dataDir, ["--json", ...args], options);
  assert.equal(run.code, 0, `relaymail ${args.join(" ")} failed: ${run.stderr}`);
  assert.doesNotMatch(run.stderr, /passphrase/i, "no passphrase asked for");
  return JSON.parse(run.stdout);
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** Whether some process holds `dataDir`'s writer lock (this one cannot take it). */
async function lockHeld(dataDir: string): Promise<boolean> {
  // A writer locks the data directory itself (writer.lock only names it).
  using file = await Deno.open(dataDir, { read: true });
  if (!(await file.tryLock(true))) return true;
  await file.unlock();
  return false;
}

Deno.test("relaymail daemon: other commands go through it, each job done once; a second daemon is turned away", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "relaymail-cli-daemon-" });
  const alice = join(root, "alice");
  const bob = join(root, "bob");
  const stick = join(root, "stick");
  await Deno.mkdir(stick); // export writes only into a folder that exists
  const withPassphrase = { env: { RELAYMAIL_PASSPHRASE: PASSPHRASE } };
  let daemon: DaemonProcess | undefined;
  try {
    await t.step(
      "without a daemon, a command opens the directory itself and leaves nothing",
      async () => {
        await json(alice, ["identity", "create", "--name", "Alice"], withPassphrase);
        await json(bob, ["identity", "create", "--name", "Bob"]);
        const status = await json(alice, ["status"], withPassphrase);
        assert.equal(status.identity.name, "Alice");
        assert.equal(await exists(join(alice, "control.json")), false, "no control.json");
        assert.equal(await lockHeld(alice), false, "the lock was given up");
        const locked = await relaymail(alice, ["identity", "show"]);
        assert.equal(locked.code, 1, "alone, the command needs the passphrase");
        assert.match(locked.stderr, /passphrase/);
      },
    );

    await t.step("the daemon holds the directory and serves the control API", async () => {
      daemon = new DaemonProcess(alice, withPassphrase.env);
      await daemon.waitForLog(/mesh node \S+ listening on /);
      await waitFor("control.json", () => exists(join(alice, "control.json")));
      assert.equal(await lockHeld(alice), true);
      const holder = (await Deno.readTextFile(join(alice, "writer.lock"))).trim();
      assert.equal(holder, String(daemon.pid), "the daemon holds the writer lock");
    });

    let invitation = "";
    await t.step(
      "commands need no passphrase while it runs: invite, contacts, status",
      async () => {
        const shown = await json(alice, ["identity", "show"]);
        assert.equal(shown.name, "Alice");
        assert.equal(shown.passphraseProtected, true);
        const created = await json(alice, ["invite", "--name", "Bob"]);
        invitation = created.text;
        assert.match(invitation, /^relaymail-invite:2:/);
        assert.equal((await Deno.readTextFile(created.file)).trim(), invitation);
        assert.deepEqual(await json(alice, ["contacts"]), []);
        assert.equal((await json(alice, ["invitations"])).length, 1);
        // Still the daemon's: no command took the lock from it.
        assert.equal(
          (await Deno.readTextFile(join(alice, "writer.lock"))).trim(),
          String(daemon!.pid),
        );
      },
    );

    await t.step("pairing by stick, and a message sent through the daemon, once", async () => {
      const accepted = await relaymail(bob, ["accept", invitation, "--name", "Alice"]);
      assert.equal(accepted.code, 0, accepted.stderr);
      assert.match(accepted.stdout, /Paired with Alice/);
      assert.match(accepted.stdout, /start `relaymail daemon`/, "Bob runs no daemon");
      await json(bob, ["sneakernet", "export", stick]);
      // A relative directory is the command's, not the daemon's.
      const imported = await json(alice, ["sneakernet", "import", "stick"], { cwd: root });
      assert.equal(imported.accepted, 1);
      await json(alice, ["sneakernet", "export", "stick"], { cwd: root });
      assert.equal((await json(bob, ["sneakernet", "import", stick])).accepted, 1);
      const [bobAtAlice] = await json(alice, ["contacts"]);
      assert.deepEqual([bobAtAlice.name, bobAtAlice.state], ["Bob", "active"]);

      const sent = await json(alice, ["send", "--to", "Bob", "--subject", "Hi", "--body", "Once"]);
      assert.deepEqual(sent.deliveries.map((d: any) => d.state), ["queued"]);
      const mesh = await json(alice, ["mesh"]);
      assert.equal(mesh.pid, daemon!.pid, "the daemon answers `mesh`");
      const paths = mesh.paths.filter((p: any) => p.messageId === sent.id);
      assert.equal(paths.length, 1, `one parcel for the message: ${JSON.stringify(mesh.paths)}`);
      assert.equal((await json(alice, ["outbox"])).length, 1);

      await json(alice, ["sneakernet", "export", stick]);
      const delivered = await json(bob, ["sneakernet", "import", stick]);
      assert.equal(delivered.accepted, 1, "one parcel for the message, taken in once");
      const inbox = await json(bob, ["inbox"]);
      assert.deepEqual(inbox.map((m: any) => m.subject), ["Hi"]);
    });

    await t.step("settings set restarts the daemon with the new setting", async () => {
      assert.equal(daemon!.count(/mesh node \S+ listening on /), 1);
      const set = await relaymail(alice, ["settings", "set", "mesh.quota", "64M"]);
      assert.equal(set.code, 0, set.stderr);
      await daemon!.waitForLog(/^\S+ stopped$/);
      await daemon!.waitForLog(/mesh node \S+ listening on /, 2);
      const quota = (await json(alice, ["settings"])).find((s: any) => s.name === "mesh.quota");
      assert.equal(quota.value, 64 * 1024 * 1024);
      const status = await json(alice, ["status"]);
      assert.deepEqual([status.identity.name, status.contacts], ["Alice", 1]);
    });

    await t.step("a second daemon on the directory fails at once, naming the first", async () => {
      const started = Date.now();
      const second = new DaemonProcess(alice, withPassphrase.env);
      const timer = setTimeout(() => second.stop(), 20_000);
      const run = await second.ended().finally(() => clearTimeout(timer));
      assert.equal(run.code, 1, run.stderr);
      assert.match(
        run.stderr,
        new RegExp(`^relaymail: Relaymail is already running for .* \\(pid ${daemon!.pid}\\)`),
      );
      assert.ok(Date.now() - started < 20_000, "at once, not after a wait");
    });

    await t.step("the daemon stops on SIGTERM and gives the directory up", async () => {
      const run = await daemon!.stop();
      daemon = undefined;
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /stopping \(SIGTERM\)/);
      assert.equal(await exists(join(alice, "control.json")), false);
      const shown = await json(alice, ["identity", "show"], withPassphrase);
      assert.equal(shown.name, "Alice");
      assert.equal(await exists(join(alice, "control.json")), false);
    });
  } finally {
    await daemon?.stop();
    await Deno.remove(root, { recursive: true });
  }
});
