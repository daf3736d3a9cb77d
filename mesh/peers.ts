/**
 * The peers of a node (docs/mesh-protocol.md §6.5): the table of those
 * connected, and the services that keep them connected: discovery by mDNS,
 * dialling again whoever was seen (reconnect.ts), pinging them to notice dead
 * links (keepalive.ts), and remembering them across restarts.
 *
 * @module
 */
import type { Connection, PeerId } from "@libp2p/interface";
import { multiaddr } from "@multiformats/multiaddr";
import type { Libp2p } from "libp2p";
import type { Emit, Service } from "./core.ts";
import { hostOf } from "./host_key.ts";
import { KeepAlive } from "./keepalive.ts";
import type { Logger } from "./log.ts";
import { MdnsDiscovery } from "./mdns.ts";
import { type KnownPeer, Reconnector } from "./reconnect.ts";
import type { MeshStore } from "./store.ts";
import { TaskGroup } from "./tasks.ts";
import type { MeshPeer, MeshServices, PeerState } from "./types.ts";
import { DIAL_TIMEOUT_MS, FIRST_RETRY_MS } from "./types.ts";

/** Where and how often to look for peers by mDNS. */
export interface DiscoveryOptions {
  readonly intervalMs: number;
  readonly interfaces?: readonly string[];
}

/** What {@linkcode PeerService} needs. */
export interface PeerDeps {
  readonly libp2p: Pick<
    Libp2p<MeshServices>,
    | "peerId"
    | "getConnections"
    | "getMultiaddrs"
    | "dial"
    | "services"
    | "addEventListener"
    | "removeEventListener"
  >;
  /** Where peers are remembered across restarts. */
  readonly store: Pick<MeshStore, "getMeta" | "setMeta">;
  readonly emit: Emit;
  readonly logger: Logger;
  /** When a frame last arrived on a connection, on a mesh stream (0: never): it is alive. */
  readonly heardAt?: (connection: Connection) => number;
  readonly options: {
    /** Multiaddrs to dial for as long as the node runs. */
    readonly peers: readonly string[];
    readonly now: () => Date;
    readonly stallTimeoutMs: number;
    /** mDNS, or null to find no one on the network. */
    readonly discovery: DiscoveryOptions | null;
  };
  /** A peer connected (its first connection). */
  readonly onConnect: (peer: PeerState) => void;
  /** A peer's last connection closed; it is gone from the table. */
  readonly onDisconnect: (peer: PeerState) => void;
}

/** Keeps the table of connected peers, and keeps peers connected. */
export class PeerService implements Service {
  readonly #peers = new Map<string, PeerState>();
  readonly #deps: PeerDeps;
  readonly #log: Logger;
  readonly #tasks = new TaskGroup();
  readonly #reconnector: Reconnector;
  readonly #keepAlive: KeepAlive;
  #mdns: MdnsDiscovery | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  readonly #onConnect = (event: CustomEvent<PeerId>) => this.#connected(event.detail);
  readonly #onDisconnect = (event: CustomEvent<PeerId>) => this.#disconnected(event.detail);

  constructor(deps: PeerDeps) {
    this.#deps = deps;
    this.#log = deps.logger;
    this.#reconnector = new Reconnector((peer, signal) => this.#dialPeer(peer, signal));
    this.#keepAlive = new KeepAlive(
      () => [...this.#peers.keys()],
      (id, signal) => {
        const peer = this.#peers.get(id);
        if (!peer) return Promise.resolve();
        return this.#deps.libp2p.services.ping.ping(peer.peerId, { signal });
      },
      (id, quietMs) => this.#dead(id, quietMs),
      {
        heard: (id, ms) => {
          const connections = this.#connectionsOf(id);
          return connections.length > 0 && connections.every((c) => this.#heardWithin(c, ms));
        },
      },
    );
  }

  /** The connected peers, by peer id. */
  get table(): ReadonlyMap<string, PeerState> {
    return this.#peers;
  }

  /** The connected peers, as the node shows them. */
  describe(): MeshPeer[] {
    return [...this.#peers.values()].map(describe);
  }

  /** Starts following connections, discovering and dialling (libp2p has started). */
  start(): void {
    const { libp2p, options } = this.#deps;
    libp2p.addEventListener("peer:connect", this.#onConnect);
    libp2p.addEventListener("peer:disconnect", this.#onDisconnect);
    // Connections libp2p opened before we listened (none, unless started late).
    for (const connection of libp2p.getConnections()) this.#connected(connection.remotePeer);
    if (options.discovery) {
      // Our own mDNS: one socket per interface (a relay bridges its segments), and
      // every sighting reported, so a peer that comes back is dialled again.
      const mdns = new MdnsDiscovery({
        ...options.discovery,
        peerId: libp2p.peerId.toString(),
        addresses: () => libp2p.getMultiaddrs().map(String),
      });
      mdns.on("peer", (sighting) => this.#reconnector.seen(sighting.peerId, sighting.multiaddrs));
      mdns.on(
        "warning",
        ({ interfaceName, error }) =>
          this.#log.warn("mDNS failed on an interface", { interface: interfaceName, error }),
      );
      mdns.start();
      this.#mdns = mdns;
    }
    for (const address of options.peers) {
      const id = multiaddr(address).getComponents().find((c) => c.name === "p2p")?.value ?? null;
      this.#reconnector.addStatic(address, id);
    }
    // Neighbours from before a restart are dialled at once, not at the next mDNS round.
    for (const known of this.#knownPeers()) {
      if (known.id) this.#reconnector.seen(known.id, known.addresses, "learned");
    }
    this.#reconnector.start();
    this.#keepAlive.start();
    this.#timer = setInterval(() => this.#rememberPeers(), 30_000);
  }

  /**
   * Stops discovering, dialling and pinging (what is in flight is aborted and
   * waited for), remembers the peers for the next start, and empties the table:
   * each peer still in it is reported disconnected.
   */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    const { libp2p } = this.#deps;
    libp2p.removeEventListener("peer:connect", this.#onConnect);
    libp2p.removeEventListener("peer:disconnect", this.#onDisconnect);
    await Promise.all([
      this.#reconnector.stop(),
      this.#keepAlive.stop(),
      this.#mdns?.stop(),
      this.#tasks.close(),
    ]);
    this.#mdns = undefined;
    this.#rememberPeers();
    for (const peer of [...this.#peers.values()]) this.#forget(peer);
  }

  /** Dials a peer by multiaddr; resolves once connected. */
  async dial(address: string): Promise<void> {
    const signal = AbortSignal.any([
      AbortSignal.timeout(this.#deps.options.stallTimeoutMs),
      this.#tasks.signal,
    ]);
    await this.#deps.libp2p.dial(multiaddr(address), { signal });
  }

  #connected(peerId: PeerId): void {
    const id = peerId.toString();
    if (this.#peers.has(id) || this.#tasks.closed) return;
    const connections = this.#deps.libp2p.getConnections(peerId);
    const peer: PeerState = {
      id,
      peerId,
      host: connections[0] ? hostOf(connections[0].remoteAddr.toString()) : "unknown",
      nonce: null,
      announcements: new Map(),
      hosts: new Map(),
      connectedAt: this.#deps.options.now(),
      addresses: connections.map((c) => c.remoteAddr.toString()),
      syncing: null,
      syncAgain: false,
      queue: new Map(),
      sending: new Set(),
      pushing: null,
      refused: new Set(),
      backoff: new Map(),
      retryMs: FIRST_RETRY_MS,
    };
    this.#peers.set(id, peer);
    this.#reconnector.connected(id, connections[0]?.remoteAddr.toString().split("/p2p/")[0]);
    this.#log.debug("Peer connected", { peer: id, addresses: peer.addresses });
    this.#deps.emit("peer:connect", describe(peer));
    this.#deps.onConnect(peer);
  }

  #disconnected(peerId: PeerId): void {
    const peer = this.#peers.get(peerId.toString());
    if (!peer) return;
    if (this.#deps.libp2p.getConnections(peerId).length > 0) return; // another connection remains
    this.#forget(peer);
    this.#reconnector.disconnected(peer.id);
  }

  #forget(peer: PeerState): void {
    this.#peers.delete(peer.id);
    this.#keepAlive.forget(peer.id);
    this.#log.debug("Peer disconnected", { peer: peer.id });
    this.#deps.onDisconnect(peer);
    this.#deps.emit("peer:disconnect", { id: peer.id });
  }

  /** Closes the connections of a peer that stopped answering pings, but those it was heard on. */
  #dead(id: string, quietMs: number): void {
    const quiet = this.#connectionsOf(id).filter((c) => !this.#heardWithin(c, quietMs));
    if (quiet.length === 0) return;
    this.#log.info("Peer stopped answering pings: closing its connections", {
      peer: id,
      connections: quiet.length,
    });
    for (const connection of quiet) {
      connection.abort(new Error("The peer stopped answering pings"));
    }
  }

  #connectionsOf(id: string): Connection[] {
    const peer = this.#peers.get(id);
    return peer ? this.#deps.libp2p.getConnections(peer.peerId) : [];
  }

  #heardWithin(connection: Connection, ms: number): boolean {
    return Date.now() - (this.#deps.heardAt?.(connection) ?? 0) < ms;
  }

  /** Dials one of a peer's addresses; resolves with its peer id once connected. */
  async #dialPeer(
    peer: { id: string | null; addresses: readonly string[] },
    stopped: AbortSignal,
  ): Promise<string> {
    let failure: unknown = new Error("No address to dial");
    for (const address of peer.addresses) {
      try {
        let target = multiaddr(address);
        if (peer.id && !address.includes("/p2p/")) target = multiaddr(`${address}/p2p/${peer.id}`);
        const connection = await this.#deps.libp2p.dial(target, {
          signal: AbortSignal.any([AbortSignal.timeout(DIAL_TIMEOUT_MS), stopped]),
        });
        return connection.remotePeer.toString();
      } catch (error) {
        failure = error;
        if (stopped.aborted) break;
      }
    }
    this.#log.debug("Dial failed", { peer: peer.id, addresses: peer.addresses, error: failure });
    throw failure;
  }

  /** Peers remembered from before a restart. */
  #knownPeers(): KnownPeer[] {
    try {
      const bytes = this.#deps.store.getMeta("known-peers");
      return bytes ? JSON.parse(new TextDecoder().decode(bytes)) : [];
    } catch (error) {
      this.#log.warn("Could not read the peers remembered from before: starting afresh", {
        error,
      });
      return [];
    }
  }

  #rememberPeers(): void {
    try {
      const snapshot = JSON.stringify(this.#reconnector.snapshot());
      this.#deps.store.setMeta("known-peers", new TextEncoder().encode(snapshot));
    } catch (error) {
      this.#log.warn("Could not remember peers", { error });
    }
  }
}

function describe(peer: PeerState): MeshPeer {
  return {
    id: peer.id,
    addresses: peer.addresses,
    endpoints: [...peer.hosts].filter(([, proven]) => proven).map(([id]) => id),
    connectedAt: peer.connectedAt,
  };
}
