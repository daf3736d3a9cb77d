// @ts-check
/// <reference lib="dom" />
// Writing a message or a reply: recipients among the active contacts, subject,
// body and attachments, with how much of the size limit they take. A change among
// the contacts updates the recipients only, keeping what was ticked and typed.

import { h, listOr, onSubmit, toast } from "./dom.js";
import { listContacts, readMessage, send } from "./endpoints.js";
import { formatSize } from "./format.js";
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
  const size = sizeMeter(ready().limits.mail, () => ({
    text: [body.value, subject.value],
    files: [...files.files ?? []],
  }));
  files.addEventListener("change", size.update);
  body.addEventListener("input", size.update);
  subject.addEventListener("input", size.update);

  const form = h(
    "form",
    {
      id: "compose-form",
      onsubmit: onSubmit(async () => {
        const data = new FormData(form);
        if (replyTo) data.set("replyTo", replyTo);
        if (!replyTo && data.getAll("to").length === 0) {
          throw new Error("Choose at least one recipient");
        }
        const sent = await send(data);
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
    h(
      "div",
      { class: "actions" },
      h("button", { class: "primary", type: "submit", id: "send" }, "Send"),
    ),
  );
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
 * A bar and a line telling how much of `limit` the message takes.
 * @param {number} limit
 * @param {() => { text: string[], files: File[] }} measure
 */
function sizeMeter(limit, measure) {
  const fill = h("div");
  const meter = h("div", { class: "meter", role: "presentation" }, fill);
  const line = h("p", { class: "hint", id: "size", "aria-live": "polite" });
  const update = () => {
    const { text, files } = measure();
    const total = files.reduce((sum, f) => sum + f.size, 0) + new Blob(text).size;
    fill.style.width = `${(Math.min(1, total / limit) * 100).toFixed(1)}%`;
    meter.classList.toggle("over", total > limit);
    line.textContent =
      `${formatSize(total)} of ${formatSize(limit)}${total > limit ? " — too large to send" : ""}` +
      (files.length ? ` · ${files.map((f) => `${f.name} ${formatSize(f.size)}`).join(", ")}` : "");
  };
  return { nodes: [meter, line], update };
}
