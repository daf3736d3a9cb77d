/**
 * The mDNS socket of one interface and one address family, for mDNS discovery
 * (mesh/mdns.ts): joins the group on that interface, queries, answers at most
 * once a second, and reads at most what the token buckets allow, dropping
 * oversized and rate-limited packets before they are decoded.
 *
 * @module
 */
import type { Buffer } from "node:buffer";
import dgram from "node:dgram";
import { EventEmitter } from "node:events";
// @ts-types="@types/multicast-dns"
import multicastDns from "multicast-dns";
import { type Family, ipv4ToInt, type Link, sameSubnet } from "./mdns_links.ts";
import { type Answer, answerRecords, type Packet, readAnswer } from "./mdns_records.ts";

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

/** RFC 6762 §3 (IPv4) and §20 (IPv6). */
const GROUP = { IPv4: "224.0.0.251", IPv6: "ff02::fb" } as const;
/** RFC 6762 §17: an mDNS message is at most 9 000 bytes. */
export const MAX_PACKET_BYTES = 9_000;
/** RFC 6762 §6: a record is multicast on an interface at most once a second. */
const MIN_ANSWER_GAP_MS = 1_000;
/** Packets read per second, per interface and per source address (token buckets). */
export const PACKET_RATE = {
  interface: { burst: 400, perSecond: 200 },
  source: { burst: 20, perSecond: 10 },
} as const;
/** Sources whose buckets are kept per interface (the least recently heard go first). */
const MAX_SOURCES = 1_024;

/** What an {@linkcode InterfaceSocket} needs of the discovery that opened it. */
export interface SocketContext {
  /** UDP port. */
  readonly port: number;
  /** The DNS-SD service queried and answered. */
  readonly tag: string;
  /** Our instance name, `<peer id>.<tag>`. */
  readonly instance: string;
  /** Our peer id: answers carrying it are ours, and never reported. */
  readonly peerId: string;
  /** Our listen multiaddrs now. */
  readonly addresses: () => readonly string[];
  /** Called at every answer heard from another peer. */
  readonly onSighting: (sighting: MdnsSighting) => void;
  /** Called when the socket opens (joined the group) or closes. */
  readonly onChange: (change: MdnsInterfaceChange) => void;
  /** Whether this is the only IPv4 socket open. */
  readonly soleIpv4: () => boolean;
  /** `fatal`: the socket is unusable (it could not bind or join the group). */
  readonly onError: (error: Error, fatal: boolean) => void;
}

/** The mDNS socket of one interface and one address family. */
export class InterfaceSocket {
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

  /**
   * Opens the socket; it joins the group, queries and announces once bound.
   * @param address Its IPv4 address, or its IPv6 link-local address.
   */
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

  /** Whether it has joined the group and is not closed. */
  get ready(): boolean {
    return this.#ready && !this.#closed;
  }

  /** This socket, as an `interface` event says it opened (`open`) or closed. */
  describe(open: boolean): MdnsInterfaceChange {
    return { interfaceName: this.#link.name, family: this.family, address: this.address, open };
  }

  /** New facts about the interface (same key): announce if our answer here changed. */
  update(link: Link): void {
    this.#link = link;
    if (this.ready && this.#announced !== JSON.stringify(this.#answers())) this.#answerSoon();
  }

  /** Sends a PTR query for the service tag, if ready. */
  query(): void {
    if (!this.ready) return;
    this.#guard(() =>
      this.#mdns.query({ questions: [{ name: this.context.tag, type: "PTR" }] }, (error) => {
        if (error) this.context.onError(error, false);
      })
    );
  }

  /** Leaves the group and closes the socket; resolves once it is closed. */
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
    return answerRecords(this.#link, this.context, this.context.addresses());
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
