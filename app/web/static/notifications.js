// @ts-check
/// <reference lib="dom" />
// New mail, announced: always by a toast in the page naming the sender, and, if
// the user turned them on, by a desktop notification while the page is hidden
// or not focused. The browser is asked for permission only when the user turns
// them on; the choice is kept in localStorage. Clicking a notification brings
// the tab forward with the message open.

import { h, toast } from "./dom.js";

/** @typedef {import("../api_types.ts").MailReceived} MailReceived */

/** Where the opt-in is kept ("on" when the user turned notifications on). */
const KEY = "relaymail.notifications";

/** Whether this browser has the Notification API. */
const supported = () => "Notification" in globalThis;

/** Whether desktop notifications are on: chosen here, and allowed by the browser. */
export function notificationsOn() {
  return localStorage.getItem(KEY) === "on" && supported() &&
    Notification.permission === "granted";
}

/**
 * The switch in the nav that turns desktop notifications on or off, with a line
 * saying why they cannot be on when the browser refuses them.
 * @param {HTMLElement} parent where it goes
 */
export function mountNotifications(parent) {
  const button = h("button", {
    type: "button",
    id: "notifications-toggle",
    class: "toggle",
    "aria-describedby": "notifications-note",
  });
  const note = h("p", { class: "hint note", id: "notifications-note", "aria-live": "polite" });
  const draw = (/** @type {string} */ why = "") => {
    const on = notificationsOn();
    button.setAttribute("aria-pressed", String(on));
    button.textContent = `Desktop notifications: ${on ? "on" : "off"}`;
    note.textContent = why ||
      (localStorage.getItem(KEY) === "on" && !on ? blockedText() : "");
  };
  button.addEventListener("click", async () => {
    if (notificationsOn()) {
      localStorage.removeItem(KEY);
      return draw();
    }
    if (!supported()) return draw("This browser cannot show desktop notifications.");
    const permission = await Notification.requestPermission();
    if (permission === "granted") {
      localStorage.setItem(KEY, "on");
      return draw();
    }
    localStorage.removeItem(KEY);
    draw(
      permission === "denied"
        ? blockedText()
        : "Not turned on: the browser's question was closed without an answer.",
    );
  });
  parent.append(h("div", { class: "notifications" }, button, note));
  draw();
}

/** Why notifications are off although chosen: the browser blocks them. */
function blockedText() {
  return supported()
    ? "The browser blocks notifications from this page. Allow them in the site's settings (the icon left of the address), then turn them on here."
    : "This browser cannot show desktop notifications.";
}

/**
 * Announces a message that arrived: a toast naming the sender; and, when they
 * are on and the page is hidden or not focused, a desktop notification whose
 * click opens the message here.
 * @param {MailReceived} mail
 */
export function announceMail(mail) {
  // A server older than this page sends no sender: then "New mail" says enough.
  if (typeof mail?.from?.name !== "string") return void toast("New mail");
  const subject = mail.subject || "(no subject)";
  toast(`New mail from ${mail.from.name}: ${subject}`);
  if (!notificationsOn() || (!document.hidden && document.hasFocus())) return;
  // The tag is the message's: two tabs open on this mailbox show one notification.
  const notification = new Notification(mail.from.name, { body: subject, tag: mail.id });
  notification.addEventListener("click", () => {
    globalThis.focus();
    location.hash = `#/thread/${encodeURIComponent(mail.id)}`;
    notification.close();
  });
}
