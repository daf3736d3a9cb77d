/**
 * Real, valid parcels for testing bindings: a recipient that issued a PDA to a
 * sender, so relays that check authorisation accept them. The payload is random
 * bytes, since no hop but the recipient ever decrypts it.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import {
  type Certificate,
  derSerializePrivateKey,
  generateRSAKeyPair,
  getIdFromIdentityKey,
  issueDeliveryAuthorization,
  issueEndpointCertificate,
  Parcel,
} from "@relaycorp/relaynet-core";
import { MAX_PARCEL_LENGTH } from "../validation.ts";

/** Options of {@linkcode ParcelFixture.makeParcel}. */
export interface MakeParcelOptions {
  /** Octets of (random) payload; default 1024. */
  readonly payloadSize?: number;
  /** Default: one day. */
  readonly ttlSeconds?: number;
  /** Default: one minute ago. */
  readonly creationDate?: Date;
}

/** A sender authorised by a recipient, making parcels for it. */
export interface ParcelFixture {
  readonly recipientId: string;
  readonly senderId: string;
  readonly recipientCertificate: Certificate;
  /** The recipient's authorisation of the sender. */
  readonly pda: Certificate;
  /** The key the sender signs parcels with. */
  readonly senderPrivateKey: CryptoKey;
  /** The recipient's identity key, DER PKCS#8: what signs its delivery proofs. */
  readonly recipientPrivateKeyDer: Uint8Array;
  makeParcel(options?: MakeParcelOptions): Promise<Uint8Array>;
}

/** Largest payload that still fits a parcel of {@linkcode MAX_PARCEL_LENGTH} octets with this fixture. */
export const MAX_FIXTURE_PAYLOAD = MAX_PARCEL_LENGTH - 8 * 1024;

/** Creates a recipient, a sender and the PDA between them. */
export async function createParcelFixture(): Promise<ParcelFixture> {
  const now = Date.now();
  const recipient = await generateRSAKeyPair();
  const sender = await generateRSAKeyPair();
  const recipientCertificate = await issueEndpointCertificate({
    issuerPrivateKey: recipient.privateKey,
    subjectPublicKey: recipient.publicKey,
    validityStartDate: new Date(now - 3_600_000),
    validityEndDate: new Date(now + 30 * 86_400_000),
  });
  const pda = await issueDeliveryAuthorization({
    issuerCertificate: recipientCertificate,
    issuerPrivateKey: recipient.privateKey,
    subjectPublicKey: sender.publicKey,
    validityStartDate: new Date(now - 3_600_000),
    validityEndDate: new Date(now + 30 * 86_400_000),
  });
  const recipientId = await getIdFromIdentityKey(recipient.publicKey);
  return {
    recipientId,
    senderId: await getIdFromIdentityKey(sender.publicKey),
    recipientCertificate,
    pda,
    senderPrivateKey: sender.privateKey,
    recipientPrivateKeyDer: new Uint8Array(await derSerializePrivateKey(recipient.privateKey)),
    async makeParcel(options: MakeParcelOptions = {}) {
      const payload = new Uint8Array(options.payloadSize ?? 1024);
      for (let offset = 0; offset < payload.length; offset += 65_536) {
        crypto.getRandomValues(payload.subarray(offset, Math.min(offset + 65_536, payload.length)));
      }
      const parcel = new Parcel({ id: recipientId }, pda, Buffer.from(payload), {
        creationDate: options.creationDate ?? new Date(Date.now() - 60_000),
        ttl: options.ttlSeconds ?? 86_400,
        senderCaCertificateChain: [recipientCertificate],
      });
      return new Uint8Array(await parcel.serialize(sender.privateKey));
    },
  };
}
