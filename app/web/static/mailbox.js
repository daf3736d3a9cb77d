// @ts-check
/// <reference lib="dom" />
// A folder (inbox or sent) as a list of messages, or the messages a search found,
// a page at a time: older pages are fetched by cursor as the list is scrolled to
// its end (or "Load older" is pressed). New mail and delivery changes update the
// rows that changed.

import { attempt, badge, h, liveTable } from "./dom.js";
import { listMessages } from "./endpoints.js";
import { formatDate, STATE_LABELS } from "./format.js";

/** @typedef {import("../api_types.ts").Folder} Folder */
/** @typedef {import("../api_types.ts").MessageSummary} MessageSummary */
/** @typedef {import("./router.js").View} View */
/** @typedef {import("./router.js").ViewContext} ViewContext */

/** Messages fetched a page at a time. */
const PAGE = 100;
/** Most messages a refresh fetches again: the newest; older pages shown stay as they were. */
const REFRESHED = 500;

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
    placeholder: "Search subject, body, people (word* for word starts)",
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

  /** The messages shown, newest first, and the cursor of the page after them. */
  let shown = /** @type {readonly MessageSummary[]} */ ([]);
  /** @type {string | null} */
  let next = null;
  let loading = false;
  const older = h("button", {
    type: "button",
    id: "load-older",
    onclick: () => void loadOlder(),
  }, "Load older");
  /** Holds the button while there is an older page. */
  const footer = h("p", { class: "actions" });
  const draw = () => {
    table.update(shown);
    footer.replaceChildren(...(next === null ? [] : [older]));
  };

  /** Fetches the page after those shown, once at a time. */
  const loadOlder = () =>
    attempt(async () => {
      if (loading || next === null) return;
      loading = true;
      older.setAttribute("aria-busy", "true");
      try {
        const page = await listMessages(folder, query, { cursor: next, limit: PAGE });
        const have = new Set(shown.map((m) => m.id));
        shown = [...shown, ...page.messages.filter((m) => !have.has(m.id))];
        next = page.next;
        // Laid out without scroll anchoring: the rows added push the button down,
        // out of view. Anchored, the browser would scroll along to keep it in
        // view, and page after page would load.
        const root = document.documentElement;
        const anchoring = root.style.overflowAnchor;
        root.style.overflowAnchor = "none";
        draw();
        void root.offsetHeight;
        root.style.overflowAnchor = anchoring;
      } finally {
        loading = false;
        older.removeAttribute("aria-busy");
      }
      // Observed anew, it is reported at once: still in view, the next page follows.
      observer.unobserve(older);
      observer.observe(older);
    });

  // Scrolling to the end of the list fetches the next page; once the view has
  // gone, the observer goes too.
  const observer = new IntersectionObserver((entries) => {
    if (!footer.isConnected) return observer.disconnect();
    if (entries.some((entry) => entry.isIntersecting)) void loadOlder();
  });

  /**
   * Fetches the newest messages again, as many as are shown (up to REFRESHED);
   * the older ones shown beyond them stay, after them.
   */
  const refresh = async () => {
    const page = await listMessages(folder, query, {
      limit: Math.min(REFRESHED, Math.max(PAGE, shown.length)),
    });
    const last = page.messages.at(-1);
    const after = last ? shown.findIndex((m) => m.id === last.id) : -1;
    if (after === -1 || after === shown.length - 1) {
      shown = page.messages;
      next = page.next;
    } else {
      const fresh = new Set(page.messages.map((m) => m.id));
      shown = [...page.messages, ...shown.slice(after + 1).filter((m) => !fresh.has(m.id))];
    }
    draw();
  };
  await refresh();
  return {
    name: folder,
    content: [
      h("h1", {}, query ? `Search: ${query}` : sent ? "Sent" : "Inbox"),
      h("div", { class: "actions" }, search),
      table.node,
      footer,
    ],
    live: sent ? ["delivery-changed", "outbox-changed"] : ["mail-received"],
    refresh,
    shown: () => observer.observe(older),
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
