// @ts-check
/// <reference lib="dom" />
// Writing a message, a reply or a forward: recipients among the active contacts,
// subject, body and attachments (a forward's own among them), with how much of
// the size limit they take, kept as a draft as it is typed. A change among
// the contacts updates the recipients only, keeping what was ticked and typed.

import { ApiError } from "./api.js";
import { attempt, h, listOr, onSubmit, toast } from "./dom.js";
import { draftSaver, draftsView, findDraft } from "./drafts.js";
import { deleteDraft, listContacts, readMessage, send } from "./endpoints.js";
import { formatBytes, formatLimit, formatSize, forwardedText, prefixed } from "./format.js";
import { FieldError } from "./problems.js";
import { ready } from "./store.js";

/** @typedef {import("../api_types.ts").Contact} Contact */
/** @typedef {import("../api_types.ts").MessageDetail} MessageDetail */
/** @typedef {import("./router.js").View} View */
/** @typedef {import("./router.js").ViewContext} ViewContext */

/** @returns {Promise<Contact[]>} */
/** Who can be written to: a contact still pairing too (the first mail rides with the request). */
const activeContacts = async () =>
  (await listContacts()).filter((c) => c.state === "active" || c.state === "pairing");

/**
 * The compose form: `?reply=<message id>` answers a message, `?forward=<message
 * id>` forwards one with its attachments, `?draft=<draft id>` resumes a draft,
 * `?to=<contact id>` (repeated) chooses recipients. What is written is kept as a
 * draft as it is typed (drafts.js); the address then names the draft, so that a
 * reload resumes it.
 * @param {ViewContext} context
 * @returns {Promise<View>}
 */
export async function composeView(context) {
  const { params } = context;
  const draftId = params.get("draft");
  const draft = draftId ? await findDraft(draftId) : null;
  if (draftId && !draft) {
    toast("That draft is gone: it was sent or discarded");
    history.replaceState(null, "", "#/drafts");
    return draftsView();
  }
  const [contacts, original, forwarded] = await Promise.all([
    activeContacts(),
    referenced(draft ? draft.replyTo : params.get("reply"), !!draft),
    referenced(draft ? draft.forward : params.get("forward"), !!draft),
  ]);
  const replyTo = original?.id ?? null;
  const forward = forwarded?.id ?? null;
  const chosen = new Set(
    draft
      ? draft.to
      : original
      ? [original.from, ...original.to].filter((p) => !p.isMe).map((p) => p.id)
      : params.getAll("to"),
  );

  const checks = h("div", { class: "recipients" });
  const recipients = listOr({
    frame: h("fieldset", {}, h("legend", {}, replyTo ? "Reply to" : "To"), checks),
    container: checks,
    empty: "No contacts yet: invite someone, or accept their invitation, from Contacts.",
    key: (contact) => contact.id,
    render: (contact) =>
      h(
        "label",
        { class: "check", dataset: { contact: contact.id } },
        h("input", {
          type: "checkbox",
          name: "to",
          value: contact.name,
          checked: chosen.has(contact.id),
        }),
        contact.name,
        h("span", { class: "mono hint" }, contact.fingerprint),
      ),
  });
  recipients.update(contacts);
  /** The contact ids ticked. */
  const ticked = () =>
    [...form.querySelectorAll("input[name=to]:checked")].flatMap((box) =>
      box.closest("label")?.dataset.contact ?? []
    );

  const subject = h("input", {
    type: "text",
    id: "subject",
    name: "subject",
    maxlength: 998,
    value: draft
      ? draft.subject
      : original
      ? prefixed("Re:", original.subject)
      : forwarded
      ? prefixed("Fwd:", forwarded.subject)
      : "",
  });
  const body = h("textarea", { id: "body", name: "body", required: true });
  body.value = draft ? draft.body : forwarded ? forwardedText(forwarded) : "";
  const files = h("input", {
    type: "file",
    id: "attachments",
    name: "attachments",
    multiple: true,
  });
  const carried = carriedAttachments(forwarded, () => {
    size.update();
    saver.touch();
  });
  const sendButton = h("button", {
    class: "primary",
    type: "submit",
    id: "send",
    "aria-describedby": "size",
  }, "Send");
  const size = sizeMeter(ready().limits.mail, sendButton, () => ({
    // A form sends its line breaks as CRLF.
    text: [body.value.replace(/\r?\n/g, "\r\n"), subject.value],
    files: [...files.files ?? [], ...carried.kept()],
    recipients: ticked().length,
  }));
  body.addEventListener("input", size.update);
  subject.addEventListener("input", size.update);

  const status = h("span", {
    class: "hint draft-status",
    id: "draft-status",
    "aria-live": "polite",
  });
  const saver = draftSaver({
    id: draft?.id ?? null,
    status,
    collect: () => ({ to: ticked(), subject: subject.value, body: body.value, replyTo, forward }),
    // The address names the draft, so that a reload resumes it.
    saved: (saved) => {
      if (form.isConnected) {
        history.replaceState(null, "", `#/compose?draft=${encodeURIComponent(saved.id)}`);
      }
    },
  });
  const discard = h("button", {
    type: "button",
    id: "discard",
    onclick: () =>
      attempt(async () => {
        await saver.stop();
        const id = saver.id();
        if (id) await deleteDraft(id);
        toast(id ? "Draft discarded" : "Discarded");
        location.hash = "#/inbox";
      }, discard),
  }, "Discard");

  /**
   * The server's refusal, shown beside the field it is about.
   * @param {unknown} error
   */
  const besideField = (error) => {
    const message = error instanceof Error ? error.message : "";
    if ((error instanceof ApiError && error.status === 413) || /once encoded/.test(message)) {
      return new FieldError(files, error);
    }
    if (/subject/i.test(message)) return new FieldError(subject, error);
    if (/recipient|No contact/i.test(message)) return new FieldError(recipients.node, error);
    return error;
  };

  const form = h(
    "form",
    {
      id: "compose-form",
      onsubmit: onSubmit(async () => {
        const data = new FormData(form);
        if (replyTo) data.set("replyTo", replyTo);
        if (!replyTo && data.getAll("to").length === 0) {
          throw new FieldError(
            recipients.node,
            "Choose at least one recipient: tick a name above.",
          );
        }
        const limit = ready().limits.mail;
        if (size.total() > limit) {
          throw new FieldError(
            files,
            `Too large to send: ${formatBytes(size.total())}, over the limit of ${
              formatLimit(limit)
            }. Leave out an attachment, or send it in a message of its own.`,
          );
        }
        // With none of its attachments kept, there is nothing to carry (absent means all).
        if (forward && carried.indices().length > 0) {
          data.set("forward", forward);
          for (const index of carried.indices()) data.append("forwardAttachment", String(index));
        }
        // No save may land after the send (it would bring the draft back).
        await saver.stop();
        const id = saver.id();
        if (id) data.set("draft", id);
        const sent = await send(data).catch((error) => {
          saver.resume();
          throw besideField(error);
        });
        toast("Queued: it leaves as soon as a path exists");
        location.hash = `#/thread/${sent.id}`;
      }),
    },
    recipients.node,
    h("label", { for: "subject" }, "Subject"),
    subject,
    h("label", { for: "body" }, "Message"),
    body,
    carried.node,
    h("label", { for: "attachments" }, forwarded ? "Add attachments" : "Attachments"),
    files,
    size.nodes,
    h("div", { class: "actions" }, sendButton, discard, status),
  );
  form.addEventListener("change", size.update); // files chosen, a recipient ticked or not
  // Typing, ticking: saved a moment after; leaving a field or the page: saved at once.
  form.addEventListener("input", (event) => event.target !== files && saver.touch());
  form.addEventListener("focusout", () => void saver.flush());
  const hidden = () => document.visibilityState === "hidden" && void saver.flush(true);
  const leaving = () => void saver.flush(true);
  document.addEventListener("visibilitychange", hidden);
  globalThis.addEventListener("pagehide", leaving);
  size.update();
  return {
    name: "compose",
    content: [
      h("h1", {}, draft ? "Draft" : replyTo ? "Reply" : forward ? "Forward" : "New message"),
      form,
    ],
    live: ["contact-changed"],
    refresh: async () => {
      // What is ticked now is what stays ticked, whatever is redrawn.
      chosen.clear();
      for (const id of ticked()) chosen.add(id);
      recipients.update(await activeContacts());
    },
    shown: () => (replyTo || forward ? body : subject).focus(),
    leave: () => {
      document.removeEventListener("visibilitychange", hidden);
      globalThis.removeEventListener("pagehide", leaving);
      void saver.flush();
    },
  };
}

/**
 * The message a reply or forward is written from. A draft's may have been
 * deleted since: the draft then goes on as a message of its own.
 * @param {string | null} id
 * @param {boolean} fromDraft
 * @returns {Promise<MessageDetail | null>}
 */
async function referenced(id, fromDraft) {
  if (!id) return null;
  try {
    return await readMessage(id);
  } catch (error) {
    if (!(fromDraft && error instanceof ApiError && error.status === 404)) throw error;
    toast("The message this draft answers or forwards was deleted: it goes as a new message");
    return null;
  }
}

/**
 * The attachments a forward carries from the original, each with a button that
 * leaves it out (and one that takes it back).
 * @param {MessageDetail | null} original
 * @param {() => void} changed
 */
function carriedAttachments(original, changed) {
  const all = original?.attachments ?? [];
  const kept = new Set(all.map((_, index) => index));
  const list = h("ul", { class: "carried", id: "forwarded-attachments" });
  const draw = () =>
    list.replaceChildren(
      ...all.map((a, index) => {
        const on = kept.has(index);
        return h(
          "li",
          { class: on ? null : "left-out" },
          `${a.fileName} (${formatSize(a.size)})`,
          " ",
          h("button", {
            type: "button",
            "aria-label": `${on ? "Remove" : "Put back"} ${a.fileName}`,
            onclick: () => {
              if (on) kept.delete(index);
              else kept.add(index);
              draw();
              changed();
            },
          }, on ? "Remove" : "Put back"),
        );
      }),
    );
  draw();
  return {
    node: all.length
      ? h(
        "div",
        {},
        h("p", { class: "label", id: "forwarded-label" }, "Forwarded attachments"),
        list,
      )
      : null,
    /** The indices kept, in order. */
    indices: () => [...kept].sort((a, b) => a - b),
    /** The kept ones as the size meter counts files. */
    kept: () =>
      [...kept].map((i) => ({ name: all[i].fileName, type: all[i].mediaType, size: all[i].size })),
  };
}

/**
 * Octets the encoding of a message adds to its text and files (docs/protocol.md §4:
 * DER headers, ids, the date): generous, so that the page never lets through
 * what the server refuses.
 */
const OVERHEAD = { message: 256, recipient: 80, file: 64 };

/**
 * A bar and a line telling how much of `limit` the message takes; `send` is
 * disabled while it is over.
 * @param {number} limit
 * @param {HTMLButtonElement} send
 * @param {() => { text: string[], files: { name: string, type: string, size: number }[], recipients: number }} measure
 */
function sizeMeter(limit, send, measure) {
  const fill = h("div");
  const meter = h("div", { class: "meter", role: "presentation" }, fill);
  const line = h("p", { class: "hint", id: "size", "aria-live": "polite" });
  let total = 0;
  const update = () => {
    const { text, files, recipients } = measure();
    total = OVERHEAD.message + recipients * OVERHEAD.recipient + new Blob(text).size +
      files.reduce((sum, f) => sum + f.size + new Blob([f.name, f.type]).size + OVERHEAD.file, 0);
    const over = total > limit;
    fill.style.width = `${(Math.min(1, total / limit) * 100).toFixed(1)}%`;
    meter.classList.toggle("over", over);
    line.classList.toggle("over", over);
    send.disabled = over;
    // Over the limit, MB rounded alike would hide by how much: bytes say it.
    line.textContent =
      (over
        ? `Too large to send: ${formatBytes(total)}, ${
          formatBytes(total - limit)
        } over the limit of ${formatLimit(limit)}. Leave out an attachment.`
        : `${formatSize(total)} of ${formatLimit(limit)}`) +
      (files.length ? ` · ${files.map((f) => `${f.name} ${formatSize(f.size)}`).join(", ")}` : "");
  };
  return { nodes: [meter, line], update, total: () => total };
}
