/**
 * Rateless IBLT (mesh/riblt.ts): fuzz targets over untrusted coded symbols and
 * set pairs (targets/riblt.ts), the bug reproduction found by them, a bound on
 * what garbage costs, and known-answer vectors.
 *
 * The vectors in riblt_vectors.json were made from mesh/riblt.ts at commit 9daf317,
 * before its rewrite into flat typed arrays, by
 *
 * ```sh
 * git show 9daf317:mesh/riblt.ts > /tmp/riblt_9daf317.ts
 * deno run -A tests/fuzz/make_riblt_vectors.ts /tmp/riblt_9daf317.ts "mesh/riblt.ts at commit 9daf317"
 * ```
 *
 * Both sides must match them bit for bit: the hash, the index sequences and the
 * encoder's symbols (what goes on the wire), and how many symbols the decoder needs
 * and what it finds. Regenerate them only for a deliberate, documented change of
 * the wire format (docs/mesh-protocol.md §2), never to make this test pass.
 */
import assert from "node:assert/strict";
import {
  Decoder,
  decodeSymbols,
  Encoder,
  encodeSymbols,
  hashItem,
  IndexSequence,
} from "../../mesh/riblt.ts";
import { configFromEnv } from "./_harness.ts";
import { runIsolated } from "./_isolate.ts";
import { fuzzTests } from "./_testing.ts";
import { hex, Rng, unhex } from "./_rng.ts";
import type { RibltVectors } from "./make_riblt_vectors.ts";
import { ITEM_LENGTH, randomItems, regressions, targets } from "./targets/riblt.ts";

const vectors: RibltVectors = JSON.parse(
  await Deno.readTextFile(new URL("./riblt_vectors.json", import.meta.url)),
);

fuzzTests("fuzz rateless IBLT (mesh/riblt.ts)", targets);

Deno.test("Decoder.add() returns on the stream that made 9daf317's peeling loop for ever", async () => {
  // Runs in a worker: a hang is reported as a failure after 5 s, not a stuck test.
  await runIsolated(regressions[0], configFromEnv(), { cases: 1 });
});

Deno.test("Decoder keeps 20 000 garbage coded symbols in bounded memory, counting them all", () => {
  const rng = new Rng(configFromEnv().seed);
  const decoder = new Decoder(randomItems(rng, 1000), ITEM_LENGTH, rng.u32());
  const before = usedMemory();
  for (let batch = 0; batch < 40; batch++) {
    const symbols = decodeSymbols(rng.bytes(500 * (ITEM_LENGTH + 12)), ITEM_LENGTH);
    assert.equal(decoder.add(symbols), false, "Random symbols do not complete a difference");
    assert.equal(decoder.received, (batch + 1) * 500);
  }
  const { remoteOnly, localOnly } = decoder.difference();
  assert.equal(remoteOnly.length + localOnly.length, 0, "Items recovered from random symbols");
  // 20 000 symbols are 980 000 octets on the wire; allow generous headroom.
  const grown = usedMemory() - before;
  assert.ok(grown < 64 * 2 ** 20, `Decoder grew by ${Math.round(grown / 2 ** 20)} MiB`);
  const reported = (decoder as { memoryBytes?: number }).memoryBytes;
  if (reported !== undefined) {
    assert.ok(reported < 8 * 2 ** 20, `Decoder says it holds ${reported} octets`);
  }
});

function usedMemory(): number {
  const usage = Deno.memoryUsage();
  return usage.heapUsed + usage.external;
}

Deno.test("riblt vectors: hashItem() gives the recorded hashes", () => {
  assert.ok(vectors.hashes.length >= 100);
  for (const { item, salt, hash } of vectors.hashes) {
    assert.deepEqual(hashItem(unhex(item), salt), hash, `hashItem(${item}, ${salt})`);
  }
});

Deno.test("riblt vectors: IndexSequence gives the recorded first 40 indices", () => {
  for (const { hash, indices } of vectors.sequences) {
    const sequence = new IndexSequence(hash[0], hash[1]);
    assert.equal(sequence.index, 0);
    assert.deepEqual(Array.from({ length: indices.length }, () => sequence.next()), indices);
    assert.equal(sequence.index, indices.at(-1));
  }
});

Deno.test("riblt vectors: Encoder writes the recorded first 64 coded symbols", () => {
  for (const { salt, items, symbols } of vectors.encodings) {
    const encoder = new Encoder(items.map(unhex), vectors.itemLength, salt);
    // In uneven batches: the stream must not depend on how it is asked for.
    const produced = [
      ...encoder.produce(1),
      ...encoder.produce(0),
      ...encoder.produce(13),
      ...encoder.produce(50),
    ];
    assert.equal(hex(encodeSymbols(produced, vectors.itemLength)), symbols);
    assert.equal(
      hex(encodeSymbols(decodeSymbols(unhex(symbols), vectors.itemLength), vectors.itemLength)),
      symbols,
    );
  }
});

Deno.test("riblt vectors: Decoder needs the recorded symbols and finds the recorded difference", () => {
  for (const [i, expected] of vectors.decodings.entries()) {
    const encoding = vectors.encodings[expected.encoding];
    const symbols = decodeSymbols(unhex(encoding.symbols), vectors.itemLength);
    const decoder = new Decoder(expected.local.map(unhex), vectors.itemLength, encoding.salt);
    let done = false;
    for (let at = 0; at < symbols.length && !done; at += expected.batch) {
      done = decoder.add(symbols.slice(at, at + expected.batch));
    }
    assert.ok(done, `decoding ${i} did not finish`);
    assert.equal(decoder.received, expected.received, `decoding ${i}: symbols needed`);
    const difference = decoder.difference();
    assert.deepEqual(difference.remoteOnly.map(hex).sort(), expected.remoteOnly, `decoding ${i}`);
    assert.deepEqual(difference.localOnly.map(hex).sort(), expected.localOnly, `decoding ${i}`);
  }
});
