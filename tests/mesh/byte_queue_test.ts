/**
 * mesh/byte_queue.ts: octets come out as they went in, however they were cut,
 * through growth and compaction; memory follows octets, not chunks.
 */
import assert from "node:assert/strict";
import { Uint8ArrayList } from "uint8arraylist";
import { ByteQueue } from "../../mesh/byte_queue.ts";

Deno.test("ByteQueue gives back what went in, in order, across growth and compaction", () => {
  const queue = new ByteQueue();
  const reference: number[] = [];
  let next = 0;
  // A fixed pseudo-random walk of pushes (arrays and lists) and takes.
  let seed = 7;
  const random = (n: number) => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) % n;
  for (let step = 0; step < 5_000; step++) {
    if (random(3) > 0) {
      const chunk = Uint8Array.from({ length: random(3_000) }, () => next++ % 256);
      reference.push(...chunk);
      if (random(2) === 0) queue.push(chunk);
      else queue.push(new Uint8ArrayList(chunk.subarray(0, 10), chunk.subarray(10)));
    } else if (queue.length > 0) {
      const offset = random(Math.min(queue.length, 5));
      const length = random(queue.length - offset + 1);
      assert.equal(queue.at(0), reference[0]);
      assert.deepEqual(
        queue.take(offset, length),
        Uint8Array.from(reference.slice(offset, offset + length)),
      );
      reference.splice(0, offset + length);
    }
    assert.equal(queue.length, reference.length);
  }
});

Deno.test("ByteQueue copies what it is given: later changes to a chunk do not reach it", () => {
  const queue = new ByteQueue();
  const chunk = new Uint8Array([1, 2, 3]);
  queue.push(chunk);
  chunk[0] = 9;
  const taken = queue.take(0, 3);
  assert.deepEqual(taken, new Uint8Array([1, 2, 3]));
  queue.push(new Uint8Array([4]));
  assert.deepEqual(taken, new Uint8Array([1, 2, 3]), "a taken frame is a copy, not a view");
});

Deno.test("ByteQueue holds a million one-octet chunks in about a megabyte", () => {
  const queue = new ByteQueue();
  const one = new Uint8Array([5]);
  const before = Deno.memoryUsage();
  for (let i = 0; i < 1_000_000; i++) queue.push(one);
  const grown = Deno.memoryUsage().heapUsed + Deno.memoryUsage().external - before.heapUsed -
    before.external;
  assert.equal(queue.length, 1_000_000);
  // A list of the chunks would cost ~100 octets each; one buffer grown by doubling, at most 2.
  assert.ok(grown < 4 * 1024 * 1024, `${grown} octets for 1 000 000 octets queued`);
  assert.equal(queue.take(999_999, 1)[0], 5);
  assert.equal(queue.length, 0);
});
