/**
 * The fuzz harness itself: seeds replay, and a planted bug of each kind (an
 * unexpected error type, a hang, a known bug) is caught and reported with what it
 * takes to replay it (targets/sanity.ts).
 */
import assert from "node:assert/strict";
import {
  configFromEnv,
  DEFAULT_SEED,
  FuzzFailure,
  HangError,
  parseSeed,
  runTarget,
  type Target,
} from "./_harness.ts";
import { runIsolated, WorkerPool } from "./_isolate.ts";
import { caseSeed, derNodes, hex, mutate, mutateDer, Rng } from "./_rng.ts";
import { targets, toyInput, triggers } from "./targets/sanity.ts";

const SEED = 12345;
const target = (name: string): Target => targets.find((t) => t.name === name)!;

/** Indices of the cases of `name` under SEED whose input triggers the planted bug. */
function triggering(name: string, cases: number): number[] {
  return Array.from({ length: cases }, (_, i) => i).filter((i) =>
    triggers(toyInput(new Rng(caseSeed(SEED, name, i))))
  );
}

Deno.test("Rng replays a seed and caseSeed separates targets and cases", () => {
  const draw = (seed: number) => {
    const rng = new Rng(seed);
    return [rng.u32(), rng.int(10), rng.float(), hex(rng.bytes(7)), rng.size(1000)];
  };
  assert.deepEqual(draw(1), draw(1));
  assert.notDeepEqual(draw(1), draw(2));
  assert.notEqual(caseSeed(1, "a", 0), caseSeed(1, "b", 0));
  assert.notEqual(caseSeed(1, "a", 0), caseSeed(1, "a", 1));
  assert.notEqual(caseSeed(1, "a", 0), caseSeed(2, "a", 0));
  const ints = Array.from({ length: 10_000 }, (_, i) => new Rng(i).int(6));
  for (let v = 0; v < 6; v++) {
    const share = ints.filter((x) => x === v).length / ints.length;
    assert.ok(Math.abs(share - 1 / 6) < 0.02, `int(6) gives ${v} ${share} of the time`);
  }
});

Deno.test("mutators copy, vary, and replay from their seed", () => {
  const der = new Uint8Array([0x30, 0x08, 0x80, 0x02, 0x61, 0x62, 0xa1, 0x02, 0x04, 0x00]);
  assert.equal(derNodes(der).length, 4);
  const seen = new Set<string>();
  for (let i = 0; i < 500; i++) {
    const a = mutate(new Rng(i), der);
    assert.deepEqual(a, mutate(new Rng(i), der));
    seen.add(hex(a));
    seen.add(hex(mutateDer(new Rng(i), der)));
  }
  assert.deepEqual(
    der,
    new Uint8Array([0x30, 0x08, 0x80, 0x02, 0x61, 0x62, 0xa1, 0x02, 0x04, 0x00]),
  );
  assert.ok(seen.size > 300, `only ${seen.size} distinct mutants`);
});

Deno.test("FUZZ_SEED takes decimal or hex and refuses the rest", () => {
  assert.equal(parseSeed("42"), 42);
  assert.equal(parseSeed("0xff"), 255);
  for (const bad of ["", "-1", "1.5", "seed", "4294967296"]) {
    assert.throws(() => parseSeed(bad), RangeError, bad);
  }
  const config = configFromEnv();
  if (Deno.env.get("FUZZ_SEED") === undefined) assert.equal(config.seed, DEFAULT_SEED);
});

Deno.test("runTarget() fails on an error of an unexpected type, naming seed, case and input", async () => {
  const name = "sanity-unexpected-error";
  const [first] = triggering(name, 200);
  assert.ok(first !== undefined);
  const failure = await runTarget(target(name), { seed: SEED, cases: 200 }).then(
    () => assert.fail("The planted TypeError was not caught"),
    (error) => error,
  );
  assert.ok(failure instanceof FuzzFailure);
  assert.equal(failure.index, first);
  assert.match(failure.message, /TypeError: Planted bug; only RangeError may be thrown/);
  assert.match(failure.message, new RegExp(`FUZZ_SEED=${SEED}\\b`));
  assert.match(failure.message, new RegExp(`--seed ${SEED} --target ${name} --case ${first}\\b`));
  assert.match(failure.message, /input: abcd/);
});

Deno.test("runIsolated() reports the same failure from its worker, and replays it alone", async () => {
  const name = "sanity-unexpected-error";
  const [first] = triggering(name, 200);
  const pool = new WorkerPool(1);
  for (const options of [{ pool }, { pool, first, cases: 1 }, {}]) {
    const failure = await runIsolated(target(name), { seed: SEED, scale: 1 }, options).then(
      () => assert.fail("The planted TypeError was not caught"),
      (error) => error,
    );
    assert.ok(failure instanceof FuzzFailure, String(failure));
    assert.equal(failure.index, first);
    assert.match(failure.message, /TypeError: Planted bug/);
  }
  pool.close();
});

Deno.test("runIsolated() ends a case that hangs and reports it with its input", async () => {
  const name = "sanity-hang";
  const [first] = triggering(name, 200);
  const pool = new WorkerPool(1);
  const failure = await runIsolated(target(name), { seed: SEED, scale: 1 }, { pool }).then(
    () => assert.fail("The planted hang was not caught"),
    (error) => error,
  );
  assert.ok(failure instanceof FuzzFailure, String(failure));
  assert.ok(failure.cause instanceof HangError);
  assert.equal(failure.index, first);
  assert.match(failure.message, /input: abcd/);
  // The slot replaced its hung worker: the pool still runs targets.
  const report = await runIsolated(target("sanity-known-bug"), { seed: SEED, scale: 1 }, { pool });
  assert.equal(report.cases, 200);
  pool.close();
});

Deno.test("known bugs are counted, not failed, hangs included", async () => {
  const bugs = triggering("sanity-known-bug", 200);
  const report = await runIsolated(target("sanity-known-bug"), { seed: SEED, scale: 1 });
  assert.deepEqual(report.knownBugs.planted?.hits, bugs.length);
  assert.equal(report.knownBugs.planted?.firstCase, bugs[0]);
  const hangs = triggering("sanity-known-hang", 40);
  const hung = await runIsolated(target("sanity-known-hang"), { seed: SEED, scale: 1 });
  assert.equal(hung.knownBugs["planted-hang"]?.hits, hangs.length);
  assert.equal(hung.cases, 40);
});
