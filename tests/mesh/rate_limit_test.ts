import assert from "node:assert/strict";
import { type RateLimit, RateLimiter, type RateLimiterOptions } from "../../mesh/rate_limit.ts";

/** 10 parcels and 1000 octets per second, bursts of 2 s: 20 parcels, 2000 octets. */
const SMALL: RateLimit = { parcelsPerSecond: 10, bytesPerSecond: 1000, burstSeconds: 2 };

function limiter(options: Omit<RateLimiterOptions, "now"> = {}, limit = SMALL) {
  const clock = { ms: 1_000_000 };
  return { clock, limiter: new RateLimiter(limit, { ...options, now: () => clock.ms }) };
}

/** How many parcels of `size` the keys may send right now. */
function drain(limiter: RateLimiter, keys: readonly string[], size: number, most = 10_000) {
  let taken = 0;
  while (taken < most && limiter.take(keys, size)) taken++;
  return taken;
}

Deno.test("RateLimiter.take() allows one burst of parcels, then refuses", () => {
  const { limiter: l } = limiter();
  assert.equal(drain(l, ["peer"], 1), 20);
  assert.equal(l.take(["peer"], 1), false);
});

Deno.test("RateLimiter.take() allows one burst of octets, then refuses", () => {
  const { limiter: l } = limiter();
  assert.equal(drain(l, ["peer"], 600), 3);
  assert.equal(l.take(["peer"], 200), true, "a smaller parcel still fits what is left");
  assert.equal(l.take(["peer"], 1), false);
});

Deno.test("RateLimiter.take() refills at the sustained rate, up to the burst", () => {
  const { clock, limiter: l } = limiter();
  drain(l, ["peer"], 1);
  clock.ms += 300;
  assert.equal(drain(l, ["peer"], 1), 3);
  clock.ms += 60_000;
  assert.equal(drain(l, ["peer"], 1), 20, "a long pause buys no more than one burst");
});

Deno.test("RateLimiter.take() takes from every key or from none", () => {
  const { limiter: l } = limiter({ hostLimit: { ...SMALL, parcelsPerSecond: 15 } });
  // The host's 30 parcels run out across two peers before either peer's 20 does.
  assert.equal(drain(l, ["alice", "host:10.0.0.7"], 1), 20);
  assert.equal(drain(l, ["bob", "host:10.0.0.7"], 1), 10);
  assert.equal(l.take(["bob", "host:10.0.0.7"], 1), false);
  // Bob's refused takes cost his own bucket nothing: from another host he has 10 left.
  assert.equal(drain(l, ["bob", "host:10.0.0.8"], 1), 10);
});

Deno.test("RateLimiter gives a host twice a peer's budget by default", () => {
  const { limiter: l } = limiter();
  let taken = 0;
  for (let id = 0; id < 10; id++) taken += drain(l, [`peer-${id}`, "host:10.0.0.7"], 1);
  assert.equal(taken, 40, "new peer ids on one host share the host's 2 × 20 parcels");
});

Deno.test("RateLimiter keeps a peer's budget across a reconnect", () => {
  const { clock, limiter: l } = limiter();
  const keys = ["peer", "host:10.0.0.7"];
  assert.equal(drain(l, keys, 1), 20);
  clock.ms += 100;
  assert.equal(drain(l, keys, 1), 1, "only what refilled in 100 ms");
});

Deno.test("RateLimiter drops buckets once they are full again", () => {
  const { clock, limiter: l } = limiter();
  for (let i = 0; i < 100; i++) l.take([`peer-${i}`], 1);
  assert.equal(l.size, 100);
  clock.ms += 1999;
  l.take(["fresh"], 1);
  assert.equal(l.size, 101, "not yet idle for a whole burst period");
  clock.ms += 1;
  l.take(["fresh"], 1);
  assert.equal(l.size, 1, "every idle bucket had refilled, and went");
});

Deno.test("RateLimiter keeps at most maxKeys buckets, least recently used going first", () => {
  const { clock, limiter: l } = limiter({ maxKeys: 50 });
  drain(l, ["busy"], 1);
  for (let i = 0; i < 1000; i++) {
    clock.ms += 1;
    l.take([`peer-${i}`], 1);
    l.take(["busy"], 1); // refused, but used: stays at the recent end
    assert.ok(l.size <= 50);
  }
  assert.equal(l.size, 50);
  assert.equal(l.take(["busy"], 1), false, "the busy peer's empty bucket was kept");
});

Deno.test("RateLimiter never drops a bucket it is taking from, even past maxKeys", () => {
  const { limiter: l } = limiter({ maxKeys: 1 });
  assert.equal(drain(l, ["peer", "host:10.0.0.7"], 1), 20);
  assert.equal(l.size, 2);
});

Deno.test("RateLimiter refuses a bad maxKeys or budget", () => {
  assert.throws(() => new RateLimiter(SMALL, { maxKeys: 0 }), RangeError);
  assert.throws(() => new RateLimiter({ ...SMALL, parcelsPerSecond: 0 }), RangeError);
});
