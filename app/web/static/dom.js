// @ts-check
/// <reference lib="dom" />
// Building and updating the page with plain DOM. Text is always set as text
// (text nodes, textContent, attributes), never parsed as HTML: much of it comes
// from parcels other people wrote.

import { explain, FieldError } from "./problems.js";

/**
 * What `h()` takes as attributes: `on…` are listeners, `dataset` fills
 * `data-…`, `true` sets an attribute empty, and null, undefined or false leave it out.
 * @typedef {{
 *   onclick?: (event: MouseEvent) => void,
 *   onkeydown?: (event: KeyboardEvent) => void,
 *   onsubmit?: (event: SubmitEvent) => void,
 *   oninput?: (event: Event) => void,
 *   onchange?: (event: Event) => void,
 *   dataset?: Record<string, string>,
 *   [name: string]: unknown,
 * }} Attributes
 */

/**
 * What `h()` takes as a child: a node or text; null, undefined and false are left out.
 * @typedef {Node | string | number | null | undefined | false} Child
 */

/**
 * Creates an element: `h("a", { href: "#" }, "text", child…)`.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Attributes} [attributes]
 * @param {(Child | readonly Child[])[]} children children, or lists of them
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) {
      element.addEventListener(name.slice(2), /** @type {EventListener} */ (value));
    } else if (name === "dataset") Object.assign(element.dataset, value);
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/**
 * A status badge: `kind` is its class (a delivery or contact state).
 * @param {string} text
 * @param {string} [kind]
 */
export function badge(text, kind = text) {
  return h("span", { class: `badge ${kind}` }, text);
}

/**
 * Shows `message` in the corner: for a few seconds, or, for an error, until it
 * is dismissed (at most a few errors stay).
 * @param {string} message
 * @param {boolean} [error]
 * @param {string | null} [detail] the technical words behind an error, behind a disclosure
 */
export function toast(message, error = false, detail = null) {
  const area = document.getElementById("toast");
  if (!error) {
    const item = h("div", {}, message);
    area?.append(item);
    setTimeout(() => item.remove(), 4000);
    return;
  }
  const item = h(
    "div",
    { class: "error" },
    h("button", {
      type: "button",
      class: "dismiss",
      "aria-label": "Dismiss",
      onclick: () => item.remove(),
    }, "×"),
    h("p", {}, message),
    detail ? disclosure(detail) : null,
  );
  area?.append(item);
  const errors = area?.querySelectorAll(":scope > .error") ?? [];
  for (let i = 0; i < errors.length - 3; i++) errors[i].remove();
}

/**
 * The technical words of a failure, folded away.
 * @param {string} detail
 */
function disclosure(detail) {
  return h("details", {}, h("summary", {}, "Details"), h("p", { class: "mono" }, detail));
}

/**
 * What each problem shown undoes when it goes, by the element it is about.
 * @type {WeakMap<Element, () => void>}
 */
const problems = new WeakMap();
let problemCount = 0;

/**
 * Shows what went wrong beside what it is about, until that is used again: the
 * field of a {@linkcode FieldError}, else `place` (a form: at its end; another
 * element: right after it). A plain sentence, with the technical words behind a
 * disclosure (see problems.js).
 * @param {unknown} error
 * @param {Element} place
 * @returns {HTMLElement} the problem's element
 */
export function showProblem(error, place) {
  const field = error instanceof FieldError ? error.field : null;
  const about = field ?? place;
  clearProblem(about);
  const { text, detail } = explain(error);
  const id = `problem-${++problemCount}`;
  const box = h(
    "div",
    { class: "problem", id, role: "alert" },
    h("p", {}, text),
    detail ? disclosure(detail) : null,
  );
  const described = about.getAttribute("aria-describedby");
  if (field) {
    field.setAttribute("aria-invalid", "true");
    field.setAttribute("aria-describedby", described ? `${described} ${id}` : id);
    // A change to the field is an answer to the problem: it goes.
    field.addEventListener("input", () => clearProblem(field), { once: true });
  }
  if (about instanceof HTMLFormElement) about.append(box);
  else about.after(box);
  problems.set(about, () => {
    box.remove();
    if (!field) return;
    field.removeAttribute("aria-invalid");
    if (described) field.setAttribute("aria-describedby", described);
    else field.removeAttribute("aria-describedby");
  });
  box.scrollIntoView?.({ block: "nearest" });
  return box;
}

/**
 * Takes away the problem shown about `element`, if there is one.
 * @param {Element} element
 */
export function clearProblem(element) {
  problems.get(element)?.();
  problems.delete(element);
}

/**
 * Takes away the problems shown about `form` and its fields.
 * @param {Element} form
 */
export function clearProblems(form) {
  clearProblem(form);
  for (const field of form.querySelectorAll("[aria-invalid]")) clearProblem(field);
}

/**
 * Runs an action from a button or form. A failure is shown beside `place` (or
 * the field it names, see {@linkcode showProblem}) when there is one, else in
 * an error toast; either way in plain words.
 * @template T
 * @param {() => T | Promise<T>} fn
 * @param {Element} [place]
 * @returns {Promise<T | undefined>}
 */
export async function attempt(fn, place) {
  try {
    return await fn();
  } catch (error) {
    if (place?.isConnected) showProblem(error, place);
    else {
      const { text, detail } = explain(error);
      toast(text, true, detail);
    }
    return undefined;
  }
}

/**
 * A form's submit handler: the page stays, and `fn` runs as an {@linkcode attempt}
 * whose failure is shown in the form, beside the field it names. A form already
 * at work ignores another submit.
 * @param {() => Promise<unknown>} fn
 * @returns {(event: SubmitEvent) => void}
 */
export function onSubmit(fn) {
  return (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    if (!(form instanceof HTMLFormElement)) return void attempt(fn);
    if (form.getAttribute("aria-busy") === "true") return;
    clearProblems(form);
    form.setAttribute("aria-busy", "true");
    attempt(fn, form).finally(() => form.removeAttribute("aria-busy"));
  };
}

/** The item each element drawn by {@linkcode syncList} shows: its key and its JSON. */
const drawn = /** @type {WeakMap<Element, { key: string, json: string }>} */ (new WeakMap());

/**
 * Makes the children of `parent` the renderings of `items`, in order. The element
 * of an item that did not change (same key, same JSON) stays as it is, with its
 * focus and what was typed or ticked in it; a changed item is drawn anew.
 * @template T
 * @param {Element} parent
 * @param {readonly T[]} items
 * @param {(item: T) => string} key
 * @param {(item: T) => Element} render
 */
export function syncList(parent, items, key, render) {
  /** @type {Map<string, { element: Element, json: string }>} */
  const before = new Map();
  for (const child of parent.children) {
    const item = drawn.get(child);
    if (item) before.set(item.key, { element: child, json: item.json });
  }
  items.forEach((item, index) => {
    const id = key(item);
    const json = JSON.stringify(item);
    let element = before.get(id)?.element;
    if (!element || before.get(id)?.json !== json) {
      element = render(item);
      drawn.set(element, { key: id, json });
      before.get(id)?.element.remove();
    }
    const there = parent.children[index] ?? null;
    if (there !== element) parent.insertBefore(element, there);
  });
  while (parent.children.length > items.length) parent.lastElementChild?.remove();
}

/**
 * A list of items in `frame` (which holds `container`, where the items go),
 * replaced by a paragraph saying `empty` while there are none. `node` is
 * whichever of the two is shown: put it in the page after the first `update`.
 * @template T
 * @typedef {object} ListOr
 * @property {HTMLElement} node
 * @property {(items: readonly T[], empty?: string) => void} update
 *   shows `items`, or `empty` (when given, else the text it had) if there are none
 */

/**
 * @template T
 * @param {{
 *   frame: HTMLElement,
 *   container: HTMLElement,
 *   empty: string,
 *   key: (item: T) => string,
 *   render: (item: T) => HTMLElement,
 * }} options
 * @returns {ListOr<T>}
 */
export function listOr({ frame, container, empty, key, render }) {
  const placeholder = h("p", { class: "empty" }, empty);
  /** @type {ListOr<T>} */
  const list = {
    node: placeholder,
    update(items, emptyText) {
      syncList(container, items, key, render);
      if (emptyText !== undefined) placeholder.textContent = emptyText;
      const shown = items.length > 0 ? frame : placeholder;
      if (shown !== list.node) {
        list.node.replaceWith(shown);
        list.node = shown;
      }
    },
  };
  return list;
}

/**
 * A table with a row per item under `headers` (null ones left out), updated row
 * by row, or a paragraph saying `empty` while there are no items. The table
 * scrolls sideways in its own frame rather than widen the page.
 * @template T
 * @param {{
 *   id: string,
 *   headers: readonly (string | null)[],
 *   empty: string,
 *   key: (item: T) => string,
 *   row: (item: T) => HTMLTableRowElement,
 * }} options
 * @returns {ListOr<T>}
 */
export function liveTable({ id, headers, empty, key, row }) {
  const body = h("tbody");
  const head = h("tr", {}, headers.map((text) => text === null ? null : h("th", {}, text)));
  const table = h("table", { id }, h("thead", {}, head), body);
  const frame = h("div", { class: "table-frame" }, table);
  return listOr({ frame, container: body, empty, key, render: row });
}

/**
 * Asks a yes-or-no question in a modal dialog: resolves true when `confirm` is
 * pressed, false when it is cancelled (the Cancel button, or Escape). Cancel
 * has the focus, so that a stray Enter changes nothing.
 * @param {{ title: string, text: string, confirm: string }} question
 * @returns {Promise<boolean>}
 */
export function confirmDialog({ title, text, confirm }) {
  return new Promise((resolve) => {
    const cancel = h("button", { type: "button", onclick: () => dialog.close("cancel") }, "Cancel");
    const dialog = h(
      "dialog",
      { class: "confirm", "aria-labelledby": "confirm-title" },
      h("h2", { id: "confirm-title" }, title),
      h("p", {}, text),
      h(
        "div",
        { class: "actions" },
        h("button", {
          type: "button",
          class: "danger",
          id: "confirm-yes",
          onclick: () => dialog.close("yes"),
        }, confirm),
        cancel,
      ),
    );
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(dialog.returnValue === "yes");
    });
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}
