/**
 * Fuzz and property targets for rateless IBLT reconciliation (mesh/riblt.ts):
 * the coded symbols a peer streams are untrusted octets.
 *
 * @module
 */
import {
  type CodedSymbol,
  Decoder,
  decodeSymbols,
  Encoder,
  encodeSymbols,
  hashItem,
} from "../../../mesh/riblt.ts";
import { expectOnly, type Target } from "../_harness.ts";
import { hex, mutate, type Rng } from "../_rng.ts";

/** Items are 37 octets in the mesh (mesh/store.ts `ITEM_LENGTH`). */
export const ITEM_LENGTH = 37;
const SYMBOL_LENGTH = ITEM_LENGTH + 12;

/** `count` random items (distinct: 296 random bits each). */
export function randomItems(rng: Rng, count: number): Uint8Array[] {
  return Array.from({ length: count }, () => rng.bytes(ITEM_LENGTH));
}

/** A salt as HELLO carries one: any uint32, edges included. */
function salt(rng: Rng): number {
  return rng.chance(0.1) ? rng.pick([0, 1, 0x7fffffff, 0xffffffff]) : rng.u32();
}

/** Sorted hex of some items, to compare sets. */
export function sortedHex(items: readonly Uint8Array[]): string[] {
  return items.map(hex).sort();
}

/** A symbol stream and the local set it is decoded against. */
interface Stream {
  readonly local: Uint8Array[];
  readonly salt: number;
  /** The coded symbols, batch by batch, as they arrive on the wire. */
  readonly batches: Uint8Array[];
  /** Whether the symbols are random (no consistent item in them), not a mutated stream. */
  readonly random?: boolean;
}

function showStream(stream: Stream): string {
  return JSON.stringify({
    salt: stream.salt,
    local: stream.local.map(hex),
    batches: stream.batches.map(hex),
  });
}

/** Splits `bytes` into batches of whole symbols (or not, when `whole` is false). */
function batchesOf(rng: Rng, bytes: Uint8Array, whole = true): Uint8Array[] {
  const batches: Uint8Array[] = [];
  for (let offset = 0; offset < bytes.length;) {
    const symbols = 1 + rng.size(64);
    const length = whole ? symbols * SYMBOL_LENGTH : rng.size(symbols * SYMBOL_LENGTH);
    batches.push(bytes.subarray(offset, offset + length));
    offset += length;
  }
  return batches;
}

/**
 * Feeds a stream to a decoder as node.ts does: only RangeError may come out
 * (octets that are not whole symbols, or symbols the decoder finds inconsistent,
 * after which the stream is dropped), and the decoder counts every symbol it took.
 */
function feed(stream: Stream): void {
  const decoder = new Decoder(stream.local, ITEM_LENGTH, stream.salt);
  let fed = 0;
  for (const batch of stream.batches) {
    const symbols = expectOnly(() => decodeSymbols(batch, ITEM_LENGTH), [RangeError]);
    if (!symbols.ok) continue;
    const added = expectOnly(() => decoder.add(symbols.value), [RangeError]);
    if (!added.ok) return;
    fed += symbols.value.length;
    if (decoder.received !== fed) {
      throw new Error(`Decoder received ${decoder.received} coded symbols, not ${fed}`);
    }
    if (added.value) break;
  }
  // Random symbols hold no item: what peels out of them is a local item (a
  // symbol with a zero sum and hash says the remote side lacks the local ones
  // mapped to it), or a 64-bit hash collision.
  if (stream.random) {
    const local = new Set(stream.local.map(hex));
    const { remoteOnly, localOnly } = decoder.difference();
    const invented = [...remoteOnly, ...localOnly].filter((item) => !local.has(hex(item)));
    if (invented.length) {
      throw new Error(
        `Random symbols yielded ${invented.length} items never sent: ${hex(invented[0])}`,
      );
    }
  }
}

/**
 * Garbage: random symbols (counts and hashes at the edges too), or an honest
 * stream with octets mutated, batch boundaries anywhere.
 */
function garbageStream(rng: Rng): Stream {
  const local = randomItems(rng, rng.size(300));
  const s = salt(rng);
  let bytes: Uint8Array;
  const random = rng.chance(0.4);
  if (random) {
    const symbols: CodedSymbol[] = Array.from({ length: 1 + rng.size(400) }, () => ({
      sum: rng.chance(0.2) ? new Uint8Array(ITEM_LENGTH) : rng.bytes(ITEM_LENGTH),
      hashHi: rng.chance(0.2) ? 0 : rng.u32(),
      hashLo: rng.chance(0.2) ? 0 : rng.u32(),
      count: rng.chance(0.5)
        ? rng.pick([-1, 0, 1, 2, -2, 0x7fffffff, -0x80000000])
        : (rng.u32() | 0),
    }));
    bytes = encodeSymbols(symbols, ITEM_LENGTH);
  } else {
    const remote = [
      ...local.slice(0, rng.int(local.length + 1)),
      ...randomItems(rng, rng.size(50)),
    ];
    const honest = encodeSymbols(
      new Encoder(remote, ITEM_LENGTH, s).produce(1 + rng.size(300)),
      ITEM_LENGTH,
    );
    bytes = mutate(rng, honest, { maxGrowth: 3 * SYMBOL_LENGTH });
  }
  return { local, salt: s, batches: batchesOf(rng, bytes, rng.chance(0.8)), random };
}

/**
 * Crafted: an honest stream of a small set with whole symbols zeroed, dropped,
 * repeated, swapped, negated or taken from another set's stream: inconsistent
 * symbols that each look well-formed.
 */
function craftedStream(rng: Rng): Stream {
  const s = salt(rng);
  const pool = randomItems(rng, 24);
  const remote = pool.filter(() => rng.chance(0.3));
  const local = pool.filter(() => rng.chance(0.3));
  const symbols = new Encoder(remote, ITEM_LENGTH, s).produce(1 + rng.size(64));
  const other = new Encoder(randomItems(rng, 1 + rng.size(8)), ITEM_LENGTH, s).produce(64);
  const zero = (): CodedSymbol => ({
    sum: new Uint8Array(ITEM_LENGTH),
    hashHi: 0,
    hashLo: 0,
    count: 0,
  });
  for (let m = 0, count = 1 + rng.int(4); m < count; m++) {
    const i = rng.int(symbols.length);
    switch (rng.int(6)) {
      case 0:
        symbols[i] = zero();
        break;
      case 1:
        if (symbols.length > 1) symbols.splice(i, 1);
        break;
      case 2:
        symbols.splice(i, 0, symbols[i]);
        break;
      case 3: {
        const j = rng.int(symbols.length);
        [symbols[i], symbols[j]] = [symbols[j], symbols[i]];
        break;
      }
      case 4:
        symbols[i] = { ...symbols[i], count: -symbols[i].count };
        break;
      default:
        symbols[i] = other[i] ?? zero();
    }
  }
  const bytes = encodeSymbols(symbols, ITEM_LENGTH);
  return { local, salt: s, batches: batchesOf(rng, bytes) };
}

/**
 * The stream on which `Decoder.add` of commit 9daf317 never returns: decoder of the
 * empty set, salt 1, symbol 0 = item x (37 octets of 7) with its hash and count 1,
 * the next 7 symbols all zero (x also maps to symbol 4). Peeling x from cell 0
 * leaves (x, -1) in cell 4; peeling that puts (x, +1) back in cell 0, and so on
 * for ever, the queue and the recovered lists growing. A peer could send it on the
 * sync stream and stall the responder's event loop. The rewrite of riblt.ts in
 * progress refuses it with a RangeError.
 */
export function peelCycleStream(): Stream {
  const x = new Uint8Array(ITEM_LENGTH).fill(7);
  const [hashHi, hashLo] = hashItem(x, 1);
  const zero = { sum: new Uint8Array(ITEM_LENGTH), hashHi: 0, hashLo: 0, count: 0 };
  const symbols = [{ sum: x, hashHi, hashLo, count: 1 }, ...Array(7).fill(zero)];
  return { local: [], salt: 1, batches: [encodeSymbols(symbols, ITEM_LENGTH)] };
}

/** Random sets A and B sharing a part, and the salt. */
interface SetPair {
  readonly remote: Uint8Array[];
  readonly local: Uint8Array[];
  readonly remoteOnly: Uint8Array[];
  readonly localOnly: Uint8Array[];
  readonly salt: number;
  readonly batch: number;
}

function setPair(rng: Rng): SetPair {
  const shared = randomItems(rng, rng.size(3000));
  // One case in eight compares equal sets.
  const equal = rng.chance(0.125);
  const remoteOnly = equal ? [] : randomItems(rng, rng.size(rng.chance(0.1) ? 400 : 40));
  const localOnly = equal ? [] : randomItems(rng, rng.size(rng.chance(0.1) ? 400 : 40));
  const mix = (items: Uint8Array[]) => items.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  return {
    remote: mix([...shared, ...remoteOnly]),
    local: mix([...localOnly, ...shared]),
    remoteOnly,
    localOnly,
    salt: salt(rng),
    batch: 1 + rng.size(64),
  };
}

/**
 * Encoder(remote) into Decoder(local) through the wire encoding: exactly both
 * differences. Equal sets are done at the first symbol, and stay so with nothing
 * to report however many more symbols come.
 */
function checkReconcile(pair: SetPair): void {
  const encoder = new Encoder(pair.remote, ITEM_LENGTH, pair.salt);
  const decoder = new Decoder(pair.local, ITEM_LENGTH, pair.salt);
  const differing = pair.remoteOnly.length + pair.localOnly.length;
  // Generous: the property is the result, not the overhead (riblt_test.ts checks that).
  const limit = 200 + 10 * differing;
  const next = () =>
    decodeSymbols(encodeSymbols(encoder.produce(pair.batch), ITEM_LENGTH), ITEM_LENGTH);
  if (differing === 0) {
    for (let round = 0; round < 3; round++) {
      if (!decoder.add(next())) {
        throw new Error(`Equal sets not done after ${decoder.received} symbols`);
      }
    }
  } else {
    while (!decoder.add(next())) {
      if (decoder.received > limit) {
        throw new Error(
          `No convergence after ${decoder.received} symbols for ${differing} differences`,
        );
      }
    }
  }
  const found = decoder.difference();
  const same = (a: readonly Uint8Array[], b: readonly Uint8Array[]) =>
    JSON.stringify(sortedHex(a)) === JSON.stringify(sortedHex(b));
  if (!same(found.remoteOnly, pair.remoteOnly) || !same(found.localOnly, pair.localOnly)) {
    throw new Error(
      `Wrong difference: ${found.remoteOnly.length}/${found.localOnly.length} items recovered, ` +
        `${pair.remoteOnly.length}/${pair.localOnly.length} expected`,
    );
  }
}

function showPair(pair: SetPair): string {
  return JSON.stringify({
    salt: pair.salt,
    batch: pair.batch,
    remote: pair.remote.map(hex),
    local: pair.local.map(hex),
  });
}

const module = import.meta.url;

/** Single reproductions of bugs found, run by riblt_test.ts (not by run.ts). */
export const regressions: Target[] = [
  {
    name: "riblt-peel-cycle",
    module,
    property: "Decoder.add() returns or throws RangeError on the 9daf317 peel-cycle stream",
    cases: 1,
    stallMs: 5_000,
    generate: peelCycleStream,
    check: feed,
    show: showStream,
  },
];

export const targets: Target[] = [
  {
    name: "riblt-decode-symbols",
    module,
    property: "decodeSymbols() returns or throws RangeError on any octets; symbols round-trip",
    cases: 10_000,
    generate: (rng) =>
      rng.chance(0.5) ? rng.bytes(SYMBOL_LENGTH * rng.size(20)) : rng.bytes(rng.size(1000)),
    check: (bytes: Uint8Array) => {
      const outcome = expectOnly(() => decodeSymbols(bytes, ITEM_LENGTH), [RangeError]);
      if (outcome.ok && hex(encodeSymbols(outcome.value, ITEM_LENGTH)) !== hex(bytes)) {
        throw new Error("Decoded symbols re-encode differently");
      }
    },
    show: hex,
  },
  {
    name: "riblt-garbage",
    module,
    property: "Decoder.add() takes garbage symbols without throwing or hanging, counting them all",
    cases: 10_000,
    generate: garbageStream,
    check: feed,
    show: showStream,
  },
  {
    name: "riblt-crafted",
    module,
    property: "Decoder.add() takes inconsistent but well-formed symbol streams without hanging",
    cases: 10_000,
    // Cases take a millisecond or so: a case still running after this long hangs.
    stallMs: 3_000,
    generate: craftedStream,
    check: feed,
    show: showStream,
  },
  {
    name: "riblt-reconcile",
    module,
    property:
      "Encoder(A) symbols into Decoder(B) yield exactly A\\B and B\\A (equal sets: none, at once)",
    cases: 10_000,
    generate: setPair,
    check: checkReconcile,
    show: showPair,
  },
];
