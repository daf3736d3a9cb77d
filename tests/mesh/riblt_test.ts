import assert from "node:assert/strict";
import { Decoder, decodeSymbols, Encoder, encodeSymbols, hashItem } from "../../mesh/riblt.ts";

const LENGTH = 37;

function randomItems(count: number): Uint8Array[] {
  return Array.from({ length: count }, () => crypto.getRandomValues(new Uint8Array(LENGTH)));
}

/** Streams `a`'s coded symbols into a decoder of `b` until done; returns symbols used. */
function reconcile(a: Uint8Array[], b: Uint8Array[], salt = 42, batch = 8) {
  const encoder = new Encoder(a, LENGTH, salt);
  const decoder = new Decoder(b, LENGTH, salt);
  while (!decoder.add(decodeSymbols(encodeSymbols(encoder.produce(batch), LENGTH), LENGTH))) {
    if (decoder.received > 100_000) throw new Error("did not converge");
  }
  return { symbols: decoder.received, ...decoder.difference() };
}

const hex = (items: Uint8Array[]) =>
  items.map((i) => Array.from(i, (b) => b.toString(16).padStart(2, "0")).join("")).sort();

Deno.test("Decoder recovers exactly the items each side lacks, both ways", () => {
  const shared = randomItems(2000);
  const onlyA = randomItems(7);
  const onlyB = randomItems(5);
  const result = reconcile([...shared, ...onlyA], [...shared, ...onlyB]);
  assert.deepEqual(hex(result.remoteOnly), hex(onlyA));
  assert.deepEqual(hex(result.localOnly), hex(onlyB));
});

Deno.test("Decoder needs coded symbols in proportion to the difference, not to the set size", () => {
  for (const size of [100, 10_000]) {
    const shared = randomItems(size);
    const onlyA = randomItems(5);
    const onlyB = randomItems(5);
    const { symbols, remoteOnly, localOnly } = reconcile(
      [...shared, ...onlyA],
      [...shared, ...onlyB],
      7,
      4,
    );
    assert.equal(remoteOnly.length + localOnly.length, 10);
    assert.ok(symbols <= 40, `${symbols} coded symbols for 10 differences among ${size}`);
  }
});

Deno.test("Decoder finishes at once when the sets are equal, and handles empty sets", () => {
  const shared = randomItems(500);
  assert.equal(reconcile(shared, shared, 1, 1).symbols, 1);
  const onlyB = randomItems(3);
  const fromEmpty = reconcile([], onlyB);
  assert.deepEqual(hex(fromEmpty.localOnly), hex(onlyB));
  assert.equal(fromEmpty.remoteOnly.length, 0);
});

Deno.test("Decoder copes with large differences", () => {
  const shared = randomItems(3000);
  const result = reconcile(
    [...shared, ...randomItems(400)],
    [...shared, ...randomItems(300)],
    99,
    64,
  );
  assert.equal(result.remoteOnly.length, 400);
  assert.equal(result.localOnly.length, 300);
  assert.ok(result.symbols < 700 * 2.5, `${result.symbols} symbols for 700 differences`);
});

Deno.test("hashItem() depends on the salt and is not linear in XOR", () => {
  const [a, b] = randomItems(2);
  assert.notDeepEqual(hashItem(a, 1), hashItem(a, 2));
  const xor = a.map((v, i) => v ^ b[i]);
  const [ha1, ha2] = hashItem(a, 5), [hb1, hb2] = hashItem(b, 5), [hx1, hx2] = hashItem(xor, 5);
  assert.ok(((ha1 ^ hb1) >>> 0) !== hx1 || ((ha2 ^ hb2) >>> 0) !== hx2);
});

Deno.test("Encoder refuses items of the wrong length; decodeSymbols refuses truncated input", () => {
  assert.throws(() => new Encoder([new Uint8Array(3)], LENGTH, 0), /37 bytes/);
  assert.throws(() => decodeSymbols(new Uint8Array(50), LENGTH), /49 bytes each/);
});
