/**
 * The web app end to end, in a real headless Chromium (Debian's `chromium`,
 * driven by playwright-core): two `relaymail start` processes on loopback (mDNS
 * off, a static peer), each set up from its first run through the browser, both
 * open in ONE browser profile, as two Relaymail instances on one machine would
 * be: each stays signed in to its own, and no other server on 127.0.0.1 sees a
 * credential. They pair through the web app, Bob mails Alice attachments whose
 * names are no Latin-1 (and hold `=`, `;` and quotes), Alice reads them as they
 * arrive and downloads them under those names, Bob's message reaches
 * "delivered" without a reload, a conversation with an emoji in its subject is
 * exported as .eml, a stranger's parcel is refused and shown with its reason,
 * rotating Bob's secret signs out Bob's page only, and changing the passphrase
 * asks for the current one.
 *
 * A failing step saves screenshots of both pages in test-results/browser/ (the
 * path is printed). With
 * `RELAYMAIL_SCREENSHOTS=<dir>` the main screens are saved there (the README's).
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { waitFor } from "../helpers.ts";
import {
  BROWSER_TEST,
  launchChromium,
  requireChromium,
  saveScreen,
  screenshotSteps,
} from "./_browser.ts";

const MAIN = join(import.meta.dirname!, "..", "..", "app", "main.ts");
const MALLORY = join(import.meta.dirname!, "..", "fixtures", "mallory_mesh.ts");
const FORGE = join(import.meta.dirname!, "..", "fixtures", "forge_parcel.ts");
const ROTATE = join(import.meta.dirname!, "_rotate_secret.ts");
/** An attachment name that once could be neither uploaded whole nor downloaded. */
const TRICKY_NAME = 'Plan – 会議 🎉 a=b; "final".txt';
/** Where a failing step's screenshots go (kept after the test, unlike its data). */
const FAILURES = join(Deno.cwd(), "test-results", "browser");

/** A `relaymail start` process and the address it printed. */
interface Messenger {
  readonly dir: string;
  readonly child: Deno.ChildProcess;
  readonly url: string;
  readonly output: () => string;
}

async function startMessenger(dir: string, peers: string[] = []): Promise<Messenger> {
  const args = [
    "run",
    "--quiet",
    "-A",
    MAIN,
    "-d",
    dir,
    "start",
    "--port",
    "0",
    "--no-mdns",
    "--listen",
    // A fixed port, so that peers dialling this address find it again after a restart.
    `/ip4/127.0.0.1/tcp/${freePort()}`,
    ...peers.flatMap((peer) => ["--peer", peer]),
  ];
  const child = new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "piped" })
    .spawn();
  let text = "";
  const decoder = new TextDecoder();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) text += decoder.decode(chunk);
  };
  pump(child.stdout).catch(() => {});
  pump(child.stderr).catch(() => {});
  const url = await waitFor(
    "the printed address",
    () => /(http:\/\/127\.0\.0\.1:\d+\/#key=\S+)/.exec(text)?.[1],
  );
  return { dir, child, url: url!, output: () => text };
}

/**
 * A free port below Linux's ephemeral range (32768 and up), so that no process
 * binding port 0 meanwhile can take it before the messenger listens on it.
 */
function freePort(): number {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    try {
      Deno.listen({ hostname: "127.0.0.1", port }).close();
      return port;
    } catch {
      // taken: try another
    }
  }
}

async function stopMessenger(m: Messenger | undefined): Promise<void> {
  if (!m) return;
  try {
    m.child.kill("SIGTERM");
  } catch { /* exited */ }
  await m.child.status;
}

/** GET `path` as the page itself would: with the session token it keeps in sessionStorage. */
function pageApi(page: Page, path: string): Promise<any> {
  return page.evaluate(
    (path) =>
      fetch(path, {
        headers: { authorization: `Bearer ${sessionStorage.getItem("relaymail.session")}` },
      }).then((r) => r.json()),
    path,
  );
}

function apiState(page: Page): Promise<any> {
  return pageApi(page, "/api/state");
}

/** Clicks `locator` and waits for the download it starts: its suggested name and bytes. */
async function downloadFrom(
  page: Page,
  locator: ReturnType<Page["locator"]>,
): Promise<{ name: string; bytes: Uint8Array }> {
  const [download] = await Promise.all([page.waitForEvent("download"), locator.click()]);
  const failure = await download.failure();
  if (failure) throw new Error(`The download failed: ${failure}`);
  return { name: download.suggestedFilename(), bytes: await Deno.readFile(await download.path()) };
}

Deno.test({
  name:
    "web app in Chromium, two instances in one profile: pairing, mail with attachments, live delivery, a stranger refused, sessions, passphrase",
  ...BROWSER_TEST,
  async fn(t) {
    requireChromium();
    const root = await Deno.makeTempDir({ prefix: "relaymail-browser-" });
    let alice: Messenger | undefined;
    let bob: Messenger | undefined;
    const browser = await launchChromium();
    // One profile for both, as one person running two instances would have.
    const context = await browser.newContext({
      viewport: { width: 1200, height: 820 },
      acceptDownloads: true,
    });
    const pageA = await context.newPage();
    const pageB = await context.newPage();
    for (const page of [pageA, pageB]) page.setDefaultTimeout(30_000);
    const step = screenshotSteps(t, {
      dir: FAILURES,
      pages: { alice: pageA, bob: pageB },
      output: () =>
        `--- Alice's output ---\n${alice?.output()}\n--- Bob's output ---\n${bob?.output()}`,
    });
    const bytes = new Uint8Array(150_000).map((_, i) => (i * 31 + 7) % 251);
    let invitation = "";
    let aliceMesh = "";
    let aliceId = "";
    try {
      await step("Alice's first run: the page walks her through creating an identity", async () => {
        alice = await startMessenger(join(root, "alice"));
        await pageA.goto(alice.url);
        await pageA.getByLabel("Your name").waitFor();
        await saveScreen(pageA, "welcome");
        await pageA.getByLabel("Your name").fill("Alice");
        await pageA.getByRole("button", { name: "Create my identity" }).click();
        await pageA.getByRole("heading", { name: "Contacts" }).waitFor();
        assert.doesNotMatch(pageA.url(), /key=/, "the secret is gone from the address bar");
        const state = await waitFor("Alice's mesh", async () => {
          const s = await apiState(pageA);
          return s.daemon?.addresses?.length ? s : undefined;
        });
        aliceMesh = state.daemon.addresses[0];
        aliceId = state.identity.id;
      });

      await step("Alice creates an invitation: text to copy and QR codes", async () => {
        await pageA.getByLabel("Their name (for you; optional)").first().fill("Bob");
        await pageA.getByRole("button", { name: "Create invitation" }).click();
        const text = pageA.locator("#invitation-text");
        await text.waitFor();
        invitation = await text.inputValue();
        assert.match(invitation, /^relaymail-invite:2:[A-Z2-7]+$/);
        const codes = pageA.locator(".qr img");
        assert.ok(await codes.count() >= 1);
        assert.match(await codes.first().getAttribute("alt") ?? "", /Invitation QR code/);
        await saveScreen(pageA, "invite");
      });

      await step(
        "Bob, on another device nearby, accepts it; pairing completes over the mesh",
        async () => {
          bob = await startMessenger(join(root, "bob"), [aliceMesh]);
          await pageB.goto(bob.url);
          await pageB.getByLabel("Your name").fill("Bob");
          await pageB.getByRole("button", { name: "Create my identity" }).click();
          await pageB.getByLabel("Invitation you were given").fill(invitation);
          await pageB.locator("#accept-name").fill("Alice");
          await pageB.getByRole("button", { name: "Accept invitation" }).click();
          const row = pageB.locator('tr[data-contact="Alice"]');
          await row.waitFor();
          // Alice's answer arrives over the mesh; the page updates by itself.
          await row.getByText("active").waitFor();
          await pageA.getByRole("link", { name: "Contacts" }).click();
          await pageA.locator('tr[data-contact="Bob"]').getByText("active").waitFor();
          const fingerprint = await pageA.locator('tr[data-contact="Bob"] td.mono').textContent();
          assert.match(fingerprint ?? "", /^[0-9a-f]{4}( [0-9a-f]{4}){7}$/);
          await saveScreen(pageA, "contacts");
        },
      );

      await step(
        "one browser profile, two instances: each page stays signed in to its own",
        async () => {
          // Nothing for the host to leak: no cookie at all, the tokens live per origin.
          assert.deepEqual(await context.cookies(), []);
          for (
            const [page, name] of [[pageA, "Alice"], [pageB, "Bob"], [pageA, "Alice"]] as const
          ) {
            await page.reload();
            await page.locator("#who", { hasText: name }).waitFor();
            assert.equal((await apiState(page)).identity.name, name);
          }
          // A third server on 127.0.0.1, visited in the same profile, receives no credential.
          const seen: Headers[] = [];
          const spy = Deno.serve(
            { hostname: "127.0.0.1", port: 0, onListen: () => {} },
            (request) => {
              seen.push(request.headers);
              return new Response("<title>another app</title>", {
                headers: { "content-type": "text/html" },
              });
            },
          );
          try {
            const other = await context.newPage();
            await other.goto(`http://127.0.0.1:${spy.addr.port}/`);
            await other.close();
          } finally {
            await spy.shutdown();
          }
          assert.ok(seen.length >= 1);
          for (const headers of seen) {
            assert.equal(headers.get("cookie"), null);
            assert.equal(headers.get("authorization"), null);
          }
        },
      );

      await step(
        "Bob mails Alice an attachment; Alice's inbox shows it without a reload",
        async () => {
          await pageA.getByRole("link", { name: /Inbox/ }).click();
          await pageA.getByText("No mail yet").waitFor();
          // Marks that vanish if a page is reloaded: what follows must arrive live.
          for (const page of [pageA, pageB]) {
            await page.evaluate(() => ((globalThis as any).notReloaded = true));
          }
          await pageB.getByRole("button", { name: /Compose/ }).click();
          await pageB.getByLabel("Alice").check();
          await pageB.getByLabel("Subject").fill("Plans for Saturday 🎉");
          await pageB.getByLabel("Message").fill("Hi Alice,\n\nthe map is attached.\n\nBob");
          await pageB.getByLabel("Attachments").setInputFiles([{
            name: "map.bin",
            mimeType: "application/octet-stream",
            buffer: Buffer.from(bytes),
          }, {
            name: TRICKY_NAME,
            mimeType: "text/plain",
            buffer: Buffer.from("the agenda"),
          }]);
          assert.match(await pageB.locator("#size").textContent() ?? "", /map\.bin 146\.5 KB/);
          await saveScreen(pageB, "compose");
          await pageB.getByRole("button", { name: "Send" }).click();
          await pageB.getByRole("heading", { name: "Plans for Saturday" }).waitFor();

          const row = pageA.locator("#inbox-table tr.unread", { hasText: "Plans for Saturday" });
          await row.waitFor();
          assert.equal(await pageA.evaluate(() => (globalThis as any).notReloaded), true);
          await saveScreen(pageA, "inbox");
          await row.click();
          await pageA.getByText("the map is attached.").waitFor();
          const map = await downloadFrom(pageA, pageA.getByRole("link", { name: /map\.bin/ }));
          assert.equal(map.name, "map.bin");
          assert.deepEqual(map.bytes, bytes);
        },
      );

      await step(
        "an attachment named in CJK, with an en dash, an emoji, = ; and quotes: kept whole, downloaded",
        async () => {
          // Uploaded through Chromium's own form encoding, stored exactly…
          const threadId = await pageA.locator("article.message").first().getAttribute("data-id");
          const [message] = await pageApi(pageA, `/api/threads/${threadId}`);
          assert.deepEqual(message.attachments.map((a: any) => a.fileName), [
            "map.bin",
            TRICKY_NAME,
          ]);
          // …shown as it is, and downloaded under that name (Content-Disposition, RFC 6266).
          const link = pageA.locator(".attachments a").nth(1);
          assert.equal(await link.textContent(), `${TRICKY_NAME} (10 B)`);
          const agenda = await downloadFrom(pageA, link);
          assert.equal(new TextDecoder().decode(agenda.bytes), "the agenda");
          // Chromium keeps the en dash, CJK, emoji, `=` and `;`; quotes it makes safe for any disk.
          assert.equal(agenda.name, TRICKY_NAME.replaceAll('"', "_"));
        },
      );

      await step('Bob\'s message reaches "delivered" on his screen without a reload', async () => {
        const delivery = pageB.locator('.delivery[data-recipient="Alice"]');
        await delivery.and(pageB.locator('[data-state="delivered"]')).waitFor();
        assert.equal(await pageB.evaluate(() => (globalThis as any).notReloaded), true);
        const path = await delivery.locator(".path").textContent();
        assert.match(path ?? "", /reached their device/);
        assert.match(path ?? "", /delivered/);
        await saveScreen(pageB, "delivered");
      });

      await step(
        "Alice replies in the conversation, finds it by search, exports it as .eml",
        async () => {
          await pageA.getByRole("link", { name: /Inbox/ }).click();
          await pageA.locator("#inbox-table tr", { hasText: "Plans for Saturday" }).click();
          await pageA.getByRole("button", { name: "Reply" }).click();
          assert.equal(
            await pageA.getByLabel("Subject").inputValue(),
            "Re: Plans for Saturday 🎉",
          );
          await pageA.getByLabel("Message").fill("Thanks Bob, see you there.");
          await pageA.getByRole("button", { name: "Send" }).click();
          await pageA.locator("article.message").nth(1).waitFor();
          assert.equal(await pageA.locator("article.message").count(), 2, "one conversation");

          await pageB.getByRole("link", { name: /Inbox/ }).click();
          await pageB.locator("#inbox-table tr.unread", { hasText: "Re: Plans for Saturday" })
            .waitFor();

          await pageA.keyboard.press("/");
          await pageA.locator("#search").fill("see you there");
          await pageA.locator("#search").press("Enter");
          await pageA.getByRole("heading", { name: "Search: see you there" }).waitFor();
          assert.equal(await pageA.locator("#inbox-table tbody tr").count(), 1);

          await pageA.locator("#inbox-table tbody tr").click();
          const eml = await downloadFrom(
            pageA,
            pageA.getByRole("link", { name: "Export conversation as .eml" }),
          );
          assert.equal(eml.name, "Plans for Saturday 🎉.eml", "named after the emoji subject");
          const text = new TextDecoder().decode(eml.bytes);
          assert.match(text, /Subject: /);
          assert.match(text, /see you there/);
        },
      );

      await step("a stranger's parcel is refused, and Alice sees why", async () => {
        await pageA.getByRole("link", { name: /Refused/ }).click();
        await pageA.getByText("Nothing refused.").waitFor();
        const mallory = await new Deno.Command(Deno.execPath(), {
          args: ["run", "--quiet", "-A", MALLORY, aliceMesh, aliceId],
          stdout: "piped",
          stderr: "piped",
        }).output();
        const { reply } = JSON.parse(
          new TextDecoder().decode(mallory.stdout).trim().split("\n").at(-1)!,
        );
        assert.equal(reply.type, "refuse");
        const row = pageA.locator('#refused-table tr[data-code="unauthorized"]');
        await row.waitFor();
        assert.match(await row.textContent() ?? "", /not authorised|unauthori[sz]ed/i);
        assert.equal(
          await pageA.locator("#inbox-table").count() +
            await pageA.getByText("Cheap watches").count(),
          0,
        );
        await pageA.getByRole("link", { name: /Inbox/ }).click();
        await pageA.locator("#inbox-table").waitFor();
        assert.equal(await pageA.locator("#inbox-table tbody tr").count(), 1, "only Bob's mail");
        await pageA.getByRole("link", { name: /Refused/ }).click();
        await row.waitFor();
        await saveScreen(pageA, "refused");
        await pageA.getByRole("link", { name: /Nearby/ }).click();
        await pageA.locator("#peers-table").waitFor();
        await saveScreen(pageA, "nearby");
      });

      await step(
        "a stranger's parcel on a USB stick is refused too, with progress shown",
        async () => {
          const stick = join(root, "stick");
          const forged = await new Deno.Command(Deno.execPath(), {
            args: ["run", "--quiet", "-A", FORGE, aliceId, stick],
            stdout: "null",
            stderr: "piped",
          }).output();
          assert.ok(forged.success, new TextDecoder().decode(forged.stderr));
          await pageA.getByRole("link", { name: "USB stick" }).click();
          await pageA.getByLabel("Directory of the stick").fill(stick);
          await pageA.getByRole("button", { name: "Import parcels from the stick" }).click();
          await pageA.locator("#stick-report", { hasText: "1 refused" }).waitFor();
          assert.equal(
            await pageA.locator("#stick-progress").evaluate((e: any) => e.value / e.max),
            1,
          );
          await pageA.getByRole("link", { name: /Refused/ }).click();
          await pageA.locator("#refused-table tbody tr").nth(1).waitFor();
          assert.match(await pageA.locator("#refused-table").textContent() ?? "", /sneakernet/);
        },
      );

      await step(
        "rotating Bob's secret (another process) signs out Bob's page, not Alice's",
        async () => {
          const rotated = await new Deno.Command(Deno.execPath(), {
            args: ["run", "--quiet", "-A", ROTATE, bob!.dir],
            stdout: "piped",
            stderr: "piped",
          }).output();
          assert.ok(rotated.success, new TextDecoder().decode(rotated.stderr));
          const secret = new TextDecoder().decode(rotated.stdout).trim();
          // Bob's open page learns it at its next call (or from its event stream, within 15 s).
          await pageB.getByRole("link", { name: /Inbox/ }).click();
          await pageB.locator("#session-ended").waitFor();
          await pageB.getByRole("heading", { name: "Open Relaymail from its address" }).waitFor();
          await pageA.getByRole("link", { name: /Inbox/ }).click();
          await pageA.getByRole("heading", { name: "Inbox" }).waitFor();
          assert.equal((await apiState(pageA)).identity.name, "Alice");
          // The old address opens nothing; the new one does.
          await pageB.goto(bob!.url);
          await pageB.getByRole("heading", { name: "Open Relaymail from its address" }).waitFor();
          await pageB.goto(bob!.url.replace(/#key=.*$/, `#key=${secret}`));
          await pageB.getByRole("heading", { name: "Inbox" }).waitFor();
        },
      );

      await step("settings: storage quota, mDNS and a passphrase, applied at once", async () => {
        await pageA.getByRole("link", { name: "Settings" }).click();
        await pageA.getByLabel("Storage for other people's parcels (e.g. 512M, 2G)").fill("256M");
        await pageA.getByLabel("Find devices on the local network (mDNS)").uncheck();
        await pageA.getByRole("button", { name: "Save" }).first().click();
        await pageA.getByText("Saved; the mesh restarted with them").waitFor();
        const settings = await pageApi(pageA, "/api/settings");
        const byName = Object.fromEntries(settings.map((x: any) => [x.name, x.value]));
        assert.equal(byName["mesh.quota"], 256 * 1024 * 1024);
        assert.equal(byName["mesh.mdns"], false);
        // The restarted mesh finds Bob again (he keeps dialling Alice).
        await waitFor("Bob back", async () => (await apiState(pageA)).peers.length === 1);

        await pageA.getByLabel("New passphrase (8 characters or more)").fill("correct horse");
        await pageA.getByLabel("Again").fill("correct horse");
        await pageA.getByRole("button", { name: "Set passphrase" }).click();
        await pageA.getByText("Your private keys are sealed under a passphrase.").waitFor();
        assert.equal((await apiState(pageA)).passphraseProtected, true);
      });

      await step("changing the passphrase asks for the current one", async () => {
        const setNew = async (current: string) => {
          await pageA.getByLabel("Current passphrase").fill(current);
          await pageA.getByLabel("New passphrase (8 characters or more)").fill("battery staple");
          await pageA.getByLabel("Again").fill("battery staple");
          await pageA.getByRole("button", { name: "Set passphrase" }).click();
        };
        await setNew("wrong horse");
        await pageA.getByText("The current passphrase is wrong: nothing was changed").waitFor();
        await setNew("correct horse");
        await pageA.getByText("Private keys sealed under the new passphrase").waitFor();
        assert.equal((await apiState(pageA)).passphraseProtected, true);
      });
    } finally {
      await browser.close().catch(() => {});
      await stopMessenger(alice);
      await stopMessenger(bob);
      await Deno.remove(root, { recursive: true }).catch(() => {});
    }
  },
});
