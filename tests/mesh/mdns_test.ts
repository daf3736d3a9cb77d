/**
 * mesh/mdns.ts between real hosts: one probe process (tests/fixtures/mdns_probe.ts)
 * per network namespace, joined by veth links (tests/lab/netns.ts). Needs root;
 * CI runs as root. Sighting latencies are printed for the record.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  canMakeNamespaces,
  type Host,
  type Lab,
  type LabProcess,
  labTest,
  waitFor,
} from "../lab/netns.ts";

if (!canMakeNamespaces() && Deno.env.get("CI") !== "true") {
  console.warn("mdns_test.ts: skipped, it needs root and iproute2 to create network namespaces");
}

const PROBE = join(import.meta.dirname!, "..", "fixtures", "mdns_probe.ts");
const LISTEN = ["/ip4/0.0.0.0/tcp/4747", "/ip6/::/tcp/4747"];

/** One line a probe printed. */
interface ProbeEvent {
  event: string;
  /** Wall clock, ms. */
  at: number;
  peerId?: string;
  multiaddrs?: string[];
  interfaceName?: string;
  family?: "IPv4" | "IPv6";
  address?: string;
  open?: boolean;
  floodPeerId?: string;
  oversizedPeerId?: string;
  [key: string]: unknown;
}

/** A probe running in a lab host, read through its log. */
class Probe {
  constructor(readonly process: LabProcess, readonly peerId: string) {}

  static async start(host: Host, config: Record<string, unknown>): Promise<Probe> {
    const process = host.spawn("mdns", Deno.execPath(), [
      "run",
      "-A",
      PROBE,
      JSON.stringify(config),
    ]);
    const ready = await waitFor(`the probe on ${host.name} to start`, async () => {
      if (process.exited) throw new Error(`The probe on ${host.name} exited`);
      return (await readEvents(process)).find((e) => e.event === "ready");
    });
    return new Probe(process, ready!.peerId ?? "");
  }

  events(): Promise<ProbeEvent[]> {
    return readEvents(this.process);
  }

  /** Its sightings of `peerId` (IPv4 or IPv6 sockets, or both). */
  async sightings(peerId: string, family?: "IPv4" | "IPv6"): Promise<ProbeEvent[]> {
    return (await this.events()).filter((e) =>
      e.event === "peer" && e.peerId === peerId && (!family || e.family === family)
    );
  }

  /** Waits for a sighting of `peerId` after `since` that satisfies `check`. */
  async sees(
    what: string,
    peerId: string,
    check: (e: ProbeEvent) => boolean = () => true,
    since = 0,
    timeoutMs = 15_000,
  ): Promise<ProbeEvent> {
    return (await waitFor(
      what,
      async () => (await this.sightings(peerId)).find((e) => e.at >= since && check(e)),
      timeoutMs,
    ))!;
  }

  /** Its sockets' open and close events. */
  async interfaces(): Promise<ProbeEvent[]> {
    return (await this.events()).filter((e) => e.event === "interface");
  }
}

async function readEvents(process: LabProcess): Promise<ProbeEvent[]> {
  const events: ProbeEvent[] = [];
  for (const line of (await process.log()).split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      events.push(JSON.parse(line));
    } catch { /* a line still being written */ }
  }
  return events;
}

const hasAddress = (address: string) => (e: ProbeEvent) =>
  e.multiaddrs?.includes(`/ip4/${address}/tcp/4747`) ?? false;

/**
 * One Ethernet segment: a switch host with a bridge, and a veth from each host
 * to it, addressed `10.<lab subnet>.<third>.<k + 1>` (netns.ts joins only pairs).
 */
async function segment(
  lab: Lab,
  hosts: Host[],
  third: number,
): Promise<{ interfaceName: string; address: string }[]> {
  const sw = await lab.host(`sw${third}`);
  const bridge = `br${third}`;
  await sw.exec("ip", ["link", "add", bridge, "type", "bridge"]);
  await sw.exec("ip", ["link", "set", bridge, "up"]);
  const ends = [];
  for (const [k, host] of hosts.entries()) {
    const hostEnd = `${lab.prefix}s${third}h${k}`.slice(0, 15);
    const switchEnd = `${lab.prefix}s${third}p${k}`.slice(0, 15);
    await new Deno.Command("ip", {
      args: [
        "link",
        "add",
        hostEnd,
        "netns",
        host.namespace,
        "type",
        "veth",
        "peer",
        "name",
        switchEnd,
        "netns",
        sw.namespace,
      ],
    }).output().then((o) => {
      if (!o.success) throw new Error(`ip link add failed: ${new TextDecoder().decode(o.stderr)}`);
    });
    await sw.exec("ip", ["link", "set", switchEnd, "master", bridge]);
    await sw.exec("ip", ["link", "set", switchEnd, "up"]);
    const address = `10.${lab.subnet}.${third}.${k + 1}`;
    await host.exec("ip", ["addr", "add", `${address}/24`, "dev", hostEnd]);
    await host.exec("ip", ["link", "set", hostEnd, "up"]);
    ends.push({ interfaceName: hostEnd, address });
  }
  return ends;
}

labTest(
  "MdnsDiscovery: two hosts on one segment see each other, again at every interval",
  async (lab) => {
    const [hostA, hostB] = [await lab.host("a"), await lab.host("b")];
    const link = await lab.link(hostA, hostB);
    const config = { intervalMs: 1_000, addresses: LISTEN };
    const a = await Probe.start(hostA, config);
    const b = await Probe.start(hostB, config);

    const bSeesA = await b.sees("B to see A", a.peerId, hasAddress(link.aAddress));
    const aSeesB = await a.sees("A to see B", b.peerId, hasAddress(link.bAddress));
    const bOpened = (await b.interfaces()).find((e) => e.open && e.family === "IPv4")!;
    console.log(
      `first sighting after B's socket opened: B saw A in ${bSeesA.at - bOpened.at} ms, ` +
        `A saw B in ${aSeesB.at - bOpened.at} ms`,
    );
    assert.equal(aSeesB.interfaceName, link.aInterface);
    assert.equal(bSeesA.interfaceName, link.bInterface);
    assert.ok(!aSeesB.multiaddrs!.some((m) => m.includes("/p2p/")), "Sightings carry no /p2p/");

    // Not only the first: a sighting every interval, on each side.
    const since = Date.now();
    await waitFor(
      "three more sightings each way",
      async () =>
        (await a.sightings(b.peerId, "IPv4")).filter((e) => e.at > since).length >= 3 &&
        (await b.sightings(a.peerId, "IPv4")).filter((e) => e.at > since).length >= 3,
      10_000,
    );
    const times = (await a.sightings(b.peerId, "IPv4")).filter((e) => e.at > since).map((e) =>
      e.at
    );
    const gaps = times.slice(1).map((t, i) => t - times[i]);
    console.log(`gaps between A's sightings of B (IPv4): ${gaps.join(", ")} ms`);
    assert.ok(gaps.every((g) => g > 500 && g < 2_500), `Gaps near the 1 s interval: ${gaps}`);
    // Never ourselves.
    assert.equal((await a.sightings(a.peerId)).length, 0);
  },
);

labTest(
  "MdnsDiscovery: a relay with two interfaces bridges its segments, with each side's address",
  async (lab) => {
    const [hostA, hostR, hostC] = [await lab.host("a"), await lab.host("r"), await lab.host("c")];
    const ar = await lab.link(hostA, hostR);
    const rc = await lab.link(hostR, hostC);
    const config = { intervalMs: 1_000, addresses: LISTEN };
    const [a, r, c] = [
      await Probe.start(hostA, config),
      await Probe.start(hostR, config),
      await Probe.start(hostC, config),
    ];

    await r.sees(
      "R to see A on A's segment",
      a.peerId,
      (e) => e.interfaceName === ar.bInterface && hasAddress(ar.aAddress)(e),
    );
    await r.sees(
      "R to see C on C's segment",
      c.peerId,
      (e) => e.interfaceName === rc.aInterface && hasAddress(rc.bAddress)(e),
    );
    await a.sees("A to see R", r.peerId, hasAddress(ar.bAddress));
    await c.sees("C to see R", r.peerId, hasAddress(rc.aAddress));

    let rLinkLocal = new Map<string | undefined, string>();
    await waitFor("R's IPv6 sockets on both segments", async () => {
      rLinkLocal = new Map(
        (await r.interfaces()).filter((e) => e.family === "IPv6" && e.open)
          .map((e) => [e.interfaceName, e.address!]),
      );
      return rLinkLocal.has(ar.bInterface) && rLinkLocal.has(rc.aInterface);
    });
    assert.ok(rLinkLocal.has(ar.bInterface) && rLinkLocal.has(rc.aInterface));
    // A negative check (nothing crosses between segments), so a duration: three
    // more intervals, on both families, in which a leak would show.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    for (const s of await a.sightings(r.peerId)) {
      const all = s.multiaddrs!.join(" ");
      assert.ok(
        !all.includes(`/${rc.aAddress}/`),
        `A must not get R's address on C's side: ${all}`,
      );
      assert.ok(!all.includes(`/${rLinkLocal.get(rc.aInterface)}/`), `Nor its link-local: ${all}`);
    }
    for (const s of await c.sightings(r.peerId)) {
      const all = s.multiaddrs!.join(" ");
      assert.ok(
        !all.includes(`/${ar.bAddress}/`),
        `C must not get R's address on A's side: ${all}`,
      );
      assert.ok(!all.includes(`/${rLinkLocal.get(ar.bInterface)}/`), `Nor its link-local: ${all}`);
    }
    // R speaks on both segments, but A and C never hear each other.
    assert.equal((await a.sightings(c.peerId)).length, 0);
    assert.equal((await c.sightings(a.peerId)).length, 0);
  },
);

labTest(
  "MdnsDiscovery: a roaming host is seen at its new address within seconds, without a restart",
  async (lab) => {
    const [hostH, hostP] = [await lab.host("h"), await lab.host("p")];
    const first = await lab.link(hostH, hostP);
    // A query a minute: only roaming (a rescan every 2 s, then a query and an
    // announcement) can explain a sighting within seconds.
    const config = { intervalMs: 60_000, addresses: LISTEN };
    const h = await Probe.start(hostH, config);
    const p = await Probe.start(hostP, config);
    await p.sees("P to see H on the first link", h.peerId, hasAddress(first.aAddress));

    // Its interface goes down, another comes up with another address.
    await lab.setLink(hostH, first.aInterface, false);
    const moved = Date.now();
    const second = await lab.link(hostH, hostP);
    const seen = await p.sees(
      "P to see H on the new link",
      h.peerId,
      hasAddress(second.aAddress),
      moved,
    );
    const back = await h.sees(
      "H to see P on the new link",
      p.peerId,
      hasAddress(second.bAddress),
      moved,
    );
    console.log(
      `after a new interface came up: P saw H in ${seen.at - moved} ms, H saw P in ${
        back.at - moved
      } ms`,
    );
    assert.ok(seen.at - moved < 8_000 && back.at - moved < 8_000);
    await waitFor(
      "H to close its socket on the link that went down",
      async () =>
        (await h.interfaces()).some((e) => !e.open && e.interfaceName === first.aInterface),
    );

    // Its address changes on the same interface (a new DHCP lease).
    const newAddress = second.aAddress.replace(/\.\d+$/, ".77");
    // (Deleting a primary address deletes the secondaries of its subnet: delete first.)
    await hostH.exec("ip", ["addr", "del", `${second.aAddress}/24`, "dev", second.aInterface]);
    await hostH.exec("ip", ["addr", "add", `${newAddress}/24`, "dev", second.aInterface]);
    const changed = Date.now();
    const again = await p.sees(
      "P to see H at its new address",
      h.peerId,
      hasAddress(newAddress),
      changed,
    );
    console.log(`after an address change: P saw H in ${again.at - changed} ms`);
    assert.ok(again.at - changed < 8_000);
  },
);

labTest(
  "MdnsDiscovery: IPv6 link-local, ff02::fb on each interface, zoned addresses",
  async (lab) => {
    const [hostA, hostB] = [await lab.host("a"), await lab.host("b")];
    const link = await lab.link(hostA, hostB);
    // IPv6 only: no IPv4 address, so no IPv4 socket.
    await hostA.exec("ip", ["addr", "flush", "dev", link.aInterface, "scope", "global"]);
    await hostB.exec("ip", ["addr", "flush", "dev", link.bInterface, "scope", "global"]);
    const config = { intervalMs: 1_000, addresses: ["/ip6/::/tcp/4747"] };
    const a = await Probe.start(hostA, config);
    const b = await Probe.start(hostB, config);

    const seen = await a.sees("A to see B over IPv6", b.peerId, (e) => e.family === "IPv6");
    await b.sees("B to see A over IPv6", a.peerId, (e) => e.family === "IPv6");
    const bLinkLocal = (await b.interfaces()).find((e) => e.family === "IPv6" && e.open)!.address;
    const aOpened = (await a.interfaces()).find((e) => e.family === "IPv6" && e.open)!;
    console.log(`IPv6: A saw B ${seen.at - aOpened.at} ms after A's socket opened`);
    assert.deepEqual(seen.multiaddrs, [`/ip6zone/${link.aInterface}/ip6/${bLinkLocal}/tcp/4747`]);
    assert.equal((await a.interfaces()).filter((e) => e.family === "IPv4").length, 0);
  },
);

labTest("MdnsDiscovery and @libp2p/mdns find each other", async (lab) => {
  const [hostA, hostB] = [await lab.host("a"), await lab.host("b")];
  const link = await lab.link(hostA, hostB);
  // @libp2p/mdns sends by the default multicast route.
  await lab.multicast(hostB, link.bInterface);
  const ours = await Probe.start(hostA, { intervalMs: 1_000, addresses: LISTEN });
  const theirs = await Probe.start(hostB, { mode: "libp2p", intervalMs: 1_000 });

  const seen = await ours.sees(
    "ours to see the libp2p node",
    theirs.peerId,
    (e) => e.multiaddrs!.some((m) => m.startsWith(`/ip4/${link.bAddress}/tcp/`)),
  );
  assert.ok(seen.multiaddrs!.length <= 16);
  await waitFor(
    "the libp2p node to discover ours",
    async () =>
      (await theirs.events()).find((e) =>
        e.event === "discovery" && e.peerId === ours.peerId &&
        e.multiaddrs!.includes(`/ip4/${link.aAddress}/tcp/4747`)
      ),
    15_000,
  );
});

labTest(
  "MdnsDiscovery bounds what a flooding host makes it read, and still sees honest peers",
  async (lab) => {
    const [hostV, hostH, hostF] = [await lab.host("v"), await lab.host("h"), await lab.host("f")];
    const [, , flooder] = await segment(lab, [hostV, hostH, hostF], 200);
    const config = { intervalMs: 1_000, addresses: LISTEN, ipv6: false };
    const victim = await Probe.start(hostV, config);
    const honest = await Probe.start(hostH, config);
    await victim.sees("the victim to see the honest peer", honest.peerId);

    const flood = await Probe.start(hostF, {
      mode: "flood",
      from: flooder.address,
      perSecond: 1_000,
    });
    const { floodPeerId, oversizedPeerId } = (await flood.events()).find((e) =>
      e.event === "ready"
    )!;
    const start = Date.now();
    // The flood runs for five seconds, counted second by second: a duration.
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    const end = Date.now();
    const sent = Math.max(...(await flood.events()).map((e) => Number(e.sent ?? 0)));

    const forged = (await victim.sightings(floodPeerId!)).filter((e) =>
      e.at >= start && e.at <= end
    );
    const perSecond = [0, 1, 2, 3, 4].map((k) =>
      forged.filter((e) => e.at >= start + k * 1000 && e.at < start + (k + 1) * 1000).length
    );
    console.log(
      `flood: ${sent} forged answers sent, ${forged.length} read in ${end - start} ms ` +
        `(per second: ${perSecond.join(", ")})`,
    );
    assert.ok(sent > 2_000, `The flood ran: ${sent} sent`);
    assert.ok(
      forged.length > 0,
      "Some forged answers are read: the limit, not a fault, drops the rest",
    );
    assert.ok(
      forged.length <= 20 + 10 * (end - start) / 1000 + 5,
      `At most 10 a second: ${forged.length}`,
    );
    assert.ok(forged.every((e) => e.multiaddrs!.length <= 16));
    assert.equal(
      (await victim.sightings(oversizedPeerId!)).length,
      0,
      "Oversized packets are dropped",
    );
    const honestDuring = (await victim.sightings(honest.peerId)).filter((e) =>
      e.at >= start && e.at <= end
    );
    assert.ok(
      honestDuring.length >= 3,
      `The honest peer is still seen: ${honestDuring.length} times`,
    );
    assert.ok(!victim.process.exited);
  },
);
