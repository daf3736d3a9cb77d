// @ts-check
/// <reference lib="dom" />
// Putting a view in the page: one at a time, the latest asked for winning, with
// what it watches in the store released when it goes.

import { attempt } from "./dom.js";
import { store } from "./store.js";

/** @typedef {import("../api_types.ts").PushEventName} PushEventName */
/** @typedef {import("./store.js").AppState} AppState */

/**
 * A view, as its module makes it.
 * @typedef {object} View
 * @property {string} name the nav entry it belongs to ("" for none)
 * @property {Node[]} content what goes in `<main>`
 * @property {readonly PushEventName[]} [live] events after which it is refreshed
 * @property {() => Promise<void>} [refresh] reads what it shows again, and updates what changed
 * @property {() => void} [shown] called once it is in the page (to focus a field)
 * @property {() => void} [leave] called once another view has taken its place
 * @property {Partial<Record<ShortcutAction, () => void>>} [keys] what the keyboard
 *   shortcuts (shortcuts.js) do in it
 */

/**
 * What a keyboard shortcut asks of the view shown.
 * @typedef {"next" | "previous" | "open" | "reply" | "forward" | "archive" | "delete" | "unread"} ShortcutAction
 */

/**
 * What a view is given.
 * @typedef {object} ViewContext
 * @property {string} id what follows the view's name in the address (`#/thread/<id>`)
 * @property {URLSearchParams} params the query of the address (`#/inbox?q=…`)
 * @property {<S>(select: (state: Readonly<AppState>) => S, fn: (selected: S) => void) => void} watch
 *   `store.watch`, for as long as the view is shown
 */

/** @typedef {(context: ViewContext) => View | Promise<View>} ViewFactory */

const main = /** @type {HTMLElement} */ (document.getElementById("main"));

/** Counts the views asked for: only the latest is shown. */
let asked = 0;
/** @type {View | null} */
let current = null;
/** @type {(() => void)[]} */
let releases = [];
/**
 * Refreshes run one after the other, so that an older answer never lands last.
 * @type {Promise<unknown>}
 */
let refreshing = Promise.resolve();

/**
 * Makes a view and shows it in place of the current one, unless another view
 * was asked for meanwhile. Throws what making it threw (a failed API call).
 * @param {ViewFactory} factory
 * @param {{ id?: string, params?: URLSearchParams }} [where]
 */
export async function show(factory, where = {}) {
  const mine = ++asked;
  /** @type {(() => void)[]} */
  const watching = [];
  /** @type {ViewContext} */
  const context = {
    id: where.id ?? "",
    params: where.params ?? new URLSearchParams(),
    watch: (select, fn) => void watching.push(store.watch(select, fn)),
  };
  /** @type {View} */
  let view;
  try {
    view = await factory(context);
  } catch (error) {
    for (const stop of watching) stop();
    throw error;
  }
  if (mine !== asked) {
    for (const stop of watching) stop();
    return;
  }
  for (const stop of releases) stop();
  releases = watching;
  const previous = current;
  current = view;
  previous?.leave?.();
  const moved = view.name !== store.get().view;
  main.replaceChildren(...view.content);
  store.update({ view: view.name });
  const heading = main.querySelector("h1");
  if (heading && moved) {
    heading.tabIndex = -1;
    heading.focus();
  }
  view.shown?.();
}

/** The view shown, if any. */
export function currentView() {
  return current;
}

/**
 * Refreshes the view shown if it follows any of `events`.
 * @param {readonly PushEventName[]} events
 */
export function refreshView(events) {
  const view = current;
  if (!view?.refresh || !view.live?.some((event) => events.includes(event))) return refreshing;
  refreshing = refreshing.then(() =>
    view === current ? attempt(() => view.refresh?.()) : undefined
  );
  return refreshing;
}
