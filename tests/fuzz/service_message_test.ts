/**
 * Service message decoders (app/core/protocol/messages.ts) and the DER readers under
 * them (app/core/protocol/der.ts) under fuzzing (targets/service_message.ts), and the
 * reproduction of the bug found, kept as a regression test.
 */
import assert from "node:assert/strict";
import { Fields, MalformedStructureError } from "../../app/core/protocol/der.ts";
import { decodeMail, decodePairing, decodeReceipt } from "../../app/core/protocol/messages.ts";
import { unhex } from "./_rng.ts";
import { fuzzTests } from "./_testing.ts";
import { targets } from "./targets/service_message.ts";

fuzzTests("fuzz service messages (app/core/protocol/messages.ts, der.ts)", targets);

Deno.test("decodeMail(), decodePairing(), decodeReceipt() and Fields.decode() turn asn1js throws into MalformedStructureError (der-asn1js-throws)", () => {
  // A UniversalString of 5 octets: asn1js throws reading it, for want of a multiple of 4.
  const bytes = unhex("1c0551bced2c25");
  const decoders = [
    decodeMail,
    decodePairing,
    decodeReceipt,
    (b: Uint8Array) => Fields.decode("Fuzz", b),
  ];
  for (const decode of decoders) {
    assert.throws(() => decode(bytes), (error) => {
      assert.ok(error instanceof MalformedStructureError, `Threw ${error}`);
      return true;
    });
  }
});
