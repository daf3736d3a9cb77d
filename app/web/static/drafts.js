// @ts-check
/// <reference lib="dom" />
// Drafts: what is being written is saved as it is typed (a moment after the last
// keystroke, when a field is left, and when the page is hidden or closed), so
// that a reload or a crash loses nothing; and the list of drafts, each opening
// the compose form where it was left. Files picked into a draft are not kept
// (the server keeps text, recipients and what it answers or forwards).

import { ApiError } from "./api.js";
import { attempt, h, liveTable, toast } from "./dom.js";
import { deleteDraft, listContacts, listDrafts, saveDraft } from "./endpoints.js";
import { formatDate } from "./format.js";
import { explain } from "./problems.js";

/** @typedef {import("../api_types.ts").Draft} Draft */
/** @typedef {import("../api_types.ts").DraftRequest} DraftRequest */
/** @typedef {import("./router.js").View} View */

/** How long after the last keystroke a draft is saved, in milliseconds. */
export const SAVE_DELAY = 500;
/** Characters of a draft's JSON small enough to be sent as the page goes (in UTF-16 units). */
const KEEPALIVE_MAX = 20_000;

/**
 * The draft `id`, or null when there is none (sent or discarded meanwhile).
 * @param {string} id
 * @returns {Promise<Draft | null>}
 */
export async function findDraft(id) {
  return (await listDrafts()).find((d) => d.id === id) ?? null;
}

/**
 * Keeps a draft saved while it is written: `touch()` after each change saves it
 * SAVE_DELAY ms after the last one, `flush()` at once. One save runs at a time;
 * a change made meanwhile is saved after it. `status` tells how it stands
 * ("Saving…", "Saved", or why not), quietly.
 * @param {{ id: string | null, collect: () => DraftRequest, status: HTMLElement, saved?: (draft: Draft) => void }} options
 */
export function draftSaver({ id, collect, status, saved = () => {} }) {
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  let dirty = false;
  let stopped = false;
  /** @type {Promise<void>} */
  let running = Promise.resolve();

  /** @param {string} text @param {boolean} [problem] */
  const say = (text, problem = false) => {
    if (status.textContent !== text) status.textContent = text;
    status.classList.toggle("over", problem);
  };

  /** @param {boolean} keepalive */
  const save = async (keepalive) => {
    if (!dirty || stopped) return;
    dirty = false;
    say("Saving…");
    const draft = collect();
    // A request that outlives the page may carry 64 KiB at most (the Fetch standard).
    keepalive = keepalive && JSON.stringify(draft).length < KEEPALIVE_MAX;
    try {
      let answer;
      try {
        answer = await saveDraft(id, draft, keepalive);
      } catch (error) {
        // Sent or discarded in another tab while this one still writes: kept anew.
        if (!(error instanceof ApiError && error.status === 404)) throw error;
        answer = await saveDraft(null, draft, keepalive);
      }
      id = answer.id;
      if (!stopped) saved(answer);
      const at = new Date(answer.updatedAt);
      // Changed while it was saved: not all of it is saved yet.
      say(
        dirty
          ? ""
          : `Draft saved ${at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}`,
      );
    } catch (error) {
      dirty = true;
      say(`Draft not saved: ${explain(error).text}`, true);
    }
  };

  /** Saves now what changed (after the save under way, if any). */
  const flush = (keepalive = false) => {
    clearTimeout(timer);
    running = running.then(() => save(keepalive));
    return running;
  };

  return {
    /** The draft's id once saved. */
    id: () => id,
    /** Notes a change: saved SAVE_DELAY ms after the last one. */
    touch() {
      if (stopped) return;
      dirty = true;
      // Quiet while typing: the line speaks again once it is saved.
      if (!status.classList.contains("over")) say("");
      clearTimeout(timer);
      timer = setTimeout(() => void flush(), SAVE_DELAY);
    },
    flush,
    /** Stops saving (the message was sent, or the draft discarded); resolves once no save runs. */
    async stop() {
      clearTimeout(timer);
      stopped = true;
      await running;
    },
    /** Resumes saving after a failed send. */
    resume() {
      stopped = false;
    },
  };
}

/**
 * The drafts, newest first: each opens the compose form where it was left.
 * @returns {Promise<View>}
 */
export async function draftsView() {
  const table = liveTable({
    id: "drafts-table",
    headers: ["To", "Subject", "Saved", ""],
    empty: "No drafts. What you write is kept here until it is sent.",
    key: (draft) => draft.id,
    row: (draft) => draftRow(draft, names),
  });
  /** @type {Map<string, string>} */
  let names = new Map();
  const refresh = async () => {
    const [drafts, contacts] = await Promise.all([listDrafts(), listContacts()]);
    names = new Map(contacts.map((c) => [c.id, c.name]));
    table.update(drafts);
  };
  await refresh();
  return {
    name: "drafts",
    content: [h("h1", {}, "Drafts"), table.node],
    live: ["drafts-changed", "contact-changed"],
    refresh,
  };
}

/**
 * @param {Draft} draft
 * @param {Map<string, string>} names contact names by id
 */
function draftRow(draft, names) {
  const open = () => (location.hash = `#/compose?draft=${encodeURIComponent(draft.id)}`);
  const subject = draft.subject || "(no subject)";
  return h(
    "tr",
    {
      class: "message-row",
      tabindex: 0,
      dataset: { id: draft.id },
      "aria-label": `Draft: ${subject}`,
      onclick: open,
      onkeydown: (event) => event.key === "Enter" && event.target === event.currentTarget && open(),
    },
    h("td", {}, draft.to.map((id) => names.get(id) ?? "unknown").join(", ") || "(nobody yet)"),
    h("td", {}, subject, h("span", { class: "hint" }, ` · ${draft.body.slice(0, 80)}`)),
    h("td", {}, formatDate(draft.updatedAt)),
    h(
      "td",
      {},
      h("button", {
        type: "button",
        class: "danger",
        "aria-label": `Discard draft: ${subject}`,
        onclick: (event) => {
          event.stopPropagation();
          attempt(async () => {
            await deleteDraft(draft.id);
            toast("Draft discarded");
          });
        },
      }, "Discard"),
    ),
  );
}
