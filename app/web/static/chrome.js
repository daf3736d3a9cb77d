// @ts-check
/// <reference lib="dom" />
// What surrounds the views: who is signed in, the nav with its counts and the
// current view, and the mesh and gateway indicators. Each part watches the state
// it shows.

import { h } from "./dom.js";
import { store } from "./store.js";

/**
 * @param {string} id
 * @returns {HTMLElement}
 */
function byId(id) {
  const element = document.getElementById(id);
  if (!element) throw new Error(`The page has no #${id}`);
  return element;
}

/** @param {number | undefined} n */
const count = (n) => (n ? String(n) : "");

/** Starts following the state in the page's header and nav. */
export function mountChrome() {
  const who = byId("who");
  const nav = byId("nav");
  const indicators = byId("indicators");
  const unread = byId("unread");
  const peers = byId("peer-count");
  const refused = byId("refused-count");

  /** @param {{ name: string, fingerprint: string } | null} identity */
  const drawWho = (identity) => {
    nav.hidden = identity === null;
    who.replaceChildren(
      ...identity
        ? [
          h("span", {}, identity.name),
          h("span", { class: "fp", title: "Your key's fingerprint" }, identity.fingerprint),
        ]
        : [],
    );
  };
  /** @param {{ unread?: number, peers?: number, refusals?: number }} counts */
  const drawCounts = (counts) => {
    unread.textContent = count(counts.unread);
    peers.textContent = count(counts.peers);
    refused.textContent = count(counts.refusals);
  };
  /** @param {string} view */
  const drawCurrent = (view) => {
    for (const link of nav.querySelectorAll("[data-view]")) {
      if (link instanceof HTMLElement && link.dataset.view === view) {
        link.setAttribute("aria-current", "page");
      } else link.removeAttribute("aria-current");
    }
  };
  /** @param {ReturnType<typeof indicatorState>} state */
  const drawIndicators = (state) => indicators.replaceChildren(...indicatorPills(state));

  const identity = () => {
    const id = store.get().server?.identity;
    return id ? { name: id.name, fingerprint: id.fingerprint } : null;
  };
  const counts = () => {
    const server = store.get().server;
    return server?.identity
      ? { unread: server.unread, peers: server.peers.length, refusals: server.refusals }
      : {};
  };
  store.watch(identity, drawWho);
  store.watch(counts, drawCounts);
  store.watch((s) => s.view, drawCurrent);
  store.watch(() => indicatorState(store.get().server), drawIndicators);
  drawWho(identity());
  drawCounts(counts());
  drawCurrent(store.get().view);
  drawIndicators(indicatorState(store.get().server));
}

/**
 * What the indicators show: the mesh, and the gateway if there is one.
 * @param {import("../api_types.ts").State | null} server
 */
function indicatorState(server) {
  if (!server?.identity) return null;
  const { running, error, gateway } = server.daemon;
  return {
    running,
    error,
    peers: server.peers.length,
    gateway: gateway && { collecting: gateway.collecting, lastError: gateway.lastError ?? "" },
  };
}

/** @param {ReturnType<typeof indicatorState>} state */
function indicatorPills(state) {
  if (!state) return [];
  const { running, error, peers, gateway } = state;
  const pills = [
    h(
      "span",
      {
        class: `pill ${running ? (peers ? "ok" : "idle") : "bad"}`,
        id: "mesh-indicator",
        // A pill stays one short line: the whole reason is in its title.
        title: !running && error ? error : null,
      },
      running ? `Mesh: ${peers} nearby` : `Mesh stopped${error ? `: ${error}` : ""}`,
    ),
  ];
  if (gateway) {
    const ok = gateway.collecting === "connected";
    pills.push(
      h(
        "span",
        { class: `pill ${ok ? "ok" : "bad"}`, id: "gateway-indicator", title: gateway.lastError },
        `Gateway: ${ok ? "connected" : gateway.collecting ?? "registering"}`,
      ),
    );
  }
  return pills;
}
