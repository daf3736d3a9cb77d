/**
 * What the healing tests (healing_lab_test.ts) and benchmark (healing_bench.ts)
 * share: the line A — B — C of namespace hosts with mDNS on, links that go down
 * and come back as a network manager would bring them back, addresses that
 * change, `relaymail daemon` processes, and the checks that every mail arrived
 * exactly once and every receipt came back. Built on tests/lab/, which it
 * does not change.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  canMakeNamespaces,
  type Host,
  type Lab,
  type LabProcess,
  labTest,
  waitFor,
} from "../lab/netns.ts";
import {
  MAIN,
  pairOffline,
  type Person,
  person,
  PORT,
  withMail,
  withMeshStore,
} from "../lab/people.ts";

export { waitFor };

/** How often the daemons ask for peers by mDNS, in ms. */
export const MDNS_INTERVAL_MS = 1_000;

/**
 * Resolves after `ms`: for time the scenario needs to pass (a link kept down,
 * a sender's pace). To wait for something to happen, use {@linkcode waitFor}.
 */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

/**
 * Registers a namespace test ({@linkcode labTest}): it fails under `CI=true`
 * without root, and elsewhere is skipped with the reason printed.
 */
export function healingTest(name: string, fn: (lab: Lab) => Promise<void>): void {
  if (!canMakeNamespaces() && Deno.env.get("CI") !== "true") {
    console.log(`Skipping "${name}": it needs root and iproute2 to create network namespaces`);
  }
  labTest(name, fn);
}

/** One end of a {@linkcode Wire}. */
export interface End {
  readonly host: Host;
  readonly interface: string;
  /** Its IPv4 address now (see {@linkcode Wire.readdress}). */
  address: string;
  /** The metric of its multicast route, or null without one. */
  multicast: number | null;
}

/**
 * A veth link between two hosts that can go down and come back. Taking an
 * interface down makes the kernel drop the routes through it, the multicast
 * route mDNS needs among them; bringing it back puts them back, as a network
 * manager would when Wi-Fi reassociates.
 */
export class Wire {
  constructor(readonly lab: Lab, readonly a: End, readonly b: End) {}

  /** Links `a` and `b`; each end gets a multicast route (so mDNS works) unless told otherwise. */
  static async create(
    lab: Lab,
    a: Host,
    b: Host,
    multicast: { a?: number | null; b?: number | null } = {},
  ): Promise<Wire> {
    const link = await lab.link(a, b);
    const wire = new Wire(
      lab,
      { host: a, interface: link.aInterface, address: link.aAddress, multicast: null },
      { host: b, interface: link.bInterface, address: link.bAddress, multicast: null },
    );
    for (const [end, metric] of [[wire.a, multicast.a], [wire.b, multicast.b]] as const) {
      if (metric === null) continue;
      end.multicast = metric ?? 0;
      await addMulticastRoute(end);
    }
    return wire;
  }

  /** Takes the link down at `side`'s end (the other end loses carrier). */
  async cut(side: "a" | "b" = "a"): Promise<void> {
    await this.lab.setLink(this[side].host, this[side].interface, false);
  }

  /**
   * Brings `side`'s end back up and its multicast route with it; returns the
   * moment the link was up (ms since the epoch), before the route came back.
   */
  async restore(side: "a" | "b" = "a"): Promise<number> {
    const end = this[side];
    await this.lab.setLink(end.host, end.interface, true);
    const upAt = Date.now();
    if (end.multicast !== null) await addMulticastRoute(end);
    return upAt;
  }

  /**
   * Gives `side`'s end a new address on the same subnet, as a DHCP client does
   * with a new lease: the new one is added, then the old one removed. The
   * interface is never without an address (that would make the kernel drop
   * every route through it, the multicast route too), and the new address is
   * promoted to primary rather than deleted with the old one.
   */
  async readdress(side: "a" | "b", address: string): Promise<void> {
    const end = this[side];
    await end.host.exec("sysctl", [
      "-q",
      "-w",
      `net.ipv4.conf.${end.interface}.promote_secondaries=1`,
    ]);
    await end.host.exec("ip", ["addr", "add", `${address}/24`, "dev", end.interface]);
    await end.host.exec("ip", ["addr", "del", `${end.address}/24`, "dev", end.interface]);
    end.address = address;
    if (end.multicast !== null) await addMulticastRoute(end);
  }
}

async function addMulticastRoute(end: End): Promise<void> {
  await end.host.exec("ip", [
    "route",
    "replace",
    "224.0.0.0/4",
    "dev",
    end.interface,
    "metric",
    String(end.multicast ?? 0),
  ]);
}

/** The line A — B — C: Alice and Carol, paired, and Bob, a stranger who relays. */
export interface Line {
  readonly lab: Lab;
  readonly alice: Person;
  readonly bob: Person;
  readonly carol: Person;
  /** Alice — Bob. */
  readonly ab: Wire;
  /** Bob — Carol. */
  readonly bc: Wire;
}

/** Options of {@linkcode line}. */
export interface LineOptions {
  /**
   * Where the relay's mDNS goes (default `"a"`): its multicast route on the
   * A side only, as on a host whose one multicast route follows its default
   * route; or `"both"`, a route on each interface (the B — C one with a higher
   * metric), for a relay that must answer on both segments.
   */
  readonly relayMulticast?: "a" | "both";
}

/** Builds the line A — B — C; A and C never hear each other. */
export async function line(lab: Lab, options: LineOptions = {}): Promise<Line> {
  const [a, b, c] = [await lab.host("a"), await lab.host("b"), await lab.host("c")];
  const ab = await Wire.create(lab, a, b);
  const bc = await Wire.create(lab, b, c, {
    a: options.relayMulticast === "both" ? 100 : null,
  });
  const alice = await person(lab, a, "Alice");
  const bob = await person(lab, b, "Bob");
  const carol = await person(lab, c, "Carol");
  await pairOffline(alice, carol);
  return { lab, alice, bob, carol, ab, bc };
}

/** Options of {@linkcode daemon}. */
export interface HealingDaemonOptions {
  /** Peers to dial (`--peer`; default none: mDNS only). */
  readonly peers?: readonly string[];
  /** `--stall-timeout`, in ms (default: the daemon's). */
  readonly stallTimeoutMs?: number;
}

/** Starts `relaymail daemon` for `p` on its host, with mDNS on and {@linkcode MDNS_INTERVAL_MS}. */
export function daemon(p: Person, options: HealingDaemonOptions = {}): LabProcess {
  const args = [
    "run",
    "-A",
    MAIN,
    "-d",
    p.dir,
    "daemon",
    "--listen",
    `/ip4/0.0.0.0/tcp/${PORT}`,
    "--mdns",
    "--mdns-interval",
    String(MDNS_INTERVAL_MS),
  ];
  for (const peer of options.peers ?? []) args.push("--peer", peer);
  if (options.stallTimeoutMs) args.push("--stall-timeout", String(options.stallTimeoutMs));
  p.daemon = p.host.spawn(`daemon-${p.name}`, Deno.execPath(), args, { RELAYMAIL_MESH_DEBUG: "1" });
  return p.daemon;
}

/** Sends `count` mails from `from` to `to`; returns their message ids. */
export async function sendMails(
  from: Person,
  to: string,
  count: number,
  subject: string,
  bodyBytes = 200,
): Promise<string[]> {
  return await withMail(from, async (node) => {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      const label = count === 1 ? subject : `${subject} ${i + 1}`;
      const body = `${label}\n${"x".repeat(Math.max(0, bodyBytes - label.length - 1))}`;
      ids.push((await node.mailbox.send({ to: [to], subject: label, body })).id);
    }
    return ids;
  });
}

/** When each of `ids` reached `p`'s inbox (ms since the epoch), for those that did. */
export function arrivals(p: Person, ids: readonly string[]): Promise<Map<string, number>> {
  const wanted = new Set(ids);
  return withMail(p, (node) =>
    new Map(
      node.mailbox.list("inbox", { limit: 100_000 })
        .filter((m) => wanted.has(m.id))
        .map((m) => [m.id, m.receivedAt!.getTime()]),
    ));
}

/** Waits until all of `ids` are in `p`'s inbox; returns when each arrived. */
export async function waitForArrivals(
  p: Person,
  ids: readonly string[],
  timeoutMs: number,
  what = `${ids.length} mail(s) in ${p.name}'s inbox`,
): Promise<Map<string, number>> {
  let last = new Map<string, number>();
  try {
    await waitFor(what, async () => (last = await arrivals(p, ids)).size === ids.length, timeoutMs);
  } catch (error) {
    throw new Error(`${(error as Error).message}: ${last.size} of ${ids.length} arrived`, {
      cause: error,
    });
  }
  return last;
}

/** The delivery state of each of `ids` in `p`'s sent folder (one recipient each). */
export function deliveryStates(p: Person, ids: readonly string[]): Promise<Map<string, string>> {
  const wanted = new Set(ids);
  return withMail(p, (node) =>
    new Map(
      node.mailbox.list("sent", { limit: 100_000 })
        .filter((m) => wanted.has(m.id))
        .map((m) => [m.id, m.deliveries.map((d) => d.state).join(",")]),
    ));
}

/** Waits until `p`'s sent folder shows all of `ids` delivered (their receipts back). */
export async function waitForReceipts(
  p: Person,
  ids: readonly string[],
  timeoutMs: number,
): Promise<void> {
  let last = new Map<string, string>();
  const delivered = () => [...last.values()].filter((s) => s === "delivered").length;
  try {
    await waitFor(
      `${ids.length} receipt(s) back at ${p.name}`,
      async () => {
        last = await deliveryStates(p, ids);
        return delivered() === ids.length;
      },
      timeoutMs,
    );
  } catch (error) {
    const states = [...new Set(last.values())].map((s) =>
      `${[...last.values()].filter((v) => v === s).length} ${s}`
    );
    throw new Error(`${(error as Error).message}: ${states.join(", ")}`, { cause: error });
  }
}

/** Runs the `relaymail` CLI with `--json` on `p`'s data directory, inside its host. */
export async function cliJson<T>(p: Person, args: readonly string[]): Promise<T> {
  const output = await p.host.exec(Deno.execPath(), [
    "run",
    "-A",
    MAIN,
    "-d",
    p.dir,
    "--json",
    ...args,
  ]);
  return JSON.parse(output);
}

/**
 * Asserts, through the CLI, that `recipient`'s inbox holds each of `ids`
 * exactly once and nothing from `sender` besides, and that `sender`'s sent
 * folder (`sent --json`) shows every one of them delivered.
 */
export async function assertDeliveredOnce(
  sender: Person,
  recipient: Person,
  ids: readonly string[],
): Promise<void> {
  // With --limit, --json prints a page: { messages, next }.
  const { messages: inbox } = await cliJson<{ messages: { id: string; from: { id: string } }[] }>(
    recipient,
    ["inbox", "--limit", "100000"],
  );
  const fromSender = inbox.filter((m) => m.from.id === sender.id).map((m) => m.id);
  const counts = new Map<string, number>();
  for (const id of fromSender) counts.set(id, (counts.get(id) ?? 0) + 1);
  const missing = ids.filter((id) => !counts.has(id));
  const twice = [...counts].filter(([, n]) => n > 1).map(([id]) => id);
  const unexpected = fromSender.filter((id) => !ids.includes(id));
  assert.deepEqual(
    { missing, twice, unexpected },
    { missing: [], twice: [], unexpected: [] },
    `${recipient.name}'s inbox should hold each of the ${ids.length} mails exactly once`,
  );
  const { messages: sent } = await cliJson<
    { messages: { id: string; deliveries: { state: string }[] }[] }
  >(
    sender,
    ["sent", "--limit", "100000"],
  );
  const states = new Map(sent.map((m) => [m.id, m.deliveries.map((d) => d.state).join(",")]));
  const notDelivered = ids.filter((id) => states.get(id) !== "delivered")
    .map((id) => `${id}: ${states.get(id) ?? "not in sent"}`);
  assert.deepEqual(
    notDelivered,
    [],
    `${sender.name}'s sent folder should show every mail delivered`,
  );
}

/** Asserts that none of these daemons exited (none was restarted behind the test's back). */
export function assertStillRunning(...people: readonly Person[]): void {
  for (const p of people) {
    assert.ok(p.daemon && !p.daemon.exited, `${p.name}'s daemon exited`);
  }
}

/**
 * The peers `p`'s node remembers and redials, with the addresses it dials them
 * at (saved by the node every 30 s and when it stops), for failure reports.
 */
export function rememberedPeers(p: Person): string {
  const bytes = withMeshStore(p, (store) => store.getMeta("known-peers"));
  return bytes ? new TextDecoder().decode(bytes) : "(none saved yet)";
}

/** The `q`-quantile (0..1) of `values`, nearest rank. */
export function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/** `ms` as seconds with one decimal, for reports. */
export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
