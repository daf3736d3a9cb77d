// Relaymail's web app: plain DOM, no build step, nothing loaded from elsewhere.
// Every piece of text that came from a parcel is set with textContent, never as HTML.

import { api, ApiError, download, follow, onSessionEnded, openSession } from "./api.js";

const main = document.getElementById("main");
let state = null; // GET /api/state
let currentView = "";
let refreshCurrent = () => {};

// ---------------------------------------------------------------------------------------------
// Helpers

/** Creates an element: h("a", { href: "#" }, "text", child…). */
function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

function toast(message, error = false) {
  const item = h("div", { class: error ? "error" : "" }, message);
  document.getElementById("toast").append(item);
  setTimeout(() => item.remove(), error ? 8000 : 4000);
}

/** Runs an action from a button or form, reporting failure in a toast. */
async function attempt(fn) {
  try {
    return await fn();
  } catch (error) {
    toast(error.message, true);
    return undefined;
  }
}

function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(2)} MB`;
}

function formatDate(text) {
  if (!text) return "";
  const date = new Date(text);
  const today = new Date();
  return date.toDateString() === today.toDateString()
    ? date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : date.toLocaleDateString([], { year: "numeric", month: "short", day: "numeric" });
}

function shortId(id) {
  return id.length > 16 ? `…${id.slice(-8)}` : id;
}

function show(view, ...content) {
  main.replaceChildren(...content.flat().filter((c) => c !== null && c !== undefined));
  for (const link of document.querySelectorAll("nav [data-view]")) {
    if (link.dataset.view === view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const heading = main.querySelector("h1");
  if (heading && currentView !== view) {
    heading.tabIndex = -1;
    heading.focus();
  }
  currentView = view;
}

/** What a delivery's state says to a person. */
const STATE_LABELS = {
  waiting: "waiting for their answer",
  queued: "queued on this device",
  sent: "on its way",
  delivered: "delivered",
  expired: "expired",
};

/** One step of a parcel's path, in words. */
function stepLabel(step) {
  if (step.binding === "mesh") {
    return step.toRecipient ? "reached their device" : "handed to a nearby peer";
  }
  if (step.binding === "gateway") return "through a gateway";
  if (step.binding === "sneakernet") return "on a USB stick";
  return step.toRecipient ? `${step.binding}: reached their device` : step.binding;
}

function deliveryPath(delivery) {
  const steps = [h("li", { class: "done" }, delivery.state === "waiting" ? "written" : "queued")];
  for (const step of delivery.path ?? []) {
    steps.push(
      h("li", { class: "done", title: new Date(step.at).toLocaleString() }, stepLabel(step)),
    );
  }
  if (delivery.state === "delivered") steps.push(h("li", { class: "done" }, "delivered"));
  else if (delivery.state === "expired") steps.push(h("li", {}, "expired"));
  else if (delivery.state === "waiting") steps.push(h("li", {}, "waiting for their answer"));
  return h("ol", { class: "path", "aria-label": `Path to ${delivery.name}` }, steps);
}

/** A table of `rows` under `headers` (null ones left out), or `empty` when there are no rows. */
function tableOr(id, headers, rows, empty) {
  if (rows.length === 0) return h("p", { class: "empty" }, empty);
  return h(
    "table",
    { id },
    h("thead", {}, h("tr", {}, headers.filter((t) => t !== null).map((t) => h("th", {}, t)))),
    h("tbody", {}, rows),
  );
}

/** A link's click handler that downloads `path` with the session (see api.js). */
function downloadOnClick(path) {
  return (event) => {
    event.preventDefault();
    attempt(() => download(path));
  };
}

function badge(text, kind = text) {
  return h("span", { class: `badge ${kind}` }, text);
}

// ---------------------------------------------------------------------------------------------
// State

async function loadState() {
  state = await api("/api/state");
  renderChrome();
  return state;
}

function renderChrome() {
  const who = document.getElementById("who");
  const nav = document.getElementById("nav");
  if (!state?.identity) {
    who.replaceChildren();
    nav.hidden = true;
    document.getElementById("indicators").replaceChildren();
    return;
  }
  nav.hidden = false;
  who.replaceChildren(
    h("span", {}, state.identity.name),
    h("span", { class: "fp", title: "Your key's fingerprint" }, state.identity.fingerprint),
  );
  document.getElementById("unread").textContent = state.unread ? String(state.unread) : "";
  document.getElementById("peer-count").textContent = state.peers?.length
    ? String(state.peers.length)
    : "";
  document.getElementById("refused-count").textContent = state.refusals
    ? String(state.refusals)
    : "";
  renderIndicators();
}

function renderIndicators() {
  const daemon = state?.daemon;
  const items = [];
  if (daemon) {
    const peers = state.peers?.length ?? 0;
    items.push(
      h(
        "span",
        { class: `pill ${daemon.running ? (peers ? "ok" : "idle") : "bad"}`, id: "mesh-indicator" },
        daemon.running
          ? `Mesh: ${peers} nearby`
          : `Mesh stopped${daemon.error ? `: ${daemon.error}` : ""}`,
      ),
    );
    if (daemon.gateway) {
      const g = daemon.gateway;
      const ok = g.collecting === "connected";
      items.push(
        h("span", {
          class: `pill ${ok ? "ok" : "bad"}`,
          id: "gateway-indicator",
          title: g.lastError ?? "",
        }, `Gateway: ${ok ? "connected" : g.collecting ?? "registering"}`),
      );
    }
  }
  document.getElementById("indicators").replaceChildren(...items);
}

// ---------------------------------------------------------------------------------------------
// Views

function viewNeedsKey(ended = false) {
  state = null;
  renderChrome();
  show(
    "",
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
  );
}

function viewOnboarding() {
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
      onsubmit: (event) => {
        event.preventDefault();
        attempt(async () => {
          await api("/api/identity", { json: { name: name.value } });
          await loadState();
          // The hash change routes (calling route() as well would draw the page twice).
          if (location.hash === "#/contacts") route();
          else location.hash = "#/contacts";
        });
      },
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
  show(
    "onboarding",
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
  );
  name.focus();
}

async function viewFolder(folder) {
  const query = new URLSearchParams(location.hash.split("?")[1] ?? "").get("q") ?? "";
  const search = h("input", {
    type: "search",
    id: "search",
    value: query,
    placeholder: "Search subject, body, people",
    "aria-label": "Search mail",
  });
  search.addEventListener("keydown", (event) => {
    if (event.key === "Enter") location.hash = `#/${folder}?q=${encodeURIComponent(search.value)}`;
  });
  const messages = await api(
    `/api/messages?folder=${folder}${query ? `&q=${encodeURIComponent(query)}` : ""}`,
  );
  const rows = messages.map((m) => {
    const people = folder === "sent" ? m.to.map((p) => p.name).join(", ") : m.from.name;
    return h(
      "tr",
      {
        class: `message-row${!m.read && m.folder === "inbox" ? " unread" : ""}`,
        tabindex: 0,
        dataset: { id: m.id },
        onclick: () => (location.hash = `#/thread/${m.id}`),
        onkeydown: (event) => event.key === "Enter" && (location.hash = `#/thread/${m.id}`),
      },
      h("td", {}, people),
      h(
        "td",
        {},
        m.subject || "(no subject)",
        m.attachments.length
          ? h(
            "span",
            { class: "hint" },
            ` · ${m.attachments.length} attachment${m.attachments.length > 1 ? "s" : ""}`,
          )
          : null,
      ),
      folder === "sent"
        ? h(
          "td",
          { class: "states" },
          m.deliveries.map((d) => badge(STATE_LABELS[d.state], d.state)),
        )
        : null,
      h("td", {}, formatDate(m.sentAt)),
    );
  });
  const title = query ? `Search: ${query}` : folder === "inbox" ? "Inbox" : "Sent";
  show(
    folder,
    h("h1", {}, title),
    h("div", { class: "actions" }, search),
    tableOr(
      `${folder}-table`,
      [folder === "sent" ? "To" : "From", "Subject", folder === "sent" ? "Delivery" : null, "Date"],
      rows,
      query
        ? "Nothing matches."
        : folder === "inbox"
        ? "No mail yet. Invite someone from Contacts."
        : "Nothing sent yet.",
    ),
  );
}

async function viewThread(id) {
  const messages = await api(`/api/threads/${encodeURIComponent(id)}`);
  const subject = messages[0]?.subject || "(no subject)";
  const items = messages.map((m) =>
    h(
      "article",
      { class: "message", dataset: { id: m.id } },
      h(
        "header",
        {},
        h(
          "div",
          {},
          h("strong", {}, m.from.name),
          h("span", { class: "mono" }, ` ${m.from.fingerprint}`),
          h("div", {}, `to ${m.to.map((p) => p.name).join(", ")}`),
        ),
        h("time", { datetime: m.sentAt }, new Date(m.sentAt).toLocaleString()),
      ),
      h("div", { class: "body" }, m.body),
      m.attachments.length
        ? h(
          "div",
          { class: "attachments" },
          m.attachments.map((a, index) => {
            const path = `/api/messages/${encodeURIComponent(m.id)}/attachments/${index}`;
            return h("a", { href: path, onclick: downloadOnClick(path) }, [
              a.fileName,
              ` (${formatSize(a.size)})`,
            ]);
          }),
        )
        : null,
      m.folder === "sent"
        ? h(
          "div",
          { class: "deliveries" },
          m.deliveries.map((d) =>
            h(
              "div",
              { class: "delivery", dataset: { recipient: d.name, state: d.state } },
              h("strong", {}, d.name),
              " ",
              badge(STATE_LABELS[d.state], d.state),
              deliveryPath(d),
            )
          ),
        )
        : null,
      h(
        "div",
        { class: "actions" },
        h("button", {
          type: "button",
          onclick: () => (location.hash = `#/compose?reply=${encodeURIComponent(m.id)}`),
        }, "Reply"),
      ),
    )
  );
  show(
    "thread",
    h("h1", {}, subject),
    items,
    h(
      "div",
      { class: "actions" },
      h("a", {
        class: "button",
        href: `/api/threads/${encodeURIComponent(id)}/eml`,
        onclick: downloadOnClick(`/api/threads/${encodeURIComponent(id)}/eml`),
      }, "Export conversation as .eml"),
    ),
  );
  loadState().catch(() => {});
}

async function viewCompose() {
  const params = new URLSearchParams(location.hash.split("?")[1] ?? "");
  const replyTo = params.get("reply");
  const contacts = (await api("/api/contacts")).filter((c) => c.state === "active");
  const original = replyTo ? await api(`/api/messages/${encodeURIComponent(replyTo)}`) : null;
  const preset = new Set(
    original
      ? [original.from, ...original.to].filter((p) => !p.isMe).map((p) => p.id)
      : params.getAll("to"),
  );
  const checks = contacts.map((c) =>
    h(
      "label",
      { class: "check" },
      h("input", { type: "checkbox", name: "to", value: c.name, checked: preset.has(c.id) }),
      c.name,
      h("span", { class: "mono hint" }, c.fingerprint),
    )
  );
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
  const meter = h("div", { class: "meter", role: "presentation" }, h("div"));
  const sizeText = h("p", { class: "hint", id: "size", "aria-live": "polite" });
  const limit = state.limits.mail;
  const updateSize = () => {
    const total = [...files.files].reduce((sum, f) => sum + f.size, 0) +
      new Blob([body.value, subject.value]).size;
    const share = Math.min(1, total / limit);
    meter.firstChild.style.width = `${(share * 100).toFixed(1)}%`;
    meter.classList.toggle("over", total > limit);
    sizeText.textContent =
      `${formatSize(total)} of ${formatSize(limit)}${total > limit ? " — too large to send" : ""}` +
      ([...files.files].length
        ? ` · ${[...files.files].map((f) => `${f.name} ${formatSize(f.size)}`).join(", ")}`
        : "");
  };
  files.addEventListener("change", updateSize);
  body.addEventListener("input", updateSize);
  const form = h(
    "form",
    {
      id: "compose-form",
      onsubmit: (event) => {
        event.preventDefault();
        attempt(async () => {
          const data = new FormData(form);
          if (replyTo) data.set("replyTo", replyTo);
          if (!replyTo && data.getAll("to").length === 0) {
            throw new Error("Choose at least one recipient");
          }
          const sent = await api("/api/send", { method: "POST", body: data });
          toast("Queued: it leaves as soon as a path exists");
          location.hash = `#/thread/${sent.id}`;
        });
      },
    },
    contacts.length === 0
      ? h(
        "p",
        { class: "empty" },
        "No contacts yet: invite someone, or accept their invitation, from Contacts.",
      )
      : h("fieldset", {}, h("legend", {}, replyTo ? "Reply to" : "To"), checks),
    h("label", { for: "subject" }, "Subject"),
    subject,
    h("label", { for: "body" }, "Message"),
    body,
    h("label", { for: "attachments" }, "Attachments"),
    files,
    meter,
    sizeText,
    h(
      "div",
      { class: "actions" },
      h("button", { class: "primary", type: "submit", id: "send" }, "Send"),
    ),
  );
  show("compose", h("h1", {}, replyTo ? "Reply" : "New message"), form);
  updateSize();
  (replyTo ? body : subject).focus();
}

/** The invitation made last in this page, shown until it is used. */
let lastInvitation = null;

function invitationBlock(created) {
  const text = h("textarea", {
    class: "invitation",
    id: "invitation-text",
    readonly: true,
    "aria-label": "Invitation text",
  });
  text.value = created.text;
  return [
    h(
      "p",
      {},
      `Good for one pairing until ${
        new Date(created.expiresAt).toLocaleString()
      }. Give it to them by any means: a message, a file, in person.`,
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
      created.qrCodes.map((src, i) =>
        h(
          "figure",
          {},
          h("img", { src, alt: `Invitation QR code, part ${i + 1} of ${created.qrCodes.length}` }),
          h(
            "figcaption",
            {},
            created.qrCodes.length > 1 ? `Part ${i + 1} of ${created.qrCodes.length}` : "Scan",
          ),
        )
      ),
    ),
  ];
}

async function viewContacts() {
  const [contacts, invitations] = await Promise.all([
    api("/api/contacts"),
    api("/api/invitations"),
  ]);
  const rows = contacts.map((c) =>
    h(
      "tr",
      { dataset: { contact: c.name } },
      h(
        "td",
        {},
        h("strong", {}, c.name),
        c.nameHint && c.nameHint !== c.name
          ? h("div", { class: "hint" }, `calls itself “${c.nameHint}”`)
          : null,
      ),
      h("td", { class: "mono" }, c.fingerprint),
      h("td", {}, badge(c.state === "pairing" ? "waiting for their answer" : c.state, c.state)),
      h(
        "td",
        {},
        h(
          "div",
          { class: "actions" },
          c.state === "active"
            ? h("button", {
              type: "button",
              onclick: () => (location.hash = `#/compose?to=${encodeURIComponent(c.id)}`),
            }, "Write")
            : null,
          h("button", { type: "button", onclick: () => renameContact(c) }, "Rename"),
          c.state === "blocked"
            ? h("button", {
              type: "button",
              onclick: () =>
                attempt(async () => {
                  await api(`/api/contacts/${encodeURIComponent(c.id)}/unblock`, { json: {} });
                  route();
                }),
            }, "Unblock")
            : h("button", {
              type: "button",
              class: "danger",
              onclick: () =>
                confirm(`Block ${c.name}? Their parcels will be refused.`) && attempt(async () => {
                  await api(`/api/contacts/${encodeURIComponent(c.id)}/block`, { json: {} });
                  route();
                }),
            }, "Block"),
        ),
      ),
    )
  );

  const inviteName = h("input", { type: "text", id: "invite-name", placeholder: "e.g. Bob" });
  const invitationOut = h("div", { id: "invitation-out" });
  // The invitation just made stays on screen while it waits, whatever redraws the page.
  const pendingIds = new Set(invitations.filter((i) => i.state === "pending").map((i) => i.id));
  if (lastInvitation && pendingIds.has(lastInvitation.id)) {
    invitationOut.replaceChildren(...invitationBlock(lastInvitation));
  }
  const invite = h(
    "form",
    {
      onsubmit: (event) => {
        event.preventDefault();
        attempt(async () => {
          lastInvitation = await api("/api/invitations", {
            json: { name: inviteName.value || undefined },
          });
          // A live update may have redrawn the page meanwhile: show it in the page as it is now.
          if (invitationOut.isConnected) {
            invitationOut.replaceChildren(...invitationBlock(lastInvitation));
          } else await refreshCurrent();
          document.getElementById("invitation-text")?.select();
        });
      },
    },
    h("label", { for: "invite-name" }, "Their name (for you; optional)"),
    h(
      "div",
      { class: "form-row" },
      inviteName,
      h("button", { type: "submit", id: "create-invitation" }, "Create invitation"),
    ),
  );

  const acceptText = h("textarea", {
    class: "invitation",
    id: "accept-text",
    required: true,
    placeholder: "relaymail-invite:1:…",
  });
  const acceptName = h("input", { type: "text", id: "accept-name", placeholder: "e.g. Alice" });
  const accept = h(
    "form",
    {
      onsubmit: (event) => {
        event.preventDefault();
        attempt(async () => {
          const contact = await api("/api/accept", {
            json: { text: acceptText.value, name: acceptName.value || undefined },
          });
          toast(`${contact.name} added: you can write at once, mail leaves when they answer`);
          route();
        });
      },
    },
    h("label", { for: "accept-text" }, "Invitation you were given"),
    acceptText,
    h("label", { for: "accept-name" }, "Their name (for you; optional)"),
    h(
      "div",
      { class: "form-row" },
      acceptName,
      h("button", { type: "submit", id: "accept-invitation" }, "Accept invitation"),
    ),
  );

  const pending = invitations.filter((i) => i.state === "pending");
  show(
    "contacts",
    h("h1", {}, "Contacts"),
    tableOr(
      "contacts-table",
      ["Name", "Fingerprint", "State", ""],
      rows,
      "No contacts yet. Only people you invite (or whose invitation you accept) can write to you.",
    ),
    h("h2", {}, "Invite someone"),
    invite,
    invitationOut,
    pending.length
      ? h("p", { class: "hint" }, `${pending.length} invitation(s) not used yet.`)
      : null,
    h("h2", {}, "Accept an invitation"),
    accept,
  );
}

async function renameContact(contact) {
  const name = prompt(`New name for ${contact.name}`, contact.name);
  if (!name) return;
  await attempt(async () => {
    await api(`/api/contacts/${encodeURIComponent(contact.id)}/rename`, { json: { name } });
    route();
  });
}

async function viewNearby() {
  await loadState();
  const { peers, daemon } = state;
  const rows = peers.map((p) =>
    h(
      "tr",
      { dataset: { peer: p.id } },
      h("td", { class: "mono", title: p.id }, shortId(p.id)),
      h(
        "td",
        {},
        p.endpoints.length
          ? p.endpoints.map((e) =>
            e.name ? badge(e.name, "sent") : h("span", { class: "mono hint" }, `${shortId(e.id)} `)
          )
          : h("span", { class: "hint" }, "a relay"),
      ),
      h("td", { class: "mono" }, p.addresses.join(" ")),
    )
  );
  const gateway = daemon?.gateway;
  show(
    "nearby",
    h("h1", {}, "Nearby"),
    h(
      "p",
      { class: "hint" },
      "Devices running Relaymail that your mesh is connected to now. They carry parcels for each other, end-to-end encrypted: a relay can neither read nor forge them.",
    ),
    tableOr(
      "peers-table",
      ["Peer", "Hosts", "Addresses"],
      rows,
      daemon?.running
        ? "Nobody nearby right now. Mail waits, and leaves when someone appears."
        : "The mesh is not running.",
    ),
    h("h2", {}, "This device"),
    h("p", { class: "mono" }, daemon?.peerId ?? "—"),
    h("p", { class: "mono hint" }, (daemon?.addresses ?? []).join("  ")),
    h("p", {}, `Carrying ${daemon?.parcelsCarried ?? 0} parcel(s) for others.`),
    h("h2", {}, "Gateway"),
    gateway
      ? h(
        "p",
        { id: "gateway-status" },
        `${gateway.url}: ${gateway.collecting}`,
        gateway.lastError ? h("span", { class: "hint" }, ` (${gateway.lastError})`) : null,
        ` · ${gateway.delivered ?? 0} delivered, ${gateway.collected ?? 0} collected`,
      )
      : h(
        "p",
        { class: "hint" },
        "No gateway. Set one in Settings to reach people when the Internet is there.",
      ),
  );
}

async function viewRefused() {
  // A second copy of a parcel already received is normal when mail travels several
  // ways at once: counted, not listed among the refusals.
  const { refusals, copies } = await api("/api/refused");
  const rows = refusals.map((r) =>
    h(
      "tr",
      { dataset: { code: r.code } },
      h("td", {}, new Date(r.lastAt ?? r.at).toLocaleString()),
      h("td", {}, badge(r.code, "blocked")),
      h("td", {}, r.reason),
      h("td", { class: "mono" }, r.senderId ? shortId(r.senderId) : "—"),
      h("td", {}, r.via, r.hop ? h("div", { class: "mono hint" }, shortId(r.hop)) : null),
      h("td", {}, String(r.count)),
    )
  );
  show(
    "refused",
    h("h1", {}, "Refused parcels"),
    h(
      "p",
      { class: "hint" },
      "Parcels that were not let in, and why: strangers without your authorisation, forgeries, expired or damaged parcels.",
    ),
    tableOr(
      "refused-table",
      ["When", "Why", "Details", "Sender", "Came by", "Times"],
      rows,
      "Nothing refused.",
    ),
    copies
      ? h(
        "p",
        { class: "hint", id: "copies" },
        `Also ${copies} extra cop${
          copies === 1 ? "y" : "ies"
        } of parcels already received (another path, or a replay) dropped.`,
      )
      : null,
  );
}

function viewSneakernet() {
  const directory = h("input", {
    type: "text",
    id: "stick-dir",
    placeholder: "/media/usb",
    required: true,
  });
  const bar = h("progress", { id: "stick-progress", max: 1, value: 0, "aria-label": "Progress" });
  const report = h("div", { id: "stick-report", "aria-live": "polite" });
  const run = (direction) =>
    attempt(async () => {
      bar.value = 0;
      report.textContent = direction === "export" ? "Writing…" : "Reading…";
      const result = await api(`/api/sneakernet/${direction}`, {
        json: { directory: directory.value },
      });
      report.textContent = direction === "export"
        ? `Wrote ${result.written} parcel(s) (${
          formatSize(result.bytes)
        }); ${result.alreadyThere} already there.`
        : `Took ${result.accepted} new parcel(s); ${result.duplicates} already had; ${result.skipped} for others left on the stick; ${result.refused.length} refused; ${result.unreadable.length} unreadable.`;
      bar.value = bar.max;
    });
  progressListener = (p) => {
    bar.max = Math.max(1, p.total);
    bar.value = p.done;
  };
  show(
    "sneakernet",
    h("h1", {}, "USB stick"),
    h(
      "p",
      { class: "hint" },
      "Carry parcels on a stick: export here, import on the other device. Parcels stay encrypted, and nobody you did not authorise can slip one in.",
    ),
    h("label", { for: "stick-dir" }, "Directory of the stick"),
    directory,
    h(
      "div",
      { class: "actions" },
      h(
        "button",
        { type: "button", id: "stick-export", onclick: () => run("export") },
        "Export parcels to the stick",
      ),
      h(
        "button",
        { type: "button", id: "stick-import", onclick: () => run("import") },
        "Import parcels from the stick",
      ),
    ),
    bar,
    report,
  );
}
let progressListener = () => {};

async function viewSettings() {
  const settings = Object.fromEntries((await api("/api/settings")).map((s) => [s.name, s]));
  const gatewayUrl = h("input", {
    type: "text",
    id: "gateway-url",
    value: settings["gateway.url"].value,
    placeholder: "http://127.0.0.1:13276",
  });
  const quota = h("input", {
    type: "text",
    id: "quota",
    value: `${Math.round(settings["mesh.quota"].value / 1024 / 1024)}M`,
  });
  const mdns = h("input", { type: "checkbox", id: "mdns", checked: settings["mesh.mdns"].value });
  const peers = h("input", {
    type: "text",
    id: "peers",
    value: settings["mesh.peers"].value.join(", "),
    placeholder: "/ip4/…/tcp/4747/p2p/…",
  });
  const current = state.passphraseProtected
    ? h("input", { type: "password", id: "passphrase-current", autocomplete: "current-password" })
    : null;
  const pass1 = h("input", { type: "password", id: "passphrase", autocomplete: "new-password" });
  const pass2 = h("input", {
    type: "password",
    id: "passphrase-again",
    autocomplete: "new-password",
  });
  show(
    "settings",
    h("h1", {}, "Settings"),
    h(
      "form",
      {
        onsubmit: (event) => {
          event.preventDefault();
          attempt(async () => {
            await api("/api/settings", {
              json: {
                "mesh.quota": quota.value,
                "mesh.mdns": mdns.checked ? "on" : "off",
                "mesh.peers": peers.value,
              },
            });
            toast("Saved; the mesh restarted with them");
            await loadState();
          });
        },
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
    ),
    h(
      "form",
      {
        onsubmit: (event) => {
          event.preventDefault();
          attempt(async () => {
            if (gatewayUrl.value.trim() === "") {
              await api("/api/settings", { json: { "gateway.url": "" } });
              toast("No gateway any more");
            } else {
              await api("/api/gateway", { json: { url: gatewayUrl.value.trim() } });
              toast("Registered with the gateway");
            }
            await loadState();
          });
        },
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
        state.registration
          ? h(
            "p",
            { class: "hint" },
            `Registered with ${state.registration.url} until ${
              new Date(state.registration.expiresAt).toLocaleDateString()
            }.`,
          )
          : null,
        h(
          "div",
          { class: "actions" },
          h("button", { type: "submit", class: "primary", id: "save-gateway" }, "Register and use"),
        ),
      ),
    ),
    h(
      "form",
      {
        onsubmit: (event) => {
          event.preventDefault();
          attempt(async () => {
            if (pass1.value !== pass2.value) throw new Error("The two passphrases differ");
            await api("/api/passphrase", {
              json: { passphrase: pass1.value, current: current?.value },
            });
            pass1.value = pass2.value = "";
            toast("Private keys sealed under the new passphrase");
            await loadState();
            route();
          });
        },
      },
      h(
        "fieldset",
        {},
        h("legend", {}, "Passphrase"),
        h(
          "p",
          { class: "hint" },
          state.passphraseProtected
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
          state.passphraseProtected
            ? h("button", {
              type: "button",
              class: "danger",
              onclick: () =>
                attempt(async () => {
                  await api("/api/passphrase", {
                    json: { passphrase: null, current: current?.value },
                  });
                  toast("Passphrase removed");
                  await loadState();
                  route();
                }),
            }, "Remove passphrase")
            : null,
        ),
      ),
    ),
    h("p", { class: "hint" }, `Data directory: ${state.dataDir}`),
  );
}

// ---------------------------------------------------------------------------------------------
// Routing and live updates

async function route() {
  if (!state) return;
  if (!state.identity) return viewOnboarding();
  const [path, id] = location.hash.replace(/^#\/?/, "").split("?")[0].split("/");
  const view = path || "inbox";
  const views = {
    inbox: () => viewFolder("inbox"),
    sent: () => viewFolder("sent"),
    thread: () => viewThread(decodeURIComponent(id ?? "")),
    compose: viewCompose,
    contacts: viewContacts,
    nearby: viewNearby,
    refused: viewRefused,
    sneakernet: viewSneakernet,
    settings: viewSettings,
  };
  refreshCurrent = views[view] ?? views.inbox;
  await attempt(refreshCurrent);
}

/** Views that show live data are redrawn when it changes, unless the user is typing in them. */
const LIVE = {
  "mail-received": ["inbox", "thread"],
  "delivery-changed": ["sent", "thread"],
  "outbox-changed": ["sent", "thread"],
  "contact-changed": ["contacts", "compose"],
  "parcel-refused": ["refused"],
  "peers": ["nearby"],
  "status": ["nearby"],
};
let redrawTimer;
const pendingEvents = new Set();
function redraw(event) {
  pendingEvents.add(event);
  clearTimeout(redrawTimer);
  redrawTimer = setTimeout(async () => {
    const events = [...pendingEvents];
    pendingEvents.clear();
    await loadState().catch(() => {});
    // What someone has typed or chosen stays: a view with edited fields is not redrawn.
    const edited = [...main.querySelectorAll("input, textarea, select")].some((field) =>
      field.type === "checkbox"
        ? field.checked !== field.defaultChecked
        : field.type === "file"
        ? field.files.length > 0
        : !field.readOnly && field.value !== field.defaultValue
    );
    if (events.some((e) => LIVE[e]?.includes(currentView)) && !edited) attempt(refreshCurrent);
  }, 150);
}

function listen() {
  const handlers = Object.fromEntries(Object.keys(LIVE).map((name) => [name, () => redraw(name)]));
  return follow({
    ...handlers,
    "gateway-changed": () => redraw("status"),
    "daemon": () => redraw("status"),
    "progress": (data) => progressListener(JSON.parse(data)),
    "parcel-refused": () => {
      redraw("parcel-refused");
      toast("A parcel was refused: see Refused");
    },
    "mail-received": () => {
      redraw("mail-received");
      toast("New mail");
    },
  });
}

document.addEventListener("keydown", (event) => {
  if (
    event.target.closest?.("input, textarea, select") || event.ctrlKey || event.metaKey ||
    event.altKey
  ) return;
  if (event.key === "c" && state?.identity) {
    event.preventDefault();
    location.hash = "#/compose";
  } else if (event.key === "/" && state?.identity) {
    event.preventDefault();
    if (!["inbox", "sent"].includes(currentView)) location.hash = "#/inbox";
    setTimeout(() => document.getElementById("search")?.focus(), 50);
  }
});
document.getElementById("compose-button").addEventListener(
  "click",
  () => (location.hash = "#/compose"),
);
// The printed address pasted into a tab already open here changes only the hash.
globalThis.addEventListener("hashchange", () => (/key=/.test(location.hash) ? start() : route()));
// A link to the view already shown refreshes it (no hashchange fires).
document.getElementById("nav").addEventListener("click", (event) => {
  const link = event.target.closest("a[href]");
  if (link && link.getAttribute("href") === location.hash) route();
});

onSessionEnded(() => viewNeedsKey(true));

let following = false;

/** Signs in with the address's key if it has one, then shows the page and follows events. */
async function start() {
  await openSession();
  try {
    await loadState();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return viewNeedsKey();
    throw error;
  }
  if (!following) {
    following = true;
    listen().finally(() => (following = false));
  }
  await route();
}

start();
