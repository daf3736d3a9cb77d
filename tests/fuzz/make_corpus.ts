/**
 * Writes tests/fuzz/corpus.json: valid inputs the fuzz targets mutate, made once
 * because RSA is slow, with the time at which they are valid.
 *
 * - `parcels`: made with `createParcelFixture` (two sender/recipient pairs, a few
 *   payload sizes), for targets/parcel.ts.
 * - `invitations`: invitation lines as `encodeInvitation` writes them (the
 *   inviter's self-issued certificate, a PDA to the invitation key), for
 *   targets/invitation.ts.
 *
 * The targets validate at `now`, so every case replays exactly from its seed however
 * old the corpus is. Remake it only when a format changes:
 *
 * ```sh
 * deno run -A tests/fuzz/make_corpus.ts
 * ```
 *
 * @module
 */
import {
  CertificationPath,
  generateRSAKeyPair,
  issueDeliveryAuthorization,
  issueEndpointCertificate,
  PrivateEndpointConnParams,
  SessionKeyPair,
} from "@relaycorp/relaynet-core";
import { encodeInvitation } from "../../app/core/protocol/invitation.ts";
import { createParcelFixture } from "../../bindings/testing/fixtures.ts";
import { hex } from "./_rng.ts";

/** The file's shape. */
export interface Corpus {
  /** ISO time at which everything is valid: validate at it. */
  readonly now: string;
  /** Hex of each parcel. */
  readonly parcels: string[];
  /** Invitation lines. */
  readonly invitations: string[];
}

const DAY = 86_400_000;

/** An invitation from a new inviter, valid from an hour before `now` for a week. */
async function makeInvitation(now: Date, internetAddress: string, nameHint: string) {
  const inviter = await generateRSAKeyPair();
  const invitationKey = await generateRSAKeyPair();
  const start = new Date(now.getTime() - 3_600_000);
  const certificate = await issueEndpointCertificate({
    issuerPrivateKey: inviter.privateKey,
    subjectPublicKey: inviter.publicKey,
    validityStartDate: start,
    validityEndDate: new Date(now.getTime() + 90 * DAY),
  });
  const pda = await issueDeliveryAuthorization({
    issuerCertificate: certificate,
    issuerPrivateKey: inviter.privateKey,
    subjectPublicKey: invitationKey.publicKey,
    validityStartDate: start,
    validityEndDate: new Date(now.getTime() + 7 * DAY),
  });
  const session = await SessionKeyPair.generate();
  return await encodeInvitation({
    connectionParams: new PrivateEndpointConnParams(
      inviter.publicKey,
      internetAddress,
      new CertificationPath(pda, [certificate]),
      session.sessionKey,
    ),
    invitationKey: invitationKey.privateKey,
    nameHint,
  });
}

if (import.meta.main) {
  const now = new Date();
  const parcels: string[] = [];
  for (const sizes of [[0, 1024, 20_000], [300]]) {
    const fixture = await createParcelFixture();
    for (const payloadSize of sizes) parcels.push(hex(await fixture.makeParcel({ payloadSize })));
  }
  const invitations = [
    await makeInvitation(now, "", "Alice"),
    await makeInvitation(now, "relaymail-mesh.invalid", "Bob 中 \u{1f600}"),
  ];
  const corpus: Corpus = { now: now.toISOString(), parcels, invitations };
  const out = new URL("./corpus.json", import.meta.url);
  await Deno.writeTextFile(out, JSON.stringify(corpus, null, 2) + "\n");
  console.log(
    `Wrote ${out.pathname}: ${parcels.length} parcels, ${invitations.length} invitations`,
  );
}
