/**
 * The mail basics in a real headless Chromium (Debian's `chromium`, driven by
 * playwright-core as in browser_test.ts), end to end between two paired
 * messengers run in this process, each behind its own web app: desktop
 * notifications that name the sender (permission granted to the browser, the
 * Notification API watched in the page), mark unread, archive and back, delete
 * for good (attachments purged, gone after a reload), forward with an
 * attachment whose bytes reach the recipient intact, a draft that survives a
 * reload and goes once sent, two tabs kept in step, and the keyboard shortcuts
 * (`e`, `#`, `u`, `f`, `j`, `?`).
 *
 * Parcels are carried between the two messengers by the test (`carry`), as a
 * binding would; everything else goes through the pages.
 *
 * A failing step saves screenshots in test-results/mail-basics/ (the path is printed).
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { carry, makeNode, pair, type TestNode, waitFor } from "../helpers.ts";
import {
  BROWSER_TEST,
  launchChromium,
  requireChromium,
  saveScreen,
  screenshotSteps,
} from "./_browser.ts";
import { startWeb, type TestWeb } from "./_web.ts";

const FAILURES = join(Deno.cwd(), "test-results", "mail-basics");

/** Calls the API as the page itself would: with the session token it keeps. */
function pageApi(
  page: Page,
  path: string,
  init: { method?: string } = {},
): Promise<{ status: number; body: any }> {
  return page.evaluate(
    async ({ path, method }) => {
      const response = await fetch(path, {
        method,
        headers: { authorization: `Bearer ${sessionStorage.getItem("relaymail.session")}` },
      });
      const type = response.headers.get("content-type") ?? "";
      return {
        status: response.status,
        body: type.includes("json") ? await response.json() : null,
      };
    },
    { path, method: init.method ?? "GET" },
  );
}

/** The bytes of an attachment, fetched by the page with its session. */
async function attachmentBytes(page: Page, id: string, index: number): Promise<Uint8Array> {
  const numbers: number[] = await page.evaluate(
    async ({ id, index }) => {
      const response = await fetch(`/api/messages/${id}/attachments/${index}`, {
        headers: { authorization: `Bearer ${sessionStorage.getItem("relaymail.session")}` },
      });
      return [...new Uint8Array(await response.arrayBuffer())];
    },
    { id, index },
  );
  return new Uint8Array(numbers);
}

/** The notifications the page made, as the wrapper installed in it recorded them. */
function notificationsShown(page: Page): Promise<{ title: string; body: string }[]> {
  return page.evaluate(() =>
    (globalThis as any).shownNotifications.map((n: any) => ({ title: n.title, body: n.body }))
  );
}

/** Rows of a mail table holding `text`. */
function rowWith(page: Page, table: string, text: string) {
  return page.locator(`#${table}-table tr.message-row`, { hasText: text });
}

Deno.test({
  name:
    "web app mail basics in Chromium: notifications, unread, archive, delete, forward, drafts, shortcuts",
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
      await pair(alice, bob);
      const menu = new Uint8Array(300_000).map((_, i) => (i * 13 + 5) % 251);
      // Bob's mail, waiting to reach Alice: two with attachments.
      await bob.node.mailbox.send({
        to: ["Alice"],
        subject: "Lunch menu",
        body: "Here is the menu.\nSee you at noon.",
        attachments: [
          { fileName: "menu.bin", mediaType: "application/octet-stream", content: menu },
          {
            fileName: "notes.txt",
            mediaType: "text/plain",
            content: new TextEncoder().encode("n"),
          },
        ],
      });
      await bob.node.mailbox.send({ to: ["Alice"], subject: "Trip plans", body: "Mountains?" });
      await bob.node.mailbox.send({
        to: ["Alice"],
        subject: "Old photos",
        body: "From the attic.",
        attachments: [{ fileName: "photo.jpg", content: new Uint8Array(40_000).fill(7) }],
      });
      await carry(bob.node, alice.node);
      const aliceWeb = await startWeb(alice.node);
      const bobWeb = await startWeb(bob.node);
      webs.push(aliceWeb, bobWeb);
      /** Bob writes to Alice; the parcel is carried to her. */
      const bobWrites = async (subject: string) => {
        await bob!.node.mailbox.send({ to: ["Alice"], subject, body: "Hello from Bob" });
        await carry(bob!.node, alice!.node);
      };

      browser = await launchChromium();
      const context = await browser.newContext({ viewport: { width: 1200, height: 820 } });
      await context.grantPermissions(["notifications"], { origin: aliceWeb.base });
      // Every Notification the page makes is recorded (and still made).
      await context.addInitScript(() => {
        const Real = (globalThis as any).Notification;
        if (!Real) return;
        (globalThis as any).shownNotifications = [];
        class Watched extends Real {
          constructor(title: string, options?: unknown) {
            super(title, options);
            (globalThis as any).shownNotifications.push(this);
          }
        }
        (globalThis as any).Notification = Watched;
      });
      const page = await context.newPage();
      const bobPage = await context.newPage();
      for (const p of [page, bobPage]) p.setDefaultTimeout(20_000);
      const step = screenshotSteps(t, { dir: FAILURES, pages: { alice: page, bob: bobPage } });
      /** The id of Alice's message called `subject`. */
      const messageId = async (subject: string): Promise<string> => {
        const { body } = await pageApi(page, `/api/messages?folder=inbox&limit=500`);
        const message = body.messages.find((m: any) => m.subject === subject);
        assert.ok(message, `Alice has a message "${subject}"`);
        return message.id;
      };
      await page.goto(aliceWeb.web.url);
      await bobPage.goto(bobWeb.web.url);
      await rowWith(page, "inbox", "Lunch menu").waitFor();

      await step(
        "desktop notifications: opt-in, naming the sender, opening the message",
        async () => {
          const toggle = page.getByRole("button", { name: "Desktop notifications: off" });
          await toggle.click();
          await page.getByRole("button", { name: "Desktop notifications: on" }).waitFor();
          assert.equal(
            await page.evaluate(() => localStorage.getItem("relaymail.notifications")),
            "on",
          );

          // Focused, the page says it itself: a toast naming the sender, no desktop notification.
          await bobWrites("Are you there?");
          await page.locator("#toast", { hasText: "New mail from Bob: Are you there?" }).waitFor();
          assert.deepEqual(await notificationsShown(page), []);

          // Another window in front: a desktop notification, titled with the sender's name.
          await page.evaluate(() => ((globalThis as any).document.hasFocus = () => false));
          await bobWrites("Dinner tonight");
          const shown = await waitFor("a notification", async () => {
            const list = await notificationsShown(page);
            return list.length ? list[0] : undefined;
          });
          assert.deepEqual(shown, { title: "Bob", body: "Dinner tonight" });
          // Its click opens the message.
          await page.evaluate(() =>
            (globalThis as any).shownNotifications[0].dispatchEvent(new Event("click"))
          );
          await page.getByRole("heading", { name: "Dinner tonight" }).waitFor();
          assert.match(page.url(), new RegExp(`#/thread/${await messageId("Dinner tonight")}`));

          // The choice is remembered across a reload.
          await page.reload();
          await page.getByRole("button", { name: "Desktop notifications: on" }).waitFor();
        },
      );

      await step("mark unread: bold again, and counted again", async () => {
        await page.getByRole("link", { name: /Inbox/ }).click();
        const unreadBefore = (await pageApi(page, "/api/state")).body.unread;
        await rowWith(page, "inbox", "Lunch menu").click();
        await page.getByText("See you at noon.").waitFor();
        const unreadRead = (await pageApi(page, "/api/state")).body.unread;
        assert.equal(unreadRead, unreadBefore - 1, "reading it counted it read");
        await page.locator("article.message").getByRole("button", { name: "Mark unread" }).click();
        await page.locator("#inbox-table tr.message-row.unread", { hasText: "Lunch menu" })
          .waitFor();
        await page.locator("#unread", { hasText: String(unreadBefore) }).waitFor();

        // `u` on the selected row marks it read again, and once more unread.
        await rowWith(page, "inbox", "Lunch menu").focus();
        await page.keyboard.press("u");
        await page.locator("#inbox-table tr.message-row[data-read=true]", { hasText: "Lunch menu" })
          .waitFor();
        await page.keyboard.press("u");
        await page.locator("#inbox-table tr.message-row.unread", { hasText: "Lunch menu" })
          .waitFor();
      });

      await step(
        "archive with `e`, found in Archive and by search, moved back; two tabs in step",
        async () => {
          const second = await context.newPage();
          await second.goto(aliceWeb.web.url);
          await rowWith(second, "inbox", "Trip plans").waitFor();

          await rowWith(page, "inbox", "Trip plans").focus();
          await page.keyboard.press("e");
          await page.locator("#toast", { hasText: "Archived" }).waitFor();
          await rowWith(page, "inbox", "Trip plans").waitFor({ state: "detached" });
          // The other tab follows, without a reload.
          await rowWith(second, "inbox", "Trip plans").waitFor({ state: "detached" });
          await second.close();

          await page.getByRole("link", { name: "Archive" }).click();
          await rowWith(page, "archive", "Trip plans").waitFor();
          const listed = await pageApi(page, "/api/messages?folder=archive");
          assert.deepEqual(listed.body.messages.map((m: any) => m.subject), ["Trip plans"]);
          const found = await pageApi(page, "/api/messages?q=Mountains");
          assert.equal(found.body.messages[0].folder, "archive");

          await rowWith(page, "archive", "Trip plans").click();
          await page.getByText("Mountains?").waitFor();
          await page.locator("article.message").getByRole("button", { name: "Move to Inbox" })
            .click();
          await page.locator("#toast", { hasText: "Moved back to Inbox" }).waitFor();
          await page.getByRole("link", { name: /Inbox/ }).click();
          await rowWith(page, "inbox", "Trip plans").waitFor();
          assert.equal(
            (await pageApi(page, "/api/messages?folder=archive")).body.messages.length,
            0,
          );
        },
      );

      await step(
        "delete with `#`: asked first, then gone for good with its attachment",
        async () => {
          const id = await messageId("Old photos");
          await rowWith(page, "inbox", "Old photos").click();
          await page.getByText("From the attic.").waitFor();
          // Cancelled: nothing happens.
          await page.keyboard.press("Delete");
          const dialog = page.getByRole("dialog", { name: "Delete this message for good?" });
          await dialog.waitFor();
          await saveScreen(page, "delete-confirm");
          await dialog.getByRole("button", { name: "Cancel" }).click();
          await dialog.waitFor({ state: "detached" });
          assert.equal((await pageApi(page, `/api/messages/${id}`)).status, 200);

          await page.keyboard.press("#");
          const [answer] = await Promise.all([
            page.waitForResponse((r) => r.request().method() === "DELETE"),
            dialog.getByRole("button", { name: "Delete" }).click(),
          ]);
          const deleted = await answer.json();
          assert.deepEqual(deleted, { deleted: id, attachments: 1, parcels: 0, riding: [] });
          await page.locator("#toast", { hasText: "1 attachment removed" }).waitFor();
          await page.locator("#inbox-table").waitFor();
          await rowWith(page, "inbox", "Old photos").waitFor({ state: "detached" });
          await page.reload();
          await rowWith(page, "inbox", "Lunch menu").waitFor();
          assert.equal(await rowWith(page, "inbox", "Old photos").count(), 0);
          assert.equal((await pageApi(page, `/api/messages/${id}`)).status, 404);
          assert.equal((await pageApi(page, `/api/messages/${id}/attachments/0`)).status, 404);
        },
      );

      await step(
        "forward with `f`: quoted, its attachments carried (one left out) and counted",
        async () => {
          await rowWith(page, "inbox", "Lunch menu").focus();
          await page.keyboard.press("f");
          await page.getByRole("heading", { name: "Forward" }).waitFor();
          assert.equal(await page.getByLabel("Subject").inputValue(), "Fwd: Lunch menu");
          const body = await page.getByLabel("Message").inputValue();
          assert.match(body, /Forwarded message/);
          assert.match(body, /From: Bob/);
          assert.match(body, /Subject: Lunch menu/);
          assert.match(body, /Date: /);
          assert.match(body, /Here is the menu\.\nSee you at noon\./);
          const carried = page.locator("#forwarded-attachments");
          assert.match(await carried.textContent() ?? "", /menu\.bin.*notes\.txt/);
          // The meter counts what is carried: the menu's 300 000 bytes.
          const size = () => page.locator("#size").textContent().then((s) => s ?? "");
          assert.match(await size(), /menu\.bin 293\.0 KB/);
          assert.match(await size(), /^29\d\.\d KB of/);
          await saveScreen(page, "forward");
          await page.getByRole("button", { name: "Remove notes.txt" }).click();
          assert.doesNotMatch(await size(), /notes\.txt/);
          await page.getByLabel("Add attachments").setInputFiles([{
            name: "extra.txt",
            mimeType: "text/plain",
            buffer: Buffer.from("one more thing"),
          }]);
          await page.getByLabel("Bob").check();
          await page.getByRole("button", { name: "Send" }).click();
          await page.getByRole("heading", { name: "Fwd: Lunch menu" }).waitFor();

          await carry(alice!.node, bob!.node);
          await bobPage.locator("#inbox-table tr.unread", { hasText: "Fwd: Lunch menu" }).click();
          await bobPage.getByText("Forwarded message").waitFor();
          const article = bobPage.locator("article.message");
          const id = await article.getAttribute("data-id");
          const [message] = (await pageApi(bobPage, `/api/threads/${id}`)).body;
          assert.deepEqual(message.attachments.map((a: any) => a.fileName), [
            "menu.bin",
            "extra.txt",
          ]);
          assert.deepEqual(await attachmentBytes(bobPage, id!, 0), menu);
          assert.equal(
            new TextDecoder().decode(await attachmentBytes(bobPage, id!, 1)),
            "one more thing",
          );
        },
      );

      await step(
        "a draft is saved as it is typed, survives a reload, and goes once sent",
        async () => {
          const drafts = await context.newPage();
          await drafts.goto(aliceWeb.web.url);
          await drafts.getByRole("link", { name: "Drafts" }).click();
          await drafts.getByText("No drafts.").waitFor();

          await page.keyboard.press("c");
          await page.getByRole("heading", { name: "New message" }).waitFor();
          await page.getByLabel("Bob").check();
          await page.getByLabel("Subject").fill("Half-written plan");
          await page.getByLabel("Message").pressSequentially("We could meet on Sunday", {
            delay: 5,
          });
          await page.locator("#draft-status", { hasText: "Draft saved" }).waitFor();
          assert.match(page.url(), /#\/compose\?draft=/);
          await saveScreen(page, "draft");
          // The other tab lists it, without a reload.
          await rowWith(drafts, "drafts", "Half-written plan").waitFor();
          await saveScreen(drafts, "drafts");

          await page.reload();
          await page.getByRole("heading", { name: "Draft" }).waitFor();
          assert.equal(await page.getByLabel("Subject").inputValue(), "Half-written plan");
          assert.equal(await page.getByLabel("Message").inputValue(), "We could meet on Sunday");
          assert.equal(await page.getByLabel("Bob").isChecked(), true);

          await page.getByLabel("Message").press("End");
          await page.getByLabel("Message").pressSequentially(" at ten.");
          await page.getByRole("button", { name: "Send" }).click();
          await page.getByRole("heading", { name: "Half-written plan" }).waitFor();
          assert.deepEqual((await pageApi(page, "/api/drafts")).body, []);
          await drafts.getByText("No drafts.").waitFor();
          await carry(alice!.node, bob!.node);
          await bobPage.getByRole("link", { name: /Inbox/ }).click();
          await rowWith(bobPage, "inbox", "Half-written plan").click();
          await bobPage.getByText("We could meet on Sunday at ten.").waitFor();

          // A draft discarded goes too.
          await page.keyboard.press("c");
          await page.getByRole("heading", { name: "New message" }).waitFor();
          await page.getByLabel("Subject").fill("Never mind");
          await page.locator("#draft-status", { hasText: "Draft saved" }).waitFor();
          await rowWith(drafts, "drafts", "Never mind").waitFor();
          await page.getByRole("button", { name: "Discard" }).click();
          await page.getByRole("heading", { name: "Inbox" }).waitFor();
          await drafts.getByText("No drafts.").waitFor();
          assert.deepEqual((await pageApi(page, "/api/drafts")).body, []);
          await drafts.close();
        },
      );

      await step("`j` moves down the list, `?` lists the shortcuts", async () => {
        // Discarding the draft came back to the inbox.
        await page.locator("#inbox-table").waitFor();
        await page.locator("main h1").focus();
        await page.keyboard.press("j");
        const first = page.locator("#inbox-table tr.message-row").first();
        assert.equal(await first.getAttribute("aria-selected"), "true");
        await page.keyboard.press("j");
        assert.equal(
          await page.locator("#inbox-table tr.message-row").nth(1).getAttribute("aria-selected"),
          "true",
        );
        await saveScreen(page, "mail-list-selected");
        await page.keyboard.press("k");
        assert.equal(await first.getAttribute("aria-selected"), "true");
        const subject = await first.locator("td").nth(1).textContent();
        await page.keyboard.press("o");
        await page.locator("article.message").first().waitFor();
        assert.equal(
          await page.locator("main h1").textContent(),
          subject?.replace(/ · \d+ attachments?$/, ""),
        );
        await page.keyboard.press("?");
        const help = page.getByRole("dialog", { name: "Keyboard shortcuts" });
        await help.waitFor();
        assert.match(await help.textContent() ?? "", /Archive/);
        await saveScreen(page, "shortcuts");
        await page.keyboard.press("Escape");
        await help.waitFor({ state: "detached" });
      });

      await step("deleting sent mail still waiting to leave cancels its delivery", async () => {
        await page.keyboard.press("c");
        await page.getByRole("heading", { name: "New message" }).waitFor();
        await page.getByLabel("Bob").check();
        await page.getByLabel("Subject").fill("Not meant to go");
        await page.getByLabel("Message").fill("Oops");
        await page.getByRole("button", { name: "Send" }).click();
        await page.getByRole("heading", { name: "Not meant to go" }).waitFor();
        await page.getByRole("link", { name: "Sent" }).click();
        await rowWith(page, "sent", "Not meant to go").focus();
        await page.keyboard.press("Delete");
        const dialog = page.getByRole("dialog", { name: "Delete this message for good?" });
        assert.match(await dialog.textContent() ?? "", /still waiting to leave is not sent/);
        const [answer] = await Promise.all([
          page.waitForResponse((r) => r.request().method() === "DELETE"),
          dialog.getByRole("button", { name: "Delete" }).click(),
        ]);
        assert.equal((await answer.json()).parcels, 1);
        await page.locator("#toast", { hasText: "delivery cancelled" }).waitFor();
        await rowWith(page, "sent", "Not meant to go").waitFor({ state: "detached" });
        await carry(alice!.node, bob!.node);
        const bobInbox = await pageApi(bobPage, "/api/messages?q=meant");
        assert.deepEqual(bobInbox.body.messages, [], "nothing reached Bob");
      });

      await step("notifications the browser refuses: said plainly, left off", async () => {
        const refusing = await browser!.newContext();
        try {
          const other = await refusing.newPage();
          await other.goto(aliceWeb.web.url);
          await other.getByRole("button", { name: "Desktop notifications: off" }).click();
          const note = other.locator("#notifications-note");
          await note.filter({ hasText: /.+/ }).waitFor();
          assert.match(
            await note.textContent() ?? "",
            /The browser blocks notifications from this page|closed without an answer/,
          );
          await other.getByRole("button", { name: "Desktop notifications: off" }).waitFor();
          assert.equal(
            await other.evaluate(() => localStorage.getItem("relaymail.notifications")),
            null,
          );
        } finally {
          await refusing.close();
        }
      });
    } finally {
      await browser?.close().catch(() => {});
      for (const web of webs) await web.web.stop().catch(() => {});
      await alice?.close();
      await bob?.close();
    }
  },
});
