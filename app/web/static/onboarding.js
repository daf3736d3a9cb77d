// @ts-check
/// <reference lib="dom" />
// The pages before the mailbox: creating an identity on the first run (or
// restoring one from a backup), saying what was created and what comes next,
// and asking for Relaymail's address when the page has no session.

import { ApiError } from "./api.js";
import { restoreForm } from "./backup.js";
import { h, onSubmit } from "./dom.js";
import { createIdentity } from "./endpoints.js";
import { FieldError } from "./problems.js";
import { ready, store } from "./store.js";

/** @typedef {import("./router.js").View} View */
/** @typedef {import("../api_types.ts").Restored} Restored */

/** The address of the first view after the identity is made: Contacts, confirming it. */
export const WELCOME = "#/contacts?welcome";
/** The same after a restore. */
const RESTORED = "#/contacts?welcome&restored";

/** What the restore brought back, for the welcome after it. @type {Restored | null} */
let restoredFacts = null;

/**
 * The first run: the user creates an identity, then goes on to Contacts, where
 * {@linkcode welcomed} confirms it.
 * @param {() => void} route shows the view of the address
 * @returns {View}
 */
export function onboardingView(route) {
  const name = h("input", {
    type: "text",
    id: "identity-name",
    required: true,
    maxlength: 100,
    autocomplete: "name",
  });
  const form = h(
    "form",
    {
      onsubmit: onSubmit(async () => {
        const server = await createIdentity(name.value).catch((error) => {
          throw error instanceof ApiError && error.status === 400
            ? new FieldError(name, error)
            : error;
        });
        store.update({ server });
        // The hash change routes (routing here as well would draw the page twice).
        if (location.hash === WELCOME) route();
        else location.hash = WELCOME;
      }),
    },
    h("label", { for: "identity-name" }, "Your name"),
    name,
    h(
      "p",
      { class: "hint" },
      "Only a hint for your contacts: they see you under the name they choose, next to your key's fingerprint.",
    ),
    h(
      "div",
      { class: "actions" },
      h("button", { class: "primary", type: "submit" }, "Create my identity"),
    ),
  );
  return {
    name: "onboarding",
    content: [
      h(
        "section",
        { class: "onboarding" },
        h("h1", {}, "Welcome to Relaymail"),
        h("p", {}, "Mail without servers and without spam. Three steps:"),
        h(
          "ol",
          {},
          h("li", {}, "Create your identity: a key that stays on this device."),
          h("li", {}, "Invite people: only those you invite can ever write to you."),
          h(
            "li",
            {},
            "Write: mail travels through nearby devices, a USB stick, or a gateway when there is Internet.",
          ),
        ),
        form,
      ),
      h(
        "section",
        { class: "onboarding", "aria-labelledby": "restore-title" },
        h("h2", { id: "restore-title" }, "Or restore from a backup"),
        h(
          "p",
          {},
          "Moving to this device? Choose the backup you made in Settings, on the old one, and type its passphrase.",
        ),
        restoreForm((restored) => {
          restoredFacts = restored;
          store.update({ server: restored.state });
          if (location.hash === RESTORED) route();
          else location.hash = RESTORED;
        }),
      ),
    ],
    shown: () => name.focus(),
  };
}

/**
 * `view` (Contacts) after the first run, headed by what was just created, where
 * it lives, and what to do next.
 * @param {View} view
 * @returns {View}
 */
export function welcomed(view) {
  const state = ready();
  const { name, fingerprint } = state.identity;
  const restored = location.hash.includes("restored") ? restoredFacts : null;
  return {
    ...view,
    content: [
      h(
        "section",
        { class: "welcome", id: "welcome", "aria-labelledby": "welcome-title" },
        h(
          "h1",
          { id: "welcome-title" },
          restored ? "Your identity is restored" : "Your identity is ready",
        ),
        restored
          ? h(
            "p",
            { id: "welcome-restored" },
            `From the backup of ${new Date(restored.backupCreatedAt).toLocaleString()}: ` +
              `${restored.contacts} contact(s) and ` +
              (restored.includesMail
                ? `${restored.messages} message(s)`
                : "no mail (it was made without)") +
              ". Your contacts can write to you here, and you to them. Stop using the old copy: whichever wrote to a contact last is the one their next mail reaches.",
          )
          : null,
        h(
          "dl",
          { class: "facts" },
          h("dt", {}, "Name"),
          h("dd", { id: "welcome-name" }, name),
          h("dt", {}, "Fingerprint"),
          h("dd", { class: "mono", id: "welcome-fingerprint" }, fingerprint),
          h("dt", {}, "Kept in"),
          h("dd", { class: "mono", id: "welcome-data" }, state.dataDir),
        ),
        h(
          "p",
          {},
          "Your key exists only in that folder, on this device. Whoever has a copy of it can read your mail and write as you; if it is lost, your contacts must pair with you again. ",
          state.passphraseProtected ? "Its private keys are sealed under your passphrase." : h(
            "span",
            {},
            "You can seal it under a passphrase in ",
            h("a", { href: "#/settings" }, "Settings"),
            ".",
          ),
        ),
        h("h2", {}, "What next"),
        h(
          "ol",
          {},
          h(
            "li",
            {},
            "Invite someone, below: send them the invitation by any means. Only the people you invite can ever write to you.",
          ),
          h("li", {}, "Or paste an invitation someone gave you, further down."),
          h(
            "li",
            {},
            "Once you are paired, write. Mail leaves through nearby devices, a USB stick, or a gateway, whichever comes first.",
          ),
        ),
        h(
          "p",
          { class: "hint" },
          "Others see your fingerprint next to your name: when you pair, compare it aloud, or in a message they know is from you.",
        ),
        h(
          "div",
          { class: "actions" },
          h("a", { class: "button", href: "#/contacts", id: "welcome-done" }, "Got it"),
        ),
      ),
      ...view.content,
    ],
  };
}

/**
 * The page without a session: it must be opened from the address Relaymail printed.
 * @param {boolean} ended whether a session has just ended
 * @returns {View}
 */
export function needsKeyView(ended) {
  return {
    name: "",
    content: [
      h(
        "section",
        { class: "onboarding" },
        h("h1", {}, "Open Relaymail from its address"),
        ended
          ? h(
            "p",
            { id: "session-ended" },
            "Your session has ended: sessions last a while only, and end when the secret changes.",
          )
          : null,
        h(
          "p",
          {},
          "For your safety this page only answers to the address Relaymail printed in the terminal when it started (it carries a secret key). Open that address, or restart Relaymail to see it again.",
        ),
      ),
    ],
  };
}
