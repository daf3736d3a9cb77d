// @ts-check
/// <reference lib="dom" />
// The page's state, in one place: changed only through `update`, and followed
// through `watch`, which calls back when the part watched has changed. The parts
// of the page that show some state watch it, rather than being redrawn whole.

import { getState } from "./endpoints.js";

/** @typedef {import("../api_types.ts").CreatedInvitation} CreatedInvitation */
/** @typedef {import("../api_types.ts").Progress} Progress */
/** @typedef {import("../api_types.ts").State} State */

/**
 * What the page knows.
 * @typedef {object} AppState
 * @property {State | null} server `GET /api/state`: null before it is read, and once
 *   the session has ended
 * @property {string} view the view shown, by its name in the nav ("" for none)
 * @property {CreatedInvitation | null} invitation the invitation made last in this
 *   page, shown while it waits to be used
 * @property {Progress | null} progress the latest progress of a USB stick export or import
 */

/**
 * A value changed by `update` and followed by `watch`.
 * @template {object} T
 */
export class Store {
  /** @type {T} */
  #value;
  /** @type {Set<() => void>} */
  #listeners = new Set();

  /** @param {T} initial */
  constructor(initial) {
    this.#value = initial;
  }

  /** @returns {Readonly<T>} */
  get() {
    return this.#value;
  }

  /**
   * Changes the fields in `changes`, then calls back those watching a part that changed.
   * @param {Partial<T>} changes
   */
  update(changes) {
    this.#value = { ...this.#value, ...changes };
    for (const listener of [...this.#listeners]) listener();
  }

  /**
   * Calls `fn` with `select(value)` after each update that changed it (compared
   * as JSON: the state is JSON data); returns what stops it.
   * @template S
   * @param {(value: Readonly<T>) => S} select
   * @param {(selected: S) => void} fn
   * @returns {() => void}
   */
  watch(select, fn) {
    let last = JSON.stringify(select(this.#value));
    const listener = () => {
      const selected = select(this.#value);
      const json = JSON.stringify(selected);
      if (json === last) return;
      last = json;
      fn(selected);
    };
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

/** @type {Store<AppState>} */
export const store = new Store(
  /** @type {AppState} */ ({ server: null, view: "", invitation: null, progress: null }),
);

/**
 * Reads the server's state again; what changed in it updates the parts that show it.
 * @returns {Promise<State>}
 */
export async function reloadState() {
  const server = await getState();
  store.update({ server });
  return server;
}

/**
 * The server's state once there is an identity: the views that need one are
 * shown only then (see app.js).
 * @returns {import("../api_types.ts").ReadyState}
 */
export function ready() {
  const server = store.get().server;
  if (!server?.identity) throw new Error("Relaymail has no identity yet");
  return server;
}
