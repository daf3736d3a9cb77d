/**
 * Writes tests/fuzz/riblt_vectors.json: known answers of an implementation of
 * mesh/riblt.ts, which riblt_test.ts holds every later implementation to.
 *
 * ```sh
 * # the vectors in the repository were made from the implementation at commit 9daf317:
 * git show 9daf317:mesh/riblt.ts > /tmp/riblt_9daf317.ts
 * deno run -A tests/fuzz/make_riblt_vectors.ts /tmp/riblt_9daf317.ts 9daf317
 * ```
 *
 * Run it again only for a deliberate change of the wire format (docs/mesh-protocol.md
 * §2): the point of the vectors is that an optimisation changes none of them.
 *
 * Inputs come from a fixed-seed {@linkcode Rng} but are stored in the file, so the
 * test does not depend on the generator.
 *
 * @module
 */
import { hex, Rng } from "./_rng.ts";

/** The file's shape. */
export interface RibltVectors {
  readonly madeWith: string;
  readonly itemLength: number;
  /** hashItem(item, salt) = [hi, lo]. */
  readonly hashes: { item: string; salt: number; hash: [number, number] }[];
  /** The first indices of IndexSequence(hi, lo) after 0. */
  readonly sequences: { hash: [number, number]; indices: number[] }[];
  /** encodeSymbols of the first coded symbols of a set. */
  readonly encodings: { salt: number; items: string[]; symbols: string }[];
  /**
   * A decoder of `local` fed `encodings[encoding]`'s symbols `batch` at a time: done
   * after `received` symbols, with these differences (sorted hex).
   */
  readonly decodings: {
    encoding: number;
    local: string[];
    batch: number;
    received: number;
    remoteOnly: string[];
    localOnly: string[];
  }[];
}

const SALTS = [0, 1, 42, 0x7fffffff, 0x80000000, 0xffffffff, 0x12345678];

if (import.meta.main) {
  const [implementation, label] = Deno.args;
  if (!implementation) {
    console.error("usage: make_riblt_vectors.ts <path to riblt.ts> [label]");
    Deno.exit(2);
  }
  const riblt = await import(new URL(implementation, `file://${Deno.cwd()}/`).href);
  const vectors = make(riblt, label ?? implementation);
  const out = new URL("./riblt_vectors.json", import.meta.url);
  await Deno.writeTextFile(out, JSON.stringify(vectors, null, 2) + "\n");
  console.log(`Wrote ${out.pathname}`);
}

// deno-lint-ignore no-explicit-any
function make(riblt: any, madeWith: string): RibltVectors {
  const rng = new Rng(0x71b17);
  const itemLength = 37;
  const hashes: RibltVectors["hashes"] = [];
  const hashItems = [
    new Uint8Array(37),
    new Uint8Array(37).fill(0xff),
    ...Array.from({ length: 6 }, () => rng.bytes(37)),
    // Other lengths, for the zero-padding of a last partial word.
    ...[0, 1, 3, 4, 5, 36, 38, 64].map((n) => rng.bytes(n)),
  ];
  for (const item of hashItems) {
    for (const salt of SALTS) {
      hashes.push({ item: hex(item), salt, hash: riblt.hashItem(item, salt) });
    }
  }

  const sequenceHashes: [number, number][] = [
    [0, 0],
    [0xffffffff, 0xffffffff],
    [0x6d2b79f5, 0], // the seed that is 0 and so becomes 1
    ...hashes.slice(0, 12).map((h) => h.hash),
  ];
  const sequences = sequenceHashes.map((hash) => {
    const sequence = new riblt.IndexSequence(hash[0], hash[1]);
    return { hash, indices: Array.from({ length: 40 }, () => sequence.next()) };
  });

  const sets = [
    { salt: 42, items: Array.from({ length: 20 }, () => rng.bytes(itemLength)) },
    { salt: 0xdeadbeef, items: Array.from({ length: 300 }, () => rng.bytes(itemLength)) },
    { salt: 7, items: [] as Uint8Array[] },
  ];
  const encodings = sets.map(({ salt, items }) => ({
    salt,
    items: items.map(hex),
    symbols: hex(
      riblt.encodeSymbols(new riblt.Encoder(items, itemLength, salt).produce(64), itemLength),
    ),
  }));

  const decodings: RibltVectors["decodings"] = [];
  const plans = [
    { encoding: 0, keep: 14, extra: 3, batch: 1 },
    { encoding: 0, keep: 0, extra: 0, batch: 1 },
    { encoding: 0, keep: 20, extra: 0, batch: 1 },
    { encoding: 1, keep: 290, extra: 8, batch: 1 },
    { encoding: 1, keep: 295, extra: 2, batch: 7 },
    { encoding: 2, keep: 0, extra: 5, batch: 1 },
  ];
  for (const plan of plans) {
    const set = sets[plan.encoding];
    const local = [
      ...set.items.slice(0, plan.keep),
      ...Array.from({ length: plan.extra }, () => rng.bytes(itemLength)),
    ];
    const symbols = riblt.decodeSymbols(
      riblt.encodeSymbols(
        new riblt.Encoder(set.items, itemLength, set.salt).produce(64),
        itemLength,
      ),
      itemLength,
    );
    const decoder = new riblt.Decoder(local, itemLength, set.salt);
    let done = false;
    for (let i = 0; i < symbols.length && !done; i += plan.batch) {
      done = decoder.add(symbols.slice(i, i + plan.batch));
    }
    if (!done) throw new Error(`Plan ${JSON.stringify(plan)} needs more than 64 symbols`);
    const difference = decoder.difference();
    decodings.push({
      encoding: plan.encoding,
      local: local.map(hex),
      batch: plan.batch,
      received: decoder.received,
      remoteOnly: difference.remoteOnly.map(hex).sort(),
      localOnly: difference.localOnly.map(hex).sort(),
    });
  }
  return { madeWith, itemLength, hashes, sequences, encodings, decodings };
}
