/**
 * The gateway binding against real PoWeb servers: a gateway killed mid-collection
 * and restarted, a socket that stays up but stops delivering, a connection that
 * goes dead without closing, and which parcels go to the gateway when.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { generateRSAKeyPair } from "@relaycorp/relaynet-core";
import {
  attachGateway,
  GATEWAY,
  type GatewayBinding,
  type GatewayCredentials,
  parsePoWebUrl,
  registerWithGateway,
} from "../../bindings/gateway/client.ts";
import { makeGatewayIdentity, PoWebServer } from "../../bindings/gateway/poweb_server.ts";
import { GatewayStore } from "../../bindings/gateway/store.ts";
import { createParcelFixture } from "../../bindings/testing/fixtures.ts";
import { MemoryParcelNode } from "../../bindings/testing/memory_node.ts";
import { ParcelRefusedError, sha256Hex } from "../../bindings/validation.ts";
import { HOUR, randomBytes, waitFor } from "../helpers.ts";

const FIXTURE = new URL("../fixtures/poweb_gateway.ts", import.meta.url).pathname;

/** A gateway process (tests/fixtures/poweb_gateway.ts) serving from `dir`. */
async function spawnGateway(dir: string, port: number) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "-A", FIXTURE, dir, String(port)],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the gateway process exited before listening");
    text += value;
  }
  reader.releaseLock();
  child.stdout.cancel().catch(() => {});
  const url = /listening (\S+)/.exec(text)![1];
  return { child, url, port: Number(new URL(url).port) };
}

/** A node key registered with the gateway at `url`. */
async function registeredNode(url: string): Promise<GatewayCredentials & { id: string }> {
  const keys = await generateRSAKeyPair();
  const registration = await registerWithGateway(parsePoWebUrl(url), keys);
  return {
    id: await registration.privateNodeCertificate.calculateSubjectId(),
    certificate: registration.privateNodeCertificate,
    privateKey: keys.privateKey,
  };
}

/** A node that takes `delayMs` to store each parcel, like one writing to a slow disk. */
class SlowNode extends MemoryParcelNode {
  constructor(private readonly delayMs: number) {
    super("slow");
  }
  override async receiveParcel(...args: Parameters<MemoryParcelNode["receiveParcel"]>) {
    // A duration, not a wait: the slowness is what the tests need.
    await new Promise((r) => setTimeout(r, this.delayMs));
    return super.receiveParcel(...args);
  }
}

function bind(
  node: MemoryParcelNode,
  url: string,
  credentials: GatewayCredentials,
  extra: Partial<Parameters<typeof attachGateway>[1]> = {},
): GatewayBinding {
  return attachGateway(node, {
    address: parsePoWebUrl(url),
    credentials: () => Promise.resolve(credentials),
    delayMs: () => 0,
    initialBackoffMs: 100,
    maxBackoffMs: 1000,
    pingIntervalMs: 500,
    ...extra,
  });
}

Deno.test("a gateway killed during collection and restarted loses no parcel; the client reconnects by itself", async () => {
  const dir = await Deno.makeTempDir({ prefix: "relaymail-gateway-restart-" });
  let gateway = await spawnGateway(dir, 0);
  const store = GatewayStore.open(join(dir, "gateway.sqlite"));
  let binding: GatewayBinding | undefined;
  try {
    const credentials = await registeredNode(gateway.url);
    const parcels = new Map<string, Uint8Array>();
    for (let i = 0; i < 30; i++) {
      const bytes = randomBytes(20_000);
      const key = await sha256Hex(bytes);
      parcels.set(key, bytes);
      store.enqueue(credentials.id, key, bytes, new Date(Date.now() + HOUR));
    }
    const node = new SlowNode(60);
    const log: string[] = [];
    binding = bind(node, gateway.url, credentials, { log: (line) => log.push(line) });
    await waitFor("the first parcels", () => node.stored.size >= 8);

    gateway.child.kill("SIGKILL");
    await gateway.child.status;
    const beforeRestart = node.stored.size;
    assert.ok(beforeRestart < 30, "the gateway died mid-collection");
    // The client keeps trying meanwhile: it logs each socket lost or refused, and
    // the gateway comes back once it has been refused at least twice.
    const closures = () => log.filter((l) => l.startsWith("collection reconnects in")).length;
    const atKill = closures();
    await waitFor("two refused attempts to reconnect", () => closures() >= atKill + 3);
    gateway = await spawnGateway(dir, gateway.port);

    await waitFor("every parcel", () => node.stored.size === 30, 30_000);
    for (const [key, bytes] of parcels) assert.deepEqual(node.stored.get(key), bytes);
    // Each parcel was acknowledged once stored: the gateway's queue empties.
    await waitFor("the acknowledgements", () => store.queued() === 0);
    // At most the parcel in flight at the kill is offered twice.
    const repeats = [...node.offers.values()].filter((n) => n > 1).length;
    assert.ok(repeats <= 5, `${repeats} parcels offered more than once`);
    assert.equal(binding.status().collecting, "connected");
  } finally {
    await binding?.stop();
    try {
      gateway.child.kill("SIGKILL");
    } catch { /* it had exited */ }
    await gateway.child.status;
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** An in-process PoWeb server whose accepted parcels are recorded. */
async function inProcessGateway(dir: string) {
  const store = GatewayStore.open(join(dir, "gateway.sqlite"));
  const accepted: { bytes: Uint8Array; from: string }[] = [];
  const state = { refuse: null as ParcelRefusedError | null };
  const server = new PoWebServer({
    identity: await makeGatewayIdentity(),
    store,
    port: 0,
    accept: (bytes, from) => {
      if (state.refuse) return Promise.reject(state.refuse);
      accepted.push({ bytes, from });
      return Promise.resolve();
    },
  });
  await server.start();
  return { server, store, accepted, state };
}

Deno.test("the watchdog replaces a collection socket that is up but no longer delivering", async () => {
  const dir = await Deno.makeTempDir({ prefix: "relaymail-gateway-watchdog-" });
  const { server, store } = await inProcessGateway(dir);
  // A second handle on the gateway's database: what it writes wakes no socket,
  // as when a gateway's notification path breaks.
  const behindItsBack = GatewayStore.open(join(dir, "gateway.sqlite"));
  let binding: GatewayBinding | undefined;
  const logs: string[] = [];
  try {
    const credentials = await registeredNode(server.url);
    const node = new MemoryParcelNode();
    binding = bind(node, server.url, credentials, {
      recycleAfterMs: 1500,
      log: (line) => logs.push(line),
    });
    await waitFor("the collection socket", () => binding!.status().collecting === "connected");
    const bytes = randomBytes(1000);
    behindItsBack.enqueue(
      credentials.id,
      await sha256Hex(bytes),
      bytes,
      new Date(Date.now() + HOUR),
    );
    await waitFor("the parcel", () => node.stored.size === 1, 15_000);
    assert.ok(logs.some((l) => l.includes("idle for long")), logs.join("\n"));
  } finally {
    await binding?.stop();
    await server.stop();
    behindItsBack.close();
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** A TCP proxy whose open connections can be frozen: bytes stop, sockets stay open. */
function freezableProxy(targetPort: number) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const frozen = new Set<Deno.Conn>();
  const open = new Set<Deno.Conn>();
  let freezeAll = false;
  const pipe = async (from: Deno.Conn, to: Deno.Conn) => {
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await from.read(buffer);
        if (n === null) break;
        if (frozen.has(from)) continue; // swallowed
        await to.write(buffer.subarray(0, n));
      }
    } catch { /* closed */ }
    try {
      to.close();
    } catch { /* already */ }
  };
  (async () => {
    for await (const client of listener) {
      const upstream = await Deno.connect({ hostname: "127.0.0.1", port: targetPort });
      open.add(client).add(upstream);
      pipe(client, upstream);
      pipe(upstream, client);
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    /** Freezes every connection open now. */
    freeze() {
      freezeAll = true;
      for (const conn of open) frozen.add(conn);
      open.clear();
    },
    get frozen() {
      return freezeAll;
    },
    close() {
      listener.close();
      for (const conn of [...open, ...frozen]) {
        try {
          conn.close();
        } catch { /* already */ }
      }
    },
  };
}

Deno.test("a connection that goes dead without closing is detected by pings and replaced", async () => {
  const dir = await Deno.makeTempDir({ prefix: "relaymail-gateway-dead-" });
  const { server, store } = await inProcessGateway(dir);
  const proxy = freezableProxy(server.port);
  let binding: GatewayBinding | undefined;
  const logs: string[] = [];
  try {
    const credentials = await registeredNode(server.url);
    const node = new MemoryParcelNode();
    binding = bind(node, `http://127.0.0.1:${proxy.port}`, credentials, {
      log: (line) => logs.push(line),
      // Roomier than the default 500 ms of these tests: on a loaded machine a live
      // socket's pong can be late, and this test is about a dead one.
      pingIntervalMs: 1500,
    });
    await waitFor("the collection socket", () => binding!.status().collecting === "connected");
    proxy.freeze();
    await waitFor(
      "the dead socket to be noticed",
      () => binding!.status().collecting !== "connected",
    );
    assert.match(binding.status().lastError ?? "", /stopped answering pings/);
    await waitFor("a new socket", () => binding!.status().collecting === "connected");
    const bytes = randomBytes(1000);
    await server.enqueue(bytes, credentials.id, new Date(Date.now() + HOUR));
    await waitFor("the parcel", () => node.stored.size === 1);
  } finally {
    await binding?.stop();
    proxy.close();
    await server.stop();
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("parcels go to the gateway once due, once each; refused ones are not retried", async () => {
  const dir = await Deno.makeTempDir({ prefix: "relaymail-gateway-fallback-" });
  const { server, store, accepted, state } = await inProcessGateway(dir);
  let binding: GatewayBinding | undefined;
  const unauthorized: string[] = [];
  try {
    const credentials = await registeredNode(server.url);
    const node = new MemoryParcelNode();
    const fixture = await createParcelFixture();
    const parcel = () => fixture.makeParcel({ payloadSize: 500 });
    const due = await node.enqueue(await parcel(), fixture.recipientId);
    const later = await node.enqueue(await parcel(), fixture.recipientId);
    const elsewhere = await node.enqueue(await parcel(), fixture.recipientId);
    await node.parcelHandedOver(elsewhere, { binding: "mesh", toRecipient: false });
    binding = bind(node, server.url, credentials, {
      // The third waited for the mesh, and its window has passed too.
      delayMs: (parcel) => parcel.key === later ? HOUR : 0,
      onUnauthorized: (reason) => unauthorized.push(reason),
    });
    assert.equal(await binding.pump(), 2);
    assert.deepEqual(
      new Set(await Promise.all(accepted.map((a) => sha256Hex(a.bytes)))),
      new Set([due, elsewhere]),
    );
    assert.ok(accepted.every((a) => a.from === credentials.id));
    assert.equal(node.handoverOf(due)?.binding, GATEWAY);
    assert.equal(node.handoverOf(due)?.toRecipient, false);
    assert.equal(await binding.pump(), 0, "nothing goes twice");

    // 422: the gateway will never take it; the mesh still may.
    state.refuse = new ParcelRefusedError("unauthorized", "not authorised");
    const refused = await node.enqueue(await parcel(), fixture.recipientId);
    assert.equal(await binding.pump(), 0);
    assert.equal(node.handoverOf(refused), undefined);
    state.refuse = null;
    assert.equal(await binding.pump(), 0, "a refused parcel is not offered again");

    // The gateway forgot the node: the binding says so, so that it registers again.
    store.purgeExpired();
    store.register(credentials.id, new Uint8Array(), new Date(Date.now() - 1));
    await node.enqueue(await parcel(), fixture.recipientId);
    await assert.rejects(binding.pump());
    assert.equal(unauthorized.length, 1);
    assert.match(unauthorized[0], /403/);
  } finally {
    await binding?.stop();
    await server.stop();
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
});
