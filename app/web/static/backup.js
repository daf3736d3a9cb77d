// @ts-check
/// <reference lib="dom" />
// Backup and restore of the identity: the Settings form that downloads a
// backup encrypted under a passphrase, and the first-run form that restores one
// (see app/web/routes/backup.ts).

import { api, download } from "./api.js";
import { h, onSubmit } from "./dom.js";
import { formatSize } from "./format.js";
import { FieldError } from "./problems.js";
import { ready } from "./store.js";

/** @typedef {import("../api_types.ts").BackupReady} BackupReady */
/** @typedef {import("../api_types.ts").BackupRequest} BackupRequest */
/** @typedef {import("../api_types.ts").Restored} Restored */
/** @typedef {import("../api_types.ts").RestoreRequest} RestoreRequest */
/** @typedef {import("../api_types.ts").RestoreUpload} RestoreUpload */

/** The shortest backup passphrase the server takes (app/core/backup_format.ts). */
const MIN_PASSPHRASE = 10;

/**
 * Settings' "Back up identity": a passphrase twice, then the browser downloads
 * the file.
 */
export function backupForm() {
  // Asked when the keys are sealed, as changing the passphrase asks it: they leave under another.
  const current = h("input", {
    type: "password",
    id: "backup-current",
    autocomplete: "current-password",
  });
  // In a box of its own: a label's `display: block` would beat its `hidden`.
  const currentBox = h(
    "div",
    {},
    h(
      "label",
      { for: "backup-current" },
      "This device's passphrase (its keys are sealed under it)",
    ),
    current,
  );
  /** @param {boolean} shown */
  const showCurrent = (shown) => {
    currentBox.hidden = !shown;
  };
  showCurrent(ready().passphraseProtected === true);
  const pass1 = h("input", {
    type: "password",
    id: "backup-passphrase",
    autocomplete: "new-password",
  });
  const pass2 = h("input", {
    type: "password",
    id: "backup-passphrase-again",
    autocomplete: "new-password",
  });
  const withoutMail = h("input", { type: "checkbox", id: "backup-without-mail" });
  const result = h("p", { class: "hint", id: "backup-result", role: "status" });
  const button = h("button", { type: "submit", class: "primary", id: "backup" }, "Download backup");
  return h(
    "form",
    {
      onsubmit: onSubmit(async () => {
        if ([...pass1.value].length < MIN_PASSPHRASE) {
          throw new FieldError(
            pass1,
            `A backup passphrase needs at least ${MIN_PASSPHRASE} characters: the file may be copied anywhere, and only the passphrase protects it.`,
          );
        }
        if (pass1.value !== pass2.value) {
          throw new FieldError(pass2, "The two passphrases differ: type the same one twice.");
        }
        result.textContent = "Preparing the backup…";
        /** @type {BackupReady} */
        const ready = await api("/api/backup", {
          json: /** @satisfies {BackupRequest} */ ({
            passphrase: pass1.value,
            withoutMail: withoutMail.checked,
            ...(current.value ? { current: current.value } : {}),
          }),
        }).catch((error) => {
          result.textContent = "";
          const message = error instanceof Error ? error.message : "";
          if (/current passphrase|too many/i.test(message)) {
            showCurrent(true);
            throw new FieldError(current, error);
          }
          throw /characters/.test(message) ? new FieldError(pass1, error) : error;
        });
        current.value = pass1.value = pass2.value = "";
        await download(ready.download);
        result.textContent = `Downloaded ${ready.fileName} (${formatSize(ready.bytes)}): ` +
          `${ready.contacts} contact(s), ` +
          (ready.includesMail ? `${ready.messages} message(s)` : "no mail") +
          ". Keep the passphrase apart from the file: whoever has both can read your mail and write as you.";
      }),
    },
    h(
      "fieldset",
      {},
      h("legend", {}, "Back up identity"),
      h(
        "p",
        { class: "hint" },
        "One file with your identity, your contacts and your mail, encrypted under a passphrase. " +
          "Restore it on a new device (or a new data folder) from Relaymail's first page; then use only that copy.",
      ),
      currentBox,
      h(
        "label",
        { for: "backup-passphrase" },
        `Backup passphrase (${MIN_PASSPHRASE} characters or more)`,
      ),
      pass1,
      h("label", { for: "backup-passphrase-again" }, "The same, to be sure"),
      pass2,
      h(
        "label",
        { class: "check" },
        withoutMail,
        "Leave mail and attachments out (a small backup of the identity and contacts)",
      ),
      h("div", { class: "actions" }, button),
      result,
    ),
  );
}

/**
 * The first run's "Restore from a backup": the file and its passphrase.
 * @param {(restored: Restored) => void} done called once the identity is restored
 */
export function restoreForm(done) {
  const file = h("input", {
    type: "file",
    id: "restore-file",
    accept: ".rmbackup",
    required: true,
  });
  const passphrase = h("input", {
    type: "password",
    id: "restore-passphrase",
    autocomplete: "current-password",
    required: true,
  });
  const status = h("p", { class: "hint", id: "restore-status", role: "status" });
  /** The upload of the file chosen, kept while the passphrase is retyped. @type {string | null} */
  let upload = null;
  file.addEventListener("change", () => (upload = null));
  return h(
    "form",
    {
      id: "restore-form",
      onsubmit: onSubmit(async () => {
        const chosen = file.files?.[0];
        if (!chosen) throw new FieldError(file, "Choose the backup file (it ends in .rmbackup).");
        if (!passphrase.value) throw new FieldError(passphrase, "Type the backup's passphrase.");
        if (upload === null) {
          status.textContent = `Sending ${chosen.name} (${formatSize(chosen.size)})…`;
          /** @type {RestoreUpload} */
          const sent = await api(`/api/restore/upload?name=${encodeURIComponent(chosen.name)}`, {
            method: "POST",
            body: chosen,
            headers: { "content-type": "application/octet-stream" },
          }).catch((error) => {
            status.textContent = "";
            throw new FieldError(file, error);
          });
          upload = sent.upload;
        }
        status.textContent = "Opening the backup…";
        /** @type {Restored} */
        const restored = await api("/api/restore", {
          json: /** @satisfies {RestoreRequest} */ ({ upload, passphrase: passphrase.value }),
        }).catch((error) => {
          status.textContent = "";
          if (error instanceof Error && /gone/.test(error.message)) upload = null;
          throw error instanceof Error && /passphrase/i.test(error.message)
            ? new FieldError(passphrase, error)
            : error instanceof Error && /gone|backup/i.test(error.message)
            ? new FieldError(file, error)
            : error;
        });
        passphrase.value = "";
        status.textContent = "";
        done(restored);
      }),
    },
    h("label", { for: "restore-file" }, "Backup file"),
    file,
    h("label", { for: "restore-passphrase" }, "Its passphrase"),
    passphrase,
    h(
      "p",
      { class: "hint" },
      "Your identity, contacts and mail come back as they were when the backup was made. Use only one copy from then on: whichever wrote to a contact last is the one their next mail reaches.",
    ),
    h("div", { class: "actions" }, h("button", { type: "submit", id: "restore" }, "Restore")),
    status,
  );
}
