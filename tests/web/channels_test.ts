/**
 * Broadcast channels in the web app (docs/broadcast.md), in a real headless
 * Chromium as in browser_test.ts: two paired messengers run in this process,
 * each behind its own web app, their mesh daemons on loopback with Bob's dialling
 * Alice's. Alice creates a public channel and copies its link; Bob follows it by
 * pasting the link; Alice posts and Bob's open channel page, like a second tab
 * of Alice's, shows the post without a reload, with its expiry; Bob unfollows; a
 * bad link is refused beside its field; Alice makes Bob an author and Bob's post
 * reaches her page; removing him says his certificate lapses at its expiry. A
 * private channel: Bob, added as a subscriber, gets it by mail and reads its
 * posts; removed, the key rotates and the next post shows on his page as one he
 * cannot read. A long channel pages through its older posts. Beside it, the
 * routes' answers to bad requests, without a browser.
 *
 * A failing step saves screenshots in test-results/channels/ (the path is
 * printed). With `RELAYMAIL_SCREENSHOTS=<dir>` the channel page is saved there as
 * `channel.png` (the README's).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { Runtime } from "../../app/runtime/runtime.ts";
import type { Relaymail } from "../../app/services/relaymail.ts";
import { WebApp } from "../../app/web/server.ts";
import { makeNode, pair, type TestNode } from "../helpers.ts";
import {
  BROWSER_TEST,
  launchChromium,
  requireChromium,
  saveScreen,
  screenshotSteps,
} from "./_browser.ts";
import { startWeb, type TestWeb, TestWebApp } from "./_web.ts";

const FAILURES = join(Deno.cwd(), "test-results", "channels");
/** Long enough for a post or a certificate to cross the loopback mesh. */
const MESH_MS = 45_000;

/** A web app for `node` like `startWeb`'s, whose mesh daemon dials `peers`. */
async function startWebDialling(node: Relaymail, peers: readonly string[]): Promise<TestWeb> {
  const logs: string[] = [];
  const log = (line: string) => logs.push(line);
  const runtime = await Runtime.attach(node, { log });
  await runtime.runDaemon(() => ({ listen: ["/ip4/127.0.0.1/tcp/0"], mdns: false, peers }));
  const web = new TestWebApp(await WebApp.start(runtime, { port: 0, log }), runtime);
  const secret = () => new URL(web.url).hash.replace("#key=", "");
  return {
    web,
    base: `http://127.0.0.1:${web.port}`,
    secret,
    bearer: () => ({ authorization: `Bearer ${secret()}` }),
    logs,
  };
}

/** The post holding `text` on `page`. */
function postWith(page: Page, text: string) {
  return page.locator("#posts article.post", { hasText: text });
}

/** Goes to the Channels view through the nav, as a person would. */
async function openChannels(page: Page): Promise<void> {
  await page.getByRole("link", { name: /^Channels/ }).click();
  await page.getByRole("heading", { name: "Channels", level: 1 }).waitFor();
}

Deno.test({
  name:
    "web app channels in Chromium: create, copy the link, follow it, live posts with expiry, unfollow, a bad link, authors, a private channel, paging",
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
      const aliceWeb = await startWeb(alice.node);
      webs.push(aliceWeb);
      const bobWeb = await startWebDialling(bob.node, aliceWeb.web.runtime.daemon!.mesh.addresses);
      webs.push(bobWeb);

      browser = await launchChromium();
      const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
      await context.grantPermissions(["clipboard-read", "clipboard-write"], {
        origin: aliceWeb.base,
      });
      const page = await context.newPage();
      const aliceTab = await context.newPage();
      const bobPage = await (await browser.newContext({ viewport: { width: 1200, height: 900 } }))
        .newPage();
      for (const p of [page, aliceTab, bobPage]) p.setDefaultTimeout(20_000);
      const step = screenshotSteps(t, {
        dir: FAILURES,
        pages: { alice: page, "alice-tab": aliceTab, bob: bobPage },
        output: () => [...aliceWeb.logs, ...bobWeb.logs].join("\n"),
      });
      let link = "";
      let channelId = "";

      await step("Alice creates a public channel, and copies its link", async () => {
        await page.goto(aliceWeb.web.url);
        await openChannels(page);
        await page.getByText(/No channels yet/).waitFor();
        await page.getByLabel("Title").fill("Village news");
        await page.getByLabel("Who can read it").selectOption("public");
        await page.getByRole("button", { name: "Create channel" }).click();
        await page.getByRole("heading", { name: "Village news", level: 1 }).waitFor();
        channelId = decodeURIComponent(/#\/channel\/(.+)$/.exec(page.url())![1]);
        assert.match(await page.locator("#channel-facts").textContent() ?? "", /public.*own/i);
        const shown = await page.locator("#channel-link").inputValue();
        assert.ok(shown.startsWith("RELAYMAIL-CHANNEL:"), shown.slice(0, 30));
        const qr = page.getByRole("img", { name: /QR code of the link of “Village news”/ });
        assert.match(await qr.getAttribute("src") ?? "", /^data:image\/svg\+xml;base64,/);
        await page.getByRole("button", { name: "Copy link" }).click();
        await page.locator("#toast", { hasText: "Link copied" }).waitFor();
        link = await page.evaluate(() => (globalThis as any).navigator.clipboard.readText());
        assert.equal(link, shown);
        // The composer is there for the owner, with the default lifetime said.
        assert.equal(await page.getByLabel("Lifetime in days").inputValue(), "30");
        assert.match(await page.locator("#post-days-hint").textContent() ?? "", /after 30 days/);
        // The channel is listed, as Alice's own.
        await openChannels(page);
        const row = page.locator(`#channels-table tr[data-channel="${channelId}"]`);
        assert.match(await row.textContent() ?? "", /Village news.*public.*you own it/);
      });

      await step("Bob follows it by pasting the link", async () => {
        await bobPage.goto(bobWeb.web.url);
        await openChannels(bobPage);
        await bobPage.getByLabel("Channel link").fill(link);
        await bobPage.getByRole("button", { name: "Follow", exact: true }).click();
        await bobPage.getByRole("heading", { name: "Village news", level: 1 }).waitFor();
        assert.match(await bobPage.locator("#channel-facts").textContent() ?? "", /follow/);
        // A follower may not post: no composer.
        assert.equal(await bobPage.locator("#composer").isVisible(), false);
      });

      await step("Alice posts; Bob's page and Alice's second tab show it live", async () => {
        await aliceTab.goto(aliceWeb.web.url);
        await aliceTab.goto(`${aliceWeb.base}/#/channel/${encodeURIComponent(channelId)}`);
        await aliceTab.getByRole("heading", { name: "Village news", level: 1 }).waitFor();
        await page.goto(`${aliceWeb.base}/#/channel/${encodeURIComponent(channelId)}`);
        await page.getByLabel("Title (optional)").fill("Market day");
        await page.getByLabel("Text").fill("Saturday at nine,\nby the fountain.");
        // By keyboard: the Post button, focused, takes Enter.
        await page.getByRole("button", { name: "Post", exact: true }).focus();
        await page.keyboard.press("Enter");
        await postWith(page, "by the fountain").waitFor();
        assert.equal(await page.getByLabel("Text").inputValue(), "", "the composer is emptied");

        // Without a reload: pushed over the event stream.
        const inTab = postWith(aliceTab, "by the fountain");
        await inTab.waitFor();
        assert.match(await inTab.textContent() ?? "", /Market day.*you.*expires in 29 days/s);
        const atBob = postWith(bobPage, "by the fountain");
        await atBob.waitFor({ timeout: MESH_MS });
        assert.equal(await atBob.locator("h3").textContent(), "Market day");
        assert.equal(await atBob.locator(".author").textContent(), "Alice");
        assert.equal(await atBob.locator(".expiry").textContent(), "expires in 29 days");
        assert.match(await atBob.locator(".expiry").getAttribute("title") ?? "", /Gone from every/);
      });

      await step("Bob unfollows: the channel stays listed as no longer followed", async () => {
        await bobPage.getByRole("button", { name: "Unfollow" }).click();
        const dialog = bobPage.locator("dialog", { hasText: "Unfollow “Village news”?" });
        await dialog.waitFor();
        assert.match(await dialog.textContent() ?? "", /stay until they expire/);
        await bobPage.locator("#confirm-yes").click();
        await bobPage.getByRole("button", { name: "Follow again" }).waitFor();
        assert.match(
          await bobPage.locator("#channel-facts").textContent() ?? "",
          /no longer follow/,
        );
        await openChannels(bobPage);
        assert.match(
          await bobPage.locator(`tr[data-channel="${channelId}"]`).textContent() ?? "",
          /Village news.*you no longer follow it/,
        );
      });

      await step("a bad link is refused beside the field, in plain words", async () => {
        const field = bobPage.getByLabel("Channel link");
        await field.fill("RELAYMAIL-CHANNEL:THIS-IS-NOT-A-CHANNEL");
        await bobPage.getByRole("button", { name: "Follow", exact: true }).click();
        const problem = bobPage.locator("#follow-link + .problem");
        await problem.waitFor();
        const said = await problem.textContent() ?? "";
        assert.ok(said.length > 10, said);
        assert.doesNotMatch(said, /failed to do this/, "the person's mistake, not a fault");
        assert.equal(await field.getAttribute("aria-invalid"), "true");
        assert.equal(
          await field.getAttribute("aria-describedby"),
          `follow-hint ${await problem.getAttribute("id")}`,
        );
        // Typing again takes the problem away; the right link follows the channel again.
        await field.fill(link);
        assert.equal(await problem.count(), 0);
        await bobPage.getByRole("button", { name: "Follow", exact: true }).click();
        await bobPage.getByRole("heading", { name: "Village news", level: 1 }).waitFor();
        await postWith(bobPage, "by the fountain").waitFor({ timeout: MESH_MS });
      });

      await step("Alice makes Bob an author; Bob posts and Alice sees it live", async () => {
        const panel = page.locator("#authors-panel");
        assert.match(await panel.locator("#authors-table").textContent() ?? "", /owner/);
        await panel.getByLabel("Contact").selectOption({ label: "Bob" });
        await panel.getByLabel(/For how many days/).fill("10");
        await panel.getByRole("button", { name: "Add author" }).click();
        const bobRow = panel.locator("#authors-table tr", { hasText: "Bob" });
        await bobRow.waitFor();

        // His certificate reaches him by mail: his page offers the composer.
        await bobPage.locator("#post-form").waitFor({ timeout: MESH_MS });
        assert.match(await bobPage.locator("#author-until").textContent() ?? "", /may post until/);
        await bobPage.getByLabel("Text").fill("Hello from Bob");
        const days = bobPage.getByLabel("Lifetime in days");
        await days.fill("500");
        await bobPage.getByRole("button", { name: "Post", exact: true }).click();
        const problem = bobPage.locator("#post-days + .problem");
        await problem.waitFor();
        assert.match(await problem.textContent() ?? "", /1 to 180/);
        await days.fill("5");
        await bobPage.getByRole("button", { name: "Post", exact: true }).click();
        await postWith(bobPage, "Hello from Bob").waitFor();

        const atAlice = postWith(page, "Hello from Bob");
        await atAlice.waitFor({ timeout: MESH_MS });
        assert.equal(await atAlice.locator(".author").textContent(), "Bob");
        assert.equal(await atAlice.locator(".expiry").textContent(), "expires in 4 days");
        // The README's screen: the page from its top, without the toasts of the moment.
        await page.evaluate(() => {
          const document = (globalThis as any).document;
          document.getElementById("toast").replaceChildren();
          document.getElementById("main").scrollTo(0, 0);
          (globalThis as any).scrollTo(0, 0);
        });
        await saveScreen(page, "channel");

        // Removing him says what it does: his certificate lapses, it is not called back.
        await bobRow.getByRole("button", { name: "Remove Bob as an author" }).click();
        const dialog = page.locator("dialog", { hasText: "Remove Bob as an author?" });
        await dialog.waitFor();
        assert.match(await dialog.textContent() ?? "", /lapses on/);
        await page.locator("#confirm-yes").click();
        await page.locator("#toast", { hasText: /Bob removed: their certificate lapses on/ })
          .waitFor();
      });
      await step(
        "a private channel: Alice adds Bob as a subscriber, then removes him",
        async () => {
          await openChannels(page);
          await page.getByLabel("Title").fill("Family");
          await page.getByLabel("Who can read it").selectOption("private");
          await page.getByRole("button", { name: "Create channel" }).click();
          await page.getByRole("heading", { name: "Family", level: 1 }).waitFor();
          const familyId = decodeURIComponent(/#\/channel\/(.+)$/.exec(page.url())![1]);
          assert.equal(await page.locator("#channel-link").count(), 0, "no link to hand out");
          const panel = page.locator("#subscribers-panel");
          await panel.getByText(/Nobody can read this channel yet/).waitFor();
          await panel.getByLabel("Contact").selectOption({ label: "Bob" });
          await panel.getByRole("button", { name: "Add subscriber" }).click();
          await panel.locator("#subscribers-table tr", { hasText: "Bob" }).waitFor();

          // Its key reaches Bob by mail: the channel appears in his list, live.
          await openChannels(bobPage);
          const row = bobPage.locator(`#channels-table tr[data-channel="${familyId}"]`);
          await row.waitFor({ timeout: MESH_MS });
          assert.match(await row.textContent() ?? "", /Family.*private/);
          await page.getByLabel("Text").fill("Dinner on Sunday");
          await page.getByRole("button", { name: "Post", exact: true }).click();
          await postWith(page, "Dinner on Sunday").waitFor();
          await row.getByRole("link", { name: "Family" }).click();
          await postWith(bobPage, "Dinner on Sunday").waitFor({ timeout: MESH_MS });

          await panel.getByRole("button", { name: "Remove Bob" }).click();
          const dialog = page.locator("dialog", { hasText: "Remove Bob?" });
          await dialog.waitFor();
          assert.match(await dialog.textContent() ?? "", /key is rotated/);
          await page.locator("#confirm-yes").click();
          await page.locator("#toast", { hasText: "Bob removed: the channel's key was rotated" })
            .waitFor();
          await panel.getByText(/Nobody can read this channel yet/).waitFor();
          // A post under the new key reaches his device, which cannot read it, and says so.
          await page.getByLabel("Text").fill("Plans for his birthday");
          await page.getByRole("button", { name: "Post", exact: true }).click();
          const unreadable = bobPage.locator("#posts article.post.unreadable");
          await unreadable.waitFor({ timeout: MESH_MS });
          assert.match(await unreadable.textContent() ?? "", /cannot be read here/);
          assert.equal(await postWith(bobPage, "birthday").count(), 0);
        },
      );

      await step("a long channel pages: the newest 50, then older ones on request", async () => {
        // Made through the operation the page's route runs: 51 more posts, 53 in all.
        for (let i = 1; i <= 51; i++) {
          await aliceWeb.web.runtime.call("channel.post", {
            channel: channelId,
            text: `Notice ${i}.`,
          });
        }
        await postWith(aliceTab, "Notice 51.").waitFor();
        await aliceTab.waitForFunction(
          () => (globalThis as any).document.querySelectorAll("#posts article").length === 50,
        );
        const older = aliceTab.getByRole("button", { name: "Older posts" });
        await older.click();
        await postWith(aliceTab, "by the fountain").waitFor();
        const shown = await aliceTab.locator("#posts article .post-text").allTextContents();
        assert.equal(shown.length, 53);
        assert.deepEqual(shown.slice(0, 2), ["Notice 51.", "Notice 50."]);
        assert.equal(shown.at(-1), "Saturday at nine,\nby the fountain.");
        assert.equal(new Set(shown).size, 53, "each post once");
        assert.equal(await older.isVisible(), false, "nothing older is left");
      });
    } finally {
      await browser?.close();
      for (const web of webs) await web.web.stop();
      await alice?.close();
      await bob?.close();
    }
  },
});

Deno.test("channel routes answer bad requests with a sentence naming what was wrong", async () => {
  const alice = await makeNode("Alice");
  const web = await startWeb(alice.node);
  try {
    const call = async (path: string, init: { method?: string; json?: unknown } = {}) => {
      const response = await fetch(`${web.base}${path}`, {
        method: init.method ?? (init.json === undefined ? "GET" : "POST"),
        headers: { ...web.bearer(), "content-type": "application/json" },
        body: init.json === undefined ? undefined : JSON.stringify(init.json),
      });
      return { status: response.status, body: await response.json() };
    };
    // Without the session: refused, like every route.
    const anonymous = await fetch(`${web.base}/api/channels`);
    assert.equal(anonymous.status, 401);
    await anonymous.body?.cancel();
    // From another site: refused before anything runs.
    const foreign = await fetch(`${web.base}/api/channels`, {
      method: "POST",
      headers: {
        ...web.bearer(),
        origin: "http://evil.example",
        "content-type": "application/json",
      },
      body: JSON.stringify({ title: "Pwned" }),
    });
    assert.equal(foreign.status, 403);
    await foreign.body?.cancel();
    assert.deepEqual((await call("/api/channels")).body, { channels: [] });

    assert.deepEqual(await call("/api/channels", { json: { title: "  " } }), {
      status: 400,
      body: { error: "Give the channel a title" },
    });
    assert.deepEqual(
      await call("/api/channels", { json: { title: "News", visibility: "secret" } }),
      {
        status: 400,
        body: { error: 'A channel is "public" or "private", not "secret"' },
      },
    );
    const created = await call("/api/channels", { json: { title: "News" } });
    assert.equal(created.status, 200);
    assert.equal(created.body.visibility, "public");
    assert.equal(created.body.role, "owner");
    const id = created.body.id as string;

    const post = (json: unknown) => call(`/api/channels/${id}/posts`, { json });
    assert.deepEqual(await post({ text: "Hi", ttlDays: 181 }), {
      status: 400,
      body: { error: "A post's lifetime is 1 to 180 whole days, not 181" },
    });
    assert.deepEqual(await post({ text: "Hi", ttlDays: "30" }), {
      status: 400,
      body: { error: "A post's lifetime is 1 to 180 whole days, not text" },
    });
    assert.deepEqual(await post({ text: 5 }), {
      status: 400,
      body: { error: '"text" must be text, not a number' },
    });
    const made = await post({ text: "Hello", title: "First", ttlDays: 2 });
    assert.equal(made.status, 200);
    assert.equal(made.body.text, "Hello");
    const page = await call(`/api/channels/${id}/posts?limit=10`);
    assert.deepEqual(page.body.posts.map((p: { key: string }) => p.key), [made.body.key]);
    assert.equal((await call(`/api/channels/${id}/posts?limit=0`)).status, 400);

    const unknown = "0" + "ab".repeat(32);
    assert.equal((await call(`/api/channels/${unknown}`)).status, 404);
    assert.equal((await call(`/api/channels/${unknown}/posts`)).status, 404);
    const badLink = await call("/api/channels/follow", { json: { link: "not a link" } });
    assert.equal(badLink.status, 400);
    assert.ok(badLink.body.error.length > 10, badLink.body.error);
    assert.equal(
      (await call(`/api/channels/${id}/authors`, { json: { contact: "Nobody", days: 0 } })).body
        .error,
      "An author's certificate is 1 to 180 whole days, not 0",
    );
    assert.equal(
      (await call(`/api/channels/${id}/authors`, { json: { contact: "Nobody" } })).status,
      400,
      "an unknown contact is the person's mistake",
    );
  } finally {
    await web.web.stop();
    await alice.close();
  }
});
