// @ts-check
/// <reference lib="dom" />
// Broadcast channels (docs/broadcast.md): the channels the user owns, writes to or
// follows, with their unread posts; creating one; following one by its link. A
// channel's own page is channel_page.js. The nav's count of unread posts is kept
// here too.

import { h, liveTable, onSubmit, toast } from "./dom.js";
import { createChannel, followChannel, listChannels } from "./channel_api.js";
import { ApiError } from "./api.js";
import { FieldError } from "./problems.js";

/** @typedef {import("../api_types.ts").Channel} Channel */
/** @typedef {import("../api_types.ts").ChannelVisibility} ChannelVisibility */
/** @typedef {import("./router.js").View} View */
/** @typedef {import("./router.js").ViewContext} ViewContext */

/** What the user is to a channel, in words. */
export const ROLE_TEXT = {
  owner: "you own it",
  author: "you write in it",
  follower: "you follow it",
};

/**
 * What the user is to `channel`, in words.
 * @param {Channel} channel
 */
export function roleText(channel) {
  if (channel.role !== "owner" && !channel.following) return "you no longer follow it";
  return ROLE_TEXT[channel.role] ?? channel.role;
}

/** What a channel's kind means, in words. */
export const VISIBILITY_TEXT = {
  public: "public: anyone with its link can follow and read it",
  private: "private: only the subscribers its owner adds can read it",
};

/**
 * Shows the count of unread posts in every channel in the nav.
 * @param {readonly Channel[]} channels
 */
function drawUnread(channels) {
  const count = document.getElementById("channel-unread");
  const unread = channels.reduce((sum, channel) => sum + channel.unread, 0);
  if (count) count.textContent = unread ? String(unread) : "";
}

/** Reads the channels again for the nav's count (at start, and when a channel changes). */
export async function refreshChannelCount() {
  drawUnread((await listChannels()).channels);
}

/**
 * @param {ViewContext} _context
 * @returns {Promise<View>}
 */
export async function channelsView(_context) {
  const table = liveTable({
    id: "channels-table",
    headers: ["Channel", "Kind", "You", "Unread"],
    empty: "No channels yet. Create one to broadcast to many people at once, " +
      "or follow one by the link its owner gave you.",
    key: (channel) => channel.id,
    row: channelRow,
  });
  async function refresh() {
    const { channels } = await listChannels();
    table.update(channels);
    drawUnread(channels);
  }
  await refresh();
  return {
    name: "channels",
    content: [
      h("h1", {}, "Channels"),
      h(
        "p",
        { class: "hint" },
        "A post is sent once, checked at every hop, and gone from every device when it expires.",
      ),
      table.node,
      h("h2", {}, "Create a channel"),
      createForm(),
      h("h2", {}, "Follow a channel"),
      followForm(),
    ],
    live: ["channel-changed"],
    refresh,
  };
}

/** @param {Channel} channel */
function channelRow(channel) {
  return h(
    "tr",
    { dataset: { channel: channel.id } },
    h(
      "td",
      {},
      h(
        "a",
        { href: `#/channel/${encodeURIComponent(channel.id)}` },
        h("strong", {}, channel.title),
      ),
      // Anyone can give a channel any title: its id tells two of one title apart.
      " ",
      h("span", { class: "mono", title: channel.id }, channel.id.slice(0, 13)),
    ),
    h("td", {}, h("span", { class: `badge ${channel.visibility}` }, channel.visibility)),
    h("td", {}, roleText(channel)),
    h(
      "td",
      { class: "unread" },
      channel.unread ? h("span", { class: "count" }, String(channel.unread)) : "none",
    ),
  );
}

function createForm() {
  const title = h("input", {
    type: "text",
    id: "channel-title",
    required: true,
    maxlength: 200,
    placeholder: "e.g. Village news",
  });
  const visibility = h(
    "select",
    { id: "channel-visibility" },
    h("option", { value: "public" }, `Public: ${VISIBILITY_TEXT.public.split(": ")[1]}`),
    h("option", { value: "private" }, `Private: ${VISIBILITY_TEXT.private.split(": ")[1]}`),
  );
  return h(
    "form",
    {
      id: "create-channel-form",
      onsubmit: onSubmit(async () => {
        if (!title.value.trim()) throw new FieldError(title, "Give the channel a title");
        let channel;
        try {
          channel = await createChannel(
            title.value.trim(),
            /** @type {ChannelVisibility} */ (visibility.value),
          );
        } catch (error) {
          throw new FieldError(title, error);
        }
        toast(`Channel “${channel.title}” created`);
        location.hash = `#/channel/${encodeURIComponent(channel.id)}`;
      }),
    },
    h("label", { for: "channel-title" }, "Title"),
    title,
    h("label", { for: "channel-visibility" }, "Who can read it"),
    visibility,
    h(
      "div",
      { class: "actions" },
      h("button", { type: "submit", class: "primary", id: "create-channel" }, "Create channel"),
    ),
  );
}

/**
 * What a parser says of a link cut short or mangled: problems.js would read these
 * words as an invitation's, so a link gets its own sentence.
 */
const DAMAGED_WORDS =
  /not a DER|damaged|truncated|base32|check digits|does not decode|Invalid (?:DER|length)|forged/i;
const DAMAGED_LINK = "This channel link is damaged or incomplete. Copy it again, all of it: " +
  "it is one long line that starts with RELAYMAIL-CHANNEL:";

/** @param {unknown} error */
const damagedLink = (error) =>
  error instanceof ApiError && error.status === 400 && DAMAGED_WORDS.test(error.message);

function followForm() {
  const link = h("textarea", {
    class: "invitation",
    id: "follow-link",
    required: true,
    placeholder: "RELAYMAIL-CHANNEL:…",
    "aria-describedby": "follow-hint",
  });
  return h(
    "form",
    {
      id: "follow-form",
      onsubmit: onSubmit(async () => {
        if (!link.value.trim()) {
          throw new FieldError(link, "Paste the channel's link: it starts with RELAYMAIL-CHANNEL:");
        }
        let channel;
        try {
          channel = await followChannel(link.value.trim());
        } catch (error) {
          throw new FieldError(link, damagedLink(error) ? DAMAGED_LINK : error);
        }
        toast(`You follow “${channel.title}”: its posts reach you as devices meet`);
        location.hash = `#/channel/${encodeURIComponent(channel.id)}`;
      }),
    },
    h("label", { for: "follow-link" }, "Channel link"),
    link,
    h(
      "p",
      { class: "hint", id: "follow-hint" },
      "Paste the link of a public channel. Following needs no answer from its owner. " +
        "A private channel's owner adds you instead, and its key reaches you by mail.",
    ),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "submit", class: "primary", id: "follow-channel" }, "Follow"),
    ),
  );
}
