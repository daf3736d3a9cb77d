/**
 * Admission of inbound connections, exercised on loopback (mDNS off) against a
 * libp2p node built the way `MeshNode.create` builds its own, flooded by a
 * separate attacker process from many loopback source addresses.
 *
 * `RELAYMAIL_ADMISSION_OFF=1` builds the target without Admission, to see the
 * flood test fail; `RELAYMAIL_ADMISSION_DEBUG=1` prints the measured times.
 */
// An honest peer must get in within 5 s under a flood: a quiet machine's deadline.
// test-set: serial
import assert from "node:assert/strict";
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import type { Connection, MultiaddrConnection } from "@libp2p/interface";
import { tcp } from "@libp2p/tcp";
import { multiaddr } from "@multiformats/multiaddr";
import { createLibp2p, type Libp2p } from "libp2p";
import { Admission, type AdmissionLimits, DEFAULT_ADMISSION_LIMITS } from "../../mesh/admission.ts";
import { waitFor } from "../helpers.ts";

const ECHO = "/relaymail/test-echo/1.0.0";
const FLOOD = new URL("../fixtures/handshake_flood.ts", import.meta.url).pathname;
const DEBUG = Deno.env.get("RELAYMAIL_ADMISSION_DEBUG") === "1";
const OFF = Deno.env.get("RELAYMAIL_ADMISSION_OFF") === "1";

/** libp2p's per-address connection-rate window (`inboundConnectionThreshold` a second), and a margin. */
const RATE_WINDOW_MS = 1100;

/** A listening node as `MeshNode.create` makes it (TCP, Noise, Yamux, no mDNS), with an echo protocol. */
async function target(limits: Partial<AdmissionLimits> | null) {
  const admission = limits ? new Admission(limits) : null;
  const node = await createLibp2p({
    addresses: { listen: ["/ip4/127.0.0.1/tcp/0"] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    peerDiscovery: [],
    ...admission?.libp2pOptions(),
  });
  await node.handle(ECHO, async (stream) => {
    for await (const chunk of stream) stream.send(chunk);
    await stream.close();
  });
  const address = node.getMultiaddrs()[0];
  const port = Number(address.getComponents().find((c) => c.name === "tcp")!.value);
  return { node, admission, address, port };
}

/** A node that only dials. */
function dialer(): Promise<Libp2p> {
  return createLibp2p({
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
  });
}

/** Dials until a connection carries a stream, or `withinMs` passed; returns it and the time it took. */
async function connectWithin(
  from: Libp2p,
  to: ReturnType<typeof multiaddr>,
  withinMs: number,
): Promise<{ connection: Connection | null; ms: number; tries: number }> {
  const started = performance.now();
  let tries = 0;
  for (;;) {
    const left = withinMs - (performance.now() - started);
    if (left <= 0) return { connection: null, ms: performance.now() - started, tries };
    tries++;
    try {
      const connection = await from.dial(to, { signal: AbortSignal.timeout(left) });
      // In: a connection that carries a stream. Noise's initiator finishes before the
      // responder has read its last message, so a dial can return on a handshake the
      // target then drops; an honest node would redial, and so does this one.
      if (await echo(connection, "ping") !== "ping") throw new Error("echo garbled");
      return { connection, ms: performance.now() - started, tries };
    } catch (error) {
      if (DEBUG) {
        console.log(
          `try ${tries} failed at ${(performance.now() - started).toFixed(0)} ms: ${error}`,
        );
      }
      // An honest node retries, slowly (pacing, a duration): libp2p refuses an
      // address more than maxConnectionsPerHost new connections a second.
      await delay(200);
    }
  }
}

/** Sends bytes over a new echo stream and returns what came back. */
async function echo(connection: Connection, text: string): Promise<string> {
  const stream = await connection.newStream(ECHO, { signal: AbortSignal.timeout(5000) });
  stream.send(new TextEncoder().encode(text));
  await stream.close();
  let reply = "";
  for await (const chunk of stream) reply += new TextDecoder().decode(chunk.subarray());
  return reply;
}

interface FloodReport {
  event: string;
  open: number;
  connected: number;
  failed: number;
  closedByTarget: number;
}

/** The attacker process of tests/fixtures/handshake_flood.ts. */
class Flood {
  readonly #child: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #lines: ReadableStreamDefaultReader<string>;
  #buffer = "";

  constructor(args: string[]) {
    this.#child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-net", FLOOD, ...args],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#stdin = this.#child.stdin.getWriter();
    this.#lines = this.#child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  }

  /** Waits for the next report line (the first is "ready"). */
  async next(): Promise<FloodReport> {
    for (;;) {
      const newline = this.#buffer.indexOf("\n");
      if (newline >= 0) {
        const line = this.#buffer.slice(0, newline);
        this.#buffer = this.#buffer.slice(newline + 1);
        return JSON.parse(line);
      }
      const { value, done } = await this.#lines.read();
      if (done) throw new Error("The flood process ended early");
      this.#buffer += value;
    }
  }

  async status(): Promise<FloodReport> {
    await this.#stdin.write(new TextEncoder().encode("status\n"));
    return this.next();
  }

  /** Closes every socket and waits for the process to end. */
  async stop(): Promise<void> {
    await this.#stdin.close().catch(() => {});
    const status = await this.#child.status;
    await this.#lines.cancel().catch(() => {});
    assert.ok(status.success, `flood process exited with ${status.code}`);
  }
}

/** The stats without the per-host table. */
function summary(admission: Admission | null) {
  if (!admission) return "(no admission)";
  const { hosts: _, limits: __, ...counters } = admission.stats();
  return counters;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function until(condition: () => boolean, withinMs: number): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  return new Promise((resolve) => {
    const check = () => {
      if (condition()) resolve(true);
      else if (Date.now() > deadline) resolve(false);
      else setTimeout(check, 20);
    };
    check();
  });
}

/**
 * Floods a target from 1,000 addresses, then dials it honestly: the honest peer
 * must connect within 5 s (a functional bound, generous for CI; it waits up to
 * 15 s to report how long it took when it fails) and open a stream.
 */
async function honestPeerUnderFlood(floodArgs: string[]): Promise<void> {
  const { node, admission, address, port } = await target(OFF ? null : {});
  const honest = await dialer();
  const flood = new Flood(["--port", String(port), "--addresses", "1000", ...floodArgs]);
  try {
    const ready = await flood.next();
    assert.equal(ready.event, "ready");
    assert.ok(ready.connected >= 500, `only ${ready.connected} of 1000 flood connections opened`);
    if (admission) {
      assert.ok(
        await until(
          () => admission.stats().pending === DEFAULT_ADMISSION_LIMITS.maxPendingTotal,
          5000,
        ),
        `the flood should fill every pending slot: ${admission.stats().pending}`,
      );
    }
    const held = await flood.status();

    const { connection, ms, tries } = await connectWithin(honest, address, 15_000);
    if (DEBUG) {
      console.log(
        `honest peer connected: ${connection !== null} after ${ms.toFixed(0)} ms, ${tries} tries;` +
          ` flood holding ${held.open} sockets`,
        summary(admission),
      );
    }
    assert.ok(connection, `the honest peer could not connect within 15 s`);
    assert.ok(ms < 5000, `the honest peer took ${ms.toFixed(0)} ms to connect`);
    assert.equal(await echo(connection, "hello under flood"), "hello under flood");

    const after = await flood.status();
    assert.ok(after.open > 0, "the flood still holds connections while the honest peer talks");
    if (admission) {
      const stats = admission.stats();
      assert.equal(stats.open, 1);
      assert.ok(stats.evicted >= 1, "the honest newcomer evicted a flood handshake");
    }
  } finally {
    await flood.stop();
    await honest.stop();
    await node.stop();
  }
}

Deno.test(
  "Admission lets an honest peer in within 5 s while 1,000 addresses hold half-open handshakes",
  () => honestPeerUnderFlood(["--partial"]),
);

Deno.test(
  "Admission lets an honest peer in within 5 s while 1,000 addresses keep reopening handshakes",
  () => honestPeerUnderFlood(["--reconnect"]),
);

Deno.test("Admission holds one address to its pending-handshake cap", async () => {
  const limits = { maxPendingPerHost: 4 };
  const { node, admission, port } = await target(limits);
  const flood = new Flood([
    "--port",
    String(port),
    "--addresses",
    "1",
    "--per-address",
    "20",
    "--from",
    "127.0.9.9",
  ]);
  try {
    const ready = await flood.next();
    assert.equal(ready.connected + ready.failed, 20);
    // The target closes what it refused; the flood sees those closures. (Bounded
    // within the 5 s handshake timeout, past which the admitted four would go too.)
    let held = await flood.status();
    await waitFor(
      "the refused connections closed",
      async () => (held = await flood.status()).open <= 4,
      4_000,
    );
    assert.ok(held.open <= 4, `one address holds ${held.open} connections`);
    const stats = admission!.stats();
    assert.equal(stats.hosts["127.0.9.9"]?.pending, 4);
    assert.equal(stats.pending, 4);
    assert.ok(stats.refused.hostPending >= 1, "our per-host cap refused some");
  } finally {
    await flood.stop();
    await node.stop();
  }
});

Deno.test("Admission drops handshakes still pending after the timeout", async () => {
  const { node, admission, port } = await target({ handshakeTimeoutMs: 500 });
  const flood = new Flood(["--port", String(port), "--addresses", "20", "--from", "127.0.8.1"]);
  try {
    await flood.next();
    assert.ok(await until(() => admission!.stats().pending === 20, 2000));
    const started = Date.now();
    assert.ok(await until(() => admission!.stats().pending === 0, 3000));
    const ms = Date.now() - started;
    assert.ok(ms <= 1000, `pending handshakes went after ${ms} ms`);
    assert.equal(admission!.stats().timedOut, 20);
    let held = await flood.status();
    await waitFor(
      "the flood to see every socket closed",
      async () => (held = await flood.status()).open === 0,
    );
    assert.equal(held.open, 0, "the target closed every held socket");
  } finally {
    await flood.stop();
    await node.stop();
  }
});

Deno.test("Admission caps one host's open connections, and frees a slot when one closes", async () => {
  const { node, admission, address } = await target({ maxConnectionsPerHost: 2 });
  const peers = await Promise.all([dialer(), dialer(), dialer()]);
  try {
    const first = await peers[0].dial(address);
    await peers[1].dial(address);
    // libp2p's own per-address rate (maxConnectionsPerHost a second) would refuse a third at
    // once: a rate-limit window must pass, a duration.
    await delay(RATE_WINDOW_MS);
    await assert.rejects(peers[2].dial(address, { signal: AbortSignal.timeout(3000) }));
    assert.deepEqual(admission!.stats().hosts["127.0.0.1"], { pending: 0, open: 2 });
    assert.equal(admission!.stats().refused.hostConnections, 1);

    await first.close();
    assert.ok(await until(() => admission!.stats().open === 1, 2000));
    const third = await peers[2].dial(address, { signal: AbortSignal.timeout(3000) });
    assert.equal(await echo(third, "in at last"), "in at last");
    assert.deepEqual(admission!.stats().hosts["127.0.0.1"], { pending: 0, open: 2 });
  } finally {
    await Promise.all(peers.map((peer) => peer.stop()));
    await node.stop();
  }
});

/** Just enough of a libp2p MultiaddrConnection for the gater's hooks. */
class FakeConnection extends EventTarget {
  status: "open" | "closed" | "aborted" = "open";
  readonly remoteAddr: ReturnType<typeof multiaddr>;
  constructor(ip: string) {
    super();
    this.remoteAddr = multiaddr(`/ip4/${ip}/tcp/4001`);
  }
  abort(): void {
    this.#end("aborted");
  }
  close(): void {
    this.#end("closed");
  }
  #end(status: "closed" | "aborted"): void {
    if (this.status !== "open") return;
    this.status = status;
    this.dispatchEvent(new Event("close"));
  }
}

Deno.test("Admission evicts suspects first and spares a young handshake", async () => {
  const admission = new Admission({ maxPendingTotal: 2, handshakeTimeoutMs: 1000 });
  const gater = admission.libp2pOptions().connectionGater;
  const opened: FakeConnection[] = [];
  /** Whether the gater admits a new connection from `ip`. */
  const knock = (ip: string) => {
    const connection = new FakeConnection(ip);
    opened.push(connection);
    const denied = gater.denyInboundConnection!(connection as unknown as MultiaddrConnection);
    return { connection, admitted: denied === false };
  };
  try {
    const a = knock("10.0.0.1");
    const b = knock("10.0.0.2");
    assert.ok(a.admitted && b.admitted);
    assert.equal(knock("10.0.0.3").admitted, false, "both handshakes are in their grace period");

    // Past the grace period (100 ms): a duration; Admission reads Date.now(), no clock to move.
    await delay(120);
    const c = knock("10.0.0.3");
    assert.ok(c.admitted);
    const [evicted, survivor] = a.connection.status === "open" ? [b, a] : [a, b];
    assert.equal(evicted.connection.status, "aborted");
    assert.equal(survivor.connection.status, "open");

    const suspectIp = evicted.connection.remoteAddr.getComponents()[0].value!;
    assert.equal(knock(suspectIp).admitted, false, "a suspect evicts no clear host");

    c.connection.close();
    const suspect = knock(suspectIp);
    assert.ok(suspect.admitted, "a suspect still gets a free slot");
    assert.ok(knock("10.0.0.4").admitted);
    assert.equal(suspect.connection.status, "aborted", "the suspect's young handshake went first");
    assert.equal(survivor.connection.status, "open", "not the clear host's older one");
    const stats = admission.stats();
    assert.equal(stats.evicted, 2);
    assert.equal(stats.refused.pendingTotal, 2);
    assert.equal(stats.pending, 2);
  } finally {
    for (const connection of opened) connection.close();
  }
  assert.equal(admission.stats().pending, 0);
});

Deno.test("Admission.stats() reports the limits in force and the counters", () => {
  const admission = new Admission({ maxPendingTotal: 100, handshakeTimeoutMs: 2000 });
  const stats = admission.stats();
  assert.deepEqual(stats.limits, {
    ...DEFAULT_ADMISSION_LIMITS,
    maxPendingTotal: 100,
    handshakeTimeoutMs: 2000,
  });
  assert.equal(stats.pending, 0);
  assert.equal(stats.open, 0);
  assert.deepEqual(stats.hosts, {});
  assert.deepEqual(stats.refused, { hostConnections: 0, hostPending: 0, pendingTotal: 0 });
  const options = admission.libp2pOptions();
  assert.equal(options.connectionManager.maxIncomingPendingConnections, 200);
  assert.equal(options.connectionManager.maxConnections, DEFAULT_ADMISSION_LIMITS.maxConnections);
  assert.ok(options.connectionManager.inboundUpgradeTimeout! >= 2000);
  assert.throws(() => new Admission({ maxPendingTotal: 0 }), RangeError);
});

Deno.test("Admission.hostOf() keys IPv4 by address and IPv6 by /64, link-local whole", () => {
  assert.equal(Admission.hostOf("/ip4/192.168.1.20/tcp/4001"), "192.168.1.20");
  assert.equal(Admission.hostOf(multiaddr("/ip4/127.0.3.7/tcp/1/p2p/12D3KooWAbc")), "127.0.3.7");
  assert.equal(Admission.hostOf("/ip6/2001:db8:1:2:aa:bb:cc:dd/tcp/1"), "2001:db8:1:2::/64");
  assert.equal(Admission.hostOf("/ip6/2001:db8:1:2::1/tcp/1"), "2001:db8:1:2::/64");
  assert.equal(Admission.hostOf("/ip6/2001:db8::/tcp/1"), "2001:db8:0:0::/64");
  assert.equal(Admission.hostOf("/ip6/::ffff:10.0.0.7/tcp/1"), "10.0.0.7");
  assert.equal(Admission.hostOf("fe80::1:2"), "fe80:0:0:0:0:0:1:2");
  assert.equal(Admission.hostOf("/ip6/::1/tcp/1"), "0:0:0:0::/64");
  assert.equal(Admission.hostOf("10.0.0.7"), "10.0.0.7");
});
