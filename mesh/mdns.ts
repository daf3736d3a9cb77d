/**
 * Finds mesh peers on every local network segment by multicast DNS, with one
 * socket per interface: a relay with two interfaces speaks on both and so
 * bridges its segments, and a laptop that roams rejoins as soon as its new link
 * is up.
 *
 * The records are those of `@libp2p/mdns` (libp2p's mDNS discovery spec), so
 * nodes running either find each other: a query asks for PTR `<service tag>`; an
 * answer holds PTR `<service tag>` → `<instance>.<service tag>` and one TXT
 * record `dnsaddr=<multiaddr>/p2p/<peer id>` per address, TTL 120 s. Our
 * instance is our peer id (@libp2p/mdns uses a random label); the peer id is
 * always read from the addresses. Neither writes SRV or A records.
 *
 * - IPv4: per interface, a socket joined to 224.0.0.251 on it and sending out of
 *   it. Linux hands a group's packets to every socket joined to the group on any
 *   interface (IP_MULTICAST_ALL), and Node's dgram cannot bind to a device or read
 *   the arrival interface, so a packet counts as arriving on the interface whose
 *   subnet holds its source (on a host with one interface, on that one).
 * - IPv6: per interface, a socket bound to `ff02::fb%<interface>`; Linux then
 *   binds the socket to that device, so it hears only that link. Link-local
 *   addresses heard are given the zone of the interface that heard them
 *   (`/ip6zone/eth0/ip6/fe80::…`), since the sender's zone means nothing here.
 * - An answer sent on an interface holds only our listen addresses reachable on
 *   it: those bound to one of its addresses, wildcard ones (`0.0.0.0`, `::`)
 *   expanded to its addresses.
 * - Every `rescanMs` the interfaces are read again: sockets open on interfaces
 *   that came up (with a query and an announcement at once) and close on those
 *   that went down or changed address; an interface whose addresses changed
 *   announces again.
 * - Every answer heard is a sighting, not only the first from a peer: the
 *   caller decides what a repeated one means (dial a known peer that is not
 *   connected).
 *
 * What a host on the link can make it spend is bounded: packets over 9 000 bytes
 * are dropped unread, each interface reads at most 200 packets a second and
 * each source 10 (both token buckets), an answer yields at most 4 peers of 16
 * addresses each, and this node answers at most once a second per interface.
 * Errors on one interface never stop the others.
 *
 * Deno permissions: `--allow-net` (UDP 5353), `--allow-sys=networkInterfaces`,
 * and `--allow-read=/sys/class/net,/proc/net/if_inet6` to skip interfaces that
 * are down and IPv6 addresses not usable yet (without it, every interface with
 * an address counts as up, and the first IPv6 packets after a link comes up may
 * fail). Tested on Linux.
 *
 * The sockets are in `mdns_socket.ts`, the records in `mdns_records.ts` and
 * the reading of the machine's interfaces in `mdns_links.ts`.
 *
 * @example Report peers seen on the local network
 * ```ts ignore
 * import { MdnsDiscovery } from "./mdns.ts";
 *
 * const mdns = new MdnsDiscovery({
 *   peerId: "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA",
 *   addresses: () => ["/ip4/0.0.0.0/tcp/4747"],
 * });
 * mdns.on("peer", (s) => console.log(s.peerId, s.multiaddrs, s.interfaceName));
 * mdns.start();
 * ```
 *
 * @module
 */
import { type Family, type Link, readLinks } from "./mdns_links.ts";
import { InterfaceSocket, type MdnsInterfaceChange, type MdnsSighting } from "./mdns_socket.ts";

export type { MdnsInterfaceChange, MdnsSighting };

export { MAX_MULTIADDRS, MAX_PEERS_PER_PACKET } from "./mdns_records.ts";
export { MAX_PACKET_BYTES, PACKET_RATE } from "./mdns_socket.ts";

/** The mesh's service tag, as `mesh/node.ts` gave it to @libp2p/mdns. */
export const DEFAULT_SERVICE_TAG = "_relaymail-mesh._udp.local";
/** RFC 1035 §2.3.4: a DNS label is at most 63 bytes. */
const MAX_LABEL = 63;
/** An interface whose socket failed is tried again after this long. */
const RETRY_FAILED_MS = 30_000;

/** Options of {@linkcode MdnsDiscovery}. */
export interface MdnsOptions {
  /** The DNS-SD service queried and answered (default {@linkcode DEFAULT_SERVICE_TAG}). */
  readonly serviceTag?: string;
  /** How often a query goes out on every interface, in ms (default 10 000). */
  readonly intervalMs?: number;
  /** Names of the interfaces to use (default: every one that is up, multicast-capable and not loopback). */
  readonly interfaces?: readonly string[];
  /** How often the interfaces are read again, to follow roaming, in ms (default 2 000). */
  readonly rescanMs?: number;
  /** UDP port (default 5353, RFC 6762 §3). */
  readonly port?: number;
  /** Also speak mDNS over IPv6 link-local, ff02::fb (default true). */
  readonly ipv6?: boolean;
}

/** Our identity and where we listen. */
export interface MdnsIdentity {
  /** Our libp2p peer id: answers carrying it are ours, and never reported. */
  readonly peerId: string;
  /** Our listen multiaddrs now (with or without `/p2p/<peerId>`); read at every answer. */
  readonly addresses: () => readonly string[];
}

/** Events of {@linkcode MdnsDiscovery}. */
export interface MdnsEventMap {
  /** Every answer from another peer, each time it is heard. */
  peer: MdnsSighting;
  /** A socket opened or closed (an interface came up, went down or changed). */
  interface: MdnsInterfaceChange;
  /** Something failed on one interface; the others carry on. */
  warning: { interfaceName: string; error: Error };
}

/**
 * mDNS discovery on every interface (or those named): dispatches `peer` at every
 * answer heard from another peer.
 */
export class MdnsDiscovery extends EventTarget {
  readonly #tag: string;
  readonly #instance: string;
  readonly #peerId: string;
  readonly #addresses: () => readonly string[];
  readonly #intervalMs: number;
  readonly #rescanMs: number;
  readonly #port: number;
  readonly #ipv6: boolean;
  readonly #only: ReadonlySet<string> | null;
  readonly #sockets = new Map<string, InterfaceSocket>();
  readonly #failed = new Map<string, number>();
  #timers: ReturnType<typeof setInterval>[] = [];

  constructor(options: MdnsOptions & MdnsIdentity) {
    super();
    this.#tag = options.serviceTag ?? DEFAULT_SERVICE_TAG;
    this.#peerId = options.peerId;
    if (this.#peerId.length > MAX_LABEL) {
      throw new RangeError(
        `Cannot use the peer id as an mDNS label as it exceeds ${MAX_LABEL} characters: received ${this.#peerId.length}`,
      );
    }
    this.#instance = `${this.#peerId}.${this.#tag}`;
    this.#addresses = options.addresses;
    this.#intervalMs = positive("intervalMs", options.intervalMs ?? 10_000);
    this.#rescanMs = positive("rescanMs", options.rescanMs ?? 2_000);
    this.#port = options.port ?? 5353;
    this.#ipv6 = options.ipv6 ?? true;
    this.#only = options.interfaces ? new Set(options.interfaces) : null;
  }

  /** Adds a typed listener; returns a function that removes it. */
  on<K extends keyof MdnsEventMap>(
    type: K,
    listener: (detail: MdnsEventMap[K]) => void,
  ): () => void {
    const wrapped: EventListener = (event) =>
      listener((event as CustomEvent<MdnsEventMap[K]>).detail);
    this.addEventListener(type, wrapped);
    return () => this.removeEventListener(type, wrapped);
  }

  /** The sockets open now. */
  get interfaces(): MdnsInterfaceChange[] {
    return [...this.#sockets.values()].filter((s) => s.ready).map((s) => s.describe(true));
  }

  /** Opens a socket on every usable interface (each sends a query at once) and starts the timers. */
  start(): void {
    if (this.#timers.length > 0) return;
    this.#timers = [
      setInterval(() => this.queryNow(), this.#intervalMs),
      setInterval(() => this.#rescan(), this.#rescanMs),
    ];
    this.#rescan();
  }

  /** Closes every socket. */
  async stop(): Promise<void> {
    for (const timer of this.#timers) clearInterval(timer);
    this.#timers = [];
    const sockets = [...this.#sockets.values()];
    this.#sockets.clear();
    await Promise.all(sockets.map((s) => s.close()));
  }

  /** Sends a query on every open socket now (peers that hear it answer). */
  queryNow(): void {
    for (const socket of this.#sockets.values()) socket.query();
  }

  /** Compares the interfaces with the open sockets: opens, closes and re-announces. */
  #rescan(): void {
    let links: Map<string, Link>;
    try {
      links = readLinks(this.#only);
    } catch (error) {
      this.#warn("*", error);
      return;
    }
    const wanted = new Map<string, { family: Family; link: Link; address: string }>();
    for (const link of links.values()) {
      if (link.ipv4.length > 0) {
        const address = link.ipv4[0].address;
        wanted.set(`${link.name}|IPv4|${address}`, { family: "IPv4", link, address });
      }
      if (this.#ipv6 && link.linkLocal) {
        const { address, scopeId } = link.linkLocal;
        wanted.set(`${link.name}|IPv6|${scopeId}`, { family: "IPv6", link, address });
      }
    }
    for (const [key, socket] of this.#sockets) {
      const want = wanted.get(key);
      if (!want) {
        this.#sockets.delete(key);
        socket.close();
      } else {
        socket.update(want.link);
      }
    }
    const now = Date.now();
    for (const [key, until] of this.#failed) if (until <= now) this.#failed.delete(key);
    for (const [key, want] of wanted) {
      if (this.#sockets.has(key) || (this.#failed.get(key) ?? 0) > now) continue;
      const fail = (error: unknown) => {
        this.#warn(want.link.name, error);
        this.#failed.set(key, Date.now() + RETRY_FAILED_MS);
      };
      let socket: InterfaceSocket;
      try {
        socket = this.#open(key, want, fail);
      } catch (error) {
        fail(error);
        continue;
      }
      this.#sockets.set(key, socket);
    }
  }

  #open(
    key: string,
    want: { family: Family; link: Link; address: string },
    fail: (error: unknown) => void,
  ): InterfaceSocket {
    const socket: InterfaceSocket = new InterfaceSocket(want.family, want.link, want.address, {
      port: this.#port,
      tag: this.#tag,
      instance: this.#instance,
      peerId: this.#peerId,
      addresses: this.#addresses,
      soleIpv4: () => this.#ipv4Count() === 1,
      onSighting: (sighting) => this.#emit("peer", sighting),
      onChange: (change) => this.#emit("interface", change),
      onError: (error, fatal) => {
        if (!fatal) return this.#warn(want.link.name, error);
        fail(error);
        if (this.#sockets.get(key) === socket) this.#sockets.delete(key);
        socket.close();
      },
    });
    return socket;
  }

  #ipv4Count(): number {
    let count = 0;
    for (const socket of this.#sockets.values()) if (socket.family === "IPv4") count++;
    return count;
  }

  #warn(interfaceName: string, error: unknown): void {
    const cause = error instanceof Error ? error : new Error(String(error));
    this.#emit("warning", { interfaceName, error: cause });
  }

  #emit<K extends keyof MdnsEventMap>(type: K, detail: MdnsEventMap[K]): void {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
function positive(name: string, value: number): number {
  if (!(value > 0) || !Number.isFinite(value)) {
    throw new RangeError(
      `Cannot use ${name} as it is not a positive number of ms: received ${value}`,
    );
  }
  return value;
}
