// @ts-check
/// <reference lib="dom" />
// What a channel's owner manages: its authors (contacts given a certificate to
// post, until it expires) and its subscribers (contacts its posts also go to as
// mail; for a private channel, those sent its content key). Removing an author
// stops renewing their certificate, which lapses at its expiry; removing a
// subscriber of a private channel rotates the key.

import { attempt, confirmDialog, h, liveTable, onSubmit, toast } from "./dom.js";
import {
  addAuthor,
  addSubscriber,
  listAuthors,
  listSubscribers,
  removeAuthor,
  removeSubscriber,
} from "./channel_api.js";
import { listContacts } from "./endpoints.js";
import { FieldError } from "./problems.js";

/** @typedef {import("../api_types.ts").Author} Author */
/** @typedef {import("../api_types.ts").ChannelVisibility} ChannelVisibility */
/** @typedef {import("../api_types.ts").Contact} Contact */
/** @typedef {import("../api_types.ts").Subscriber} Subscriber */

const MAX_DAYS = 180;

/**
 * A choice of the contacts one can write to, kept as it was chosen across refreshes.
 * @param {string} id
 */
function contactPicker(id) {
  const select = h("select", { id, required: true });
  return {
    select,
    /** @param {readonly Contact[]} contacts */
    update(contacts) {
      const chosen = select.value;
      const usable = contacts.filter((c) => c.state === "active" || c.state === "pairing");
      select.replaceChildren(
        h("option", { value: "" }, usable.length ? "Choose a contact" : "No contacts yet"),
        ...usable.map((c) => h("option", { value: c.id, selected: c.id === chosen }, c.name)),
      );
    },
  };
}

/**
 * The authors panel: who may post and until when, adding a contact, removing one.
 * @param {string} channelId
 */
export function authorsPanel(channelId) {
  const table = liveTable({
    id: "authors-table",
    headers: ["Author", "May post until", ""],
    empty: "No authors.",
    key: (author) => `${author.id} ${author.expiresAt}`,
    /** @param {Author} author */
    row: (author) => authorRow(channelId, author, () => refresh()),
  });
  const frame = h("div", {}, table.node);
  const picker = contactPicker("author-contact");
  const days = h("input", { type: "number", id: "author-days", min: 1, max: MAX_DAYS, value: 30 });
  const form = h(
    "form",
    {
      id: "author-form",
      // The page says what is wrong beside the field, in its words, not the browser's bubble.
      novalidate: true,
      onsubmit: onSubmit(async () => {
        if (!picker.select.value) throw new FieldError(picker.select, "Choose the contact to add");
        const n = Number(days.value);
        if (!Number.isInteger(n) || n < 1 || n > MAX_DAYS) {
          throw new FieldError(days, `An author's certificate lasts 1 to ${MAX_DAYS} days`);
        }
        let author;
        try {
          author = await addAuthor(channelId, { contact: picker.select.value, days: n });
        } catch (error) {
          throw new FieldError(picker.select, error);
        }
        toast(
          `${author.name ?? "They"} may post until ${
            new Date(author.expiresAt).toLocaleDateString()
          }: ` +
            "their certificate is on its way to them",
        );
        picker.select.value = "";
        await refresh();
      }),
    },
    h(
      "div",
      { class: "form-row" },
      h("div", {}, h("label", { for: "author-contact" }, "Contact"), picker.select),
      h("div", {}, h("label", { for: "author-days" }, "For how many days (1–180)"), days),
      h("div", {}, h("button", { type: "submit", id: "add-author" }, "Add author")),
    ),
  );
  const refresh = async () => {
    const [{ authors }, contacts] = await Promise.all([listAuthors(channelId), listContacts()]);
    table.update(authors);
    picker.update(contacts);
  };
  return {
    node: h(
      "section",
      { id: "authors-panel", "aria-labelledby": "authors-heading" },
      h("h2", { id: "authors-heading" }, "Authors"),
      h(
        "p",
        { class: "hint" },
        "Authors are contacts you let post in this channel, with a certificate that expires. " +
          "Every device checks it before it keeps or passes on a post.",
      ),
      frame,
      h("h3", {}, "Add an author"),
      form,
    ),
    refresh: () => refresh(),
  };
}

/**
 * @param {string} channelId
 * @param {Author} author
 * @param {() => Promise<void>} refresh
 */
function authorRow(channelId, author, refresh) {
  const name = author.name ?? `someone (${author.id.slice(-8)})`;
  const until = new Date(author.expiresAt).toLocaleString();
  const remove = async () => {
    const yes = await confirmDialog({
      title: `Remove ${name} as an author?`,
      text: `Relaymail stops renewing their certificate. A certificate cannot be called back: ` +
        `theirs lapses on ${until}, and until then every device still accepts their posts.`,
      confirm: "Remove",
    });
    if (!yes) return;
    await attempt(async () => {
      await removeAuthor(channelId, author.id);
      toast(`${name} removed: their certificate lapses on ${until}`);
      await refresh();
    });
  };
  return h(
    "tr",
    { dataset: { author: author.id } },
    h("td", {}, h("strong", {}, author.owner ? `${name} (owner)` : name)),
    h(
      "td",
      {},
      until,
      author.renewed ? null : h("div", { class: "hint" }, "removed: not renewed, it lapses then"),
    ),
    h(
      "td",
      {},
      author.owner || !author.renewed ? null : h("button", {
        type: "button",
        class: "danger remove-author",
        "aria-label": `Remove ${name} as an author`,
        onclick: remove,
      }, "Remove"),
    ),
  );
}

/** What the subscribers panel says, by the channel's kind. */
const SUBSCRIBERS_TEXT = {
  public: "Contacts this channel's posts also go to as mail, so that they reach them through " +
    "a gateway as well as on the mesh. Adding one sends them its link.",
  private: "Only subscribers can read this channel: they receive its key end to end, " +
    "and its posts also go to them as mail.",
};

/**
 * The subscribers: who the posts go to as mail and, for a private channel, who holds its key.
 * @param {string} channelId
 * @param {ChannelVisibility} visibility
 */
export function subscribersPanel(channelId, visibility) {
  const table = liveTable({
    id: "subscribers-table",
    headers: ["Subscriber", ""],
    empty: visibility === "private"
      ? "Nobody can read this channel yet but you: add subscribers below."
      : "No subscribers: followers get the posts over the mesh.",
    key: (subscriber) => subscriber.contactId,
    /** @param {Subscriber} subscriber */
    row: (subscriber) => subscriberRow(channelId, visibility, subscriber, () => refresh()),
  });
  const frame = h("div", {}, table.node);
  const picker = contactPicker("subscriber-contact");
  const form = h(
    "form",
    {
      id: "subscriber-form",
      onsubmit: onSubmit(async () => {
        if (!picker.select.value) throw new FieldError(picker.select, "Choose the contact to add");
        const name = picker.select.selectedOptions[0]?.textContent ?? "They";
        try {
          await addSubscriber(channelId, picker.select.value);
        } catch (error) {
          throw new FieldError(picker.select, error);
        }
        toast(
          visibility === "private"
            ? `${name} can read this channel once its key reaches them`
            : `${name} gets this channel's posts as mail from now on`,
        );
        picker.select.value = "";
        await refresh();
      }),
    },
    h(
      "div",
      { class: "form-row" },
      h("div", {}, h("label", { for: "subscriber-contact" }, "Contact"), picker.select),
      h("div", {}, h("button", { type: "submit", id: "add-subscriber" }, "Add subscriber")),
    ),
  );
  const refresh = async () => {
    const [{ subscribers }, contacts] = await Promise.all([
      listSubscribers(channelId),
      listContacts(),
    ]);
    table.update(subscribers);
    picker.update(contacts);
  };
  return {
    node: h(
      "section",
      { id: "subscribers-panel", "aria-labelledby": "subscribers-heading" },
      h("h2", { id: "subscribers-heading" }, "Subscribers"),
      h("p", { class: "hint" }, SUBSCRIBERS_TEXT[visibility]),
      frame,
      h("h3", {}, "Add a subscriber"),
      form,
    ),
    refresh: () => refresh(),
  };
}

/**
 * @param {string} channelId
 * @param {ChannelVisibility} visibility
 * @param {Subscriber} subscriber
 * @param {() => Promise<void>} refresh
 */
function subscriberRow(channelId, visibility, subscriber, refresh) {
  const name = subscriber.name;
  const remove = async () => {
    const yes = await confirmDialog({
      title: `Remove ${name}?`,
      text: visibility === "private"
        ? "The channel's key is rotated, and the new key goes to the other subscribers: " +
          `${name} cannot read new posts. Posts they already have stay readable to them.`
        : `${name} no longer gets the posts as mail. They can still follow the channel by its link.`,
      confirm: "Remove",
    });
    if (!yes) return;
    await attempt(async () => {
      await removeSubscriber(channelId, subscriber.contactId);
      toast(
        visibility === "private"
          ? `${name} removed: the channel's key was rotated`
          : `${name} removed: no more posts by mail`,
      );
      await refresh();
    });
  };
  return h(
    "tr",
    { dataset: { subscriber: subscriber.contactId } },
    h(
      "td",
      {},
      h("strong", {}, name),
      subscriber.kind === "follower"
        ? h("div", { class: "hint" }, "follows it by its link, and told you")
        : null,
    ),
    h(
      "td",
      {},
      subscriber.kind === "follower" ? null : h("button", {
        type: "button",
        class: "danger remove-subscriber",
        "aria-label": `Remove ${subscriber.name}`,
        onclick: remove,
      }, "Remove"),
    ),
  );
}
