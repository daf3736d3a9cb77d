/**
 * Valid parcels an attacker can make on its own: recipients it made, each
 * authorising senders it made (self-issued PDAs, as §0.1 of docs/mesh-protocol.md
 * expects of a Sybil). Every hop accepts them: a PDA only proves the consent of a
 * recipient, and these recipients consent to anything.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import {
  type Certificate,
  generateRSAKeyPair,
  getIdFromIdentityKey,
  issueDeliveryAuthorization,
  issueEndpointCertificate,
  Parcel,
} from "@relaycorp/relaynet-core";

/** Recipients and senders of one attacker, and parcels between them. */
export interface SybilPki {
  readonly recipientIds: string[];
  readonly senderIds: string[];
  /** A parcel from sender `i % senders` to that sender's recipient, `payloadSize` random octets. */
  makeParcel(i: number, payloadSize: number): Promise<Uint8Array>;
}

/** Makes `recipients` recipient keys and `senders` sender keys, each sender authorised by one recipient (round robin). */
export async function sybilPki(recipients: number, senders: number): Promise<SybilPki> {
  const now = Date.now();
  const validity = {
    validityStartDate: new Date(now - 3_600_000),
    validityEndDate: new Date(now + 30 * 86_400_000),
  };
  const made: { id: string; certificate: Certificate; privateKey: CryptoKey }[] = [];
  for (let r = 0; r < recipients; r++) {
    const keys = await generateRSAKeyPair();
    made.push({
      id: await getIdFromIdentityKey(keys.publicKey),
      privateKey: keys.privateKey,
      certificate: await issueEndpointCertificate({
        issuerPrivateKey: keys.privateKey,
        subjectPublicKey: keys.publicKey,
        ...validity,
      }),
    });
  }
  const authorised: { id: string; pda: Certificate; key: CryptoKey; recipient: number }[] = [];
  for (let s = 0; s < senders; s++) {
    const keys = await generateRSAKeyPair();
    const recipient = s % recipients;
    authorised.push({
      id: await getIdFromIdentityKey(keys.publicKey),
      key: keys.privateKey,
      recipient,
      pda: await issueDeliveryAuthorization({
        issuerCertificate: made[recipient].certificate,
        issuerPrivateKey: made[recipient].privateKey,
        subjectPublicKey: keys.publicKey,
        ...validity,
      }),
    });
  }
  return {
    recipientIds: made.map((r) => r.id),
    senderIds: authorised.map((s) => s.id),
    async makeParcel(i, payloadSize) {
      const sender = authorised[i % senders];
      const recipient = made[sender.recipient];
      const payload = new Uint8Array(payloadSize);
      for (let offset = 0; offset < payload.length; offset += 65_536) {
        crypto.getRandomValues(payload.subarray(offset, Math.min(offset + 65_536, payload.length)));
      }
      const parcel = new Parcel({ id: recipient.id }, sender.pda, Buffer.from(payload), {
        creationDate: new Date(Date.now() - 60_000),
        ttl: 86_400,
        senderCaCertificateChain: [recipient.certificate],
      });
      return new Uint8Array(await parcel.serialize(sender.key));
    },
  };
}
