// @ts-check
/// <reference lib="dom" />
// Relaymail's web app: plain DOM in ES modules, no build step, nothing loaded
// from elsewhere. This is the entry: it opens the session, routes the address to
// a view, and turns the server's events into updates of what they changed.

import { ApiError, follow, onSessionEnded, openSession } from "./api.js";
import { channelView } from "./channel_page.js";
import { channelsView, refreshChannelCount } from "./channels.js";
import { mountChrome } from "./chrome.js";
import { composeView } from "./compose.js";
import { contactsView } from "./contacts.js";
import { attempt, toast } from "./dom.js";
import { draftsView } from "./drafts.js";
import { folderView, PAGE } from "./mailbox.js";
import { forgetPrefetched, prefetchMessages } from "./endpoints.js";
import { nearbyView } from "./nearby.js";
import { announceMail, mountNotifications } from "./notifications.js";
import { needsKeyView, onboardingView, welcomed } from "./onboarding.js";
import { threadView } from "./reader.js";
import { refreshView, show } from "./router.js";
import { refusedView } from "./refused.js";
import { settingsView } from "./settings.js";
import { mountShortcuts, showHelp } from "./shortcuts.js";
import { sneakernetView } from "./sneakernet.js";
import { reloadState, store } from "./store.js";

/** @typedef {import("../api_types.ts").PushEventName} PushEventName */
/** @typedef {import("./router.js").ViewFactory} ViewFactory */

/**
 * The views by the first part of the address (`#/<name>/<id>?<params>`).
 * @type {Record<string, ViewFactory>}
 */
const VIEWS = {
  inbox: (context) => folderView("inbox", context),
  sent: (context) => folderView("sent", context),
  archive: (context) => folderView("archive", context),
  drafts: draftsView,
  thread: threadView,
  compose: composeView,
  // Right after the first run, headed by what was created.
  contacts: async (context) => {
    const view = await contactsView(context);
    return context.params.has("welcome") ? welcomed(view) : view;
  },
  channels: channelsView,
  channel: channelView,
  nearby: nearbyView,
  refused: refusedView,
  sneakernet: sneakernetView,
  settings: settingsView,
};

/** Shows the view the address names (the inbox by default; onboarding before an identity). */
async function route() {
  const server = store.get().server;
  if (!server) return;
  if (!server.identity) return void await attempt(() => show(() => onboardingView(route)));
  const [address, query = ""] = location.hash.replace(/^#\/?/, "").split("?");
  const [name, id = ""] = address.split("/");
  const factory = VIEWS[name || "inbox"] ?? VIEWS.inbox;
  await attempt(() =>
    show(factory, { id: decodeURIComponent(id), params: new URLSearchParams(query) })
  );
}

/**
 * The page without a session.
 * @param {boolean} ended
 */
function needsKey(ended) {
  store.update({ server: null });
  return show(() => needsKeyView(ended));
}

// ---------------------------------------------------------------------------------------------
// Live updates: events come in bursts, so they are gathered for a moment; then the
// state is read again (the header and the views that watch it follow), and the
// view shown is refreshed if it follows one of them.

/** @type {Set<PushEventName>} */
const pending = new Set();
/** @type {ReturnType<typeof setTimeout> | undefined} */
let gathering;

/** @param {PushEventName} event */
function changed(event) {
  pending.add(event);
  clearTimeout(gathering);
  gathering = setTimeout(async () => {
    const events = [...pending];
    pending.clear();
    await reloadState().catch(() => {});
    await refreshView(events);
  }, 150);
}

function listen() {
  return follow({
    "mail-received": (mail) => {
      changed("mail-received");
      announceMail(mail);
    },
    // Another tab (or the CLI) archived, marked or deleted a message, or saved a draft.
    "message-changed": () => changed("message-changed"),
    "drafts-changed": () => changed("drafts-changed"),
    "delivery-changed": () => changed("delivery-changed"),
    "outbox-changed": () => changed("outbox-changed"),
    "contact-changed": () => changed("contact-changed"),
    "parcel-refused": () => {
      changed("parcel-refused");
      toast("A parcel was refused: see Refused");
    },
    "gateway-changed": () => changed("gateway-changed"),
    // A post came, went or was made, or a channel changed (here, in another tab, or the CLI).
    "channel-changed": () => {
      changed("channel-changed");
      refreshChannelCount().catch(() => {});
    },
    peers: () => changed("peers"),
    status: () => changed("status"),
    daemon: () => changed("daemon"),
    progress: (progress) => store.update({ progress }),
  });
}

// ---------------------------------------------------------------------------------------------
// Keys, links and the nav's switches

mountShortcuts();
document.getElementById("compose-button")?.addEventListener(
  "click",
  () => (location.hash = "#/compose"),
);
// The printed address pasted into a tab already open here changes only the hash.
globalThis.addEventListener("hashchange", () => (/key=/.test(location.hash) ? start() : route()));
// A link to the view already shown refreshes it (no hashchange fires).
document.getElementById("nav")?.addEventListener("click", (event) => {
  const link = event.target instanceof Element ? event.target.closest("a[href]") : null;
  if (link && link.getAttribute("href") === location.hash) route();
});

document.getElementById("shortcuts-button")?.addEventListener("click", showHelp);
const navExtras = document.getElementById("nav-extras");
if (navExtras) mountNotifications(navExtras);

onSessionEnded(() => needsKey(true));

let following = false;

/** Signs in with the address's key if it has one, then shows the page and follows events. */
async function start() {
  await openSession();
  // The inbox's first page is asked for beside the state, not after it.
  if (/^(#\/?(inbox)?)?$/.test(location.hash.split("?")[0])) prefetchMessages("inbox", PAGE);
  try {
    await reloadState();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return needsKey(false);
    throw error;
  }
  // Before an identity (first run, or a restore about to bring one) there is no
  // inbox yet: what was asked for early must not stand for the one to come.
  if (!store.get().server?.identity) forgetPrefetched();
  if (!following) {
    following = true;
    listen().finally(() => (following = false));
  }
  await route();
  // The nav's count of unread posts, once the view asked for is on its way.
  if (store.get().server?.identity) refreshChannelCount().catch(() => {});
}

mountChrome();
start();
