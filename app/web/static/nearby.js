// @ts-check
/// <reference lib="dom" />
// The mesh now: the peers connected, this device, and the gateway. It follows the
// state the page keeps (read again after every event), part by part.

import { badge, h, liveTable } from "./dom.js";
import { shortId } from "./format.js";
import { reloadState } from "./store.js";

/** @typedef {import("../api_types.ts").DaemonState} DaemonState */
/** @typedef {import("../api_types.ts").Peer} Peer */
/** @typedef {import("./router.js").View} View */
/** @typedef {import("./router.js").ViewContext} ViewContext */

/**
 * @param {ViewContext} context
 * @returns {Promise<View>}
 */
export async function nearbyView({ watch }) {
  const state = await reloadState();
  if (!state.identity) throw new Error("Relaymail has no identity yet");
  const peers = liveTable({
    id: "peers-table",
    headers: ["Peer", "Hosts", "Addresses"],
    empty: "",
    key: (peer) => peer.id,
    row: peerRow,
  });
  /** @param {{ peers: readonly Peer[], running: boolean }} now */
  const drawPeers = ({ peers: list, running }) =>
    peers.update(
      list,
      running
        ? "Nobody nearby right now. Mail waits, and leaves when someone appears."
        : "The mesh is not running.",
    );
  const device = h("div");
  /** @param {Pick<DaemonState, "peerId" | "addresses" | "parcelsCarried">} daemon */
  const drawDevice = (daemon) =>
    device.replaceChildren(
      h("p", { class: "mono" }, daemon.peerId ?? "—"),
      h("p", { class: "mono hint" }, daemon.addresses.join("  ")),
      h("p", {}, `Carrying ${daemon.parcelsCarried} parcel(s) for others.`),
    );
  const gateway = h("div");
  /** @param {DaemonState["gateway"]} status */
  const drawGateway = (status) =>
    gateway.replaceChildren(
      status
        ? h(
          "p",
          { id: "gateway-status" },
          `${status.url}: ${status.collecting}`,
          status.lastError ? h("span", { class: "hint" }, ` (${status.lastError})`) : null,
          ` · ${status.delivered ?? 0} delivered, ${status.collected ?? 0} collected`,
        )
        : h(
          "p",
          { class: "hint" },
          "No gateway. Set one in Settings to reach people when the Internet is there.",
        ),
    );

  drawPeers({ peers: state.peers, running: state.daemon.running });
  drawDevice(state.daemon);
  drawGateway(state.daemon.gateway);
  watch((s) => {
    const server = s.server?.identity ? s.server : state;
    return { peers: server.peers, running: server.daemon.running };
  }, drawPeers);
  watch((s) => {
    const daemon = s.server?.identity ? s.server.daemon : state.daemon;
    return {
      peerId: daemon.peerId,
      addresses: daemon.addresses,
      parcelsCarried: daemon.parcelsCarried,
    };
  }, drawDevice);
  watch((s) => (s.server?.identity ? s.server : state).daemon.gateway, drawGateway);

  return {
    name: "nearby",
    content: [
      h("h1", {}, "Nearby"),
      h(
        "p",
        { class: "hint" },
        "Devices running Relaymail that your mesh is connected to now. They carry parcels for each other, end-to-end encrypted: a relay can neither read nor forge them.",
      ),
      peers.node,
      h("h2", {}, "This device"),
      device,
      h("h2", {}, "Gateway"),
      gateway,
    ],
  };
}

/** @param {Peer} peer */
function peerRow(peer) {
  return h(
    "tr",
    { dataset: { peer: peer.id } },
    h("td", { class: "mono", title: peer.id }, shortId(peer.id)),
    h(
      "td",
      {},
      peer.endpoints.length
        ? peer.endpoints.map((e) =>
          e.name ? badge(e.name, "sent") : h("span", { class: "mono hint" }, `${shortId(e.id)} `)
        )
        : h("span", { class: "hint" }, "a relay"),
    ),
    h("td", { class: "mono" }, peer.addresses.join(" ")),
  );
}
