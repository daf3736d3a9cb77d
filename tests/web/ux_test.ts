/**
 * The web app's manners, in a real headless Chromium (Debian's `chromium`,
 * driven by playwright-core as in browser_test.ts), against web apps run in this
 * process: the first run confirms what it created; errors stay beside the field
 * or form that caused them, in plain words with the server's own behind a
 * disclosure; Send is disabled over the size limit, which the page and the
 * README give alike; long text wraps instead of widening the page; and the USB
 * page checks its folder, refuses a missing one and leaves nothing half-done on
 * screen.
 *
 * A failing step saves a screenshot in test-results/ux/ (the path is printed).
 * With `RELAYMAIL_SCREENSHOTS=<dir>` the screens checked are saved there.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { MAX_MAIL_LENGTH } from "../../app/core/mail_sending.ts";
import { Relaymail } from "../../app/services/relaymail.ts";
import { forgeParcel } from "../fixtures/forge_parcel.ts";
import { carry, makeNode, pair, type TestNode } from "../helpers.ts";
import { startWeb, type TestWeb } from "./_web.ts";
import {
  BROWSER_TEST,
  launchChromium,
  requireChromium,
  saveScreen,
  screenshotSteps,
} from "./_browser.ts";

const README = join(import.meta.dirname!, "..", "..", "README.md");
const FAILURES = join(Deno.cwd(), "test-results", "ux");
/** A subject with no place to break a line. */
const LONG_SUBJECT = "Unbroken".repeat(60);

/** The page's text with its no-break spaces made plain. */
async function textOf(page: Page, selector: string): Promise<string> {
  return ((await page.locator(selector).textContent()) ?? "").replaceAll("\u00a0", " ");
}

/** Whether the page is wider than its window (a horizontal scroll bar). */
function pageOverflows(page: Page): Promise<boolean> {
  return page.evaluate(() => {
    const root = (globalThis as any).document.documentElement;
    return root.scrollWidth > root.clientWidth;
  });
}

/** The problem shown right after `field`, as showProblem() places it. */
function problemAfter(page: Page, field: string) {
  return page.locator(`${field} + .problem`);
}

Deno.test({
  name: "web app UX in Chromium: first run, errors in place, the size limit, long text, USB folder",
  ...BROWSER_TEST,
  async fn(t) {
    requireChromium();
    const freshDir = await Deno.makeTempDir({ prefix: "relaymail-ux-fresh-" });
    const media = await Deno.makeTempDir({ prefix: "relaymail-ux-media-" });
    let alice: TestNode | undefined;
    let bob: TestNode | undefined;
    let fresh: Relaymail | undefined;
    const webs: TestWeb[] = [];
    let browser: Browser | undefined;
    try {
      // Alice has Bob as a contact, a mail from him with a subject that never
      // breaks, and a stranger's parcel refused with a reason holding a long id.
      alice = await makeNode("Alice");
      bob = await makeNode("Bob");
      await pair(alice, bob);
      await bob.node.mailbox.send({ to: ["Alice"], subject: LONG_SUBJECT, body: "Hi" });
      await carry(bob.node, alice.node);
      const forged = await forgeParcel(alice.node.identity.id);
      await alice.node.receiveParcel(forged, { binding: "mesh", hop: "12D3KooWStranger" });
      fresh = await Relaymail.open(freshDir, {});
      const aliceWeb = await startWeb(alice.node);
      const freshWeb = await startWeb(fresh);
      webs.push(aliceWeb, freshWeb);

      browser = await launchChromium();
      const context = await browser.newContext({ viewport: { width: 1200, height: 820 } });
      const page = await context.newPage();
      page.setDefaultTimeout(20_000);
      const shot = (name: string) => saveScreen(page, name);
      const step = screenshotSteps(t, { dir: FAILURES, pages: { page } });

      await step(
        "the first run says what it created, where it lives, what comes next",
        async () => {
          await page.goto(freshWeb.web.url);
          // A name the server refuses: said beside the field, not in a passing toast.
          await page.getByLabel("Your name").fill("   ");
          await page.getByRole("button", { name: "Create my identity" }).click();
          const problem = problemAfter(page, "#identity-name");
          await problem.waitFor();
          assert.match(await problem.textContent() ?? "", /1 to 100 characters/);
          assert.equal(await page.locator("#identity-name").getAttribute("aria-invalid"), "true");
          assert.equal(await page.locator("#toast .error").count(), 0);

          await page.getByLabel("Your name").fill("Carol");
          assert.equal(await problem.count(), 0, "typing again takes the problem away");
          await page.getByRole("button", { name: "Create my identity" }).click();
          await page.getByRole("heading", { name: "Your identity is ready" }).waitFor();
          const identity = fresh!.identity.info();
          assert.equal(await page.locator("#welcome-name").textContent(), "Carol");
          assert.equal(
            await page.locator("#welcome-fingerprint").textContent(),
            identity.fingerprint,
          );
          assert.equal(await page.locator("#welcome-data").textContent(), freshDir);
          assert.match(await page.locator("#welcome").textContent() ?? "", /What next.*Invite/);
          // What comes next is right below: inviting someone, accepting an invitation.
          await page.getByRole("button", { name: "Create invitation" }).waitFor();
          await page.getByLabel("Invitation you were given").waitFor();
          await shot("first-run");
          await page.getByRole("link", { name: "Got it" }).click();
          await page.locator("#welcome").waitFor({ state: "detached" });
          await page.getByRole("heading", { name: "Contacts" }).waitFor();
        },
      );

      await step(
        "errors stay beside their form, in plain words, with the detail folded",
        async () => {
          await page.goto(aliceWeb.web.url);
          await page.getByRole("link", { name: "Contacts" }).click();
          await page.getByLabel("Invitation you were given").fill("relaymail-invite:1:AAAA");
          await page.getByRole("button", { name: "Accept invitation" }).click();
          const accept = page.locator("form", { has: page.locator("#accept-text") }).locator(
            ".problem",
          );
          await accept.waitFor();
          const plain = await accept.locator("p").first().textContent() ?? "";
          assert.match(plain, /damaged or incomplete/);
          assert.doesNotMatch(plain, /DER/, "no jargon in the sentence");
          const detail = accept.locator("details");
          assert.equal(await detail.getAttribute("open"), null, "the detail starts folded");
          await detail.locator("summary").click();
          assert.match(await detail.textContent() ?? "", /Invitation is not a DER SEQUENCE/);
          assert.equal(await page.locator("#toast .error").count(), 0);
          await shot("error-invitation");
          // Still there after the 8 s a toast would have lasted.
          await page.waitForTimeout(8_500);
          assert.equal(await accept.isVisible(), true);

          await page.getByRole("link", { name: "Settings" }).click();
          await page.locator("#gateway-url").fill("http://127.0.0.1:9");
          await page.getByRole("button", { name: "Register and use" }).click();
          const gateway = problemAfter(page, "#gateway-url");
          await gateway.waitFor();
          assert.match(
            await gateway.locator("p").first().textContent() ?? "",
            /^Nothing answers at http:\/\/127\.0\.0\.1:9\. Is the gateway running\?/,
          );
          assert.match(await gateway.locator("details").textContent() ?? "", /ECONNREFUSED/);
          await shot("error-gateway");
          await page.locator("#gateway-url").fill("http://127.0.0.1:13276");
          assert.equal(await gateway.count(), 0, "changing the address takes the problem away");

          await page.getByLabel("New passphrase (8 characters or more)").fill("correct horse");
          await page.getByLabel("Again").fill("correct horses");
          await page.getByRole("button", { name: "Set passphrase" }).click();
          await problemAfter(page, "#passphrase-again").getByText("The two passphrases differ")
            .waitFor();
          assert.equal(await alice!.node.hasPassphrase, false);

          // The page's own words for failures it meets, the server's kept as the detail.
          const explained: { text: string; detail: string | null }[] = await page.evaluate(
            async (module) => {
              const { explain } = await import(module);
              return [
                "Could not register with the gateway at http://h.invalid:1: getaddrinfo ENOTFOUND h.invalid",
                "Cannot use /etc/hostname as the stick: Not a directory (os error 20): readdir",
                "Cannot queue message as it exceeds 8264332 bytes once encoded: it is 9000000 bytes",
                'No contact named or with fingerprint "Mallory"',
              ].map((message) => explain(new Error(message)));
            },
            "/problems.js",
          );
          assert.deepEqual(explained.map((e) => e.text.replaceAll("\u00a0", " ")), [
            "No computer is called h.invalid on the network: check the address.",
            "That is a file, not a folder: give the folder of the stick.",
            "Too large to send: a message may take at most 8 264 332 bytes (7.88 MB) once encoded. Leave out an attachment, or send it in a message of its own.",
            'No contact named or with fingerprint "Mallory"',
          ]);
          assert.equal(explained[3].detail, null, "a sentence already plain is shown as it is");
        },
      );

      await step(
        "Send is disabled over the exact limit, which the page and README agree on",
        async () => {
          const exact = String(MAX_MAIL_LENGTH).replace(/\B(?=(\d{3})+(?!\d))/g, " ");
          const mb = (MAX_MAIL_LENGTH / 1024 / 1024).toFixed(2);
          assert.equal(exact, "8 264 332", "the limit of app/core/mail_sending.ts");
          const readme = await Deno.readTextFile(README);
          assert.match(readme, new RegExp(`limit: ${exact} bytes encoded, ${mb} MB`));
          assert.doesNotMatch(readme, /\b8 MB\b/);

          await page.getByRole("button", { name: /Compose/ }).click();
          await page.getByLabel("Bob").check();
          await page.getByLabel("Subject").fill("The whole archive");
          await page.getByLabel("Message").fill("Here it is.");
          const send = page.getByRole("button", { name: "Send" });
          assert.equal(await send.isDisabled(), false);
          assert.match(await textOf(page, "#size"), new RegExp(`of ${exact} bytes \\(${mb} MB\\)`));

          await page.getByLabel("Attachments").setInputFiles([{
            name: "archive.bin",
            mimeType: "application/octet-stream",
            buffer: Buffer.alloc(MAX_MAIL_LENGTH),
          }]);
          await page.locator("#size.over").waitFor();
          assert.equal(await send.isDisabled(), true);
          // By how much, to the byte: MB rounded alike would read "7.88 MB of 7.88 MB".
          assert.match(
            await textOf(page, "#size"),
            new RegExp(
              `^Too large to send: [\\d ]+ bytes, [\\d ]+ bytes over the limit of ${exact} bytes \\(${mb} MB\\)`,
            ),
          );
          await shot("compose-over-limit");

          // Just under: Send comes back, and the server takes what the page let through.
          await page.getByLabel("Attachments").setInputFiles([{
            name: "archive.bin",
            mimeType: "application/octet-stream",
            buffer: Buffer.alloc(MAX_MAIL_LENGTH - 1_000),
          }]);
          await page.locator("#size:not(.over)").waitFor();
          assert.equal(await send.isDisabled(), false);
          await send.click();
          await page.getByRole("heading", { name: "The whole archive" }).waitFor();
        },
      );

      await step(
        "long text wraps: a long subject and the Refused table keep to the page",
        async () => {
          for (const width of [1200, 720]) {
            await page.setViewportSize({ width, height: 820 });
            await page.getByRole("link", { name: /Inbox/ }).click();
            const row = page.locator("#inbox-table tr", { hasText: LONG_SUBJECT.slice(0, 40) });
            await row.waitFor();
            assert.equal(await pageOverflows(page), false, `the inbox at ${width} px`);
            if (width === 1200) {
              const nav = await page.locator("nav").boundingBox();
              assert.equal(Math.round(nav!.width), 210, "the sidebar keeps its width");
              await shot("inbox-long-subject");
            }
            await row.click();
            await page.locator("article.message").waitFor();
            assert.equal(await pageOverflows(page), false, `the conversation at ${width} px`);

            await page.getByRole("link", { name: /Refused/ }).click();
            const table = page.locator("#refused-table");
            await table.locator('tr[data-code="unauthorized"]').waitFor();
            assert.equal(await pageOverflows(page), false, `the Refused page at ${width} px`);
            const fits = await table.evaluate((element) =>
              element.getBoundingClientRect().right <=
                (globalThis as any).document.getElementById("main").getBoundingClientRect().right
            );
            if (width === 1200) {
              assert.ok(fits, "the table fits beside the sidebar");
              await shot("refused");
            }
          }
          await page.setViewportSize({ width: 1200, height: 820 });
        },
      );

      await step(
        "the USB page checks the folder, and a failure leaves nothing half-done",
        async () => {
          const asked: string[] = [];
          page.on("request", (request) => {
            if (request.url().includes("/api/sneakernet/")) asked.push(request.url());
          });
          await page.getByRole("link", { name: "USB stick" }).click();
          const field = page.getByLabel("Directory of the stick");
          const problem = problemAfter(page, "#stick-dir");
          const report = page.locator("#stick-report");
          // The page offers no folder picker: a browser's never tells the page a path.
          assert.equal(await page.getByRole("button", { name: /choose|browse|pick/i }).count(), 0);
          assert.match(
            await page.locator("#stick-dir-hint").textContent() ?? "",
            /full path.*must exist/,
          );

          await page.getByRole("button", { name: "Export parcels to the stick" }).click();
          assert.match(await problem.textContent() ?? "", /Give the folder of the stick/);
          await field.fill("stick");
          await page.getByRole("button", { name: "Import parcels from the stick" }).click();
          assert.match(await problem.textContent() ?? "", /full path, starting with \//);
          assert.deepEqual(asked, [], "nothing asked of the server until the folder makes sense");

          const mistyped = join(media, "usbb");
          await field.fill(mistyped);
          await page.getByRole("button", { name: "Export parcels to the stick" }).click();
          await problem.getByText(`No folder ${mistyped}: plug the stick in, or check the path`)
            .waitFor();
          assert.equal(await report.textContent(), "", "no “Writing…” left behind");
          await assert.rejects(Deno.stat(mistyped), Deno.errors.NotFound, "and no folder made");
          await shot("usb-missing-folder");

          await page.getByRole("button", { name: "Import parcels from the stick" }).click();
          await problem.getByText(`No folder ${mistyped}`).waitFor();
          assert.equal(await report.textContent(), "", "no “Reading…” left behind");
          assert.equal(await page.locator("#stick-progress").evaluate((e: any) => e.value), 0);

          const stick = join(media, "usb");
          await Deno.mkdir(stick);
          await field.fill(stick);
          await page.getByRole("button", { name: "Export parcels to the stick" }).click();
          await report.getByText(/^(Wrote \d+ parcel|Nothing)/).waitFor();
          assert.equal(await problem.count(), 0);
          // The folder is remembered for the next visit.
          await page.reload();
          await page.getByRole("link", { name: "USB stick" }).click();
          assert.equal(await page.getByLabel("Directory of the stick").inputValue(), stick);
        },
      );
    } finally {
      await browser?.close().catch(() => {});
      for (const web of webs) await web.web.stop().catch(() => {});
      fresh?.close();
      await alice?.close();
      await bob?.close();
      await Deno.remove(freshDir, { recursive: true }).catch(() => {});
      await Deno.remove(media, { recursive: true }).catch(() => {});
    }
  },
});
