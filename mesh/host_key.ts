/**
 * The remote host of an address: the key of the per-host limits on connections
 * (admission.ts), streams (links.ts), storage shares (quota.ts) and the per-host
 * rate limit (rate_limit.ts).
 *
 * - IPv4: the address. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, what a
 *   dual-stack socket reports) is the IPv4 address it maps.
 * - IPv6: the /64 prefix (`2001:db8:1:2::/64`). A /64 is the smallest block a
 *   network normally hands out, and every device on it may pick any of its
 *   2^64 addresses (privacy extensions rotate them on purpose), so counting per
 *   address would bound nothing. The price: honest peers on one IPv6 LAN,
 *   talking over global or unique-local addresses, share one host's limits
 *   (and one host's rate limit). The mesh listens on IPv4 by default, where
 *   neighbours are distinct hosts.
 * - IPv6 link-local (`fe80::/10`): the whole address. Every neighbour on the
 *   link shares `fe80::/64`, and a neighbour that wants many addresses can take
 *   them from the LAN's IPv4 subnet as easily, so a /64 there would only punish
 *   honest neighbours.
 * - Anything else (no IP component, as an in-memory transport's): the address itself.
 *
 * @module
 */
import { type Multiaddr, multiaddr } from "@multiformats/multiaddr";

/**
 * The host part of a multiaddr (or of a bare IP address), as the module doc
 * says. Throws when `address` is a string that is not a multiaddr.
 */
export function hostKeyOf(address: Multiaddr | string): string {
  if (typeof address === "string" && !address.startsWith("/")) return hostOfIp(address);
  const ma = typeof address === "string" ? multiaddr(address) : address;
  for (const component of ma.getComponents()) {
    if ((component.name === "ip4" || component.name === "ip6") && component.value) {
      return hostOfIp(component.value);
    }
  }
  return ma.toString();
}

/** {@linkcode hostKeyOf}, or the address itself when it cannot be parsed. */
export function hostOf(address: string): string {
  try {
    return hostKeyOf(address);
  } catch {
    return address;
  }
}

/** The host key of an IP address. */
function hostOfIp(ip: string): string {
  if (!ip.includes(":")) return ip;
  const groups = parseIpv6(ip);
  if (!groups) return ip.toLowerCase();
  const hex = groups.map((g) => g.toString(16));
  const mapped = groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff;
  if (mapped) {
    return [groups[6] >> 8, groups[6] & 0xff, groups[7] >> 8, groups[7] & 0xff].join(".");
  }
  if ((groups[0] & 0xffc0) === 0xfe80) return hex.join(":");
  return `${hex.slice(0, 4).join(":")}::/64`;
}

/** The eight 16-bit groups of an IPv6 address (zone dropped), or null if it is not one. */
function parseIpv6(ip: string): number[] | null {
  let text = ip.split("%")[0].toLowerCase();
  const dotted = text.match(/^(.*:)(\d+)\.(\d+)\.(\d+)\.(\d+)$/);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(2).map(Number);
    if ([a, b, c, d].some((n) => n > 255)) return null;
    text = `${dotted[1]}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const part = (s: string) => (s === "" ? [] : s.split(":"));
  const head = part(halves[0]);
  const tail = halves.length === 2 ? part(halves[1]) : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  const groups = [...head, ...Array(halves.length === 2 ? missing : 0).fill("0"), ...tail];
  if (groups.some((g) => !/^[0-9a-f]{1,4}$/.test(g))) return null;
  return groups.map((g) => parseInt(g, 16));
}
