/**
 * Differential fuzz target: the fast parcel validator (bindings/fast_validation.ts,
 * its own DER/CMS walker) against relaynet-core (`validateParcel`,
 * bindings/validation.ts) on valid parcels and mutants of them.
 *
 * Both must give the same verdict, compared as tests/fast_validation_test.ts
 * compares them: the parcel's facts when accepted, the refusal code when refused.
 * Neither may throw anything but `ParcelRefusedError`.
 *
 * The parcels come from corpus.json (made once with `createParcelFixture`, see
 * make_corpus.ts) and are validated at the corpus's time, or at a time
 * drawn around it, so a case replays exactly. One FastParcelValidator serves all
 * the cases of a worker, as one serves a relay, so its caches are exercised; a
 * case replayed alone starts with empty caches.
 *
 * There is no entry point for the fast validator's DER walk alone (it is private
 * and falls back to relaynet-core on anything unusual), so every case pays
 * relaynet-core's price: about 5 to 10 ms.
 *
 * @module
 */
import { FastParcelValidator } from "../../../bindings/fast_validation.ts";
import { ParcelRefusedError, validateParcel } from "../../../bindings/validation.ts";
import { expectOnlyAsync, type Target } from "../_harness.ts";
import {
  concat,
  type DerNode,
  derNodes,
  hex,
  mutate,
  mutateDer,
  type Rng,
  unhex,
} from "../_rng.ts";
import type { Corpus } from "../make_corpus.ts";

/** Octets before the parcel's DER: "Awala", type 0x50, version 0x00. */
const RAMF_HEADER_LENGTH = 7;

interface Context {
  readonly now: Date;
  readonly parcels: Uint8Array[];
  readonly nodes: DerNode[][];
  readonly fast: FastParcelValidator;
}

interface ParcelCase {
  readonly bytes: Uint8Array;
  readonly now: Date;
  /** What was done to it, for the report. */
  readonly how: string;
}

async function setup(): Promise<Context> {
  const corpus: Corpus = JSON.parse(
    await Deno.readTextFile(new URL("../corpus.json", import.meta.url)),
  );
  const parcels = corpus.parcels.map(unhex);
  return {
    now: new Date(corpus.now),
    parcels,
    nodes: parcels.map((p) => derNodes(p, RAMF_HEADER_LENGTH)),
    fast: new FastParcelValidator(),
  };
}

const HOUR = 3_600_000;

function generate(rng: Rng, context: Context): ParcelCase {
  const which = rng.int(context.parcels.length);
  const parcel = context.parcels[which];
  const nodes = context.nodes[which];
  // Mostly the corpus's time; sometimes around the parcels' and certificates'
  // validity edges (parcels live a day, certificates 30 days, both from an hour back).
  const now = rng.chance(0.85) ? context.now : new Date(
    context.now.getTime() + rng.pick([-2 * HOUR, -HOUR, 23 * HOUR, 25 * HOUR, 31 * 24 * HOUR]) +
      rng.range(-HOUR, HOUR),
  );
  const roll = rng.float();
  if (roll < 0.05) return { bytes: parcel, now, how: `parcel ${which} as it is` };
  if (roll < 0.45) {
    let bytes = mutateDer(rng, parcel, nodes);
    for (let more = rng.int(3); more > 0; more--) bytes = mutateDer(rng, bytes);
    return { bytes, now, how: `parcel ${which}, DER mutated` };
  }
  if (roll < 0.85) {
    const donors = context.parcels.filter((_, i) => i !== which);
    return {
      bytes: mutate(rng, parcel, { donors, maxGrowth: 256 }),
      now,
      how: `parcel ${which}, octets mutated`,
    };
  }
  if (roll < 0.95) {
    // One octet of the header or of the CMS structure near the start.
    const bytes = parcel.slice();
    bytes[rng.int(Math.min(200, bytes.length))] ^= 1 << rng.int(8);
    return { bytes, now, how: `parcel ${which}, a bit near the start` };
  }
  // Two parcels' pieces joined at a TLV boundary.
  const other = context.parcels[rng.int(context.parcels.length)];
  const cut = rng.pick(nodes).tagAt;
  const otherNodes = derNodes(other, RAMF_HEADER_LENGTH);
  const from = otherNodes.length ? rng.pick(otherNodes).tagAt : 0;
  return {
    bytes: concat(parcel.subarray(0, cut), other.subarray(from)),
    now,
    how: `parcel ${which} spliced with another at a TLV`,
  };
}

/** What a validator made of a parcel, as tests/fast_validation_test.ts compares it. */
async function outcome(
  validate: () => Promise<{ id: string; senderId: string; recipientId: string; expiresAt: Date }>,
): Promise<string> {
  const result = await expectOnlyAsync(validate, [ParcelRefusedError]);
  if (!result.ok) return `refused ${(result.error as ParcelRefusedError).code}`;
  const facts = result.value;
  return `ok ${facts.id} ${facts.senderId} ${facts.recipientId} ${facts.expiresAt.toISOString()}`;
}

async function check(input: ParcelCase, context: Context): Promise<void> {
  const options = { now: input.now };
  const expected = await outcome(() => validateParcel(input.bytes, options));
  const fast = await outcome(() => context.fast.validate(input.bytes, options));
  if (fast !== expected) {
    throw new Error(
      `Validators disagree: relaynet-core says "${expected}", the fast one "${fast}"`,
    );
  }
}

export const targets: Target[] = [
  {
    name: "parcel-differential",
    module: import.meta.url,
    property:
      "FastParcelValidator and validateParcel agree on mutated parcels, refusing only with ParcelRefusedError",
    // relaynet-core takes ~5-10 ms a validation: 10 000 cases take ~60 s on two idle cores.
    cases: 10_000,
    setup,
    generate,
    check,
    show: (input: ParcelCase) =>
      `${input.how}, now ${input.now.toISOString()}: ${hex(input.bytes)}`,
  },
];
