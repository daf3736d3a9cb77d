/**
 * The machine's network interfaces as mDNS discovery (mesh/mdns.ts) sees them:
 * those that are up, multicast-capable and not loopback, with their addresses,
 * read from `Deno.networkInterfaces()` and, on Linux, from the link flags in
 * /sys/class/net and the address flags in /proc/net/if_inet6. Also the address
 * arithmetic the sockets need (subnets, link-local IPv6).
 *
 * @module
 */

/** An address family. */
export type Family = "IPv4" | "IPv6";

/** One interface as read at the last scan. */
export interface Link {
  /** The interface's name (`eth0`). */
  readonly name: string;
  /** Its IPv4 addresses, with their netmasks. */
  readonly ipv4: { address: string; netmask: string }[];
  /** Its IPv6 addresses, link-local and others. */
  readonly ipv6: string[];
  /** Its first link-local IPv6 address and the interface index. */
  readonly linkLocal?: { address: string; scopeId: number };
}

/**
 * The machine's interfaces that are up, multicast-capable and not loopback, with
 * their addresses (Deno.networkInterfaces, and on Linux the link flags).
 */
export function readLinks(only: ReadonlySet<string> | null): Map<string, Link> {
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

/** Whether an IPv6 address is link-local (fe80::/10). */
export function isLinkLocal6(address: string): boolean {
  const first = Number.parseInt(address.split(":")[0] || "0", 16);
  return (first & 0xffc0) === 0xfe80;
}

/** A dotted IPv4 address as an unsigned 32-bit number, or null if it is not one. */
export function ipv4ToInt(address: string): number | null {
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

/** Whether `ip` (from {@linkcode ipv4ToInt}) is in the subnet of `address` under `netmask`. */
export function sameSubnet(ip: number, address: string, netmask: string): boolean {
  const ours = ipv4ToInt(address);
  const mask = ipv4ToInt(netmask);
  if (ours === null || mask === null) return false;
  return ((ip & mask) >>> 0) === ((ours & mask) >>> 0);
}
