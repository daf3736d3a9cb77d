// @ts-check
/// <reference lib="dom" />
// The pages before the mailbox: creating an identity on the first run, and
// asking for Relaymail's address when the page has no session.

import { h, onSubmit } from "./dom.js";
import { createIdentity } from "./endpoints.js";
import { store } from "./store.js";

/** @typedef {import("./router.js").View} View */

/**
 * The first run: the user creates an identity, then goes on to Contacts.
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
        store.update({ server: await createIdentity(name.value) });
        // The hash change routes (routing here as well would draw the page twice).
        if (location.hash === "#/contacts") route();
        else location.hash = "#/contacts";
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
    ],
    shown: () => name.focus(),
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
