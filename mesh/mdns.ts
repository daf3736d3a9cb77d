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
import { Buffer } from "node:buffer";
import dgram from "node:dgram";
import { EventEmitter } from "node:events";
import { peerIdFromString } from "@libp2p/peer-id";
import { CODE_P2P, type Component, multiaddr } from "@multiformats/multiaddr";
// @ts-types="@types/multicast-dns"
import multicastDns from "multicast-dns";

/** The mesh's service tag, as `mesh/node.ts` gave it to @libp2p/mdns. */
export const DEFAULT_SERVICE_TAG = "_relaymail-mesh._udp.local";
/** RFC 6762 §3 (IPv4) and §20 (IPv6). */
const GROUP = { IPv4: "224.0.0.251", IPv6: "ff02::fb" } as const;
/** RFC 6762 §17: an mDNS message is at most 9 000 bytes. */
export const MAX_PACKET_BYTES = 9_000;
/** RFC 6763 §6.1: one TXT string is at most 255 bytes. */
const MAX_TXT_STRING = 255;
/** The TTL @libp2p/mdns gives its records, in seconds. */
const RECORD_TTL_S = 120;
/** RFC 1035 §2.3.4: a DNS label is at most 63 bytes. */
const MAX_LABEL = 63;
/** Addresses taken from one peer's answer, and sent in ours. */
export const MAX_MULTIADDRS = 16;
/** Peers (PTR records) taken from one packet. */
export const MAX_PEERS_PER_PACKET = 4;
/** TXT strings looked at per peer in one packet. */
const MAX_TXT_PER_PEER = 32;
/** RFC 6762 §6: a record is multicast on an interface at most once a second. */
const MIN_ANSWER_GAP_MS = 1_000;
/** Packets read per second, per interface and per source address (token buckets). */
export const PACKET_RATE = {
  interface: { burst: 400, perSecond: 200 },
  source: { burst: 20, perSecond: 10 },
} as const;
/** Sources whose buckets are kept per interface (the least recently heard go first). */
const MAX_SOURCES = 1_024;
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

/** A peer heard answering on one interface. */
export interface MdnsSighting {
  readonly peerId: string;
  /** Its addresses, without `/p2p/`; link-local IPv6 ones with this interface as zone. */
  readonly multiaddrs: string[];
  /** The interface it was heard on. */
  readonly interfaceName: string;
  readonly family: "IPv4" | "IPv6";
  /** The address the answer came from. */
  readonly from: string;
}

/** An interface's socket opened or closed. */
export interface MdnsInterfaceChange {
  readonly interfaceName: string;
  readonly family: "IPv4" | "IPv6";
  /** Its IPv4 address, or its IPv6 link-local address. */
  readonly address: string;
  readonly open: boolean;
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

type Family = "IPv4" | "IPv6";
type Packet = multicastDns.ResponsePacket;
type Answer = Packet["answers"][number];

/** One interface as read at the last scan. */
interface Link {
  readonly name: string;
  readonly ipv4: { address: string; netmask: string }[];
  /** Its IPv6 addresses, link-local and others. */
  readonly ipv6: string[];
  /** Its first link-local IPv6 address and the interface index. */
  readonly linkLocal?: { address: string; scopeId: number };
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

interface SocketContext {
  readonly port: number;
  readonly tag: string;
  readonly instance: string;
  readonly peerId: string;
  readonly addresses: () => readonly string[];
  readonly onSighting: (sighting: MdnsSighting) => void;
  readonly onChange: (change: MdnsInterfaceChange) => void;
  /** Whether this is the only IPv4 socket open. */
  readonly soleIpv4: () => boolean;
  /** `fatal`: the socket is unusable (it could not bind or join the group). */
  readonly onError: (error: Error, fatal: boolean) => void;
}

/** The mDNS socket of one interface and one address family. */
class InterfaceSocket {
  readonly #mdns: multicastDns.MulticastDNS;
  readonly #socket: dgram.Socket;
  readonly #limits = new PacketLimits();
  #link: Link;
  #ready = false;
  #closed: Promise<void> | null = null;
  #lastAnswerAt = 0;
  #pendingAnswer: ReturnType<typeof setTimeout> | undefined;
  /** What our last answer here said, to announce again when it changes. */
  #announced = "";
  /** Answers still to send unasked (announcements). */
  #unannounced = 0;

  constructor(
    readonly family: Family,
    link: Link,
    readonly address: string,
    private readonly context: SocketContext,
  ) {
    this.#link = link;
    const v6 = family === "IPv6";
    this.#socket = dgram.createSocket({ type: v6 ? "udp6" : "udp4", reuseAddr: true });
    const guarded = new GuardedSocket(this.#socket, (size, from) => this.#admit(size, from));
    this.#mdns = multicastDns({
      socket: guarded as unknown as dgram.Socket,
      type: v6 ? "udp6" : "udp4",
      ip: GROUP[family],
      port: context.port,
      // Binding to the scoped group binds an IPv6 socket to its device (Linux).
      bind: v6 ? `${GROUP.IPv6}%${link.name}` : "0.0.0.0",
      interface: v6 ? `::%${link.name}` : address,
      // Memberships are ours to make, so that a failure closes the socket.
      multicast: false,
    });
    this.#mdns.on("ready", () => this.#join());
    this.#mdns.on("error", (error: Error) => context.onError(error, true));
    // Socket errors carry a code; the others are packets that failed to decode,
    // the LAN's noise (or an attacker's), not worth a warning each.
    this.#mdns.on("warning", (error: Error & { code?: string }) => {
      if (error.code) context.onError(error, false);
    });
    this.#mdns.on(
      "query",
      (packet: multicastDns.QueryPacket) => this.#guard(() => this.#onQuery(packet)),
    );
    this.#mdns.on(
      "response",
      (packet: Packet, from: dgram.RemoteInfo) => this.#guard(() => this.#onResponse(packet, from)),
    );
  }

  get ready(): boolean {
    return this.#ready && !this.#closed;
  }

  describe(open: boolean): MdnsInterfaceChange {
    return { interfaceName: this.#link.name, family: this.family, address: this.address, open };
  }

  /** New facts about the interface (same key): announce if our answer here changed. */
  update(link: Link): void {
    this.#link = link;
    if (this.ready && this.#announced !== JSON.stringify(this.#answers())) this.#answerSoon();
  }

  query(): void {
    if (!this.ready) return;
    this.#guard(() =>
      this.#mdns.query({ questions: [{ name: this.context.tag, type: "PTR" }] }, (error) => {
        if (error) this.context.onError(error, false);
      })
    );
  }

  close(): Promise<void> {
    this.#closed ??= new Promise<void>((resolve) => {
      clearTimeout(this.#pendingAnswer);
      if (this.#ready) this.context.onChange(this.describe(false));
      try {
        this.#socket.dropMembership(GROUP[this.family], this.#membershipInterface());
      } catch { /* the interface may be gone, taking the membership with it */ }
      try {
        this.#mdns.destroy(() => resolve());
      } catch {
        resolve();
      }
    });
    return this.#closed;
  }

  #membershipInterface(): string {
    return this.family === "IPv6" ? `::%${this.#link.name}` : this.address;
  }

  #join(): void {
    if (this.#closed) return;
    try {
      this.#socket.addMembership(GROUP[this.family], this.#membershipInterface());
      this.#socket.setMulticastInterface(this.#membershipInterface());
      this.#socket.setMulticastTTL(255);
      // Other programs on this host (another node) hear us, and we them.
      this.#socket.setMulticastLoopback(true);
    } catch (error) {
      this.context.onError(error as Error, true);
      return;
    }
    this.#ready = true;
    this.context.onChange(this.describe(true));
    this.query();
    // RFC 6762 §8.3: announce twice, a second apart (#answerSoon spaces them).
    this.#unannounced = 2;
    this.#answerSoon();
  }

  /** Before decoding: whether a packet of `size` bytes from `from` is read at all. */
  #admit(size: number, from: dgram.RemoteInfo): boolean {
    if (!this.ready || size > MAX_PACKET_BYTES) return false;
    if (this.family === "IPv4" && !this.#isOnLink(from.address)) return false;
    return this.#limits.take(from.address);
  }

  /** Whether an IPv4 source arrived on this interface (see the module doc). */
  #isOnLink(source: string): boolean {
    const ip = ipv4ToInt(source);
    if (ip === null) return false;
    if (this.#link.ipv4.some((a) => sameSubnet(ip, a.address, a.netmask))) return true;
    // An off-subnet source is ours only when no other interface could claim it.
    return this.context.soleIpv4();
  }

  #onQuery(packet: multicastDns.QueryPacket): void {
    const tag = this.context.tag.toLowerCase();
    const asked = packet.questions.some((q) =>
      q.name.toLowerCase() === tag && (q.type === "PTR" || (q.type as string) === "ANY")
    );
    if (asked) this.#answerSoon();
  }

  #onResponse(packet: Packet, from: dgram.RemoteInfo): void {
    for (const peer of readAnswer(packet, this.context.tag, this.#link.name)) {
      if (peer.peerId === this.context.peerId) continue;
      this.context.onSighting({
        ...peer,
        interfaceName: this.#link.name,
        family: this.family,
        from: from.address,
      });
    }
  }

  /** Answers now, or when a second has passed since the last answer here (RFC 6762 §6). */
  #answerSoon(): void {
    if (this.#pendingAnswer !== undefined || !this.ready) return;
    const wait = Math.max(0, this.#lastAnswerAt + MIN_ANSWER_GAP_MS - Date.now());
    this.#pendingAnswer = setTimeout(() => {
      this.#pendingAnswer = undefined;
      this.#answer();
    }, wait);
  }

  #answer(): void {
    if (!this.ready) return;
    const answers = this.#answers();
    this.#announced = JSON.stringify(answers);
    if (answers.length < 2) return; // nothing reachable here to say
    this.#lastAnswerAt = Date.now();
    this.#guard(() =>
      this.#mdns.respond({ answers }, (error) => {
        if (error) this.context.onError(error, false);
      })
    );
    if (this.#unannounced > 0 && --this.#unannounced > 0) this.#answerSoon();
  }

  /** Our PTR and TXT records for this interface. */
  #answers(): Answer[] {
    const { tag, instance, peerId } = this.context;
    const answers: Answer[] = [{
      name: tag,
      type: "PTR",
      class: "IN",
      ttl: RECORD_TTL_S,
      data: instance,
    }];
    for (const address of addressesOn(this.#link, this.context.addresses())) {
      const data = `dnsaddr=${address}/p2p/${peerId}`;
      if (data.length > MAX_TXT_STRING) continue;
      answers.push({ name: instance, type: "TXT", class: "IN", ttl: RECORD_TTL_S, data });
      if (answers.length > MAX_MULTIADDRS) break;
    }
    return answers;
  }

  /** Runs a socket handler; an error is reported, never thrown into the socket. */
  #guard(fn: () => void): void {
    try {
      fn();
    } catch (error) {
      this.context.onError(error as Error, false);
    }
  }
}

/**
 * The subset of a dgram socket that multicast-dns uses, dropping packets before
 * they are decoded when `admit` says so.
 */
class GuardedSocket extends EventEmitter {
  constructor(
    private readonly inner: dgram.Socket,
    admit: (size: number, from: dgram.RemoteInfo) => boolean,
  ) {
    super();
    inner.on("message", (message: Buffer, from: dgram.RemoteInfo) => {
      let admitted = false;
      try {
        admitted = admit(message.length, from);
      } catch { /* a packet we cannot judge is dropped */ }
      if (admitted) this.emit("message", message, from);
    });
    inner.on("error", (error) => this.emit("error", error));
    inner.on("listening", () => this.emit("listening"));
  }

  bind(port: number, address: string, callback: () => void): void {
    this.inner.bind(port, address, callback);
  }

  send(...args: unknown[]): void {
    const callback = args.at(-1) as (error: Error | null) => void;
    try {
      (this.inner.send as (...a: unknown[]) => void)(...args);
    } catch (error) {
      callback(error as Error);
    }
  }

  address(): ReturnType<dgram.Socket["address"]> {
    return this.inner.address();
  }

  close(callback: () => void): void {
    try {
      this.inner.close(callback);
    } catch {
      callback();
    }
  }
}

/** Token buckets for one interface: all sources together, and each source. */
class PacketLimits {
  readonly #all = new TokenBucket(PACKET_RATE.interface.burst, PACKET_RATE.interface.perSecond);
  readonly #sources = new Map<string, TokenBucket>();

  take(source: string): boolean {
    let bucket = this.#sources.get(source);
    if (bucket) {
      this.#sources.delete(source); // re-inserted below: the map stays in least-recent order
    } else {
      bucket = new TokenBucket(PACKET_RATE.source.burst, PACKET_RATE.source.perSecond);
      if (this.#sources.size >= MAX_SOURCES) {
        this.#sources.delete(this.#sources.keys().next().value!);
      }
    }
    this.#sources.set(source, bucket);
    return bucket.take() && this.#all.take();
  }
}

class TokenBucket {
  #tokens: number;
  #at = performance.now();

  constructor(readonly burst: number, readonly perSecond: number) {
    this.#tokens = burst;
  }

  take(): boolean {
    const now = performance.now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#at) / 1000) * this.perSecond);
    this.#at = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}

/**
 * The peers an mDNS response describes: for each PTR `<tag>` → instance, the
 * `dnsaddr=` TXT strings of that instance (answers or additionals) whose
 * multiaddrs carry one and the same valid peer id.
 */
function readAnswer(
  packet: Packet,
  tag: string,
  interfaceName: string,
): { peerId: string; multiaddrs: string[] }[] {
  const wanted = tag.toLowerCase();
  const instances = new Set<string>();
  for (const answer of packet.answers ?? []) {
    if (instances.size >= MAX_PEERS_PER_PACKET) break;
    if (
      answer.type === "PTR" && answer.name.toLowerCase() === wanted && answer.ttl !== 0 &&
      typeof answer.data === "string"
    ) {
      instances.add(answer.data.toLowerCase());
    }
  }
  const peers = [];
  for (const instance of instances) {
    const texts: string[] = [];
    for (const record of [...(packet.answers ?? []), ...(packet.additionals ?? [])]) {
      if (record.type !== "TXT" || record.name.toLowerCase() !== instance) continue;
      const data = Array.isArray(record.data) ? record.data : [record.data];
      for (const datum of data) {
        if (texts.length >= MAX_TXT_PER_PEER) break;
        const text = typeof datum === "string" ? datum : new TextDecoder().decode(datum);
        if (text.startsWith("dnsaddr=")) texts.push(text.slice("dnsaddr=".length));
      }
    }
    const peer = readAddresses(texts, interfaceName);
    if (peer) peers.push(peer);
  }
  return peers;
}

function readAddresses(
  texts: string[],
  interfaceName: string,
): { peerId: string; multiaddrs: string[] } | null {
  let peerId: string | null = null;
  const multiaddrs = new Set<string>();
  for (const text of texts) {
    if (multiaddrs.size >= MAX_MULTIADDRS) break;
    try {
      const address = multiaddr(text);
      const id = address.getComponents().findLast((c) => c.code === CODE_P2P)?.value;
      if (!id) continue;
      if (peerId === null) {
        peerIdFromString(id); // throws unless it is a valid peer id
        peerId = id;
      } else if (id !== peerId) {
        continue;
      }
      multiaddrs.add(withZone(address.decapsulateCode(CODE_P2P).getComponents(), interfaceName));
    } catch { /* not a multiaddr, or not a peer id: skip it */ }
  }
  if (!peerId || multiaddrs.size === 0) return null;
  // Link-local last: Deno's node:net (and so @libp2p/tcp) cannot dial them yet.
  const sorted = [...multiaddrs].sort((a, b) =>
    Number(a.startsWith("/ip6zone/")) - Number(b.startsWith("/ip6zone/"))
  );
  return { peerId, multiaddrs: sorted };
}

/** A heard multiaddr, link-local IPv6 given our interface as its zone (and others none). */
function withZone(components: Component[], interfaceName: string): string {
  const rest = components[0]?.name === "ip6zone" ? components.slice(1) : components;
  if (rest[0]?.name === "ip6" && isLinkLocal6(rest[0].value ?? "")) {
    return multiaddr([{ code: 42, name: "ip6zone", value: interfaceName }, ...rest]).toString();
  }
  return multiaddr(rest).toString();
}

/** Our listen addresses reachable on `link`, without `/p2p/` and without zones. */
function addressesOn(link: Link, listening: readonly string[]): string[] {
  const found = new Set<string>();
  for (const text of listening) {
    try {
      let components = multiaddr(text).decapsulateCode(CODE_P2P).getComponents();
      if (components[0]?.name === "ip6zone") {
        if (components[0].value !== link.name) continue;
        components = components.slice(1);
      }
      const [host, ...rest] = components;
      let hosts: string[] = [];
      if (host?.name === "ip4") {
        const mine = link.ipv4.map((a) => a.address);
        hosts = host.value === "0.0.0.0" ? mine : mine.filter((a) => a === host.value);
      } else if (host?.name === "ip6") {
        hosts = host.value === "::" ? link.ipv6 : link.ipv6.filter((a) => a === host.value);
      }
      for (const value of hosts) {
        found.add(
          multiaddr([{ ...host, value, bytes: undefined } as Component, ...rest]).toString(),
        );
      }
    } catch { /* not a multiaddr we can place: skip it */ }
  }
  return [...found];
}

/**
 * The machine's interfaces that are up, multicast-capable and not loopback, with
 * their addresses (Deno.networkInterfaces, and on Linux the link flags).
 */
function readLinks(only: ReadonlySet<string> | null): Map<string, Link> {
  const links = new Map<string, Link & { ipv4: Link["ipv4"]; ipv6: string[] }>();
  const usable = new Map<string, boolean>();
  const unready = unreadyIpv6();
  for (const entry of Deno.networkInterfaces()) {
    if (only && !only.has(entry.name)) continue;
    if (entry.address.startsWith("127.") || entry.address === "::1") continue;
    if (!usable.has(entry.name)) usable.set(entry.name, isUsable(entry.name));
    if (!usable.get(entry.name)) continue;
    let link = links.get(entry.name);
    if (!link) {
      link = { name: entry.name, ipv4: [], ipv6: [] };
      links.set(entry.name, link);
    }
    if (entry.family === "IPv4") {
      link.ipv4.push({ address: entry.address, netmask: entry.netmask });
      continue;
    }
    const address = entry.address.split("%")[0];
    if (unready.has(expandIpv6(address))) continue;
    link.ipv6.push(address);
    if (isLinkLocal6(address) && entry.scopeid && !link.linkLocal) {
      (link as { linkLocal?: Link["linkLocal"] }).linkLocal = { address, scopeId: entry.scopeid };
    }
  }
  return links;
}

/** Linux's IFA_F_DADFAILED and IFA_F_TENTATIVE (linux/if_addr.h). */
const IFA_UNREADY = 0x08 | 0x40;

/**
 * IPv6 addresses still checked for duplicates, or found duplicate (Linux,
 * /proc/net/if_inet6), as 32 hex digits: nothing can be sent from them yet.
 */
function unreadyIpv6(): Set<string> {
  const unready = new Set<string>();
  if (Deno.build.os !== "linux") return unready;
  let table: string;
  try {
    table = Deno.readTextFileSync("/proc/net/if_inet6");
  } catch {
    return unready;
  }
  for (const line of table.split("\n")) {
    const [hex, , , , flags] = line.trim().split(/\s+/);
    if (hex?.length === 32 && (Number.parseInt(flags, 16) & IFA_UNREADY) !== 0) unready.add(hex);
  }
  return unready;
}

/** An IPv6 address as 32 lower-case hex digits. */
function expandIpv6(address: string): string {
  const [head, tail] = address.toLowerCase().split("::");
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const groups = tail === undefined
    ? left
    : [...left, ...Array(8 - left.length - right.length).fill("0"), ...right];
  return groups.map((g) => g.padStart(4, "0")).join("");
}

/** Linux's IFF_UP, IFF_LOOPBACK and IFF_MULTICAST (linux/if.h). */
const IFF = { up: 0x1, loopback: 0x8, multicast: 0x1000 } as const;
/** Operational states (RFC 2863) of a link that cannot carry packets now. */
const LINK_DOWN = new Set(["down", "lowerlayerdown", "notpresent", "dormant"]);

/**
 * Whether an interface is up with a carrier, and multicast-capable (true where
 * that cannot be read).
 */
function isUsable(name: string): boolean {
  if (Deno.build.os !== "linux" || name.includes("/") || name.startsWith(".")) return true;
  let flags: number;
  let state: string;
  try {
    flags = Number.parseInt(Deno.readTextFileSync(`/sys/class/net/${name}/flags`).trim(), 16);
    state = Deno.readTextFileSync(`/sys/class/net/${name}/operstate`).trim();
  } catch {
    return true;
  }
  if (LINK_DOWN.has(state)) return false;
  if (!Number.isFinite(flags)) return true;
  return (flags & IFF.up) !== 0 && (flags & IFF.multicast) !== 0 && (flags & IFF.loopback) === 0;
}

function isLinkLocal6(address: string): boolean {
  const first = Number.parseInt(address.split(":")[0] || "0", 16);
  return (first & 0xffc0) === 0xfe80;
}

function ipv4ToInt(address: string): number | null {
  const parts = address.split(".");
  if (parts.length !== 4) return null;
  let value = 0;
  for (const part of parts) {
    const byte = Number(part);
    if (!Number.isInteger(byte) || byte < 0 || byte > 255) return null;
    value = value * 256 + byte;
  }
  return value;
}

function sameSubnet(ip: number, address: string, netmask: string): boolean {
  const ours = ipv4ToInt(address);
  const mask = ipv4ToInt(netmask);
  if (ours === null || mask === null) return false;
  return ((ip & mask) >>> 0) === ((ours & mask) >>> 0);
}

function positive(name: string, value: number): number {
  if (!(value > 0) || !Number.isFinite(value)) {
    throw new RangeError(
      `Cannot use ${name} as it is not a positive number of ms: received ${value}`,
    );
  }
  return value;
}
