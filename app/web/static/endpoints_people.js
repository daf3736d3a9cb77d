// @ts-check
/// <reference lib="dom" />
// The calls about the invitations this device made, beyond creating one (endpoints.js):
// their text again, and revoking one.

import { api } from "./api.js";

/** @typedef {import("../api_types.ts").CreatedInvitation} CreatedInvitation */
/** @typedef {import("../api_types.ts").Invitation} Invitation */

const at = encodeURIComponent;

/**
 * A pending invitation's text and QR code again, to copy or show once more.
 * @param {string} id
 * @returns {Promise<CreatedInvitation>}
 */
export const showInvitation = (id) => api(`/api/invitations/${at(id)}`, { method: "GET" });

/**
 * Withdraws a pending invitation: nobody can pair with it any more.
 * @param {string} id
 * @returns {Promise<Invitation>}
 */
export const revokeInvitation = (id) => api(`/api/invitations/${at(id)}/revoke`, { json: {} });
