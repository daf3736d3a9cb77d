// @ts-check
/// <reference lib="dom" />
// Settings: the mesh, the gateway, the passphrase and the backup, each its own
// form. The gateway's registration and the passphrase part follow the state.

import { backupForm } from "./backup.js";
import { attempt, h, onSubmit, toast } from "./dom.js";
import { listSettings, saveSettings, setPassphrase, useGateway } from "./endpoints.js";
import { FieldError } from "./problems.js";
import { ready, reloadState } from "./store.js";

/** @typedef {import("../api_types.ts").Registration} Registration */
/** @typedef {import("../api_types.ts").Setting} Setting */
/** @typedef {import("../api_types.ts").SettingName} SettingName */
/** @typedef {import("../api_types.ts").SettingValues} SettingValues */
/** @typedef {import("./router.js").View} View */
/** @typedef {import("./router.js").ViewContext} ViewContext */

/**
 * @param {ViewContext} context
 * @returns {Promise<View>}
 */
export async function settingsView({ watch }) {
  const settings = await listSettings();
  /**
   * @template {SettingName} K
   * @param {K} name
   * @returns {SettingValues[K]}
   */
  const value = (name) => {
    const setting = settings.find((s) => s.name === name);
    if (!setting) throw new Error(`The server lists no setting ${name}`);
    return /** @type {SettingValues[K]} */ (setting.value);
  };
  const state = ready();

  const registration = h("div");
  /** @param {Registration | null} r */
  const drawRegistration = (r) =>
    registration.replaceChildren(
      r
        ? h(
          "p",
          { class: "hint" },
          `Registered with ${r.url} until ${new Date(r.expiresAt).toLocaleDateString()}.`,
        )
        : "",
    );
  drawRegistration(state.registration);
  watch((s) => (s.server?.identity ? s.server : state).registration, drawRegistration);

  let passphrase = passphraseForm(state.passphraseProtected);
  watch((s) => (s.server?.identity ? s.server : state).passphraseProtected, (isProtected) => {
    const next = passphraseForm(isProtected);
    passphrase.replaceWith(next);
    passphrase = next;
  });

  return {
    name: "settings",
    content: [
      h("h1", {}, "Settings"),
      meshForm(value("mesh.quota"), value("mesh.mdns"), value("mesh.peers")),
      gatewayForm(value("gateway.url"), registration),
      passphrase,
      backupForm(),
      h("p", { class: "hint" }, `Data directory: ${state.dataDir}`),
    ],
  };
}

/**
 * `error` shown beside the first of `fields` whose pattern its message matches,
 * else as it is (beside the form).
 * @param {unknown} error
 * @param {[RegExp, HTMLElement][]} fields
 */
function besideField(error, fields) {
  const message = error instanceof Error ? error.message : String(error);
  const field = fields.find(([pattern]) => pattern.test(message))?.[1];
  return field ? new FieldError(field, error) : error;
}

/**
 * @param {number} quotaBytes
 * @param {boolean} mdnsOn
 * @param {readonly string[]} peerList
 */
function meshForm(quotaBytes, mdnsOn, peerList) {
  const quota = h("input", {
    type: "text",
    id: "quota",
    value: `${Math.round(quotaBytes / 1024 / 1024)}M`,
  });
  const mdns = h("input", { type: "checkbox", id: "mdns", checked: mdnsOn });
  const peers = h("input", {
    type: "text",
    id: "peers",
    value: peerList.join(", "),
    placeholder: "/ip4/…/tcp/4747/p2p/…",
  });
  return h(
    "form",
    {
      onsubmit: onSubmit(async () => {
        await saveSettings({
          "mesh.quota": quota.value,
          "mesh.mdns": mdns.checked ? "on" : "off",
          "mesh.peers": peers.value,
        }).catch((error) => {
          throw besideField(error, [[/quota/, quota], [/peers|multiaddr/i, peers], [/mdns/, mdns]]);
        });
        toast("Saved; the mesh restarted with them");
        await reloadState();
      }),
    },
    h(
      "fieldset",
      {},
      h("legend", {}, "Mesh"),
      h("label", { class: "check" }, mdns, "Find devices on the local network (mDNS)"),
      h("label", { for: "peers" }, "Devices to connect to (multiaddrs, comma-separated)"),
      peers,
      h("label", { for: "quota" }, "Storage for other people's parcels (e.g. 512M, 2G)"),
      quota,
      h(
        "div",
        { class: "actions" },
        h("button", { type: "submit", class: "primary", id: "save-mesh" }, "Save"),
      ),
    ),
  );
}

/**
 * @param {string} url
 * @param {HTMLElement} registration where the registration is shown
 */
function gatewayForm(url, registration) {
  const gatewayUrl = h("input", {
    type: "text",
    id: "gateway-url",
    value: url,
    placeholder: "http://127.0.0.1:13276",
  });
  return h(
    "form",
    {
      onsubmit: onSubmit(async () => {
        const wanted = gatewayUrl.value.trim();
        try {
          if (wanted === "") {
            await saveSettings({ "gateway.url": "" });
            toast("No gateway any more");
          } else {
            await useGateway(wanted);
            toast("Registered with the gateway");
          }
        } catch (error) {
          // Whatever went wrong, the address is what to look at again.
          throw new FieldError(gatewayUrl, error);
        }
        await reloadState();
      }),
    },
    h(
      "fieldset",
      {},
      h("legend", {}, "Gateway (when the Internet is there)"),
      h(
        "label",
        { for: "gateway-url" },
        "PoWeb address of an Awala gateway (Awala Desktop: http://127.0.0.1:13276)",
      ),
      gatewayUrl,
      registration,
      h(
        "div",
        { class: "actions" },
        h("button", { type: "submit", class: "primary", id: "save-gateway" }, "Register and use"),
      ),
    ),
  );
}

/**
 * The passphrase form: made anew once protection changed.
 * @param {boolean} isProtected
 */
function passphraseForm(isProtected) {
  const current = isProtected
    ? h("input", { type: "password", id: "passphrase-current", autocomplete: "current-password" })
    : null;
  const pass1 = h("input", { type: "password", id: "passphrase", autocomplete: "new-password" });
  const pass2 = h("input", {
    type: "password",
    id: "passphrase-again",
    autocomplete: "new-password",
  });
  /** @param {string | null} passphrase */
  const apply = async (passphrase) => {
    await setPassphrase({ passphrase, current: current?.value }).catch((error) => {
      const fields = /** @type {[RegExp, HTMLElement][]} */ ([[/characters/, pass1]]);
      if (current) fields.unshift([/current passphrase|too many/i, current]);
      throw besideField(error, fields);
    });
    // No field keeps a passphrase once it is used.
    for (const field of [current, pass1, pass2]) if (field) field.value = "";
    toast(passphrase ? "Private keys sealed under the new passphrase" : "Passphrase removed");
    await reloadState();
  };
  const form = h(
    "form",
    {
      onsubmit: onSubmit(() => {
        if (pass1.value !== pass2.value) {
          throw new FieldError(pass2, "The two passphrases differ: type the same one twice.");
        }
        return apply(pass1.value);
      }),
    },
    h(
      "fieldset",
      {},
      h("legend", {}, "Passphrase"),
      h(
        "p",
        { class: "hint" },
        isProtected
          ? "Your private keys are sealed under a passphrase."
          : "Your private keys are stored unsealed on this device.",
      ),
      current ? h("label", { for: "passphrase-current" }, "Current passphrase") : null,
      current,
      h("label", { for: "passphrase" }, "New passphrase (8 characters or more)"),
      pass1,
      h("label", { for: "passphrase-again" }, "Again"),
      pass2,
      h(
        "div",
        { class: "actions" },
        h("button", { type: "submit", class: "primary" }, "Set passphrase"),
        isProtected
          ? h("button", {
            type: "button",
            class: "danger",
            onclick: () => attempt(() => apply(null), form),
          }, "Remove passphrase")
          : null,
      ),
    ),
  );
  return form;
}
