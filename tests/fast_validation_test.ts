import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  generateRSAKeyPair,
  issueDeliveryAuthorization,
  issueEndpointCertificate,
  Parcel,
} from "@relaycorp/relaynet-core";
import { FastParcelValidator } from "../bindings/fast_validation.ts";
import { createParcelFixture } from "../bindings/testing/fixtures.ts";
import { ParcelRefusedError, validateParcel } from "../bindings/validation.ts";

/** What a validator made of a parcel: its facts, or the refusal code. */
async function outcome(
  validate: () => Promise<{ id: string; senderId: string; recipientId: string; expiresAt: Date }>,
) {
  try {
    const facts = await validate();
    return `ok ${facts.id} ${facts.senderId} ${facts.recipientId} ${facts.expiresAt.toISOString()}`;
  } catch (error) {
    if (error instanceof ParcelRefusedError) return `refused ${error.code}`;
    throw error;
  }
}

Deno.test("FastParcelValidator agrees with relaynet-core on valid and mutated parcels", async () => {
  const fixture = await createParcelFixture();
  const fast = new FastParcelValidator();
  const samples = [
    await fixture.makeParcel({ payloadSize: 0 }),
    await fixture.makeParcel({ payloadSize: 1024 }),
    await fixture.makeParcel({ payloadSize: 70_000 }),
  ];
  let mutants = 0;
  for (const parcel of samples) {
    assert.equal(
      await outcome(() => fast.validate(parcel)),
      await outcome(() => validateParcel(parcel)),
    );
    const positions = new Set<number>();
    for (let i = 0; i < 160; i++) positions.add(i); // header, CMS structure, attributes
    for (let i = 0; i < 120; i++) positions.add(Math.floor((parcel.length * i) / 120));
    for (const position of positions) {
      for (const mask of [0x01, 0x80]) {
        const mutant = parcel.slice();
        mutant[position] ^= mask;
        const expected = await outcome(() => validateParcel(mutant));
        assert.equal(
          await outcome(() => fast.validate(mutant)),
          expected,
          `byte ${position} ^ ${mask}`,
        );
        mutants++;
      }
    }
    for (const length of [0, 7, 100, parcel.length - 1]) {
      const cut = parcel.subarray(0, length);
      assert.equal(
        await outcome(() => fast.validate(cut)),
        await outcome(() => validateParcel(cut)),
      );
    }
    const extended = new Uint8Array([...parcel, 0]);
    assert.equal(
      await outcome(() => fast.validate(extended)),
      await outcome(() => validateParcel(extended)),
    );
  }
  assert.ok(mutants > 1000);
  assert.ok(fast.counts.fast >= 3, "the fast path never ran");
});

Deno.test("FastParcelValidator refuses expired, future-dated and unauthorised parcels like relaynet-core", async () => {
  const fixture = await createParcelFixture();
  const fast = new FastParcelValidator();
  const now = new Date();
  const cases = [
    await fixture.makeParcel({
      creationDate: new Date(now.getTime() - 3 * 3_600_000),
      ttlSeconds: 3600,
    }),
    await fixture.makeParcel({ creationDate: new Date(now.getTime() + 3 * 3_600_000) }),
    await fixture.makeParcel({ creationDate: new Date(now.getTime() + 3_600_000) }), // within tolerance
  ];
  // Mallory: a self-issued "PDA" for a real recipient, whose certificate she attaches.
  const mallory = await generateRSAKeyPair();
  const certificate = await issueEndpointCertificate({
    issuerPrivateKey: mallory.privateKey,
    subjectPublicKey: mallory.publicKey,
    validityEndDate: new Date(now.getTime() + 86_400_000),
  });
  const pda = await issueDeliveryAuthorization({
    issuerCertificate: certificate,
    issuerPrivateKey: mallory.privateKey,
    subjectPublicKey: mallory.publicKey,
    validityEndDate: new Date(now.getTime() + 86_400_000),
  });
  for (const chain of [[certificate], [certificate, fixture.recipientCertificate]]) {
    const forged = new Parcel({ id: fixture.recipientId }, pda, Buffer.from("spam"), {
      ttl: 3600,
      creationDate: new Date(now.getTime() - 60_000),
      senderCaCertificateChain: chain,
    });
    cases.push(new Uint8Array(await forged.serialize(mallory.privateKey)));
  }
  const codes = [];
  for (const parcel of cases) {
    const expected = await outcome(() => validateParcel(parcel, { now }));
    assert.equal(await outcome(() => fast.validate(parcel, { now })), expected);
    codes.push(expected.split(" ").slice(0, 2).join(" "));
  }
  assert.deepEqual(codes.map((c) => c.startsWith("ok") ? "ok" : c), [
    "refused expired",
    "refused future-dated",
    "ok",
    "refused unauthorized",
    "refused unauthorized",
  ]);
  // A cached chain is not valid outside its certificates' validity.
  const valid = await fixture.makeParcel();
  await fast.validate(valid);
  const later = new Date(now.getTime() + 40 * 86_400_000);
  assert.equal(
    await outcome(() => fast.validate(valid, { now: later })),
    await outcome(() => validateParcel(valid, { now: later })),
  );
});
