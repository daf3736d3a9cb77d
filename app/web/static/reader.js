// @ts-check
/// <reference lib="dom" />
// A conversation: its messages with their attachments and, for mail the user
// sent, the path each copy took. A message whose delivery moves is redrawn alone.

import { download } from "./api.js";
import { attempt, badge, h, syncList } from "./dom.js";
import { attachmentPath, emlPath, readThread } from "./endpoints.js";
import { formatSize, pathSteps, STATE_LABELS } from "./format.js";
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
  const messages = await readThread(id);
  const list = h("div", { class: "thread" });
  const refresh = async () => {
    syncList(list, await readThread(id), (m) => m.id, messageArticle);
  };
  syncList(list, messages, (m) => m.id, messageArticle);
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
    live: ["mail-received", "delivery-changed", "outbox-changed"],
    refresh,
  };
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

/** @param {MessageDetail} m */
function messageArticle(m) {
  return h(
    "article",
    { class: "message", dataset: { id: m.id } },
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
