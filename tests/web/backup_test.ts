/**
 * Identity backup and restore in the web app, in Chromium: Settings downloads a
 * backup encrypted under a passphrase typed twice, and a fresh instance's first
 * page restores that file; the app then goes on as that identity, with its
 * contacts and mail, and the conversation carries on both ways.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { Relaymail } from "../../app/services/relaymail.ts";
import { carry, makeNode, pair, waitFor } from "../helpers.ts";
import {
  BROWSER_TEST,
  launchChromium,
  requireChromium,
  saveScreen,
  screenshotSteps,
} from "./_browser.ts";
import { startWeb, type TestWeb } from "./_web.ts";

const FAILURES = join(import.meta.dirname!, "..", "..", "test-failures", "backup");
const PASSPHRASE = "a backup passphrase for the web";

Deno.test({
  name: "web app: Settings downloads a backup, and a fresh instance's first page restores it",
  ...BROWSER_TEST,
  async fn(t) {
    requireChromium();
    const alice = await makeNode("Alice");
    const bob = await makeNode("Bob");
    const freshDir = await Deno.makeTempDir({ prefix: "relaymail-restored-" });
    const saved = join(await Deno.makeTempDir(), "backup.rmbackup");
    await pair(alice, bob);
    await alice.node.mailbox.send({ to: ["Bob"], subject: "Before the backup", body: "Hi" });
    await carry(alice.node, bob.node);
    await bob.node.mailbox.send({ to: ["Alice"], subject: "Bob's answer", body: "Hello" });
    await carry(bob.node, alice.node);
    const aliceId = alice.node.identity.id;

    let webA: TestWeb | undefined;
    let webB: TestWeb | undefined;
    let fresh: Relaymail | undefined;
    const browser = await launchChromium();
    const context = await browser.newContext({ acceptDownloads: true });
    const page = await context.newPage();
    page.setDefaultTimeout(30_000);
    const step = screenshotSteps(t, { dir: FAILURES, pages: { page } });
    try {
      await step("Settings: a short passphrase is refused beside its field", async () => {
        webA = await startWeb(alice.node);
        await page.goto(webA.web.url);
        await page.goto(`${webA.base}/#/settings`);
        await page.getByLabel(/Backup passphrase/).fill("short");
        await page.getByLabel("The same, to be sure").fill("short");
        await page.getByRole("button", { name: "Download backup" }).click();
        await page.getByText(/needs at least 10 characters/).waitFor();
        await page.getByLabel(/Backup passphrase/).fill(PASSPHRASE);
        await page.getByLabel("The same, to be sure").fill(PASSPHRASE + "x");
        await page.getByRole("button", { name: "Download backup" }).click();
        await page.getByText("The two passphrases differ").waitFor();
      });

      await step("Settings: the passphrase twice, and the browser downloads the file", async () => {
        await page.getByLabel(/Backup passphrase/).fill(PASSPHRASE);
        await page.getByLabel("The same, to be sure").fill(PASSPHRASE);
        const [download] = await Promise.all([
          page.waitForEvent("download"),
          page.getByRole("button", { name: "Download backup" }).click(),
        ]);
        assert.equal(await download.failure(), null);
        assert.match(download.suggestedFilename(), /^relaymail-backup-\d{4}-\d\d-\d\d\.rmbackup$/);
        await download.saveAs(saved);
        await page.getByText(/1 contact\(s\), 2 message\(s\)/).waitFor();
        await saveScreen(page, "backup-settings");
        const bytes = await Deno.readFile(saved);
        assert.equal(new TextDecoder().decode(bytes.subarray(0, 8)), "RMBACKUP");
        await webA!.web.stop();
        webA = undefined;
        alice.node.close(); // the old device is put away
      });

      await step("A fresh instance: a wrong passphrase is refused, nothing restored", async () => {
        fresh = await Relaymail.open(freshDir);
        webB = await startWeb(fresh);
        await page.goto(webB.web.url);
        await page.getByRole("heading", { name: "Or restore from a backup" }).waitFor();
        await page.locator("#restore-file").setInputFiles(saved);
        await page.getByLabel("Its passphrase").fill("not the passphrase");
        await page.getByRole("button", { name: "Restore" }).click();
        await page.getByText(/wrong passphrase, or the backup is damaged/).waitFor();
        await saveScreen(page, "backup-restore-refused");
        assert.equal(fresh.identity.exists(), false);
      });

      await step(
        "The right passphrase: the app goes on as Alice, with Bob and the mail",
        async () => {
          await page.getByLabel("Its passphrase").fill(PASSPHRASE);
          await page.getByRole("button", { name: "Restore" }).click();
          await page.getByRole("heading", { name: "Your identity is restored" }).waitFor();
          await page.getByText(/1 contact\(s\) and 2 message\(s\)/).waitFor();
          await saveScreen(page, "backup-restored");
          assert.equal(fresh!.identity.id, aliceId);
          await page.locator("#contacts-table").getByText("Bob").first().waitFor();
          await page.goto(`${webB!.base}/#/inbox`);
          await page.getByText("Bob's answer").first().waitFor();
          // The daemon starts as the restored identity.
          await waitFor("the daemon", () => webB!.web.runtime.daemonState().running);
        },
      );

      await step("The conversation carries on, both ways", async () => {
        await bob.node.mailbox.send({ to: ["Alice"], subject: "After the restore", body: "?" });
        await carry(bob.node, fresh!);
        await page.getByText("After the restore").first().waitFor();
        await fresh!.mailbox.send({ to: ["Bob"], subject: "From the new device", body: "!" });
        await carry(fresh!, bob.node);
        assert.ok(bob.node.mailbox.list("inbox").some((m) => m.subject === "From the new device"));
      });
    } finally {
      await webA?.web.stop();
      await webB?.web.stop();
      await browser.close();
      fresh?.close();
      await bob.close();
      await alice.close().catch(() => {});
      await Deno.remove(freshDir, { recursive: true }).catch(() => {});
      await Deno.remove(join(saved, ".."), { recursive: true }).catch(() => {});
    }
  },
});

Deno.test("backup routes: a download needs its ticket, once; a device with an identity takes no restore", async () => {
  const alice = await makeNode("Alice");
  const { web, base, bearer } = await startWeb(alice.node);
  try {
    const json = { ...bearer(), "content-type": "application/json" };
    const short = await fetch(`${base}/api/backup`, {
      method: "POST",
      headers: json,
      body: JSON.stringify({ passphrase: "short" }),
    });
    assert.equal(short.status, 400);
    assert.match((await short.json()).error, /at least 10 characters, not 5/);
    const made = await fetch(`${base}/api/backup`, {
      method: "POST",
      headers: json,
      body: JSON.stringify({ passphrase: PASSPHRASE, withoutMail: true }),
    });
    assert.equal(made.status, 200);
    const ready = await made.json();
    assert.equal(ready.includesMail, false);
    // A navigation without a ticket is refused; with one, the file comes once.
    const bare = await fetch(`${base}${ready.download}`);
    assert.equal(bare.status, 401);
    await bare.body?.cancel();
    const ticket = await fetch(`${base}/api/tickets`, {
      method: "POST",
      headers: json,
      body: JSON.stringify({ path: ready.download }),
    }).then((r) => r.json());
    const file = await fetch(`${base}${ticket.url}`);
    assert.equal(file.status, 200);
    assert.match(file.headers.get("content-disposition")!, /relaymail-backup-.*\.rmbackup/);
    const bytes = new Uint8Array(await file.arrayBuffer());
    assert.equal(bytes.length, ready.bytes);
    const again = await fetch(`${base}${ready.download}`, { headers: bearer() });
    assert.equal(again.status, 404, "a downloaded backup is not kept");
    await again.body?.cancel();
    // Nothing of it is left in the data directory.
    await waitFor(
      "the downloaded backup to go",
      () => [...Deno.readDirSync(alice.dir)].every((e) => !e.name.includes("backup-")),
    );

    const upload = await fetch(`${base}/api/restore/upload`, {
      method: "POST",
      headers: { ...bearer(), "content-type": "application/octet-stream" },
      body: bytes,
    });
    assert.equal(upload.status, 409);
    assert.match((await upload.json()).error, /has an identity already \(Alice\)/);
  } finally {
    await web.stop();
    await alice.close();
  }
});
