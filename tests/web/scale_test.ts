/**
 * The mailbox at size in a real headless Chromium (Debian's `chromium`, driven by
 * playwright-core as in browser_test.ts), against a web app run in this process
 * on a mailbox of 2,500 messages built by tests/_mailbox_fixture.ts, plus one
 * older than all from a contact who sent nothing else: the inbox pages past
 * 1,000 ("Load older", then scrolling) down to that oldest message, each message
 * once and in the database's order; the unread count shown is the database's,
 * and follows a reading; search from the page finds by a word of the subject,
 * the body, an attachment's name and the sender's name (the new one after a
 * rename), pages past 1,000 matches, and says so plainly when nothing matches.
 * Checked against the database's rows, read without the full-text index or the
 * counters.
 *
 * A failing step saves a screenshot in test-results/scale/ (the path is printed).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import type { TestNode } from "../helpers.ts";
import {
  addNeedle,
  aliceIn,
  fillMailbox,
  folderOrder,
  messagesWithWord,
  RARE,
  unreadInInbox,
} from "../_mailbox_fixture.ts";
import { startWeb, type TestWeb } from "./_web.ts";
import { BROWSER_TEST, launchChromium, requireChromium, screenshotSteps } from "./_browser.ts";

const SIZE = 2_500;
const FAILURES = join(Deno.cwd(), "test-results", "scale");

/** The ids of the message rows shown, top to bottom. */
function shownIds(page: Page): Promise<string[]> {
  return page.$$eval("tr.message-row", (rows) => rows.map((row) => (row as any).dataset.id));
}

/**
 * Scrolls to the end of the list until no older page is left; returns how many
 * scrolls it took. Each scroll must bring rows (or the end).
 */
async function scrollToOldest(page: Page): Promise<number> {
  const older = page.locator("#load-older");
  for (let scrolls = 0;; scrolls++) {
    if (await older.count() === 0) return scrolls;
    assert.ok(scrolls < 100, "the list ends");
    const before = await page.locator("tr.message-row").count();
    await older.scrollIntoViewIfNeeded({ timeout: 5_000 }).catch(() => {}); // gone meanwhile
    await page.waitForFunction(
      (n) => {
        const document = (globalThis as any).document;
        return document.querySelectorAll("tr.message-row").length > n ||
          !document.getElementById("load-older");
      },
      before,
    );
  }
}

/** Searches from the search box of the list shown; resolves once the results are shown. */
async function search(page: Page, text: string): Promise<void> {
  await page.locator("#search").fill(text);
  await page.locator("#search").press("Enter");
  await page.getByRole("heading", { name: `Search: ${text}`, exact: true }).waitFor();
}

Deno.test({
  name: "web app at 2,500 messages in Chromium: paging to the oldest, counts, search",
  ...BROWSER_TEST,
  async fn(t) {
    requireChromium();
    const root = await Deno.makeTempDir({ prefix: "relaymail-web-scale-" });
    let alice: TestNode | undefined;
    let web: TestWeb | undefined;
    let browser: Browser | undefined;
    try {
      alice = (await aliceIn(join(root, "alice"))).alice;
      fillMailbox(alice.node, SIZE);
      const needle = await addNeedle(alice);
      const inbox = folderOrder(alice.node, "inbox");
      assert.ok(inbox.length > 2_000 && inbox.at(-1) === needle.id, "the needle is oldest");
      web = await startWeb(alice.node);

      browser = await launchChromium();
      const context = await browser.newContext({ viewport: { width: 1200, height: 820 } });
      const page = await context.newPage();
      page.setDefaultTimeout(20_000);
      const step = screenshotSteps(t, { dir: FAILURES, pages: { page } });
      const needleRow = page.locator(`tr.message-row[data-id="${needle.id}"]`);

      await step("the inbox shows its newest page, then older ones, to the oldest", async () => {
        await page.goto(web!.web.url);
        await page.getByRole("heading", { name: "Inbox" }).waitFor();
        await page.locator("tr.message-row").first().waitFor();
        const first = await shownIds(page);
        assert.ok(first.length >= 50 && first.length < 1_000, `a first page: ${first.length}`);
        assert.deepEqual(first, inbox.slice(0, first.length));

        await page.getByRole("button", { name: "Load older" }).click();
        await page.waitForFunction(
          (n) => (globalThis as any).document.querySelectorAll("tr.message-row").length > n,
          first.length,
        );
        const scrolls = await scrollToOldest(page);
        assert.ok(scrolls > 1, "scrolling loads the older pages");

        const ids = await shownIds(page);
        assert.equal(new Set(ids).size, ids.length, "no message twice");
        assert.equal(ids.length, inbox.length, "no message missing");
        assert.deepEqual(ids, inbox, "every message, in the database's order");
        await needleRow.scrollIntoViewIfNeeded();
        const text = await needleRow.textContent() ?? "";
        assert.match(text, new RegExp(`${needle.sender}.*Harbour ${needle.subjectWord}`));
        assert.match(text, /1 attachment/);
      });

      await step("the unread count shown is the database's, and follows a reading", async () => {
        const unread = unreadInInbox(alice!.node);
        assert.ok(unread > 0);
        assert.equal(await page.locator("#unread").textContent(), String(unread));
        assert.match(await needleRow.getAttribute("class") ?? "", /\bunread\b/);
        await needleRow.click();
        await page.getByRole("heading", { name: `Harbour ${needle.subjectWord}` }).waitFor();
        assert.equal(unreadInInbox(alice!.node), unread - 1, "reading marked it read");
        await page.waitForFunction(
          (n) => (globalThis as any).document.getElementById("unread").textContent === n,
          String(unread - 1),
        );
      });

      await step(
        "search finds by a word of the subject, body, attachment name, sender",
        async () => {
          await page.goto(`${web!.base}/#/inbox`);
          await page.getByRole("heading", { name: "Inbox" }).waitFor();
          for (
            const word of [
              needle.subjectWord,
              needle.bodyWord,
              needle.attachmentWord,
              needle.sender,
            ]
          ) {
            await search(page, word);
            assert.deepEqual(await shownIds(page), [needle.id], `search ${word}`);
          }
          await search(page, RARE);
          const rare = messagesWithWord(alice!.node, RARE);
          assert.ok(rare.length >= 10);
          assert.deepEqual(await shownIds(page), rare, `search ${RARE}`);
        },
      );

      await step("search pages past 1,000 matches to the oldest", async () => {
        const expected = messagesWithWord(alice!.node, "the");
        assert.ok(expected.length > 2_000 && expected.at(-1) === needle.id);
        await search(page, "the");
        await scrollToOldest(page);
        const ids = await shownIds(page);
        assert.equal(new Set(ids).size, ids.length, "no message twice");
        assert.deepEqual(ids, expected);
      });

      await step("a search that finds nothing says so", async () => {
        await search(page, "nonexistentword");
        assert.equal(await page.locator("tr.message-row").count(), 0);
        await page.getByText("Nothing matches.").waitFor();
      });

      await step("a renamed sender is found by the new name, not the old", async () => {
        await page.goto(`${web!.base}/#/contacts`);
        const row = page.locator(`tr[data-contact="${needle.sender}"]`);
        page.once("dialog", (dialog) => void dialog.accept("Zelda"));
        await row.getByRole("button", { name: "Rename" }).click();
        await page.locator('tr[data-contact="Zelda"]').waitFor();
        await page.goto(`${web!.base}/#/inbox`);
        await page.getByRole("heading", { name: "Inbox" }).waitFor();
        await search(page, "Zelda");
        assert.deepEqual(await shownIds(page), [needle.id]);
        assert.equal(await needleRow.locator("td").first().textContent(), "Zelda");
        await search(page, needle.sender);
        assert.equal(await page.locator("tr.message-row").count(), 0);
        await page.getByText("Nothing matches.").waitFor();
      });
    } finally {
      await browser?.close().catch(() => {});
      await web?.web.stop().catch(() => {});
      alice?.node.close();
      await Deno.remove(root, { recursive: true }).catch(() => {});
    }
  },
});
