import assert from "node:assert/strict";
import {
  type CodedSymbol,
  Decoder,
  decodeSymbols,
  Encoder,
  encodeSymbols,
  hashItem,
  IndexSequence,
} from "../../mesh/riblt.ts";

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

/** Bytes a decoder holds per local item: the item, two hash halves, sequence state, heap entry. */
const LOCAL_ITEM_BYTES = LENGTH + 24;
const SYMBOL_BYTES = LENGTH + 12;

/** `count` coded symbols of random bytes, as a hostile peer might send. */
function randomSymbols(count: number): Uint8Array {
  const bytes = new Uint8Array(count * SYMBOL_BYTES);
  for (let offset = 0; offset < bytes.length; offset += 65_536) {
    crypto.getRandomValues(bytes.subarray(offset, offset + 65_536));
  }
  return bytes;
}

/** Like `reconcile`, with the byte-level methods. */
function reconcileEncoded(a: Uint8Array[], b: Uint8Array[], salt: number, batch = 64) {
  const encoder = new Encoder(a, LENGTH, salt);
  const decoder = new Decoder(b, LENGTH, salt, { maxSymbols: 100_000 });
  while (!decoder.addEncoded(encoder.produceEncoded(batch)));
  return { symbols: decoder.received, ...decoder.difference() };
}

Deno.test("Decoder.addEncoded() throws once received would exceed maxSymbols, adding nothing", () => {
  const decoder = new Decoder(randomItems(10), LENGTH, 3, { maxSymbols: 100 });
  decoder.addEncoded(randomSymbols(64));
  assert.throws(
    () => decoder.addEncoded(randomSymbols(64)),
    (error: unknown) =>
      error instanceof RangeError &&
      error.message === "Reconciliation exceeds 100 coded symbols: received 128",
  );
  assert.equal(decoder.received, 64);
  decoder.addEncoded(randomSymbols(36));
  assert.equal(decoder.received, 100);
  assert.throws(() => decoder.addEncoded(randomSymbols(1)), RangeError);
  const [one] = decodeSymbols(randomSymbols(1), LENGTH);
  assert.throws(() => decoder.add([one]), /exceeds 100 coded symbols: received 101/);
  assert.equal(decoder.received, 100);
  // The bound caps what is allocated, too.
  assert.ok(decoder.memoryBytes <= 100 * SYMBOL_BYTES + 10 * LOCAL_ITEM_BYTES + LENGTH);
});

Deno.test("Decoder refuses a bad maxSymbols and input that is not whole symbols", () => {
  for (const maxSymbols of [-1, 1.5, NaN]) {
    assert.throws(() => new Decoder([], LENGTH, 0, { maxSymbols }), RangeError);
  }
  const decoder = new Decoder([], LENGTH, 0);
  assert.throws(() => decoder.addEncoded(new Uint8Array(50)), /49 bytes each: got 50 bytes/);
  assert.throws(() => decoder.add([{ sum: new Uint8Array(3), hashHi: 0, hashLo: 0, count: 1 }]));
  assert.throws(
    () => decoder.add([{ sum: new Uint8Array(LENGTH), hashHi: 0, hashLo: 0, count: 0.5 }]),
    /32-bit integers: got 0.5/,
  );
  assert.equal(decoder.received, 0);
});

Deno.test("Decoder holds memory in proportion to the random symbols it received", () => {
  const local = 1000;
  const items = randomItems(local);
  const fixed = local * LOCAL_ITEM_BYTES + LENGTH;
  for (const count of [1000, 10_000, 100_000]) {
    const decoder = new Decoder(items, LENGTH, count);
    const bounded = new Decoder(items, LENGTH, count, { maxSymbols: count });
    for (let sent = 0, batch = 16; sent < count; sent += batch, batch *= 2) {
      const bytes = randomSymbols(Math.min(batch, count - sent));
      decoder.addEncoded(bytes);
      bounded.addEncoded(bytes);
    }
    assert.equal(decoder.received, count);
    const wire = count * SYMBOL_BYTES;
    const held = decoder.memoryBytes - fixed;
    // At most doubled by growing, never more.
    assert.ok(held >= wire && held <= 2 * wire, `${held} bytes held for ${wire} received`);
    assert.equal(bounded.memoryBytes - fixed, wire);
  }
});

Deno.test("Decoder.addEncoded() recovers differences exactly, for sets of several sizes and salts", () => {
  const cases = [[0, 0, 3], [0, 4, 0], [100, 10, 1], [5000, 100, 150], [49_500, 500, 500]];
  for (const [shared, onlyA, onlyB] of cases) {
    const salt = crypto.getRandomValues(new Uint32Array(1))[0];
    const common = randomItems(shared);
    const a = randomItems(onlyA), b = randomItems(onlyB);
    const result = reconcileEncoded([...common, ...a], [...common, ...b], salt);
    assert.deepEqual(hex(result.remoteOnly), hex(a), `salt ${salt}`);
    assert.deepEqual(hex(result.localOnly), hex(b), `salt ${salt}`);
    assert.ok(result.symbols <= Math.max(64, (onlyA + onlyB) * 2.5), `${result.symbols} symbols`);
  }
});

Deno.test("Decoder.add() and Decoder.addEncoded() agree, and so do Encoder's two methods", () => {
  const shared = randomItems(3000);
  const a = [...shared, ...randomItems(120)], b = [...shared, ...randomItems(80)];
  const encoder = new Encoder(a, LENGTH, 11), twin = new Encoder(new Set(a), LENGTH, 11);
  const objects = new Decoder(b, LENGTH, 11), bytes = new Decoder(b, LENGTH, 11);
  for (let batch = 1;; batch = Math.min(batch * 2, 64)) {
    const encoded = encodeSymbols(encoder.produce(batch), LENGTH);
    assert.deepEqual(twin.produceEncoded(batch), encoded);
    const done = objects.add(decodeSymbols(encoded, LENGTH));
    assert.equal(bytes.addEncoded(encoded), done);
    assert.equal(bytes.received, objects.received);
    assert.deepEqual(bytes.difference(), objects.difference()); // in the same order
    assert.equal(bytes.memoryBytes, objects.memoryBytes);
    if (done) break;
  }
  assert.equal(objects.difference().remoteOnly.length, 120);
  assert.equal(objects.difference().localOnly.length, 80);
});

Deno.test("Decoder throws on symbols crafted to recover an item over and over", () => {
  // A hostile initiator picks the salt: it puts an item alone in one of the cells
  // the item maps to and leaves another empty, so that taking the item out of the
  // one puts it back alone into the other, with the opposite sign, and so on.
  const salt = 1, cells = 64;
  let item: Uint8Array, hits: number[];
  do {
    [item] = randomItems(1);
    const sequence = new IndexSequence(...hashItem(item, salt));
    hits = [];
    for (let i = sequence.next(); i < cells; i = sequence.next()) hits.push(i);
  } while (hits.length < 2);
  const symbols: CodedSymbol[] = Array.from({ length: cells }, (_, i) => ({
    sum: new Uint8Array(LENGTH),
    hashHi: 0,
    hashLo: 0,
    count: i === 0 || hits.includes(i) ? 1000 : 0,
  }));
  const [hashHi, hashLo] = hashItem(item, salt);
  symbols[hits[0]] = { sum: item, hashHi, hashLo, count: 1 };
  symbols[hits[1]] = { sum: new Uint8Array(LENGTH), hashHi: 0, hashLo: 0, count: 0 };
  const decoder = new Decoder([], LENGTH, salt);
  assert.throws(
    () => decoder.addEncoded(encodeSymbols(symbols, LENGTH)),
    /inconsistent: more than 64 items recovered from 64 symbols/,
  );
});
