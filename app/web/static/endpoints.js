// @ts-check
/// <reference lib="dom" />
// One function per call of the JSON API the page makes, each typed with what
// the server takes and answers (app/web/api_types.ts): the one place that names
// the server's paths and types.

import { api } from "./api.js";

/** @typedef {import("../api_types.ts").AcceptRequest} AcceptRequest */
/** @typedef {import("../api_types.ts").Contact} Contact */
/** @typedef {import("../api_types.ts").CreatedInvitation} CreatedInvitation */
/** @typedef {import("../api_types.ts").Direction} Direction */
/** @typedef {import("../api_types.ts").ExportReport} ExportReport */
/** @typedef {import("../api_types.ts").GatewayRequest} GatewayRequest */
/** @typedef {import("../api_types.ts").IdentityRequest} IdentityRequest */
/** @typedef {import("../api_types.ts").Folder} Folder */
/** @typedef {import("../api_types.ts").ImportReport} ImportReport */
/** @typedef {import("../api_types.ts").Invitation} Invitation */
/** @typedef {import("../api_types.ts").InvitationRequest} InvitationRequest */
/** @typedef {import("../api_types.ts").MessageDetail} MessageDetail */
/** @typedef {import("../api_types.ts").MessagePage} MessagePage */
/** @typedef {import("../api_types.ts").PassphraseAnswer} PassphraseAnswer */
/** @typedef {import("../api_types.ts").PassphraseRequest} PassphraseRequest */
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
export const listMessages = (folder, query, { cursor = null, limit } = {}) =>
  api(
    `/api/messages?folder=${folder}${query ? `&q=${at(query)}` : ""}` +
      `${cursor ? `&cursor=${at(cursor)}` : ""}${limit ? `&limit=${limit}` : ""}`,
  );

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
