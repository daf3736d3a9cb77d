/**
 * What the channel page says once a post is sent (app/web/static/channel_page.js):
 * a post lives what was asked, or less when the author's certificate ends sooner,
 * and the page says which.
 */
import assert from "node:assert/strict";

// Imported by a computed name: the page's modules are checked against the DOM's
// types (`deno check app/web/static/`), which clash with Deno's in the tests' check.
const page = new URL("../../app/web/static/channel_page.js", import.meta.url).href;
const { postedNotice } = await import(page) as {
  postedNotice(iso: string, days: number, now?: number): string;
};

const DAY = 86_400_000;
const NOW = Date.parse("2026-11-30T12:00:00Z");

Deno.test("the page says a post lives the days asked", () => {
  const iso = new Date(NOW + 30 * DAY).toISOString();
  assert.equal(postedNotice(iso, 30, NOW), "Posted: gone from every device in 30 days");
  assert.equal(
    postedNotice(new Date(NOW + DAY).toISOString(), 1, NOW),
    "Posted: gone from every device in 1 day",
  );
});

Deno.test("the page says when a post lives less than asked, and why", () => {
  const iso = new Date(NOW + 9 * DAY + 3_600_000).toISOString();
  assert.equal(
    postedNotice(iso, 30, NOW),
    "Posted: it expires in 9 days, not in 30 days: your author certificate ends then",
  );
});
