// @ts-check
/// <reference lib="dom" />
// Writing a message or a reply: recipients among the active contacts, subject,
// body and attachments, with how much of the size limit they take. A change among
// the contacts updates the recipients only, keeping what was ticked and typed.

import { ApiError } from "./api.js";
import { h, listOr, onSubmit, toast } from "./dom.js";
import { listContacts, readMessage, send } from "./endpoints.js";
import { formatBytes, formatLimit, formatSize } from "./format.js";
import { FieldError } from "./problems.js";
import { ready } from "./store.js";

/** @typedef {import("../api_types.ts").Contact} Contact */
/** @typedef {import("./router.js").View} View */
/** @typedef {import("./router.js").ViewContext} ViewContext */

/** @returns {Promise<Contact[]>} */
const activeContacts = async () => (await listContacts()).filter((c) => c.state === "active");

/**
 * The compose form: `?reply=<message id>` answers a message, `?to=<contact id>`
 * (repeated) chooses recipients.
 * @param {ViewContext} context
 * @returns {Promise<View>}
 */
export async function composeView({ params }) {
  const replyTo = params.get("reply");
  const [contacts, original] = await Promise.all([
    activeContacts(),
    replyTo ? readMessage(replyTo) : null,
  ]);
  const chosen = new Set(
    original
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

  const subject = h("input", {
    type: "text",
    id: "subject",
    name: "subject",
    maxlength: 998,
    value: original
      ? (/^re:/i.test(original.subject) ? original.subject : `Re: ${original.subject}`)
      : "",
  });
  const body = h("textarea", { id: "body", name: "body", required: true });
  const files = h("input", {
    type: "file",
    id: "attachments",
    name: "attachments",
    multiple: true,
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
    files: [...files.files ?? []],
    recipients: replyTo ? chosen.size : form.querySelectorAll("input[name=to]:checked").length,
  }));
  body.addEventListener("input", size.update);
  subject.addEventListener("input", size.update);

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
        const sent = await send(data).catch((error) => {
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
    h("label", { for: "attachments" }, "Attachments"),
    files,
    size.nodes,
    h("div", { class: "actions" }, sendButton),
  );
  form.addEventListener("change", size.update); // files chosen, a recipient ticked or not
  size.update();
  return {
    name: "compose",
    content: [h("h1", {}, replyTo ? "Reply" : "New message"), form],
    live: ["contact-changed"],
    refresh: async () => {
      // What is ticked now is what stays ticked, whatever is redrawn.
      chosen.clear();
      for (const box of form.querySelectorAll("input[name=to]:checked")) {
        const id = box.closest("label")?.dataset.contact;
        if (id) chosen.add(id);
      }
      recipients.update(await activeContacts());
    },
    shown: () => (replyTo ? body : subject).focus(),
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
 * @param {() => { text: string[], files: File[], recipients: number }} measure
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
