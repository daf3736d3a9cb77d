// @ts-check
/// <reference lib="dom" />
// Keyboard shortcuts, as mail clients have them: single keys, only while the
// focus is not in a text field. A few act anywhere (compose, search, this
// list); the others ask the view shown (router.js, `View.keys`) to act on its
// selected or opened message.

import { h } from "./dom.js";
import { currentView } from "./router.js";
import { store } from "./store.js";

/** @typedef {import("./router.js").ShortcutAction} ShortcutAction */

/** The shortcuts, as the help lists them: keys, what they do, and the view's action. */
const SHORTCUTS =
  /** @type {readonly { keys: readonly string[], label: string, action?: ShortcutAction }[]} */ ([
    { keys: ["c"], label: "Compose a new message" },
    { keys: ["/"], label: "Search mail" },
    { keys: ["j"], label: "Next message", action: "next" },
    { keys: ["k"], label: "Previous message", action: "previous" },
    { keys: ["o", "Enter"], label: "Open the selected message", action: "open" },
    { keys: ["r"], label: "Reply", action: "reply" },
    { keys: ["f"], label: "Forward", action: "forward" },
    { keys: ["e"], label: "Archive (or move back from the archive)", action: "archive" },
    { keys: ["#", "Delete"], label: "Delete (after asking)", action: "delete" },
    { keys: ["u"], label: "Mark unread (in a list: read or unread)", action: "unread" },
    { keys: ["?"], label: "Show these shortcuts" },
  ]);

/** The folders whose view has the search field. */
const SEARCHABLE = ["inbox", "sent", "archive"];

/**
 * Whether a key pressed on `target` belongs to it rather than to the shortcuts:
 * text fields, and (for Enter) whatever Enter already works.
 * @param {Element | null} target
 * @param {string} key
 */
function ownKey(target, key) {
  if (target?.closest("input, textarea, select, [contenteditable=''], [contenteditable=true]")) {
    return true;
  }
  if (document.querySelector("dialog[open]")) return true;
  return key === "Enter" && target !== null &&
    target.closest("a, button, summary, [tabindex]:not(main, article, h1)") !== null;
}

/** Starts answering the shortcuts. */
export function mountShortcuts() {
  document.addEventListener("keydown", (event) => {
    const target = event.target instanceof Element ? event.target : null;
    if (event.ctrlKey || event.metaKey || event.altKey || ownKey(target, event.key)) return;
    if (!store.get().server?.identity) return;
    const key = event.key;
    if (key === "c") {
      location.hash = "#/compose";
    } else if (key === "/") {
      if (!SEARCHABLE.includes(store.get().view)) location.hash = "#/inbox";
      setTimeout(() => document.getElementById("search")?.focus(), 50);
    } else if (key === "?") {
      showHelp();
    } else {
      const action = SHORTCUTS.find((s) => s.keys.includes(key))?.action;
      const run = action && currentView()?.keys?.[action];
      if (!run) return;
      run();
    }
    event.preventDefault();
  });
}

/** The list of shortcuts, in a dialog that Escape or its button closes. */
export function showHelp() {
  if (document.getElementById("shortcuts")) return;
  const close = h("button", { type: "button", onclick: () => dialog.close() }, "Close");
  const dialog = h(
    "dialog",
    { id: "shortcuts", "aria-labelledby": "shortcuts-title" },
    h("h2", { id: "shortcuts-title" }, "Keyboard shortcuts"),
    h("p", { class: "hint" }, "They work whenever the focus is not in a text field."),
    h(
      "dl",
      { class: "shortcuts" },
      SHORTCUTS.flatMap(({ keys, label }) => [
        h("dt", {}, keys.flatMap((k, i) => [i ? " or " : "", h("kbd", {}, k)])),
        h("dd", {}, label),
      ]),
    ),
    h("div", { class: "actions" }, close),
  );
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  close.focus();
}
