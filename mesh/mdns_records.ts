/**
 * The DNS records of mDNS discovery (mesh/mdns.ts), as `@libp2p/mdns` writes
 * them (libp2p's mDNS discovery spec): reading the peers a response describes,
 * within bounds, and writing our own answer for one interface.
 *
 * @module
 */
import { peerIdFromString } from "@libp2p/peer-id";
import { CODE_P2P, type Component, multiaddr } from "@multiformats/multiaddr";
// @ts-types="@types/multicast-dns"
import type multicastDns from "multicast-dns";
import { isLinkLocal6, type Link } from "./mdns_links.ts";

/** RFC 6763 §6.1: one TXT string is at most 255 bytes. */
const MAX_TXT_STRING = 255;
/** The TTL @libp2p/mdns gives its records, in seconds. */
const RECORD_TTL_S = 120;
/** Addresses taken from one peer's answer, and sent in ours. */
export const MAX_MULTIADDRS = 16;
/** Peers (PTR records) taken from one packet. */
export const MAX_PEERS_PER_PACKET = 4;
/** TXT strings looked at per peer in one packet. */
const MAX_TXT_PER_PEER = 32;

/** An mDNS response, as multicast-dns decodes it. */
export type Packet = multicastDns.ResponsePacket;
/** One record of a response. */
export type Answer = Packet["answers"][number];

/** Who we are in our records: the service tag, our instance name under it, our peer id. */
export interface RecordIdentity {
  /** The DNS-SD service tag (PTR name). */
  readonly tag: string;
  /** Our instance: `<peer id>.<tag>`. */
  readonly instance: string;
  /** Our libp2p peer id. */
  readonly peerId: string;
}

/**
 * Our PTR and TXT records for `link`: PTR `<tag>` → our instance, then one TXT
 * `dnsaddr=` string per listen address reachable on it, at most
 * {@linkcode MAX_MULTIADDRS}.
 */
export function answerRecords(
  link: Link,
  self: RecordIdentity,
  listening: readonly string[],
): Answer[] {
  const { tag, instance, peerId } = self;
  const answers: Answer[] = [{
    name: tag,
    type: "PTR",
    class: "IN",
    ttl: RECORD_TTL_S,
    data: instance,
  }];
  for (const address of addressesOn(link, listening)) {
    const data = `dnsaddr=${address}/p2p/${peerId}`;
    if (data.length > MAX_TXT_STRING) continue;
    answers.push({ name: instance, type: "TXT", class: "IN", ttl: RECORD_TTL_S, data });
    if (answers.length > MAX_MULTIADDRS) break;
  }
  return answers;
}

/**
 * The peers an mDNS response describes: for each PTR `<tag>` → instance, the
 * `dnsaddr=` TXT strings of that instance (answers or additionals) whose
 * multiaddrs carry one and the same valid peer id.
 */
export function readAnswer(
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
