/**
 * The acceptor's pairing request, and the first mail riding in it
 * (docs/protocol.md §3.4).
 *
 * Accepting an invitation builds the request. Until it leaves this device, mail
 * written to the inviter is put in it: the request is built again with that mail
 * and replaces the one queued, so the first mail travels with the request instead
 * of waiting for the answer. Building it again takes the invitation key K, so the
 * invitation is kept until the answer arrives, sealed under a key derived from
 * the session key B₀ this endpoint gave the inviter (itself sealed like every
 * private key: without the passphrase, K cannot be read back).
 *
 * When the answer arrives, mail that rode and has no receipt yet goes again as
 * ordinary mail: the inviter may predate the field, or may have taken a request
 * built before that mail. The inviter stores a mail once per sender and message
 * id, so it appears there once.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import {
  derSerializePrivateKey,
  derSerializePublicKey,
  Parcel,
  PrivateEndpointConnParams,
  ServiceMessage,
  SessionEnvelopedData,
} from "@relaycorp/relaynet-core";
import type { EndpointSigner } from "../../mesh/mod.ts";
import { RAMF_MAX_TTL_SECONDS, toArrayBuffer } from "../../bindings/validation.ts";
import type { NodeContext } from "./context.ts";
import type { IdentityManager } from "./identity.ts";
import { mailContentOf, type MessageRow, queueWaiting } from "./message_rows.ts";
import { type Outbox, type PreparedParcel, prepareParcel } from "./outbox.ts";
import { type DecodedInvitation, decodeInvitation } from "./protocol/invitation.ts";
import {
  decodePairing,
  encodeMail,
  encodePairing,
  MAX_MAIL_LENGTH,
  MAX_PROOF_LENGTH,
  MessageType,
  PAIRING_LIMITS,
  type PairingContent,
  pairingProofInput,
} from "./protocol/messages.ts";

/** Key in table `meta` (followed by the inviter's id) of a request waiting for its answer. */
const KEPT = "pairing-request.";

/** Key in `meta` (followed by the inviter's id) of the PDAs' end offered in a request. */
const OFFERED = "pairing-offered-until.";

/** What is noted, in `meta`, of the last request built to an inviter. */
interface Offered {
  /** K's id. */
  readonly invitation: string;
  /** When the PDAs offered in it end, in ms since the epoch. */
  readonly until: number;
}

/** What is kept, in `meta`, of a request waiting for its answer. */
interface KeptRequest {
  /** Key of the request now in the outbox. */
  readonly request: string;
  /** Id of the session key B₀ whose private half seals the rest. */
  readonly sessionKeyId: string;
  readonly iv: string;
  /** The {@linkcode SealedRequest}, AES-GCM, base64. */
  readonly sealed: string;
}

/** What it takes to build the request again. */
interface SealedRequest {
  /** The invitation as it was given: K and the inviter's parameters. */
  readonly invitation: string;
  /** DER `Pairing` with this endpoint's parameters, without mail. */
  readonly pairing: string;
}

/** A request built again with one more mail, to take the queued one's place. */
export interface Ride {
  readonly contactId: string;
  readonly parcel: PreparedParcel;
  /** Key of the request it replaces. */
  readonly replaces: string;
}

/** A first pairing request, and how to keep what building it again takes. */
export interface StartedRequest {
  readonly parcel: PreparedParcel;
  /** Keeps the invitation, sealed, until the answer; call it inside the pairing's transaction. */
  keep(): void;
}

/** Builds pairing requests and puts the first mail in them. */
export class PairingRequests {
  constructor(
    private readonly ctx: NodeContext,
    private readonly identity: IdentityManager,
    private readonly outbox: Outbox,
  ) {}

  /**
   * Builds the pairing request for `invitation` (given as `text`) carrying
   * `content`. `session` is B₀, the session key offered to the inviter in it.
   * With `carryWaiting` (pairing again with a contact we could no longer write
   * to), the mail that waited for that contact rides in it, as far as it fits.
   */
  async start(
    invitation: DecodedInvitation,
    text: string,
    content: PairingContent,
    session: { readonly sessionKeyId: string; readonly sessionPrivateKey: CryptoKey },
    options: { readonly carryWaiting?: boolean } = {},
  ): Promise<StartedRequest> {
    const inviterId = invitation.inviterId;
    const waiting = options.carryWaiting
      ? this.ctx.db.all<MessageRow>(
        `SELECT m.* FROM messages m JOIN deliveries d ON d.message = m.id
         WHERE d.recipient_id = ? AND d.state = 'waiting' ORDER BY m.sent_at, m.id`,
        inviterId,
      )
      : [];
    const riding = fitting(
      content,
      waiting.map((row) => encodeMail(mailContentOf(this.ctx.db, row))),
    );
    const parcel = await makeRequest(this.ctx, await this.identity.meshSigner(), invitation, {
      ...content,
      mail: riding,
    });
    const secret: SealedRequest = {
      invitation: text,
      pairing: Buffer.from(encodePairing({ ...content, mail: [], proof: undefined }))
        .toString("base64"),
    };
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const sealed = await crypto.subtle.encrypt(
      { name: "AES-GCM", iv },
      await sealingKey(session.sessionPrivateKey, inviterId),
      new TextEncoder().encode(JSON.stringify(secret)),
    );
    const kept: KeptRequest = {
      request: parcel.key,
      sessionKeyId: session.sessionKeyId,
      iv: Buffer.from(iv).toString("base64"),
      sealed: Buffer.from(sealed).toString("base64"),
    };
    return {
      parcel,
      keep: () => {
        this.ctx.db.run(
          "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
          KEPT + inviterId,
          JSON.stringify(kept),
        );
        for (const row of waiting.slice(0, riding.length)) {
          queueWaiting(this.ctx.db, row.id, inviterId, parcel.key, this.ctx.now());
        }
      },
    };
  }

  /**
   * The pairing request to `contactId` built again with `mail` (a DER `Mail`)
   * after the mail riding in it already, or null when the mail cannot ride: the
   * request has left this device (or was answered), earlier mail is waiting, or
   * the request would go past {@linkcode MAX_MAIL_LENGTH} octets of content or
   * {@linkcode PAIRING_LIMITS}`.mail` mails. Such mail waits for the answer.
   */
  async withMail(contactId: string, mail: Uint8Array): Promise<Ride | null> {
    const kept = this.#kept(contactId);
    if (!kept || !this.#stillHere(kept.request)) return null;
    // In order: once one mail waits, every later one waits too.
    const waiting = this.ctx.db.get(
      "SELECT 1 AS found FROM deliveries WHERE recipient_id = ? AND state = 'waiting' LIMIT 1",
      contactId,
    );
    if (waiting) return null;
    const riders = this.ctx.db.all<MessageRow>(
      `SELECT m.* FROM messages m JOIN deliveries d ON d.message = m.id
       WHERE d.recipient_id = ? AND d.parcel_key = ? ORDER BY m.sent_at, m.id`,
      contactId,
      kept.request,
    );
    if (riders.length >= PAIRING_LIMITS.mail) return null;
    const opened = await this.#open(contactId, kept);
    if (!opened) return null;
    const all = [...riders.map((row) => encodeMail(mailContentOf(this.ctx.db, row))), mail];
    if (fitting(opened.pairing, all).length < all.length) return null;
    const parcel = await makeRequest(
      this.ctx,
      await this.identity.meshSigner(),
      opened.invitation,
      { ...opened.pairing, mail: all },
    );
    return { contactId, parcel, replaces: kept.request };
  }

  /**
   * Puts `ride`'s request in the outbox in place of the one it replaces, and
   * moves the mail riding in that one to it; synchronous, for use inside the
   * transaction that records the new mail. False, changing nothing, when the
   * request it replaces left meanwhile or was built again already.
   */
  commit(ride: Ride): boolean {
    const kept = this.#kept(ride.contactId);
    if (kept?.request !== ride.replaces) return false;
    const dropped = this.ctx.db.run(
      `DELETE FROM outgoing_parcels WHERE key = ?1 AND state = 'queued'
         AND NOT EXISTS (SELECT 1 FROM handovers WHERE parcel_key = ?1)`,
      ride.replaces,
    );
    if (dropped === 0) return false;
    this.outbox.insert(ride.parcel);
    this.ctx.db.run(
      "UPDATE deliveries SET parcel_key = ? WHERE parcel_key = ?",
      ride.parcel.key,
      ride.replaces,
    );
    this.ctx.db.run(
      "UPDATE meta SET value = ? WHERE key = ?",
      JSON.stringify({ ...kept, request: ride.parcel.key }),
      KEPT + ride.contactId,
    );
    return true;
  }

  /**
   * The answer from `contactId` arrived: forgets the invitation, and hands the
   * mail that rode in a request and has no receipt yet back to the ordinary path
   * (`waiting`, sent as soon as the contact is active). Synchronous, for the
   * transaction that takes the answer; returns how many mails were handed back.
   */
  answered(contactId: string): number {
    this.ctx.db.run("DELETE FROM meta WHERE key = ?", KEPT + contactId);
    return this.ctx.db.run(
      `UPDATE deliveries SET state = 'waiting', parcel_key = NULL, via = NULL, updated_at = ?
       WHERE recipient_id = ? AND state IN ('queued', 'sent') AND parcel_key IN
         (SELECT key FROM outgoing_parcels WHERE recipient_id = ? AND kind = 'pairing-request')`,
      this.ctx.now().getTime(),
      contactId,
      contactId,
    );
  }

  /**
   * Gives up the request to `contactId` still waiting for its answer, for a new
   * one: drops it from the outbox if it is still here, forgets its invitation, and
   * hands the mail that rode in it back (`waiting`), to ride in the new one.
   * Synchronous, for a transaction.
   */
  abandon(contactId: string): void {
    this.answered(contactId);
    this.ctx.db.run(
      `DELETE FROM outgoing_parcels WHERE recipient_id = ? AND kind = 'pairing-request'
         AND state = 'queued' AND NOT EXISTS
           (SELECT 1 FROM handovers WHERE handovers.parcel_key = outgoing_parcels.key)`,
      contactId,
    );
  }

  /**
   * Notes, for the request just built to `contactId`, its invitation (K's id) and
   * until when the PDAs it offers reach; read when the answer arrives, or when
   * another invitation of the same inviter is accepted. Synchronous, for a
   * transaction.
   */
  noteOffered(contactId: string, invitationId: string, until: Date): void {
    const offered: Offered = { invitation: invitationId, until: until.getTime() };
    this.ctx.db.run(
      "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
      OFFERED + contactId,
      JSON.stringify(offered),
    );
  }

  /** The invitation (K's id) of the last request built to `contactId`, if noted. */
  offeredFor(contactId: string): string | null {
    return this.#offered(contactId)?.invitation ?? null;
  }

  /**
   * Until when the PDAs offered in the last request to `contactId` reach, and
   * forgets it; null when there was no request. Synchronous, for a transaction.
   */
  authorizedUntil(contactId: string): Date | null {
    const offered = this.#offered(contactId);
    if (!offered) return null;
    this.ctx.db.run("DELETE FROM meta WHERE key = ?", OFFERED + contactId);
    return new Date(offered.until);
  }

  #offered(contactId: string): Offered | null {
    const row = this.ctx.db.get<{ value: string }>(
      "SELECT value FROM meta WHERE key = ?",
      OFFERED + contactId,
    );
    return row ? JSON.parse(row.value) as Offered : null;
  }

  #kept(contactId: string): KeptRequest | null {
    const row = this.ctx.db.get<{ value: string }>(
      "SELECT value FROM meta WHERE key = ?",
      KEPT + contactId,
    );
    return row ? JSON.parse(row.value) as KeptRequest : null;
  }

  /** Whether the parcel `key` is queued and was handed to no hop yet. */
  #stillHere(key: string): boolean {
    return this.ctx.db.get(
      `SELECT 1 AS found FROM outgoing_parcels p WHERE p.key = ? AND p.state = 'queued'
         AND NOT EXISTS (SELECT 1 FROM handovers h WHERE h.parcel_key = p.key)`,
      key,
    ) !== undefined;
  }

  /**
   * Opens what `kept` seals, or null when it cannot be used any more: B₀ was
   * deleted, or the invitation expired (and the request with it).
   */
  async #open(
    contactId: string,
    kept: KeptRequest,
  ): Promise<{ invitation: DecodedInvitation; pairing: PairingContent } | null> {
    let secret: SealedRequest;
    try {
      const session = await this.ctx.keys.privateKeyStore.retrieveSessionKey(
        Buffer.from(kept.sessionKeyId, "hex"),
        this.identity.id,
        contactId,
      );
      const plain = await crypto.subtle.decrypt(
        { name: "AES-GCM", iv: Buffer.from(kept.iv, "base64") },
        await sealingKey(session, contactId),
        Buffer.from(kept.sealed, "base64"),
      );
      secret = JSON.parse(new TextDecoder().decode(plain));
    } catch {
      return null;
    }
    try {
      return {
        invitation: await decodeInvitation(secret.invitation, this.ctx.now()),
        pairing: decodePairing(new Uint8Array(Buffer.from(secret.pairing, "base64"))),
      };
    } catch {
      // Expired, and the request with it: nothing can be built from it any more.
      this.ctx.db.run(
        "DELETE FROM meta WHERE key = ? AND value = ?",
        KEPT + contactId,
        JSON.stringify(kept),
      );
      return null;
    }
  }
}

/**
 * The longest prefix of `mail` that `content` can carry: at most
 * {@linkcode PAIRING_LIMITS}`.mail` mails, within {@linkcode MAX_MAIL_LENGTH}
 * octets once encoded.
 */
function fitting(content: PairingContent, mail: readonly Uint8Array[]): Uint8Array[] {
  const fits: Uint8Array[] = [];
  // A list's header takes at most 6 octets, and so does each element's; the proof,
  // signed over the rest, comes after it.
  let length = encodePairing({ ...content, mail: [], proof: undefined }).byteLength + 6 +
    MAX_PROOF_LENGTH + 6;
  for (const der of mail.slice(0, PAIRING_LIMITS.mail)) {
    length += der.byteLength + 6;
    if (length > MAX_MAIL_LENGTH) break;
    fits.push(der);
  }
  return fits;
}

/**
 * The AES key sealing a kept request: HKDF-SHA256 of the private scalar of B₀,
 * bound to the inviter. Whoever can read B₀ can read K anyway (B₀ decrypts what
 * the inviter sends); whoever cannot, cannot.
 */
async function sealingKey(sessionPrivateKey: CryptoKey, inviterId: string): Promise<CryptoKey> {
  // Read through relaynet-core's engine, which made the key: the scalar of a
  // P-256 key has one form, however its PKCS#8 encoding differs.
  const pkcs8 = await derSerializePrivateKey(sessionPrivateKey);
  const ecdh = await crypto.subtle.importKey(
    "pkcs8",
    new Uint8Array(pkcs8),
    { name: "ECDH", namedCurve: "P-256" },
    true,
    ["deriveBits"],
  );
  const jwk = await crypto.subtle.exportKey("jwk", ecdh);
  const material = await crypto.subtle.importKey(
    "raw",
    Buffer.from(jwk.d!, "base64url"),
    "HKDF",
    false,
    ["deriveKey"],
  );
  return await crypto.subtle.deriveKey(
    {
      name: "HKDF",
      hash: "SHA-256",
      salt: new Uint8Array(0),
      info: new TextEncoder().encode(`relaymail pairing request for ${inviterId}`),
    },
    material,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt"],
  );
}

/**
 * The pairing request parcel (docs/protocol.md §3.2): `content` encrypted for the
 * invitation's session key S, signed with the invitation key K, living until the
 * invitation expires.
 */
async function makeRequest(
  ctx: NodeContext,
  signer: EndpointSigner,
  invitation: DecodedInvitation,
  unsigned: PairingContent,
): Promise<PreparedParcel> {
  const inviterParams = invitation.connectionParams;
  const ours = await PrivateEndpointConnParams.deserialize(
    toArrayBuffer(unsigned.connectionParams),
  );
  const proof = signer.sign(pairingProofInput({
    inviterId: invitation.inviterId,
    invitationId: invitation.invitationId,
    sessionKeyId: new Uint8Array(ours.sessionKey.keyId),
    sessionPublicKey: new Uint8Array(await derSerializePublicKey(ours.sessionKey.publicKey)),
    pairing: unsigned,
  }));
  const content: PairingContent = { ...unsigned, proof };
  const message = new ServiceMessage(
    MessageType.PAIRING_REQUEST,
    Buffer.from(encodePairing(content)),
  );
  // The ephemeral key this makes is dropped: the inviter answers with the session
  // key in our parameters.
  const { envelopedData } = await SessionEnvelopedData.encrypt(
    message.serialize(),
    inviterParams.sessionKey,
  );
  const creationDate = new Date(ctx.now().getTime() - ctx.tunables.parcelBackdateMs);
  const ttl = Math.max(
    1,
    Math.floor((invitation.expiresAt.getTime() - creationDate.getTime()) / 1000),
  );
  const parcelId = crypto.randomUUID();
  const parcel = new Parcel(
    // Like every parcel to the inviter, it names the inviter's Internet gateway, if
    // any, so that it can travel through Awala gateways.
    {
      id: invitation.inviterId,
      internetAddress: inviterParams.internetGatewayAddress || undefined,
    },
    inviterParams.deliveryAuth.leafCertificate,
    Buffer.from(envelopedData.serialize()),
    {
      id: parcelId,
      creationDate,
      ttl: Math.min(ttl, RAMF_MAX_TTL_SECONDS),
      senderCaCertificateChain: [...inviterParams.deliveryAuth.certificateAuthorities],
    },
  );
  return await prepareParcel(
    new Uint8Array(await parcel.serialize(invitation.invitationKey)),
    {
      parcelId,
      recipientId: invitation.inviterId,
      kind: "pairing-request",
      expiresAt: parcel.expiryDate,
    },
  );
}
