// @ts-check
/// <reference lib="dom" />
// One function per call of the JSON API the page makes, each typed with what
// the server takes and answers (app/web/api_types.ts): the one place that names
// the server's paths and types.

import { api } from "./api.js";

/** @typedef {import("../api_types.ts").AcceptRequest} AcceptRequest */
/** @typedef {import("../api_types.ts").ArchiveRequest} ArchiveRequest */
/** @typedef {import("../api_types.ts").Contact} Contact */
/** @typedef {import("../api_types.ts").CreatedInvitation} CreatedInvitation */
/** @typedef {import("../api_types.ts").DeleteAnswer} DeleteAnswer */
/** @typedef {import("../api_types.ts").Direction} Direction */
/** @typedef {import("../api_types.ts").Draft} Draft */
/** @typedef {import("../api_types.ts").DraftDeleted} DraftDeleted */
/** @typedef {import("../api_types.ts").DraftRequest} DraftRequest */
/** @typedef {import("../api_types.ts").ExportReport} ExportReport */
/** @typedef {import("../api_types.ts").GatewayRequest} GatewayRequest */
/** @typedef {import("../api_types.ts").IdentityRequest} IdentityRequest */
/** @typedef {import("../api_types.ts").Folder} Folder */
/** @typedef {import("../api_types.ts").ImportReport} ImportReport */
/** @typedef {import("../api_types.ts").Invitation} Invitation */
/** @typedef {import("../api_types.ts").InvitationRequest} InvitationRequest */
/** @typedef {import("../api_types.ts").MessageDetail} MessageDetail */
/** @typedef {import("../api_types.ts").MessagePage} MessagePage */
/** @typedef {import("../api_types.ts").MessageSummary} MessageSummary */
/** @typedef {import("../api_types.ts").PassphraseAnswer} PassphraseAnswer */
/** @typedef {import("../api_types.ts").PassphraseRequest} PassphraseRequest */
/** @typedef {import("../api_types.ts").ReadRequest} ReadRequest */
/** @typedef {import("../api_types.ts").Refused} Refused */
/** @typedef {import("../api_types.ts").RenameRequest} RenameRequest */
/** @typedef {import("../api_types.ts").Setting} Setting */
/** @typedef {import("../api_types.ts").SettingsRequest} SettingsRequest */
/** @typedef {import("../api_types.ts").SettingsSaved} SettingsSaved */
/** @typedef {import("../api_types.ts").SneakernetRequest} SneakernetRequest */
/** @typedef {import("../api_types.ts").State} State */

const at = encodeURIComponent;

// State

/** @returns {Promise<State>} */
export const getState = () => api("/api/state");

/**
 * @param {string} name
 * @returns {Promise<State>}
 */
export const createIdentity = (name) =>
  api("/api/identity", { json: /** @satisfies {IdentityRequest} */ ({ name }) });

// Mail

/**
 * A page of the messages of `folder`, or of those matching `query` when there
 * is one: the newest, or those after `cursor` (the `next` of the page before).
 * @param {Folder} folder
 * @param {string} query
 * @param {{ cursor?: string | null, limit?: number }} [page]
 * @returns {Promise<MessagePage>}
 */
export const listMessages = (folder, query, { cursor = null, limit } = {}) => {
  const path = `/api/messages?folder=${folder}${query ? `&q=${at(query)}` : ""}` +
    `${cursor ? `&cursor=${at(cursor)}` : ""}${limit ? `&limit=${limit}` : ""}`;
  const early = prefetched;
  prefetched = null;
  if (early?.path === path && performance.now() - early.at < PREFETCH_KEPT_MS) return early.answer;
  return api(path);
};

/** How long a page asked for early may wait to be taken: afterwards it is asked for again. */
const PREFETCH_KEPT_MS = 5_000;
/** @type {{ path: string, at: number, answer: Promise<MessagePage> } | null} */
let prefetched = null;

/**
 * Asks for a page before its view does (the page's first, while the state
 * loads): the next {@linkcode listMessages} for the same page takes the answer,
 * if it comes within a few seconds; any other call drops it.
 * @param {Folder} folder
 * @param {number} limit
 */
export function prefetchMessages(folder, limit) {
  const path = `/api/messages?folder=${folder}&limit=${limit}`;
  const answer = /** @type {Promise<MessagePage>} */ (api(path));
  answer.catch(() => {}); // a failure is the view's to show, when it asks again
  prefetched = { path, at: performance.now(), answer };
}

/**
 * Reads a message (marking it read).
 * @param {string} id
 * @returns {Promise<MessageDetail>}
 */
export const readMessage = (id) => api(`/api/messages/${at(id)}`);

/**
 * Reads the conversation of a message (marking it read).
 * @param {string} id
 * @returns {Promise<MessageDetail[]>}
 */
export const readThread = (id) => api(`/api/threads/${at(id)}`);

/**
 * Sends the compose form's fields (see `MessageDetail` for them).
 * @param {FormData} form
 * @returns {Promise<MessageDetail>}
 */
export const send = (form) => api("/api/send", { method: "POST", body: form });

/**
 * Moves a message to the archive, or back to the inbox or sent.
 * @param {string} id
 * @param {boolean} archived
 * @returns {Promise<MessageSummary>}
 */
export const archiveMessage = (id, archived) =>
  api(`/api/messages/${at(id)}/archive`, {
    json: /** @satisfies {ArchiveRequest} */ ({ archived }),
  });

/**
 * Marks a message read or unread.
 * @param {string} id
 * @param {boolean} read
 * @returns {Promise<MessageSummary>}
 */
export const markRead = (id, read) =>
  api(`/api/messages/${at(id)}/read`, { json: /** @satisfies {ReadRequest} */ ({ read }) });

/**
 * Deletes a message for good, with its attachments and the parcels only it needed.
 * @param {string} id
 * @returns {Promise<DeleteAnswer>}
 */
export const deleteMessage = (id) => api(`/api/messages/${at(id)}`, { method: "DELETE" });

/**
 * The download path of an attachment.
 * @param {string} messageId
 * @param {number} index
 */
export const attachmentPath = (messageId, index) =>
  `/api/messages/${at(messageId)}/attachments/${index}`;

/**
 * The download path of a conversation as `.eml`.
 * @param {string} threadId
 */
export const emlPath = (threadId) => `/api/threads/${at(threadId)}/eml`;

// Drafts

/** @returns {Promise<Draft[]>} newest first */
export const listDrafts = () => api("/api/drafts");

/**
 * Saves a draft: a new one without `id`, else over the one it names. `keepalive`
 * lets the request outlive the page (a save as the tab closes).
 * @param {string | null} id
 * @param {DraftRequest} draft
 * @param {boolean} [keepalive]
 * @returns {Promise<Draft>}
 */
export const saveDraft = (id, draft, keepalive = false) =>
  api(id ? `/api/drafts/${at(id)}` : "/api/drafts", {
    method: id ? "PUT" : "POST",
    json: draft,
    keepalive,
  });

/**
 * @param {string} id
 * @returns {Promise<DraftDeleted>}
 */
export const deleteDraft = (id) => api(`/api/drafts/${at(id)}`, { method: "DELETE" });

// Contacts and pairing

/** @returns {Promise<Contact[]>} */
export const listContacts = () => api("/api/contacts");

/**
 * @param {string} id
 * @param {string} name
 * @returns {Promise<Contact>}
 */
export const renameContact = (id, name) =>
  api(`/api/contacts/${at(id)}/rename`, { json: /** @satisfies {RenameRequest} */ ({ name }) });

/**
 * @param {string} id
 * @param {boolean} blocked
 * @returns {Promise<Contact>}
 */
export const blockContact = (id, blocked) =>
  api(`/api/contacts/${at(id)}/${blocked ? "block" : "unblock"}`, { json: {} });

/**
 * An invitation only the contact `id` can use, to pair again once authorisations lapsed.
 * @param {string} id
 * @returns {Promise<CreatedInvitation>}
 */
export const repairContact = (id) => api(`/api/contacts/${at(id)}/repair`, { json: {} });

/** @returns {Promise<Invitation[]>} */
export const listInvitations = () => api("/api/invitations");

/**
 * @param {string | undefined} name the local name of whoever accepts
 * @returns {Promise<CreatedInvitation>}
 */
export const createInvitation = (name) =>
  api("/api/invitations", { json: /** @satisfies {InvitationRequest} */ ({ name }) });

/**
 * @param {string} text
 * @param {string | undefined} name
 * @returns {Promise<Contact>}
 */
export const acceptInvitation = (text, name) =>
  api("/api/accept", { json: /** @satisfies {AcceptRequest} */ ({ text, name }) });

// What is happening

/** @returns {Promise<Refused>} */
export const listRefused = () => api("/api/refused");

/**
 * @template {Direction} D
 * @param {D} direction
 * @param {string} directory
 * @returns {Promise<D extends "export" ? ExportReport : ImportReport>}
 */
export const sneakernet = (direction, directory) =>
  api(`/api/sneakernet/${direction}`, {
    json: /** @satisfies {SneakernetRequest} */ ({ directory }),
  });

// Settings

/** @returns {Promise<Setting[]>} */
export const listSettings = () => api("/api/settings");

/**
 * @param {SettingsRequest} changes
 * @returns {Promise<SettingsSaved>}
 */
export const saveSettings = (changes) => api("/api/settings", { json: changes });

/**
 * @param {string} url
 * @returns {Promise<State>}
 */
export const useGateway = (url) =>
  api("/api/gateway", { json: /** @satisfies {GatewayRequest} */ ({ url }) });

/**
 * @param {PassphraseRequest} request
 * @returns {Promise<PassphraseAnswer>}
 */
export const setPassphrase = (request) => api("/api/passphrase", { json: request });

/** Drops a page asked for early: the state showed it cannot be what a view will want. */
export function forgetPrefetched() {
  prefetched = null;
}
