// @ts-check
/// <reference lib="dom" />
// A folder (inbox, sent or archive) as a list of messages, or the messages a
// search found, a page at a time: older pages are fetched by cursor as the list
// is scrolled to its end (or "Load older" is pressed). New mail and changes
// update the rows that changed. One row is selected (j/k, or focus): the
// toolbar above the list and the shortcuts act on it.

import { attempt, badge, confirmDialog, h, liveTable, toast } from "./dom.js";
import { archiveMessage, deleteMessage, listMessages, markRead } from "./endpoints.js";
import { deletionReport, formatDate, STATE_LABELS } from "./format.js";
import { reloadState } from "./store.js";

/** @typedef {import("../api_types.ts").Folder} Folder */
/** @typedef {import("../api_types.ts").MessageSummary} MessageSummary */
/** @typedef {import("./router.js").View} View */
/** @typedef {import("./router.js").ViewContext} ViewContext */

/** Messages fetched a page at a time. */
export const PAGE = 100;
/** Most messages a refresh fetches again: the newest; older pages shown stay as they were. */
const REFRESHED = 500;

/** What each folder is called, and says when empty. */
const FOLDERS = {
  inbox: { title: "Inbox", empty: "No mail yet. Invite someone from Contacts." },
  sent: { title: "Sent", empty: "Nothing sent yet." },
  archive: {
    title: "Archive",
    empty: "Nothing archived. Archive a message (e) to keep it out of the inbox.",
  },
};

/**
 * The list last shown, so that the reader can go on to the next message and back
 * to the list it came from.
 * @type {{ address: string, ids: string[] }}
 */
const lastList = { address: "#/inbox", ids: [] };

/** The address of the list the reader came from (the inbox before any). */
export const backToList = () => lastList.address;

/**
 * The message `step` rows after `id` in the list last shown, if there is one.
 * @param {string} id
 * @param {1 | -1} step
 * @returns {string | undefined}
 */
export function adjacent(id, step) {
  const index = lastList.ids.indexOf(id);
  return index === -1 ? undefined : lastList.ids[index + step];
}

/** Whether `message` is mail the user sent (in sent, or archived from it). */
const mine = (/** @type {MessageSummary} */ message) => message.from.isMe;

/**
 * What moves an archived message back: to Sent or the Inbox, by its direction.
 * @param {MessageSummary} message
 */
export const moveBackLabel = (message) => `Move to ${mine(message) ? "Sent" : "Inbox"}`;

/**
 * The folder view, with the search of `?q=` when there is one.
 * @param {Folder} folder
 * @param {ViewContext} context
 * @returns {Promise<View>}
 */
export async function folderView(folder, { params }) {
  const query = params.get("q") ?? "";
  const { title, empty } = FOLDERS[folder];
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
    headers: [
      sent ? "To" : folder === "archive" ? "With" : "From",
      "Subject",
      sent ? "Delivery" : null,
      "Date",
    ],
    empty: query ? "Nothing matches." : empty,
    key: (message) => message.id,
    row: (message) => messageRow(message, { sent, searching: query !== "", select }),
  });

  /** The messages shown, newest first, and the cursor of the page after them. */
  let shown = /** @type {readonly MessageSummary[]} */ ([]);
  /** @type {string | null} */
  let next = null;
  let loading = false;
  /** The id of the row selected, if any. */
  let selected = "";
  const older = h("button", {
    type: "button",
    id: "load-older",
    onclick: () => void loadOlder(),
  }, "Load older");
  /** Holds the button while there is an older page. */
  const footer = h("p", { class: "actions" });

  const selection = () => shown.find((m) => m.id === selected);
  const archiveButton = h("button", {
    type: "button",
    id: "list-archive",
    onclick: () => act("archive"),
  }, "Archive");
  const readButton = h("button", {
    type: "button",
    id: "list-read",
    onclick: () => act("unread"),
  }, "Mark unread");
  const deleteButton = h("button", {
    type: "button",
    class: "danger",
    id: "list-delete",
    onclick: () => act("delete"),
  }, "Delete");
  const toolbar = h(
    "div",
    { class: "actions toolbar", role: "toolbar", "aria-label": "Selected message" },
    archiveButton,
    readButton,
    deleteButton,
  );

  const draw = () => {
    table.update(shown);
    footer.replaceChildren(...(next === null ? [] : [older]));
    lastList.ids = shown.map((m) => m.id);
    const message = selection();
    for (const row of table.node.querySelectorAll("tr.message-row")) {
      if (row instanceof HTMLElement) {
        row.setAttribute("aria-selected", String(row.dataset.id === selected));
      }
    }
    for (const button of [archiveButton, readButton, deleteButton]) button.disabled = !message;
    archiveButton.textContent = message?.archived ? moveBackLabel(message) : "Archive";
    readButton.textContent = message && !message.read ? "Mark read" : "Mark unread";
    // Mail the user sent is neither read nor unread to them.
    readButton.hidden = folder === "sent" || (message !== undefined && mine(message));
    toolbar.hidden = shown.length === 0;
  };

  /**
   * Selects the message `id` (and gives its row the focus when `focus`).
   * @param {string} id
   * @param {boolean} [focus]
   */
  function select(id, focus = false) {
    selected = id;
    draw();
    if (focus) rowOf(id)?.focus();
  }
  /** @param {string} id */
  const rowOf = (
    id,
  ) => /** @type {HTMLElement | null} */ (table.node.querySelector(
    `tr[data-id="${CSS.escape(id)}"]`,
  ));

  /** @param {1 | -1} step */
  const move = (step) => {
    const index = shown.findIndex((m) => m.id === selected);
    const target = shown[index === -1 ? 0 : Math.max(0, Math.min(shown.length - 1, index + step))];
    if (target) select(target.id, true);
  };

  /**
   * Runs an action on the selected message; a message that left the list takes
   * the selection to the next one.
   * @param {"archive" | "delete" | "unread"} action
   */
  const act = (action) =>
    attempt(async () => {
      const message = selection();
      if (!message || (action === "unread" && mine(message))) return;
      const index = shown.indexOf(message);
      const gone = await runAction(action, message);
      if (!gone) return void await refresh();
      shown = shown.filter((m) => m.id !== message.id);
      const after = shown[Math.min(index, shown.length - 1)];
      selected = after?.id ?? "";
      draw();
      if (after) rowOf(after.id)?.focus();
    }, toolbar);

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
    const focused = document.activeElement instanceof HTMLElement &&
      document.activeElement.closest("tr.message-row") !== null;
    if (!shown.some((m) => m.id === selected)) selected = "";
    draw();
    // A row drawn anew (its message changed) keeps the focus it had.
    if (focused && selected && !rowOf(selected)?.contains(document.activeElement)) {
      rowOf(selected)?.focus();
    }
  };
  await refresh();
  lastList.address = `#/${folder}${query ? `?q=${encodeURIComponent(query)}` : ""}`;
  /** @param {(message: MessageSummary) => void} fn */
  const withSelected = (fn) => () => {
    const message = selection();
    if (message) fn(message);
  };
  return {
    name: folder,
    content: [
      h("h1", {}, query ? `Search: ${query}` : title),
      h("div", { class: "actions" }, search),
      toolbar,
      table.node,
      footer,
    ],
    live: [
      "message-changed",
      ...(sent ? /** @type {const} */ (["delivery-changed", "outbox-changed"]) : []),
      ...(folder === "inbox" || query ? /** @type {const} */ (["mail-received"]) : []),
    ],
    refresh,
    shown: () => observer.observe(older),
    keys: {
      next: () => move(1),
      previous: () => move(-1),
      open: withSelected((m) => (location.hash = `#/thread/${m.id}`)),
      reply: withSelected((m) => (location.hash = `#/compose?reply=${encodeURIComponent(m.id)}`)),
      forward: withSelected((
        m,
      ) => (location.hash = `#/compose?forward=${encodeURIComponent(m.id)}`)),
      archive: () => act("archive"),
      delete: () => act("delete"),
      unread: () => act("unread"),
    },
  };
}

/**
 * Archives (or moves back), deletes after asking, or toggles the read state of
 * `message`; says what happened. Resolves whether the message left the folder
 * it was listed in (false when nothing changed, or only its read state).
 * @param {"archive" | "delete" | "unread"} action
 * @param {MessageSummary} message
 * @param {{ read?: boolean }} [options] the read state to set (default: the other one)
 * @returns {Promise<boolean>}
 */
export async function runAction(action, message, { read = !message.read } = {}) {
  if (action === "unread") {
    await markRead(message.id, read);
    reloadState().catch(() => {});
    return false;
  }
  if (action === "archive") {
    const archived = !message.archived;
    const now = await archiveMessage(message.id, archived);
    toast(archived ? "Archived" : `Moved back to ${now.folder === "sent" ? "Sent" : "Inbox"}`);
    reloadState().catch(() => {});
    return true;
  }
  const confirmed = await confirmDialog({
    title: "Delete this message for good?",
    text:
      `“${message.subject || "(no subject)"}” and its attachments are removed from this device.` +
      (mine(message) ? " A copy still waiting to leave is not sent." : "") +
      " This cannot be undone.",
    confirm: "Delete",
  });
  if (!confirmed) return false;
  const answer = await deleteMessage(message.id);
  const riding = answer.riding?.length
    ? `. Already packed with the pairing request to ${answer.riding.join(", ")}: ` +
      "it will still be delivered"
    : "";
  toast(deletionReport(answer) + riding);
  reloadState().catch(() => {});
  return true;
}

/**
 * A message's row: the people, the subject, how far it got (sent mail), the date.
 * @param {MessageSummary} message
 * @param {{ sent: boolean, searching: boolean, select: (id: string) => void }} options
 */
function messageRow(message, { sent, searching, select }) {
  const open = () => (location.hash = `#/thread/${message.id}`);
  const attachments = message.attachments.length;
  const unread = !message.read && !mine(message);
  const people = message.to.map((p) => p.name).join(", ");
  return h(
    "tr",
    {
      class: `message-row${unread ? " unread" : ""}`,
      tabindex: 0,
      dataset: { id: message.id, read: String(message.read) },
      "aria-label": `${unread ? "Unread, " : ""}${
        mine(message) ? `to ${people}` : `from ${message.from.name}`
      }: ${message.subject || "(no subject)"}`,
      onclick: open,
      onfocus: () => select(message.id),
      onkeydown: (event) => event.key === "Enter" && event.target === event.currentTarget && open(),
    },
    h("td", {}, sent ? people : mine(message) ? `To ${people}` : message.from.name),
    h(
      "td",
      {},
      // A search finds mail in every folder: each result not in the inbox says where it is.
      searching && message.folder !== "inbox"
        ? badge(FOLDERS[message.folder].title, "folder")
        : null,
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
