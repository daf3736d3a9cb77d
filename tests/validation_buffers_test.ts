/**
 * Parcels handed over as Node `Buffer`s (as relaynet-core and `node:` APIs make
 * them) are checked without being altered: `Buffer.prototype.slice` returns a
 * view, so code that copies with `slice()` and then writes would change the
 * caller's octets.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { FastParcelValidator } from "../bindings/fast_validation.ts";
import { createParcelFixture } from "../bindings/testing/fixtures.ts";
import { encodeSequence, Fields, textField } from "../app/core/protocol/der.ts";

Deno.test("the fast validator leaves a pooled Buffer's octets as they were", async () => {
  const fixture = await createParcelFixture();
  const parcel = await fixture.makeParcel({ payloadSize: 100 });
  // Buffer.from(base64) of a small value lives in Node's shared pool, at an offset.
  const pooled = Buffer.from(Buffer.from(parcel).toString("base64"), "base64");
  const before = new Uint8Array(pooled);
  const validator = new FastParcelValidator();
  const facts = await validator.validate(pooled);
  assert.equal(facts.recipientId, fixture.recipientId);
  assert.deepEqual(new Uint8Array(pooled), before);
  // And the same octets check again, by the fast path, not relaynet-core's.
  await validator.validate(pooled);
  assert.equal(validator.counts.fallback, 0);
});

Deno.test("a DER structure in a pooled Buffer decodes as its own octets", () => {
  const der = encodeSequence([textField(0, "pooled")]);
  const pooled = Buffer.from(Buffer.from(der).toString("base64"), "base64");
  assert.ok(pooled.byteOffset > 0 || pooled.buffer.byteLength > pooled.byteLength);
  assert.equal(Fields.decode("Test", pooled).text(0, "word"), "pooled");
});
