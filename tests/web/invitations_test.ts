/**
 * The invitations nobody used yet, in the web app, in a real headless Chromium
 * (Debian's `chromium`, driven by playwright-core as in browser_test.ts): Alice
 * creates one (a version 2 text, one QR code), finds it listed, shows and copies
 * it again after a reload (the same text), and revokes it after confirming; Bob,
 * who got it before, accepts it, and Alice's messenger refuses his request, saying
 * the invitation was revoked.
 *
 * A failing step saves screenshots in test-results/invitations/ (the path is printed).
 * With `RELAYMAIL_SCREENSHOTS=<dir>` the invitation shown again is saved there.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
// @deno-types="@types/qrcode"
import QRCode from "qrcode";
import { COMPACT_PREFIX, invitationQrCodes } from "../../app/core/protocol/invitation.ts";
import { carry, makeNode, statuses, type TestNode } from "../helpers.ts";
import { startWeb, type TestWeb } from "./_web.ts";
import {
  BROWSER_TEST,
  launchChromium,
  requireChromium,
  saveScreen,
  screenshotSteps,
} from "./_browser.ts";

const FAILURES = join(Deno.cwd(), "test-results", "invitations");

/** The QR codes shown in `#invitation-out`: how many, and the side of each in modules. */
async function shownCodes(page: Page): Promise<number[]> {
  const sources = await page.locator("#invitation-out .qr img").evaluateAll((images) =>
    images.map((image) => (image as unknown as { src: string }).src)
  );
  return sources.map((src) => {
    const svg = Buffer.from(src.replace(/^data:image\/svg\+xml;base64,/, ""), "base64")
      .toString();
    const viewBox = /viewBox="0 0 (\d+) (\d+)"/.exec(svg);
    assert.ok(viewBox, "an SVG QR code");
    return Number(viewBox[1]) - 4; // a margin of 2 modules each side
  });
}

Deno.test({
  name: "web app invitations in Chromium: create, list, show and copy again, revoke",
  ...BROWSER_TEST,
  async fn(t) {
    requireChromium();
    let alice: TestNode | undefined;
    let bob: TestNode | undefined;
    const webs: TestWeb[] = [];
    let browser: Browser | undefined;
    try {
      alice = await makeNode("Alice");
      bob = await makeNode("Bob");
      const aliceWeb = await startWeb(alice.node);
      const bobWeb = await startWeb(bob.node);
      webs.push(aliceWeb, bobWeb);
      browser = await launchChromium();
      const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
      await context.grantPermissions(["clipboard-read", "clipboard-write"], {
        origin: aliceWeb.base,
      });
      const page = await context.newPage();
      page.setDefaultTimeout(20_000);
      const bobPage = await (await browser.newContext()).newPage();
      bobPage.setDefaultTimeout(20_000);
      const step = screenshotSteps(t, { dir: FAILURES, pages: { alice: page, bob: bobPage } });
      let text = "";
      let id = "";
      const row = () => page.locator(`#invitations-table tr[data-invitation="${id}"]`);

      await step("Alice creates an invitation: one text, one QR code", async () => {
        await page.goto(aliceWeb.web.url);
        await page.getByRole("link", { name: "Contacts" }).click();
        await page.getByLabel("Their name (for you; optional)").first().fill("Bob");
        await page.getByRole("button", { name: "Create invitation" }).click();
        const shown = page.locator("#invitation-text");
        await shown.waitFor();
        text = await shown.inputValue();
        assert.ok(text.startsWith(COMPACT_PREFIX), text.slice(0, 30));
        const [expected] = invitationQrCodes(text).map((segments) =>
          QRCode.create([...segments], { errorCorrectionLevel: "M" }).modules.size
        );
        assert.deepEqual(await shownCodes(page), [expected], "one code, of this very text");
        const [made] = alice!.node.pairing.listInvitations();
        id = made.id;
        assert.equal(made.contactName, "Bob");
      });

      await step("the pending invitations list shows it", async () => {
        await row().waitFor();
        assert.match(await row().textContent() ?? "", new RegExp(`Bob.*${id.slice(1, 13)}`));
        assert.equal(await page.locator("#invitations-table tbody tr").count(), 1);
      });

      await step("after a reload, Show again and Copy give the same text", async () => {
        await page.reload();
        await row().waitFor();
        assert.equal(await page.locator("#invitation-text").count(), 0, "nothing shown yet");
        await row().getByRole("button", { name: "Show again" }).click();
        await page.locator("#invitation-text").waitFor();
        assert.equal(await page.locator("#invitation-text").inputValue(), text);
        assert.equal((await shownCodes(page)).length, 1);
        await saveScreen(page, "invitations");

        // Run in the page: the clipboard of the browser.
        await page.evaluate(() =>
          // deno-lint-ignore no-explicit-any
          (globalThis as any).navigator.clipboard.writeText("something else")
        );
        await row().getByRole("button", { name: "Copy" }).click();
        await page.getByText("Invitation for Bob copied").waitFor();
        assert.equal(
          // deno-lint-ignore no-explicit-any
          await page.evaluate(() => (globalThis as any).navigator.clipboard.readText()),
          text,
        );
      });

      await step(
        "Revoke asks first; cancelled, nothing changes; confirmed, the row goes",
        async () => {
          await row().getByRole("button", { name: "Revoke" }).click();
          await page.getByRole("dialog").getByRole("button", { name: "Cancel" }).click();
          assert.equal(alice!.node.pairing.getInvitation(id)?.state, "pending");
          await row().getByRole("button", { name: "Revoke" }).click();
          const dialog = page.getByRole("dialog");
          assert.match(await dialog.textContent() ?? "", /Nobody will be able to pair/);
          await dialog.getByRole("button", { name: "Revoke" }).click();
          await row().waitFor({ state: "detached" });
          await page.getByText("No invitation waits to be used.").waitFor();
          assert.equal(alice!.node.pairing.getInvitation(id)?.state, "revoked");
          // Its text is gone too: it cannot be shown again.
          const again = await fetch(`${aliceWeb.base}/api/invitations/${id}`, {
            headers: aliceWeb.bearer(),
          });
          assert.equal(again.status, 409);
          assert.match((await again.json()).error, /is revoked: make a new one/);
        },
      );

      await step("Bob accepts the revoked invitation: Alice refuses it, saying why", async () => {
        await bobPage.goto(bobWeb.web.url);
        await bobPage.getByRole("link", { name: "Contacts" }).click();
        await bobPage.getByLabel("Invitation you were given").fill(text);
        await bobPage.getByRole("button", { name: "Accept invitation" }).click();
        await bobPage.locator("#contacts-table tr", { hasText: "Alice" }).waitFor();
        const outcomes = await carry(bob!.node, alice!.node);
        assert.deepEqual(statuses(outcomes), ["refused:unauthorized"]);
        await page.getByRole("link", { name: /Refused/ }).click();
        await page.locator("#refused-table td.reason", {
          hasText: `Invitation ${id.slice(1, 13)} was revoked`,
        }).waitFor();
      });
    } finally {
      await browser?.close();
      for (const web of webs) await web.web.stop();
      await alice?.close();
      await bob?.close();
    }
  },
});
