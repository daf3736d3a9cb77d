/**
 * Delivery proofs, hosting claims and sealed announcements (mesh/proofs.ts):
 * what checks, and every way a forgery fails.
 */
import assert from "node:assert/strict";
import { createParcelFixture } from "../../bindings/testing/fixtures.ts";
import {
  announcementTag,
  decodeProof,
  encodeProof,
  endpointIdOf,
  makeDeliveryProof,
  makeHostingClaim,
  openClaim,
  sealClaim,
  SignatureVerifier,
  signerFromPkcs8,
} from "../../mesh/proofs.ts";

const KEY = "ab".repeat(32);
const [alice, mallory] = await Promise.all([createParcelFixture(), createParcelFixture()]);
const recipient = signerFromPkcs8(alice.recipientPrivateKeyDer);
const impostor = signerFromPkcs8(mallory.recipientPrivateKeyDer);

Deno.test("signerFromPkcs8() signs as the endpoint whose id relaynet-core computes", () => {
  assert.equal(recipient.id, alice.recipientId);
  assert.equal(endpointIdOf(recipient.publicKey), alice.recipientId);
});

Deno.test("SignatureVerifier.verifyProof() accepts the recipient's proof, through its encoding", () => {
  const proof = decodeProof(encodeProof(makeDeliveryProof(recipient, KEY)));
  assert.equal(proof.key, KEY);
  assert.ok(new SignatureVerifier().verifyProof(proof, alice.recipientId));
});

Deno.test("SignatureVerifier.verifyProof() refuses another key, another parcel and a flipped bit", () => {
  const verifier = new SignatureVerifier();
  // Mallory signs with her own key: the key does not hash to Alice's id.
  assert.equal(verifier.verifyProof(makeDeliveryProof(impostor, KEY), alice.recipientId), false);
  // Mallory's key presented as Alice's, with her own signature: still her key.
  const swapped = { ...makeDeliveryProof(impostor, KEY), publicKey: recipient.publicKey };
  assert.equal(verifier.verifyProof(swapped, alice.recipientId), false);
  // Alice's proof for one parcel does not prove another.
  const other = { ...makeDeliveryProof(recipient, KEY), key: "cd".repeat(32) };
  assert.equal(verifier.verifyProof(other, alice.recipientId), false);
  const flipped = makeDeliveryProof(recipient, KEY);
  const signature = flipped.signature.slice();
  signature[10] ^= 1;
  assert.equal(verifier.verifyProof({ ...flipped, signature }, alice.recipientId), false);
  // A public key that is not a key at all.
  const junk = { ...flipped, publicKey: new Uint8Array(64) };
  assert.equal(verifier.verifyProof(junk, endpointIdOf(junk.publicKey)), false);
});

Deno.test("decodeProof() refuses truncated, padded and oversized proofs with RangeError", () => {
  const bytes = encodeProof(makeDeliveryProof(recipient, KEY));
  assert.throws(() => decodeProof(bytes.subarray(0, bytes.length - 1)), RangeError);
  assert.throws(() => decodeProof(new Uint8Array([...bytes, 0])), RangeError);
  const oversized = bytes.slice();
  oversized[32] = 0xff; // the public key's length, now 65 280-ish octets
  assert.throws(() => decodeProof(oversized), RangeError);
});

Deno.test("SignatureVerifier.verifyClaim() binds the endpoint to one peer id, until its expiry", () => {
  const verifier = new SignatureVerifier();
  const now = new Date();
  const claim = makeHostingClaim(recipient, "12D3KooWHost", new Date(now.getTime() + 60_000));
  assert.equal(verifier.verifyClaim(claim, "12D3KooWHost", now), alice.recipientId);
  assert.equal(verifier.verifyClaim(claim, "12D3KooWOther", now), null, "replayed by another peer");
  assert.equal(
    verifier.verifyClaim(claim, "12D3KooWHost", new Date(now.getTime() + 120_000)),
    null,
    "expired",
  );
  const relabelled = { ...claim, peerId: "12D3KooWOther" };
  assert.equal(verifier.verifyClaim(relabelled, "12D3KooWOther", now), null, "peer id edited");
  const forged = makeHostingClaim(impostor, "12D3KooWHost", claim.expiresAt);
  assert.notEqual(verifier.verifyClaim(forged, "12D3KooWHost", now), alice.recipientId);
});

Deno.test("sealClaim() opens only with the endpoint id and the nonce it was sealed under", () => {
  const nonce = crypto.getRandomValues(new Uint8Array(16));
  const claim = makeHostingClaim(recipient, "12D3KooWHost", new Date(Date.now() + 60_000));
  const sealed = sealClaim(claim, alice.recipientId, nonce);
  const opened = openClaim(sealed, alice.recipientId, nonce);
  assert.ok(opened);
  assert.deepEqual(opened.signature, claim.signature);
  assert.equal(openClaim(sealed, mallory.recipientId, nonce), null, "another id");
  assert.equal(openClaim(sealed, alice.recipientId, new Uint8Array(16)), null, "another nonce");
  const tampered = sealed.slice();
  tampered[5] ^= 1;
  assert.equal(openClaim(tampered, alice.recipientId, nonce), null, "tampered");
  assert.equal(openClaim(new Uint8Array(3), alice.recipientId, nonce), null, "too short");
});

Deno.test("announcementTag() differs per nonce, so announcements cannot be linked across connections", () => {
  const a = announcementTag(alice.recipientId, new Uint8Array(16));
  const b = announcementTag(alice.recipientId, new Uint8Array(16).fill(1));
  assert.equal(a.length, 16);
  assert.notDeepEqual(a, b);
  assert.deepEqual(a, announcementTag(alice.recipientId, new Uint8Array(16)));
});
