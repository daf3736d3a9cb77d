// @ts-check
/// <reference lib="dom" />
// Contacts and pairing: the people the user paired with, inviting someone, and
// accepting an invitation. A pairing that completes updates its row only: what
// is being typed in the forms stays. A contact whose authorisations lapsed after
// a long silence says so, and offers an invitation to pair again that only that
// contact can use. The invitations nobody used yet are listed (invitations.js), to
// show, copy or revoke again.

import { attempt, badge, h, liveTable, onSubmit, toast } from "./dom.js";
import {
  acceptInvitation,
  blockContact,
  createInvitation,
  listContacts,
  listInvitations,
  renameContact,
  repairContact,
} from "./endpoints.js";
import { invitationBlock, pendingInvitations } from "./invitations.js";
import { store } from "./store.js";

/** @typedef {import("../api_types.ts").Contact} Contact */
/** @typedef {import("../api_types.ts").CreatedInvitation} CreatedInvitation */
/** @typedef {import("./router.js").View} View */
/** @typedef {import("./router.js").ViewContext} ViewContext */

/**
 * @param {ViewContext} context
 * @returns {Promise<View>}
 */
export async function contactsView({ watch }) {
  const table = liveTable({
    id: "contacts-table",
    headers: ["Name", "Fingerprint", "State", ""],
    empty:
      "No contacts yet. Only people you invite (or whose invitation you accept) can write to you.",
    key: (contact) => contact.id,
    row: (contact) => contactRow(contact, refresh, showInvitation),
  });
  const invitationOut = h("div", { id: "invitation-out" });
  const invitationsTable = pendingInvitations({
    show: (invitation) => showInvitation(invitation),
    refresh: () => refresh(),
  });
  const pendingHint = h("p", { class: "hint" });
  /**
   * The ids of the invitations not used yet.
   * @type {Set<string>}
   */
  let pending = new Set();
  /**
   * The id of the invitation shown.
   * @type {string | null}
   */
  let shown = null;

  // The invitation just made stays on screen while it waits, whatever else is redrawn.
  /** @param {CreatedInvitation | null} invitation */
  const drawInvitation = (invitation) => {
    const waiting = invitation && pending.has(invitation.id) ? invitation : null;
    if ((waiting?.id ?? null) === shown) return;
    shown = waiting?.id ?? null;
    invitationOut.replaceChildren(...waiting ? invitationBlock(waiting) : []);
  };
  async function refresh() {
    const [contacts, invitations] = await Promise.all([listContacts(), listInvitations()]);
    table.update(contacts);
    invitationsTable.update(invitations);
    pending = new Set(invitations.filter((i) => i.state === "pending").map((i) => i.id));
    pendingHint.textContent = pending.size ? `${pending.size} invitation(s) not used yet.` : "";
    pendingHint.hidden = pending.size === 0;
    drawInvitation(store.get().invitation);
  }
  /** @param {CreatedInvitation} invitation */
  async function showInvitation(invitation) {
    await refresh(); // it is pending now
    store.update({ invitation });
    const text = document.getElementById("invitation-text");
    if (text instanceof HTMLTextAreaElement) text.select();
  }
  await refresh();
  watch((state) => state.invitation, drawInvitation);

  return {
    name: "contacts",
    content: [
      h("h1", {}, "Contacts"),
      table.node,
      h("h2", {}, "Invite someone"),
      inviteForm(showInvitation),
      invitationOut,
      pendingHint,
      h("h2", {}, "Invitations not used yet"),
      invitationsTable.node,
      h("h2", {}, "Accept an invitation"),
      acceptForm(refresh),
    ],
    live: ["contact-changed"],
    refresh,
  };
}

/** What a contact's state badge says. */
const STATE_TEXT = {
  pairing: "waiting for their answer: you can write already",
  active: "active",
  lapsed: "lapsed: pair again",
  blocked: "blocked",
};

/**
 * @param {Contact} contact
 * @param {() => Promise<void>} refresh
 * @param {(invitation: CreatedInvitation) => Promise<void>} showInvitation
 */
function contactRow(contact, refresh, showInvitation) {
  /** @param {boolean} blocked */
  const setBlocked = (blocked) =>
    attempt(async () => {
      await blockContact(contact.id, blocked);
      await refresh();
    });
  const repair = () =>
    attempt(async () => {
      await showInvitation(await repairContact(contact.id));
      toast(`Give this invitation to ${contact.name}: only they can use it`);
    });
  const rename = () => {
    const name = prompt(`New name for ${contact.name}`, contact.name);
    if (!name) return;
    attempt(async () => {
      await renameContact(contact.id, name);
      await refresh();
    });
  };
  return h(
    "tr",
    { dataset: { contact: contact.name } },
    h(
      "td",
      {},
      h("strong", {}, contact.name),
      contact.nameHint && contact.nameHint !== contact.name
        ? h("div", { class: "hint" }, `calls itself “${contact.nameHint}”`)
        : null,
    ),
    h("td", { class: "mono" }, contact.fingerprint),
    h(
      "td",
      {},
      badge(STATE_TEXT[contact.state] ?? contact.state, contact.state),
      contact.state === "lapsed"
        ? h(
          "div",
          { class: "hint" },
          "Your authorisations to write to each other ran out after a long silence. " +
            "Pair again to write: mail you send meanwhile waits.",
        )
        : null,
    ),
    h(
      "td",
      {},
      h(
        "div",
        { class: "actions" },
        // A contact still pairing can be written to: the first mail rides with the
        // pairing request (docs/protocol.md §3.4).
        contact.state === "active" || contact.state === "pairing"
          ? h("button", {
            type: "button",
            onclick: () => (location.hash = `#/compose?to=${encodeURIComponent(contact.id)}`),
          }, "Write")
          : null,
        contact.state === "lapsed"
          ? h("button", { type: "button", class: "repair", onclick: repair }, "Pair again")
          : null,
        h("button", { type: "button", onclick: rename }, "Rename"),
        contact.state === "blocked"
          ? h("button", { type: "button", onclick: () => setBlocked(false) }, "Unblock")
          : h("button", {
            type: "button",
            class: "danger",
            onclick: () =>
              confirm(`Block ${contact.name}? Their parcels will be refused.`) && setBlocked(true),
          }, "Block"),
      ),
    ),
  );
}

/** @param {(invitation: CreatedInvitation) => Promise<void>} showInvitation */
function inviteForm(showInvitation) {
  const name = h("input", { type: "text", id: "invite-name", placeholder: "e.g. Bob" });
  return h(
    "form",
    {
      onsubmit: onSubmit(async () => {
        await showInvitation(await createInvitation(name.value || undefined));
      }),
    },
    h("label", { for: "invite-name" }, "Their name (for you; optional)"),
    h(
      "div",
      { class: "form-row" },
      name,
      h("button", { type: "submit", id: "create-invitation" }, "Create invitation"),
    ),
  );
}

/** @param {() => Promise<void>} refresh */
function acceptForm(refresh) {
  const text = h("textarea", {
    class: "invitation",
    id: "accept-text",
    required: true,
    placeholder: "relaymail-invite:2:…",
  });
  const name = h("input", { type: "text", id: "accept-name", placeholder: "e.g. Alice" });
  const form = h(
    "form",
    {
      onsubmit: onSubmit(async () => {
        const contact = await acceptInvitation(text.value, name.value || undefined);
        toast(`${contact.name} added: you can write at once, mail leaves when they answer`);
        form.reset();
        await refresh();
      }),
    },
    h("label", { for: "accept-text" }, "Invitation you were given"),
    text,
    h("label", { for: "accept-name" }, "Their name (for you; optional)"),
    h(
      "div",
      { class: "form-row" },
      name,
      h("button", { type: "submit", id: "accept-invitation" }, "Accept invitation"),
    ),
  );
  return form;
}
