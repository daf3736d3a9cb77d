/**
 * The contract test suite every binding runs against itself. A binding provides a
 * harness that connects two {@linkcode MemoryParcelNode}s; the suite checks the
 * rules of bindings/binding.ts: every parcel arrives exactly once and intact,
 * handovers are reported only once the next hop holds the parcel, a failing or
 * refusing receiver loses nothing, and the largest parcel gets through.
 *
 * @example
 * ```ts ignore
 * import { testBindingContract } from "./contract.ts";
 * testBindingContract({
 *   name: "my binding",
 *   setup: (a, b) => Promise.resolve({
 *     transfer: async (from, to) => { ... },
 *     nextHopHolds: async (key) => ...,
 *     close: async () => {},
 *   }),
 * });
 * ```
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Handover } from "../binding.ts";
import { MAX_PARCEL_LENGTH } from "../validation.ts";
import { createParcelFixture, MAX_FIXTURE_PAYLOAD, type ParcelFixture } from "./fixtures.ts";
import { MemoryParcelNode } from "./memory_node.ts";

/** Two nodes joined by the binding under test. */
export interface BindingHarness {
  /**
   * Moves the parcels waiting at `from` towards `to`, and resolves once `to` got
   * everything it is going to get. May reject when `to` fails to store a parcel.
   */
  transfer(from: MemoryParcelNode, to: MemoryParcelNode): Promise<void>;
  /** Whether the binding's next hop durably holds the parcel with this key right now. */
  nextHopHolds(key: string, from: MemoryParcelNode): Promise<boolean>;
  /** Releases everything the harness holds. */
  close(): Promise<void>;
}

/** The endpoints each node hosts in a contract test. */
export interface ContractEndpoints {
  /** Parcels queued at B are addressed to this endpoint, hosted by A. */
  readonly a: string;
  /** Parcels queued at A are addressed to this endpoint, hosted by B. */
  readonly b: string;
}

/** Options of {@linkcode testBindingContract}. */
export interface BindingContractOptions {
  /** Prefix of every test name. */
  readonly name: string;
  /**
   * Joins `a` and `b` with a fresh instance of the binding. Bindings that route
   * by recipient make A host `endpoints.a` and B host `endpoints.b`.
   */
  setup(
    a: MemoryParcelNode,
    b: MemoryParcelNode,
    endpoints: ContractEndpoints,
  ): Promise<BindingHarness>;
  /** Passed to every `Deno.test` (e.g. to relax sanitizers for network bindings). */
  readonly testOptions?: Partial<Deno.TestDefinition>;
}

/** Parcels for B's endpoint (queued at A) and for A's endpoint (queued at B). */
interface Fixtures {
  readonly forB: ParcelFixture;
  readonly forA: ParcelFixture;
}

let fixtures: Promise<Fixtures> | null = null;

function sharedFixtures(): Promise<Fixtures> {
  fixtures ??= Promise.all([createParcelFixture(), createParcelFixture()]).then(([forB, forA]) => ({
    forB,
    forA,
  }));
  return fixtures;
}

/** Registers the contract's test cases for one binding. */
export function testBindingContract(options: BindingContractOptions): void {
  const define = (name: string, fn: (ctx: Context) => Promise<void>) =>
    Deno.test({
      ...options.testOptions,
      name: `${options.name}: ${name}`,
      fn: async () => {
        const a = new MemoryParcelNode("A");
        const b = new MemoryParcelNode("B");
        const { forA, forB } = await sharedFixtures();
        const harness = await options.setup(a, b, { a: forA.recipientId, b: forB.recipientId });
        try {
          fixtureOf.set(a, forB);
          fixtureOf.set(b, forA);
          await fn({ a, b, harness, fixture: forB });
        } finally {
          await harness.close();
        }
      },
    });

  define(
    "delivers every queued parcel exactly once, byte for byte",
    async ({ a, b, harness, fixture }) => {
      const keys = await queue(a, fixture, 3);
      await harness.transfer(a, b);
      assert.deepEqual([...b.stored.keys()].sort(), [...keys].sort());
      for (const key of keys) assert.deepEqual(b.stored.get(key), await readQueued(a, key));
    },
  );

  define(
    "reports a handover only once the next hop holds the parcel",
    async ({ a, b, harness, fixture }) => {
      const violations: string[] = [];
      const handovers: Handover[] = [];
      a.onHandover = async (key, handover) => {
        handovers.push(handover);
        if (!await harness.nextHopHolds(key, a)) violations.push(key);
      };
      const keys = await queue(a, fixture, 3);
      await harness.transfer(a, b);
      assert.deepEqual(violations, [], "handover reported before the next hop stored the parcel");
      for (const key of keys) {
        assert.ok(
          a.handoverOf(key),
          `parcel ${key} was never reported handed over`,
        );
      }
      assert.ok(handovers.every((h) => h.binding.length > 0), "every handover names its binding");
    },
  );

  define(
    "keeps parcels when the receiver fails to store them, and delivers them later",
    async ({ a, b, harness, fixture }) => {
      const keys = await queue(a, fixture, 3);
      b.failures = 1;
      await harness.transfer(a, b).catch(() => {}); // the binding may report the failure
      assert.equal(b.failures, 0, "the binding never offered the receiver a parcel");
      await harness.transfer(a, b);
      assert.deepEqual([...b.stored.keys()].sort(), [...keys].sort());
    },
  );

  define("a refused parcel does not hold back the others", async ({ a, b, harness, fixture }) => {
    const keys = await queue(a, fixture, 3);
    const refusedKey = keys[1];
    b.refuse = (bytes) => {
      const key = keyOf(bytes, a);
      return key === refusedKey ? { code: "unauthorized", reason: "test refusal" } : null;
    };
    await harness.transfer(a, b);
    assert.deepEqual([...b.stored.keys()].sort(), [keys[0], keys[2]].sort());
  });

  define("repeating a transfer stores nothing twice", async ({ a, b, harness, fixture }) => {
    const keys = await queue(a, fixture, 2);
    await harness.transfer(a, b);
    await harness.transfer(a, b);
    assert.equal(b.stored.size, keys.length);
  });

  define("carries a parcel of the maximum size intact", async ({ a, b, harness, fixture }) => {
    const bytes = await fixture.makeParcel({ payloadSize: MAX_FIXTURE_PAYLOAD });
    assert.ok(
      bytes.byteLength <= MAX_PARCEL_LENGTH && bytes.byteLength > MAX_PARCEL_LENGTH - 16_384,
    );
    const key = await a.enqueue(bytes, fixture.recipientId);
    await harness.transfer(a, b);
    assert.deepEqual(b.stored.get(key), bytes);
  });

  define("carries parcels both ways", async ({ a, b, harness, fixture }) => {
    const fromA = await queue(a, fixture, 1);
    const fromB = await queue(b, fixtureOf.get(b)!, 1);
    await harness.transfer(a, b);
    await harness.transfer(b, a);
    assert.deepEqual([...b.stored.keys()], fromA);
    assert.deepEqual([...a.stored.keys()], fromB);
  });
}

interface Context {
  a: MemoryParcelNode;
  b: MemoryParcelNode;
  harness: BindingHarness;
  fixture: ParcelFixture;
}

const bytesByNode = new WeakMap<MemoryParcelNode, Map<string, Uint8Array>>();
const fixtureOf = new WeakMap<MemoryParcelNode, ParcelFixture>();

async function queue(
  node: MemoryParcelNode,
  fixture: ParcelFixture,
  count: number,
): Promise<string[]> {
  const keys: string[] = [];
  const known = bytesByNode.get(node) ?? new Map<string, Uint8Array>();
  bytesByNode.set(node, known);
  for (let i = 0; i < count; i++) {
    const bytes = await fixture.makeParcel({ payloadSize: 512 + i });
    const key = await node.enqueue(bytes, fixture.recipientId);
    known.set(key, bytes);
    keys.push(key);
  }
  return keys;
}

async function readQueued(node: MemoryParcelNode, key: string): Promise<Uint8Array | null> {
  const parcel = (await node.outgoingParcels({ includeHandedOver: true })).find((p) =>
    p.key === key
  );
  return parcel ? await parcel.read() : null;
}

function keyOf(bytes: Uint8Array, sender: MemoryParcelNode): string | undefined {
  for (const [key, known] of bytesByNode.get(sender) ?? []) {
    if (known.byteLength === bytes.byteLength && known.every((b, i) => b === bytes[i])) return key;
  }
  return undefined;
}
