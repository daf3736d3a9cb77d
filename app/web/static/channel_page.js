// @ts-check
/// <reference lib="dom" />
// One channel: the composer for those who may post; its posts, newest first,
// each with who wrote it and when it expires; its link and QR code to hand
// over; unfollowing; and for its owner the authors and subscribers
// (channel_panels.js). Posts that arrive are shown as they come, without
// touching what is being typed.

import { attempt, confirmDialog, h, listOr, onSubmit, toast } from "./dom.js";
import {
  channelLink,
  followChannel,
  getChannel,
  listPosts,
  markChannelRead,
  publishPost,
  unfollowChannel,
} from "./channel_api.js";
import { authorsPanel, subscribersPanel } from "./channel_panels.js";
import { refreshChannelCount, roleText, VISIBILITY_TEXT } from "./channels.js";
import { formatDate, shortId } from "./format.js";
import { FieldError } from "./problems.js";

/** @typedef {import("../api_types.ts").Channel} Channel */
/** @typedef {import("../api_types.ts").Post} Post */
/** @typedef {import("./router.js").View} View */
/** @typedef {import("./router.js").ViewContext} ViewContext */

const DAY = 86_400_000;
const HOUR = 3_600_000;
/** A post's lifetime in days: the default, and the most (docs/broadcast.md). */
export const DEFAULT_DAYS = 30;
export const MAX_DAYS = 180;

/**
 * What the page says once a post is sent for `days` days and expires at `iso`: a
 * post never outlives its author's certificate, so it may live less than asked.
 * @param {string} iso
 * @param {number} days
 * @param {number} [now]
 */
export function postedNotice(iso, days, now = Date.now()) {
  const asked = `${days} ${days === 1 ? "day" : "days"}`;
  if (Date.parse(iso) >= now + days * DAY - HOUR) {
    return `Posted: gone from every device in ${asked}`;
  }
  return `Posted: it ${expiresIn(iso, now)}, not in ${asked}: your author certificate ends then`;
}

/**
 * How long until `iso`, as a post's expiry reads: "expires in 29 days".
 * @param {string} iso
 * @param {number} [now]
 */
export function expiresIn(iso, now = Date.now()) {
  const left = new Date(iso).getTime() - now;
  if (left <= 0) return "expired";
  if (left >= DAY) {
    const days = Math.floor(left / DAY);
    return `expires in ${days} ${days === 1 ? "day" : "days"}`;
  }
  const hours = Math.floor(left / HOUR);
  return hours >= 1
    ? `expires in ${hours} ${hours === 1 ? "hour" : "hours"}`
    : "expires in less than an hour";
}

/**
 * @param {ViewContext} context
 * @returns {Promise<View>}
 */
export async function channelView({ id }) {
  let channel = await getChannel(id);
  const facts = h("p", { class: "hint", id: "channel-facts" });
  // New posts are told as they arrive, not the whole list again.
  const posts = h("div", {
    class: "posts",
    id: "posts",
    "aria-live": "polite",
    "aria-relevant": "additions",
  });
  const list = listOr({
    frame: posts,
    container: posts,
    empty: "No posts yet.",
    key: (post) => post.key,
    render: postArticle,
  });
  /** @type {Post[]} older posts, loaded with "Older posts" */
  let older = [];
  /** @type {string | null} */
  let next = null;
  const olderButton = h("button", {
    type: "button",
    id: "older-posts",
    hidden: true,
    onclick: () => loadOlder(),
  }, "Older posts");
  const composer = composerForm(id, () => refresh());
  const following = h("div", { class: "actions", id: "following-actions" });
  const authors = channel.role === "owner" ? authorsPanel(id) : null;
  const subscribers = channel.role === "owner" ? subscribersPanel(id, channel.visibility) : null;

  /** @type {readonly Post[]} the newest page, read again at each refresh */
  let newest = [];
  const drawPosts = () => {
    const seen = new Set(newest.map((post) => post.key));
    list.update([...newest, ...older.filter((post) => !seen.has(post.key))]);
    olderButton.hidden = next === null;
  };
  const loadOlder = () =>
    attempt(async () => {
      if (!next) return;
      const page = await listPosts(id, next);
      older = [...older, ...page.posts];
      next = page.next;
      drawPosts();
    });
  async function refresh() {
    const [fresh, page] = await Promise.all([getChannel(id), listPosts(id)]);
    channel = fresh;
    if (older.length === 0) next = page.next;
    drawFacts(facts, channel);
    drawFollowing();
    composer.update(channel);
    newest = page.posts;
    drawPosts();
    await Promise.all([authors?.refresh(), subscribers?.refresh()]);
    // The posts are on screen: they count as read (which changes the channel, once).
    if (channel.unread > 0) {
      await markChannelRead(id);
      await refreshChannelCount();
    }
  }

  const unfollow = async () => {
    const yes = await confirmDialog({
      title: `Unfollow “${channel.title}”?`,
      text: "Its new posts stop reaching you; those you have stay until they expire. " +
        "You can follow it again with its link.",
      confirm: "Unfollow",
    });
    if (!yes) return;
    await attempt(async () => {
      await unfollowChannel(id);
      toast(`You no longer follow “${channel.title}”`);
      await refresh();
    });
  };
  const followAgain = () =>
    attempt(async () => {
      if (!channel.link) return;
      await followChannel(channel.link);
      toast(`You follow “${channel.title}” again`);
      await refresh();
    });
  /** Unfollow, or follow again: for channels the user does not own. */
  function drawFollowing() {
    following.replaceChildren(
      channel.role === "owner" ? "" : channel.following
        ? h(
          "button",
          { type: "button", class: "danger", id: "unfollow", onclick: unfollow },
          "Unfollow",
        )
        : channel.link
        ? h("button", {
          type: "button",
          class: "primary",
          id: "follow-again",
          onclick: followAgain,
        }, "Follow again")
        : "",
    );
  }
  await refresh();

  return {
    name: "channels",
    content: /** @type {Node[]} */ ([
      h("p", {}, h("a", { href: "#/channels" }, "← Channels")),
      h("h1", {}, channel.title),
      facts,
      following,
      composer.node,
      h("h2", {}, "Posts"),
      list.node,
      olderButton,
      await linkBlock(channel),
      authors?.node,
      subscribers?.node,
    ].filter((node) => node)),
    live: ["channel-changed", "contact-changed"],
    refresh,
  };
}

/**
 * @param {HTMLElement} facts
 * @param {Channel} channel
 */
function drawFacts(facts, channel) {
  const posts = `${channel.posts} ${channel.posts === 1 ? "post" : "posts"}`;
  facts.textContent = `${capital(VISIBILITY_TEXT[channel.visibility])}. ${
    capital(roleText(channel))
  }. ${posts} here. Channel ${
    channel.id.slice(0, 13)
  }: its title is what its owner chose, so two channels may share one.`;
}

/** @param {string} text */
const capital = (text) => text.charAt(0).toUpperCase() + text.slice(1);

/**
 * The link to hand over (public channels: anyone may follow), with its QR code.
 * @param {Channel} channel
 */
async function linkBlock(channel) {
  if (channel.visibility !== "public") {
    return channel.role === "owner"
      ? h(
        "p",
        { class: "hint" },
        "This channel is private: add the contacts who may read it under Subscribers. " +
          "Its key reaches them end to end.",
      )
      : null;
  }
  const { text, qrCode } = await channelLink(channel.id);
  const area = h("textarea", {
    class: "invitation channel-link",
    id: "channel-link",
    readonly: true,
    "aria-label": "Channel link",
  });
  area.value = text;
  const image = h("img", { src: qrCode, alt: `QR code of the link of “${channel.title}”` });
  return h(
    "section",
    { "aria-labelledby": "link-heading", class: "channel-link-box" },
    h("h2", { id: "link-heading" }, "Link"),
    h(
      "p",
      { class: "hint" },
      "Anyone with this link can follow the channel, by pasting it or scanning the code.",
    ),
    area,
    h(
      "div",
      { class: "actions" },
      h("button", {
        type: "button",
        id: "copy-link",
        onclick: () =>
          navigator.clipboard.writeText(text).then(
            () => toast("Link copied"),
            () => {
              area.select();
              toast("Select the link and copy it: the browser did not let the page copy", true);
            },
          ),
      }, "Copy link"),
    ),
    h("div", { class: "qr" }, h("figure", {}, image, h("figcaption", {}, "Scan to follow"))),
  );
}

/** @param {Post} post */
function postArticle(post) {
  const expiry = new Date(post.expiresAt);
  return h(
    "article",
    { class: `post${post.readable ? "" : " unreadable"}`, dataset: { post: post.key } },
    post.title ? h("h3", {}, post.title) : null,
    h(
      "p",
      { class: "post-meta" },
      h("span", { class: "author" }, post.authorName ?? `someone (${shortId(post.authorId)})`),
      " · ",
      h("time", { datetime: post.createdAt }, formatDate(post.createdAt)),
      " · ",
      h(
        "span",
        { class: "expiry", title: `Gone from every device on ${expiry.toLocaleString()}` },
        expiresIn(post.expiresAt),
      ),
    ),
    post.readable && post.text !== null ? h("p", { class: "post-text" }, post.text) : h(
      "p",
      { class: "hint" },
      "This post cannot be read here: its channel's key has not reached this device " +
        "(or you were removed as a subscriber before it was written).",
    ),
  );
}

/**
 * The composer, shown while the user may post.
 * @param {string} id
 * @param {() => Promise<void>} refresh
 */
function composerForm(id, refresh) {
  const title = h("input", { type: "text", id: "post-title", maxlength: 200 });
  const text = h("textarea", { id: "post-text", required: true, class: "post-input" });
  const days = h("input", {
    type: "number",
    id: "post-days",
    min: 1,
    max: MAX_DAYS,
    step: 1,
    value: DEFAULT_DAYS,
    "aria-describedby": "post-days-hint",
  });
  const daysHint = h("p", { class: "hint", id: "post-days-hint" });
  const until = h("p", { class: "hint", id: "author-until" });
  const drawDays = () => {
    const n = Number(days.value);
    daysHint.textContent = Number.isInteger(n) && n >= 1 && n <= MAX_DAYS
      ? `Gone from every device after ${n} ${n === 1 ? "day" : "days"}, on ${
        new Date(Date.now() + n * DAY).toLocaleDateString()
      }. From 1 to ${MAX_DAYS}.`
      : `From 1 to ${MAX_DAYS} days.`;
  };
  drawDays();
  days.addEventListener("input", drawDays);
  const form = h(
    "form",
    {
      id: "post-form",
      // The page says what is wrong beside the field, in its words, not the browser's bubble.
      novalidate: true,
      onsubmit: onSubmit(async () => {
        const n = Number(days.value);
        if (!Number.isInteger(n) || n < 1 || n > MAX_DAYS) {
          throw new FieldError(
            days,
            `A post lives 1 to ${MAX_DAYS} whole days, not “${days.value}”`,
          );
        }
        if (!text.value.trim()) throw new FieldError(text, "Write something to post");
        let post;
        try {
          post = await publishPost(id, {
            text: text.value,
            title: title.value.trim() || undefined,
            ttlDays: n,
          });
        } catch (error) {
          const message = error instanceof Error ? error.message : "";
          throw /lifetime|days/i.test(message) ? new FieldError(days, error) : error;
        }
        title.value = "";
        text.value = "";
        toast(postedNotice(post.expiresAt, n));
        await refresh();
      }),
    },
    h("h2", {}, "Write a post"),
    until,
    h("label", { for: "post-title" }, "Title (optional)"),
    title,
    h("label", { for: "post-text" }, "Text"),
    text,
    h("label", { for: "post-days" }, "Lifetime in days"),
    days,
    daysHint,
    h(
      "div",
      { class: "actions" },
      h("button", { type: "submit", class: "primary", id: "publish" }, "Post"),
    ),
  );
  const section = h("section", { id: "composer", hidden: true }, form);
  const lapsed = h("p", { class: "hint", id: "author-lapsed", hidden: true });
  return {
    node: h("div", {}, section, lapsed),
    /** @param {Channel} channel */
    update(channel) {
      section.hidden = !channel.canPost;
      until.textContent = channel.authorUntil
        ? `You may post until ${new Date(channel.authorUntil).toLocaleString()}.`
        : "";
      const ranOut = !channel.canPost && channel.authorUntil !== null;
      lapsed.hidden = !ranOut;
      lapsed.textContent = ranOut
        ? `Your author certificate ran out on ${
          new Date(/** @type {string} */ (channel.authorUntil)).toLocaleString()
        }: ask the channel's owner to add you again.`
        : "";
    },
  };
}
