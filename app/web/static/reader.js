// @ts-check
/// <reference lib="dom" />
// A conversation: its messages with their attachments and, for mail the user
// sent, the path each copy took. A message whose delivery moves is redrawn alone.
// Each message can be answered, forwarded, archived, marked unread or deleted;
// the shortcuts act on the message that has the focus, else on the one opened.

import { ApiError, download } from "./api.js";
import { attempt, badge, h, syncList } from "./dom.js";
import { attachmentPath, emlPath, readThread } from "./endpoints.js";
import { formatSize, pathSteps, STATE_LABELS } from "./format.js";
import { adjacent, backToList, moveBackLabel, runAction } from "./mailbox.js";
import { reloadState } from "./store.js";

/** @typedef {import("../api_types.ts").DeliveryWithPath} DeliveryWithPath */
/** @typedef {import("../api_types.ts").MessageDetail} MessageDetail */
/** @typedef {import("./router.js").View} View */
/** @typedef {import("./router.js").ViewContext} ViewContext */

/**
 * The conversation of the message `#/thread/<id>` names.
 * @param {ViewContext} context
 * @returns {Promise<View>}
 */
export async function threadView({ id }) {
  let messages = await readThread(id);
  const list = h("div", { class: "thread" });
  /** The message opened: the one the address names while it is there, else the last. */
  let opened = id;
  /**
   * Set once the page goes back to the list: no refresh may read the thread
   * again meanwhile (reading marks it read, undoing "Mark unread").
   */
  let leaving = false;
  const back = () => {
    leaving = true;
    location.hash = backToList();
  };
  /**
   * Runs `action` on a message of the conversation: one that left it (deleted,
   * archived or marked unread) takes the page back to the list when it was the
   * last one, else the conversation is drawn again.
   * @param {"archive" | "delete" | "unread"} action
   * @param {MessageDetail} m
   */
  const act = (action, m) =>
    attempt(async () => {
      if (action === "unread") {
        leaving = true;
        await runAction(action, m, { read: false }).finally(() => (leaving = false));
        return back();
      }
      const changed = await runAction(action, m);
      if (!changed) return;
      if (action === "archive" || messages.length === 1) back();
      else {
        if (opened === m.id) opened = messages.find((x) => x.id !== m.id)?.id ?? opened;
        await refresh();
      }
    }, list.querySelector(`article[data-id="${CSS.escape(m.id)}"] .actions`) ?? undefined);
  const render = (/** @type {MessageDetail} */ m) => messageArticle(m, act);
  const refresh = async () => {
    if (leaving) return;
    try {
      messages = await readThread(opened);
    } catch (error) {
      // Deleted in another tab: back to the list.
      if (error instanceof ApiError && error.status === 404) return back();
      throw error;
    }
    syncList(list, messages, (m) => m.id, render);
  };
  syncList(list, messages, (m) => m.id, render);
  // Reading marked them read: the unread count follows.
  reloadState().catch(() => {});
  const eml = emlPath(id);
  return {
    name: "thread",
    content: [
      h("h1", {}, messages[0]?.subject || "(no subject)"),
      list,
      h(
        "div",
        { class: "actions" },
        h("a", { class: "button", href: eml, onclick: downloadOnClick(eml) }, [
          "Export conversation as .eml",
        ]),
      ),
    ],
    live: ["mail-received", "delivery-changed", "outbox-changed", "message-changed"],
    refresh,
    keys: {
      reply: () => (location.hash = `#/compose?reply=${encodeURIComponent(current().id)}`),
      forward: () => (location.hash = `#/compose?forward=${encodeURIComponent(current().id)}`),
      archive: () => act("archive", current()),
      delete: () => act("delete", current()),
      unread: () => act("unread", current()),
      next: () => go(1),
      previous: () => go(-1),
    },
  };

  /** The message the shortcuts act on: the one with the focus, else the one opened. */
  function current() {
    const focused = document.activeElement?.closest("article.message");
    const at = focused instanceof HTMLElement ? focused.dataset.id : opened;
    return messages.find((m) => m.id === at) ?? messages.find((m) => m.id === opened) ??
      messages[messages.length - 1];
  }

  /**
   * Opens the message `step` rows away in the list the reader came from.
   * @param {1 | -1} step
   */
  function go(step) {
    const to = adjacent(id, step);
    if (to) location.hash = `#/thread/${encodeURIComponent(to)}`;
  }
}

/**
 * A link's click handler that downloads `path` with the session (see api.js);
 * a failure is shown beside the link.
 * @param {string} path
 * @returns {(event: MouseEvent) => void}
 */
function downloadOnClick(path) {
  return (event) => {
    event.preventDefault();
    const link = event.currentTarget instanceof Element ? event.currentTarget : undefined;
    attempt(() => download(path), link);
  };
}

/**
 * A message of the conversation, with what can be done with it.
 * @param {MessageDetail} m
 * @param {(action: "archive" | "delete" | "unread", m: MessageDetail) => void} act
 */
function messageArticle(m, act) {
  const about = `${m.from.name}: ${m.subject || "(no subject)"}`;
  return h(
    "article",
    { class: "message", dataset: { id: m.id }, tabindex: -1, "aria-label": about },
    h(
      "header",
      {},
      h(
        "div",
        {},
        h("strong", {}, m.from.name),
        h("span", { class: "mono" }, ` ${m.from.fingerprint}`),
        h("div", {}, `to ${m.to.map((p) => p.name).join(", ")}`),
      ),
      h("time", { datetime: m.sentAt }, new Date(m.sentAt).toLocaleString()),
    ),
    h("div", { class: "body" }, m.body),
    m.attachments.length
      ? h(
        "div",
        { class: "attachments" },
        m.attachments.map((a, index) => {
          const path = attachmentPath(m.id, index);
          return h("a", { href: path, onclick: downloadOnClick(path) }, [
            a.fileName,
            ` (${formatSize(a.size)})`,
          ]);
        }),
      )
      : null,
    m.folder === "sent" ? h("div", { class: "deliveries" }, m.deliveries.map(deliveryBlock)) : null,
    h(
      "div",
      { class: "actions" },
      h("button", {
        type: "button",
        onclick: () => (location.hash = `#/compose?reply=${encodeURIComponent(m.id)}`),
      }, "Reply"),
      h("button", {
        type: "button",
        onclick: () => (location.hash = `#/compose?forward=${encodeURIComponent(m.id)}`),
      }, "Forward"),
      h(
        "button",
        { type: "button", onclick: () => act("archive", m) },
        m.archived ? moveBackLabel(m) : "Archive",
      ),
      m.from.isMe
        ? null
        : h("button", { type: "button", onclick: () => act("unread", m) }, "Mark unread"),
      h("button", { type: "button", class: "danger", onclick: () => act("delete", m) }, "Delete"),
    ),
  );
}

/**
 * A recipient of a sent message: how far their copy got, and the path it took.
 * @param {DeliveryWithPath} delivery
 */
function deliveryBlock(delivery) {
  const steps = pathSteps(delivery).map((step) =>
    h(
      "li",
      {
        class: step.done ? "done" : null,
        title: step.at ? new Date(step.at).toLocaleString() : null,
      },
      step.label,
    )
  );
  return h(
    "div",
    { class: "delivery", dataset: { recipient: delivery.name, state: delivery.state } },
    h("strong", {}, delivery.name),
    " ",
    badge(STATE_LABELS[delivery.state], delivery.state),
    h("ol", { class: "path", "aria-label": `Path to ${delivery.name}` }, steps),
  );
}
