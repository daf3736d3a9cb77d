/**
 * Fuzz and property tests of the mesh frame decoders (targets/mesh_frames.ts), a
 * check that the generators there cover every message type, and the reproductions
 * of the bugs they found, kept as regression tests.
 */
import assert from "node:assert/strict";
import {
  decodeSync,
  decodeTransfer,
  encodeSync,
  encodeTransfer,
  ProtocolError,
  Type,
} from "../../mesh/wire.ts";
import { caseSeed, Rng, unhex } from "./_rng.ts";
import { DEFAULT_SEED } from "./_harness.ts";
import {
  checkClipped,
  MAX_TEXT_OCTETS,
  SYNC_MESSAGES,
  syncMessage,
  targets,
  TRANSFER_MESSAGES,
  transferMessage,
} from "./targets/mesh_frames.ts";
import { fuzzTests } from "./_testing.ts";

fuzzTests("fuzz mesh frames (mesh/wire.ts, mesh/store.ts, mesh/proofs.ts)", targets);

Deno.test("mesh frame generators cover every message type of wire.ts", () => {
  const seen = new Set<number>();
  for (let i = 0; i < 2_000; i++) {
    const rng = new Rng(caseSeed(DEFAULT_SEED, "coverage", i));
    seen.add(encodeSync(syncMessage(rng))[0]);
    seen.add(encodeTransfer(transferMessage(rng))[0]);
  }
  const missing = Object.entries(Type).filter(([, byte]) => !seen.has(byte)).map(([name]) => name);
  assert.deepEqual(missing, [], `Add generators to targets/mesh_frames.ts for: ${missing}`);
  assert.ok(Object.keys(SYNC_MESSAGES).length + Object.keys(TRANSFER_MESSAGES).length >= 10);
});

// Bugs these targets found, fixed: their reproductions, now asserting the fix.

Deno.test("decodeSync() and decodeTransfer() throw ProtocolError on invalid UTF-8 text (wire-utf8-typeerror)", () => {
  for (const decode of [decodeSync, decodeTransfer]) {
    // An ERROR frame whose one-octet text is 0xff.
    assert.throws(() => decode(unhex("7f0001ff")), (error) => {
      assert.ok(error instanceof ProtocolError, `Threw ${error}`);
      assert.match(error.message, /not valid UTF-8/);
      return true;
    });
  }
});

Deno.test("encodeSync() and encodeTransfer() clip ERROR and REFUSE texts to 500 octets the decoders take (wire-text-limits)", () => {
  const text = "€".repeat(400); // 400 UTF-16 units, 1 200 octets
  const received = [
    (decodeSync(encodeSync({ type: "error", message: text })) as { message: string }).message,
    (decodeTransfer(encodeTransfer({ type: "error", message: text })) as { message: string })
      .message,
    (decodeTransfer(encodeTransfer({
      type: "refuse",
      key: "ab".repeat(32),
      code: "malformed",
      transient: false,
      reason: text,
    })) as { reason: string }).reason,
  ];
  for (const clipped of received) {
    assert.ok(new TextEncoder().encode(clipped).length <= MAX_TEXT_OCTETS);
    assert.equal(clipped, "€".repeat(166)); // 498 octets: a 167th "€" would not fit
    checkClipped(text, clipped);
  }
  // Cut before a character that would straddle the limit, not inside it.
  const straddling = "a".repeat(499) + "\u{1f600}";
  const message = decodeSync(encodeSync({ type: "error", message: straddling }));
  assert.deepEqual(message, { type: "error", message: "a".repeat(499) });
});
