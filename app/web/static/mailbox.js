// @ts-check
/// <reference lib="dom" />
// A folder (inbox or sent) as a list of messages, or the messages a search found.
// New mail and delivery changes update the rows that changed.

import { badge, h, liveTable } from "./dom.js";
import { listMessages } from "./endpoints.js";
import { formatDate, STATE_LABELS } from "./format.js";

/** @typedef {import("../api_types.ts").Folder} Folder */
/** @typedef {import("../api_types.ts").MessageSummary} MessageSummary */
/** @typedef {import("./router.js").View} View */
/** @typedef {import("./router.js").ViewContext} ViewContext */

/**
 * The folder view, with the search of `?q=` when there is one.
 * @param {Folder} folder
 * @param {ViewContext} context
 * @returns {Promise<View>}
 */
export async function folderView(folder, { params }) {
  const query = params.get("q") ?? "";
  const sent = folder === "sent";
  const search = h("input", {
    type: "search",
    id: "search",
    value: query,
    placeholder: "Search subject, body, people",
    "aria-label": "Search mail",
    onkeydown: (event) => {
      if (event.key === "Enter") {
        location.hash = `#/${folder}?q=${encodeURIComponent(search.value)}`;
      }
    },
  });
  const table = liveTable({
    id: `${folder}-table`,
    headers: [sent ? "To" : "From", "Subject", sent ? "Delivery" : null, "Date"],
    empty: query
      ? "Nothing matches."
      : sent
      ? "Nothing sent yet."
      : "No mail yet. Invite someone from Contacts.",
    key: (message) => message.id,
    row: (message) => messageRow(message, sent),
  });
  const refresh = async () => table.update(await listMessages(folder, query));
  await refresh();
  return {
    name: folder,
    content: [
      h("h1", {}, query ? `Search: ${query}` : sent ? "Sent" : "Inbox"),
      h("div", { class: "actions" }, search),
      table.node,
    ],
    live: sent ? ["delivery-changed", "outbox-changed"] : ["mail-received"],
    refresh,
  };
}

/**
 * A message's row: the people, the subject, how far it got (sent mail), the date.
 * @param {MessageSummary} message
 * @param {boolean} sent
 */
function messageRow(message, sent) {
  const open = () => (location.hash = `#/thread/${message.id}`);
  const attachments = message.attachments.length;
  return h(
    "tr",
    {
      class: `message-row${!message.read && message.folder === "inbox" ? " unread" : ""}`,
      tabindex: 0,
      dataset: { id: message.id },
      onclick: open,
      onkeydown: (event) => event.key === "Enter" && open(),
    },
    h("td", {}, sent ? message.to.map((p) => p.name).join(", ") : message.from.name),
    h(
      "td",
      {},
      message.subject || "(no subject)",
      attachments
        ? h("span", { class: "hint" }, ` · ${attachments} attachment${attachments > 1 ? "s" : ""}`)
        : null,
    ),
    sent
      ? h(
        "td",
        { class: "states" },
        message.deliveries.map((d) => badge(STATE_LABELS[d.state], d.state)),
      )
      : null,
    h("td", {}, formatDate(message.sentAt)),
  );
}
