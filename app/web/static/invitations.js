// @ts-check
/// <reference lib="dom" />
// The invitations this device made and nobody used yet: each can be shown again
// (its text to copy and its QR code), copied again, or revoked. And the block that
// shows one invitation to hand over.

import { attempt, confirmDialog, h, liveTable, toast } from "./dom.js";
import { revokeInvitation, showInvitation } from "./endpoints_people.js";

/** @typedef {import("../api_types.ts").CreatedInvitation} CreatedInvitation */
/** @typedef {import("../api_types.ts").Invitation} Invitation */

/**
 * The table of pending invitations.
 * @param {{
 *   show: (invitation: CreatedInvitation) => Promise<void>,
 *   refresh: () => Promise<void>,
 * }} actions what "Show again" does with the invitation, and what follows a revocation
 */
export function pendingInvitations({ show, refresh }) {
  const table = liveTable({
    id: "invitations-table",
    headers: ["For", "Made", "Valid until", ""],
    empty: "No invitation waits to be used.",
    key: (invitation) => invitation.id,
    /** @param {Invitation} invitation */
    row: (invitation) => invitationRow(invitation, show, refresh),
  });
  return {
    /** The table, or the paragraph saying there is none: the one shown now. */
    get node() {
      return table.node;
    },
    /** @param {readonly Invitation[]} invitations every invitation; the pending ones are listed */
    update: (invitations) => table.update(invitations.filter((i) => i.state === "pending")),
  };
}

/**
 * @param {Invitation} invitation
 * @param {(invitation: CreatedInvitation) => Promise<void>} show
 * @param {() => Promise<void>} refresh
 */
function invitationRow(invitation, show, refresh) {
  const short = invitation.id.slice(1, 13);
  const who = invitation.contactName ?? "anyone";
  const again = () => attempt(async () => await show(await showInvitation(invitation.id)));
  const copy = () =>
    attempt(async () => {
      const { text } = await showInvitation(invitation.id);
      await navigator.clipboard.writeText(text);
      toast(`Invitation for ${who} copied`);
    });
  const revoke = async () => {
    const yes = await confirmDialog({
      title: "Revoke this invitation?",
      text: `Nobody will be able to pair with the invitation for ${who} (${short}), ` +
        "even if they have it already. This cannot be undone.",
      confirm: "Revoke",
    });
    if (!yes) return;
    await attempt(async () => {
      await revokeInvitation(invitation.id);
      toast(`Invitation for ${who} revoked`);
      await refresh();
    });
  };
  return h(
    "tr",
    { dataset: { invitation: invitation.id } },
    h("td", {}, h("strong", {}, who), h("div", { class: "hint mono" }, short)),
    h("td", {}, new Date(invitation.createdAt).toLocaleString()),
    h("td", {}, new Date(invitation.expiresAt).toLocaleString()),
    h(
      "td",
      {},
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", class: "show-again", onclick: again }, "Show again"),
        h("button", { type: "button", class: "copy-again", onclick: copy }, "Copy"),
        h("button", { type: "button", class: "danger revoke", onclick: revoke }, "Revoke"),
      ),
    ),
  );
}

/**
 * An invitation to hand over: its text to copy, and its QR code (one for a version 2
 * text; one per part for an older, longer one).
 * @param {CreatedInvitation} created
 */
export function invitationBlock(created) {
  const text = h("textarea", {
    class: "invitation",
    id: "invitation-text",
    readonly: true,
    "aria-label": "Invitation text",
  });
  text.value = created.text;
  const codes = created.qrCodes.length;
  return [
    h(
      "p",
      {},
      `Good for one pairing until ${
        new Date(created.expiresAt).toLocaleString()
      }. Give it to them by any means: a message, a file, in person` +
        (codes === 1 ? ", or let them scan the code with their phone." : "."),
    ),
    text,
    h(
      "div",
      { class: "actions" },
      h("button", {
        type: "button",
        onclick: () => navigator.clipboard.writeText(created.text).then(() => toast("Copied")),
      }, "Copy"),
    ),
    h(
      "div",
      { class: "qr" },
      created.qrCodes.map((src, i) => {
        const image = h("img", {
          src,
          alt: codes > 1 ? `Invitation QR code, part ${i + 1} of ${codes}` : "Invitation QR code",
        });
        if (codes === 1) {
          // One dense code: about 3 pixels a module, so that a phone reads it off the
          // screen. (Set through the DOM: the page's policy allows no style attribute.)
          image.style.width = "min(90vw, 440px)";
          image.style.height = "auto";
        }
        return h(
          "figure",
          {},
          image,
          h("figcaption", {}, codes > 1 ? `Part ${i + 1} of ${codes}` : "Scan"),
        );
      }),
    ),
  ];
}
