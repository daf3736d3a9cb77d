/**
 * The reconnection service (mesh/reconnect.ts) on a clock the test moves: who is
 * dialled when, after drops, failures, sightings and restarts.
 */
import assert from "node:assert/strict";
import { Reconnector } from "../../mesh/reconnect.ts";

/** A reconnector whose dials are recorded and answered by `reachable`. */
function harness(options: { forgetAfterMs?: number } = {}) {
  let now = 1_000_000;
  const dials: string[] = [];
  const reachable = new Set<string>();
  const reconnector = new Reconnector(
    (peer) => {
      const name = peer.id ?? peer.addresses[0];
      dials.push(name);
      return reachable.has(name) ? Promise.resolve(peer.id ?? `id-of-${name}`) : Promise.reject(
        new Error("unreachable"),
      );
    },
    { now: () => now, random: () => 0.5, ...options },
  );
  return {
    reconnector,
    dials,
    reachable,
    advance: async (ms: number) => {
      now += ms;
      reconnector.tick();
      // One macrotask turn, not a sleep: the dials answer at once (time is the test's
      // clock), and their outcomes settle in the microtasks this turn drains.
      await new Promise((r) => setTimeout(r, 0));
    },
  };
}

Deno.test("Reconnector dials a dropped peer at once, then backs off while it stays away", async () => {
  const { reconnector, dials, advance } = harness();
  reconnector.connected("A", "/ip4/10.0.0.1/tcp/4747");
  reconnector.disconnected("A");
  await advance(0);
  assert.deepEqual(dials, ["A"], "redialled as soon as it dropped");
  await advance(500);
  assert.equal(dials.length, 1, "not again before the first backoff");
  await advance(600);
  assert.equal(dials.length, 2);
  // Backoff doubles (1 s, 2 s, 4 s) and stops growing at 6 s.
  for (let i = 0; i < 10; i++) await advance(6_001);
  assert.ok(dials.length >= 10, `kept trying: ${dials.length} dials`);
});

Deno.test("Reconnector dials a known peer the moment mDNS sees it again", async () => {
  const { reconnector, dials, reachable, advance } = harness();
  reconnector.connected("A");
  reconnector.disconnected("A");
  await advance(0);
  await advance(1_100);
  await advance(2_100); // three failures: the next try is 4 s away
  const before = dials.length;
  reachable.add("A");
  reconnector.seen("A", ["/ip4/10.0.0.1/tcp/4747"]);
  await advance(1_001);
  assert.equal(dials.length, before + 1, "a sighting shortens the wait to the first backoff");
  reconnector.connected("A");
  await advance(60_000);
  assert.equal(dials.length, before + 1, "a connected peer is not dialled");
});

Deno.test("Reconnector keeps dialling static addresses forever, and forgets silent mDNS peers", async () => {
  const { reconnector, dials, advance } = harness({ forgetAfterMs: 60_000 });
  reconnector.addStatic("/ip4/10.0.0.9/tcp/4747", null);
  reconnector.seen("M", ["/ip4/10.0.0.2/tcp/4747"]);
  await advance(0);
  await advance(120_000);
  await advance(7_000);
  const late = dials.slice(-2);
  assert.ok(late.includes("/ip4/10.0.0.9/tcp/4747"), "the static address is still dialled");
  assert.ok(!late.includes("M"), "the mDNS peer unseen for 2 min is forgotten");
  assert.equal(reconnector.snapshot().length, 0, "and not remembered across a restart");
});

Deno.test("Reconnector names a static address by the peer id it answered with", async () => {
  const { reconnector, dials, reachable, advance } = harness();
  reachable.add("/ip4/10.0.0.9/tcp/4747");
  reconnector.addStatic("/ip4/10.0.0.9/tcp/4747", null);
  await advance(0);
  reconnector.connected("id-of-/ip4/10.0.0.9/tcp/4747");
  await advance(30_000);
  assert.equal(dials.length, 1, "one entry, connected: no second dial");
  assert.deepEqual(reconnector.describe().map((p) => p.id), ["id-of-/ip4/10.0.0.9/tcp/4747"]);
});

Deno.test("Reconnector remembers recent peers for a restart", () => {
  const { reconnector } = harness();
  reconnector.connected("A", "/ip4/10.0.0.1/tcp/4747");
  reconnector.seen("B", ["/ip4/10.0.0.2/tcp/4747"]);
  const snapshot = reconnector.snapshot();
  assert.deepEqual(snapshot.map((p) => p.id).sort(), ["A", "B"]);
  assert.deepEqual(snapshot.find((p) => p.id === "A")!.addresses, ["/ip4/10.0.0.1/tcp/4747"]);
});
