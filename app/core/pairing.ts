/**
 * Serverless, spam-free pairing. Alice creates an invitation (a bearer token for
 * one pairing request, see protocol/invitation.ts); Bob accepts it, which sends
 * Alice a parcel signed with the invitation key holding Bob's connection
 * parameters; Alice's endpoint accepts the first use only and answers with her
 * own parameters. From then on both can write, and nobody else can.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import {
  CertificationPath,
  derSerializePrivateKey,
  derSerializePublicKey,
  generateRSAKeyPair,
  getIdFromIdentityKey,
  Parcel,
  PrivateEndpointConnParams,
  ServiceMessage,
  SessionEnvelopedData,
  SessionKeyPair,
} from "@relaycorp/relaynet-core";
import {
  ParcelRefusedError,
  RAMF_MAX_TTL_SECONDS,
  toArrayBuffer,
  verifyPathIssuedBy,
} from "../../bindings/validation.ts";
import type { Contact, Contacts } from "./contacts.ts";
import { emit, type NodeContext } from "./context.ts";
import type { IdentityManager } from "./identity.ts";
import type { Jobs } from "./jobs.ts";
import { type Outbox, prepareParcel } from "./outbox.ts";
import {
  decodeInvitation,
  encodeInvitation,
  InvalidInvitationError,
} from "./protocol/invitation.ts";
import { decodePairing, encodePairing, MessageType } from "./protocol/messages.ts";
import type { Effect, Incoming } from "./types.ts";

/** An invitation as listed (its text is shown once, when created, and never stored). */
export interface InvitationInfo {
  readonly id: string;
  readonly contactName: string | null;
  readonly createdAt: Date;
  readonly expiresAt: Date;
  readonly state: "pending" | "used" | "revoked" | "expired";
  readonly usedAt: Date | null;
  readonly usedBy: string | null;
}

/** A new invitation and its text. */
export interface CreatedInvitation extends InvitationInfo {
  /** The line to hand over. */
  readonly text: string;
}

/** Options of {@linkcode Pairing.createInvitation}. */
export interface CreateInvitationOptions {
  /** Local name for whoever accepts (default: their own hint and fingerprint). */
  readonly contactName?: string;
  /** How long the invitation lasts (default: the `invitationTtlMs` setting, 7 days). */
  readonly ttlMs?: number;
}

/** The row of table `invitations`. */
export interface InvitationRow {
  id: string;
  contact_name: string | null;
  created_at: number;
  expires_at: number;
  session_key_id: string;
  state: InvitationInfo["state"];
  used_at: number | null;
  used_by: string | null;
}

/** Longest invitation lifetime: PDAs cannot outlive the identity certificate anyway. */
const MAX_INVITATION_TTL_MS = 90 * 86_400_000;

/** Creates and accepts invitations and handles the pairing parcels. */
export class Pairing {
  constructor(
    private readonly ctx: NodeContext,
    private readonly identity: IdentityManager,
    private readonly contacts: Contacts,
    private readonly outbox: Outbox,
    private readonly jobs: Jobs,
    private readonly onContactActive: (contactId: string) => Promise<void>,
  ) {}

  /** Creates an invitation: a line of text good for one pairing, until it expires. */
  async createInvitation(options: CreateInvitationOptions = {}): Promise<CreatedInvitation> {
    const ttl = options.ttlMs ?? this.ctx.tunables.invitationTtlMs;
    if (!(ttl > 0 && ttl <= MAX_INVITATION_TTL_MS)) {
      throw new RangeError(
        `An invitation must last between 1 second and 90 days: got ${ttl / 1000} seconds`,
      );
    }
    const contactName = options.contactName === undefined
      ? null
      : this.contacts.checkName(options.contactName);
    const now = this.ctx.now().getTime();
    const invitationKey = await generateRSAKeyPair();
    const invitationId = await getIdFromIdentityKey(invitationKey.publicKey);
    // Its session key is bound to the invitation key: it decrypts the one pairing
    // request and nothing else.
    const issued = await this.#connectionParamsFor(invitationKey.publicKey, invitationId, ttl);
    const text = await encodeInvitation({
      connectionParams: issued.params,
      invitationKey: invitationKey.privateKey,
      nameHint: this.identity.name,
    });
    this.ctx.db.transaction(() => {
      issued.saveSessionKey();
      this.ctx.db.run(
        `INSERT INTO invitations (id, contact_name, created_at, expires_at, session_key_id, state)
         VALUES (?, ?, ?, ?, ?, 'pending')`,
        invitationId,
        contactName,
        now,
        issued.pdaExpiresAt.getTime(),
        issued.sessionKeyId,
      );
    });
    return { ...this.getInvitation(invitationId)!, text };
  }

  /** Every invitation this endpoint made, newest first. */
  listInvitations(): InvitationInfo[] {
    return this.ctx.db.all<InvitationRow>(
      "SELECT * FROM invitations ORDER BY created_at DESC, rowid DESC",
    )
      .map(toInvitationInfo);
  }

  /** The invitation whose key has id `id`. */
  getInvitation(id: string): InvitationInfo | undefined {
    const row = this.#row(id);
    return row ? toInvitationInfo(row) : undefined;
  }

  /** Withdraws a pending invitation (by id or an id prefix of at least 6 hex digits). */
  revokeInvitation(reference: string): InvitationInfo {
    const ref = reference.trim().toLowerCase();
    const rows = this.ctx.db.all<InvitationRow>(
      "SELECT * FROM invitations WHERE id = ? OR (length(?) >= 6 AND substr(id, 2, length(?)) = ?)",
      ref,
      ref,
      ref,
      ref,
    );
    if (rows.length !== 1) {
      throw new RangeError(
        rows.length ? `"${reference}" matches several invitations` : `No invitation "${reference}"`,
      );
    }
    const row = rows[0];
    if (row.state !== "pending") {
      throw new RangeError(`Invitation ${row.id.slice(1, 13)} is ${row.state}, not pending`);
    }
    this.ctx.db.transaction(() => {
      this.ctx.db.run("UPDATE invitations SET state = 'revoked' WHERE id = ?", row.id);
      this.ctx.keys.privateKeyStore.deleteSessionKey(row.session_key_id);
    });
    return this.getInvitation(row.id)!;
  }

  /** Marks invitations past their expiry and deletes their keys; returns how many. */
  expireInvitations(): number {
    const now = this.ctx.now().getTime();
    return this.ctx.db.transaction(() => {
      const rows = this.ctx.db.all<InvitationRow>(
        "SELECT * FROM invitations WHERE state = 'pending' AND expires_at <= ?",
        now,
      );
      for (const row of rows) {
        this.ctx.db.run("UPDATE invitations SET state = 'expired' WHERE id = ?", row.id);
        this.ctx.keys.privateKeyStore.deleteSessionKey(row.session_key_id);
      }
      return rows.length;
    });
  }

  /**
   * Accepts someone's invitation: the inviter becomes a contact at once (mail to
   * them waits until their answer arrives) and a pairing request joins the outbox.
   */
  async acceptInvitation(text: string, options: { name?: string } = {}): Promise<Contact> {
    const now = this.ctx.now();
    const invitation = await decodeInvitation(text, now);
    const endpoint = await this.identity.endpoint();
    const inviterId = invitation.inviterId;
    if (inviterId === endpoint.id) {
      throw new InvalidInvitationError(
        "This is your own invitation: give it to the person you want to pair with",
      );
    }
    const existing = this.contacts.get(inviterId);
    if (existing) {
      throw new InvalidInvitationError(
        existing.state === "pairing"
          ? `You already accepted an invitation from ${existing.name}: waiting for their answer`
          : existing.state === "blocked"
          ? `${existing.name} is blocked: unblock them first`
          : `You are already paired with ${existing.name}`,
      );
    }
    const name = options.name === undefined
      ? this.contacts.defaultName(inviterId, invitation.nameHint)
      : this.contacts.checkName(options.name);

    const inviterParams = invitation.connectionParams;
    const ourParams = await this.#connectionParamsFor(inviterParams.identityKey, inviterId);
    const message = new ServiceMessage(
      MessageType.PAIRING_REQUEST,
      Buffer.from(encodePairing({
        connectionParams: ourParams.serialized,
        nameHint: this.identity.name,
      })),
    );
    // Encrypted for the inviter's initial session key. The ephemeral key this makes
    // is dropped: the inviter answers with the session key in our parameters.
    const { envelopedData } = await SessionEnvelopedData.encrypt(
      message.serialize(),
      inviterParams.sessionKey,
    );
    const creationDate = new Date(now.getTime() - this.ctx.tunables.parcelBackdateMs);
    const ttl = Math.max(
      1,
      Math.floor((invitation.expiresAt.getTime() - creationDate.getTime()) / 1000),
    );
    const parcelId = crypto.randomUUID();
    const parcel = new Parcel(
      // Like every parcel to the inviter, it names the inviter's Internet gateway, if
      // any, so that it can travel through Awala gateways.
      { id: inviterId, internetAddress: inviterParams.internetGatewayAddress || undefined },
      inviterParams.deliveryAuth.leafCertificate,
      Buffer.from(envelopedData.serialize()),
      {
        id: parcelId,
        creationDate,
        ttl: Math.min(ttl, RAMF_MAX_TTL_SECONDS),
        senderCaCertificateChain: [...inviterParams.deliveryAuth.certificateAuthorities],
      },
    );
    const prepared = await prepareParcel(
      new Uint8Array(await parcel.serialize(invitation.invitationKey)),
      {
        parcelId,
        recipientId: inviterId,
        kind: "pairing-request",
        expiresAt: parcel.expiryDate,
      },
    );
    const inviterKeyDer = new Uint8Array(await derSerializePublicKey(inviterParams.identityKey));
    this.ctx.db.transaction(() => {
      this.ctx.db.run(
        `INSERT INTO contacts
           (id, name, name_hint, state, created_at, last_activity_at, pda_expires_at, internet_address)
         VALUES (?, ?, ?, 'pairing', ?, ?, ?, ?)`,
        inviterId,
        name,
        invitation.nameHint,
        now.getTime(),
        now.getTime(),
        ourParams.pdaExpiresAt.getTime(),
        inviterParams.internetGatewayAddress,
      );
      this.ctx.keys.publicKeyStore.saveIdentityKeyDer(inviterId, inviterKeyDer);
      ourParams.saveSessionKey();
      this.outbox.insert(prepared);
    });
    emit(this.ctx, "contact-changed", { id: inviterId });
    return this.contacts.get(inviterId)!;
  }

  /** Handles a pairing request: a parcel signed with one of our invitation keys. */
  async prepareRequest(incoming: Incoming, invitation: InvitationRow): Promise<Effect> {
    if (incoming.message.type !== MessageType.PAIRING_REQUEST) {
      throw new ParcelRefusedError(
        "bad-content",
        `An invitation key may only send a pairing request, not ${incoming.message.type}`,
      );
    }
    const { params, peerId: requesterId, nameHint } = await this.#readPeerParams(incoming);
    const ourId = this.identity.id;
    if (requesterId === ourId) {
      throw new ParcelRefusedError(
        "bad-content",
        "A pairing request cannot come from this endpoint itself",
      );
    }
    const existing = this.contacts.get(requesterId);
    if (existing?.state === "blocked") {
      throw new ParcelRefusedError(
        "blocked",
        `Pairing request from blocked contact ${existing.name}`,
      );
    }
    const ourParams = await this.#connectionParamsFor(params.identityKey, requesterId);
    const requesterKeyDer = new Uint8Array(await derSerializePublicKey(params.identityKey));
    const requesterSessionKeyDer = new Uint8Array(
      await derSerializePublicKey(params.sessionKey.publicKey),
    );
    const now = this.ctx.now().getTime();
    return {
      apply: () => {
        const used = this.ctx.db.run(
          `UPDATE invitations SET state = 'used', used_at = ?, used_by = ?
           WHERE id = ? AND state = 'pending' AND expires_at > ?`,
          now,
          requesterId,
          invitation.id,
          now,
        );
        if (used === 0) throw refusalForInvitation(this.#row(invitation.id)!, this.ctx.now());
        // Forward secrecy: the invitation's session key has done its one job.
        this.ctx.keys.privateKeyStore.deleteSessionKey(invitation.session_key_id);
        const name = existing?.name ??
          this.#nameForInvitee(invitation.contact_name, requesterId, nameHint);
        this.ctx.db.run(
          `INSERT INTO contacts
             (id, name, name_hint, state, created_at, last_activity_at, pda_expires_at, internet_address)
           VALUES (?, ?, ?, 'active', ?, ?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET state = 'active', name_hint = excluded.name_hint,
             last_activity_at = excluded.last_activity_at, pda_expires_at = excluded.pda_expires_at,
             internet_address = excluded.internet_address`,
          requesterId,
          name,
          nameHint,
          now,
          now,
          ourParams.pdaExpiresAt.getTime(),
          params.internetGatewayAddress,
        );
        this.ctx.keys.publicKeyStore.saveIdentityKeyDer(requesterId, requesterKeyDer);
        this.ctx.keys.publicKeyStore.saveSessionKeyDer(
          requesterId,
          new Uint8Array(params.sessionKey.keyId),
          requesterSessionKeyDer,
          incoming.parcel.creationDate,
        );
        this.ctx.keys.certificateStore.savePath(params.deliveryAuth, ourId, requesterId);
        ourParams.saveSessionKey();
        this.jobs.add(
          "pairing-accept",
          requesterId,
          Buffer.from(ourParams.serialized).toString("base64"),
        );
      },
      after: async () => {
        emit(this.ctx, "contact-changed", { id: requesterId });
        await this.onContactActive(requesterId);
      },
      savesSenderSessionKey: false,
    };
  }

  /** Handles the inviter's answer to our pairing request. */
  async prepareAccept(incoming: Incoming, contact: Contact): Promise<Effect> {
    const { params, peerId, nameHint } = await this.#readPeerParams(incoming);
    if (peerId !== contact.id) {
      throw new ParcelRefusedError(
        "bad-content",
        `Pairing answer from ${contact.id} carries the parameters of another endpoint (${peerId})`,
      );
    }
    const sessionKeyDer = new Uint8Array(await derSerializePublicKey(params.sessionKey.publicKey));
    const ourId = this.identity.id;
    return {
      apply: () => {
        this.ctx.db.run(
          `UPDATE contacts SET state = CASE state WHEN 'pairing' THEN 'active' ELSE state END,
             name_hint = ?, last_activity_at = ?, internet_address = ? WHERE id = ?`,
          nameHint,
          this.ctx.now().getTime(),
          params.internetGatewayAddress,
          contact.id,
        );
        this.ctx.keys.publicKeyStore.saveSessionKeyDer(
          contact.id,
          new Uint8Array(params.sessionKey.keyId),
          sessionKeyDer,
          // Older than the parcel's own ephemeral key, which supersedes it.
          new Date(incoming.parcel.creationDate.getTime() - 1000),
        );
        this.ctx.keys.certificateStore.savePath(params.deliveryAuth, ourId, contact.id);
      },
      after: async () => {
        emit(this.ctx, "contact-changed", { id: contact.id });
        await this.onContactActive(contact.id);
      },
      savesSenderSessionKey: true,
    };
  }

  /** Handles a renewed PDA from a contact (Awala's `pda-path` message). */
  async preparePdaPath(incoming: Incoming, contact: Contact): Promise<Effect> {
    let path: CertificationPath;
    try {
      path = CertificationPath.deserialize(toArrayBuffer(new Uint8Array(incoming.message.content)));
    } catch (error) {
      throw new ParcelRefusedError("bad-content", "PDA path is malformed", { cause: error });
    }
    await this.#checkAuthorizationFrom(path, contact.id);
    const ourId = this.identity.id;
    return {
      apply: () => this.ctx.keys.certificateStore.savePath(path, ourId, contact.id),
      savesSenderSessionKey: true,
    };
  }

  /**
   * Issues a fresh PDA to an active contact and queues it for them; used when the
   * previous one nears its expiry or our certificate was renewed.
   */
  async renewAuthorization(contactId: string): Promise<void> {
    const key = await this.ctx.keys.publicKeyStore.retrieveIdentityKey(contactId);
    if (!key) throw new Error(`No identity key stored for contact ${contactId}`);
    const path = await this.identity.issueAuthorization(key, this.ctx.tunables.pdaValidityMs);
    const serialized = new Uint8Array(path.serialize());
    this.ctx.db.transaction(() => {
      this.ctx.db.run(
        "UPDATE contacts SET pda_expires_at = ? WHERE id = ?",
        path.leafCertificate.expiryDate.getTime(),
        contactId,
      );
      this.jobs.add("pda-path", contactId, Buffer.from(serialized).toString("base64"));
    });
  }

  /**
   * Sends every active contact new connection parameters: a PDA issued under our
   * current certificate chain and our current Internet gateway address. Called
   * when our gateway registration changes, so that contacts paired earlier can
   * reach us through the gateway. Returns how many contacts were told.
   */
  async announceConnectionParams(): Promise<number> {
    const contacts = this.ctx.db.all<{ id: string }>(
      "SELECT id FROM contacts WHERE state = 'active'",
    );
    for (const { id } of contacts) {
      const key = await this.ctx.keys.publicKeyStore.retrieveIdentityKey(id);
      if (!key) continue;
      const params = await this.#connectionParamsFor(key, id);
      this.ctx.db.transaction(() => {
        params.saveSessionKey();
        this.ctx.db.run(
          "UPDATE contacts SET pda_expires_at = ? WHERE id = ?",
          params.pdaExpiresAt.getTime(),
          id,
        );
        this.jobs.add("connection-params", id, Buffer.from(params.serialized).toString("base64"));
      });
    }
    return contacts.length;
  }

  /**
   * Handles new connection parameters from a contact: its new PDA path for us and
   * its Internet gateway address. The channel's session keys carry on as they
   * were; the session key the parameters must carry is not adopted.
   */
  async prepareConnectionParams(incoming: Incoming, contact: Contact): Promise<Effect> {
    let params: PrivateEndpointConnParams;
    try {
      params = await PrivateEndpointConnParams.deserialize(
        toArrayBuffer(new Uint8Array(incoming.message.content)),
      );
    } catch (error) {
      throw new ParcelRefusedError("bad-content", "Connection parameters are malformed", {
        cause: error,
      });
    }
    if (await getIdFromIdentityKey(params.identityKey) !== contact.id) {
      throw new ParcelRefusedError(
        "bad-content",
        `Connection parameters from ${contact.id} carry another endpoint's key`,
      );
    }
    await this.#checkAuthorizationFrom(params.deliveryAuth, contact.id);
    const ourId = this.identity.id;
    return {
      apply: () => {
        this.ctx.keys.certificateStore.savePath(params.deliveryAuth, ourId, contact.id);
        this.ctx.db.run(
          "UPDATE contacts SET internet_address = ? WHERE id = ?",
          params.internetGatewayAddress,
          contact.id,
        );
      },
      after: () => {
        emit(this.ctx, "contact-changed", { id: contact.id });
        return Promise.resolve();
      },
      savesSenderSessionKey: true,
    };
  }

  /**
   * Issues a PDA to `peerKey` and a session key for that peer, and wraps them with
   * our identity key as connection parameters. The session key is saved by calling
   * `saveSessionKey()` inside the caller's transaction.
   */
  async #connectionParamsFor(
    peerKey: CryptoKey,
    peerId: string,
    validityMs = this.ctx.tunables.pdaValidityMs,
  ) {
    const endpoint = await this.identity.endpoint();
    const path = await this.identity.issueAuthorization(peerKey, validityMs);
    const session = await SessionKeyPair.generate();
    const sessionKeyId = session.sessionKey.keyId.toString("hex");
    const sessionKeyDer = new Uint8Array(await derSerializePrivateKey(session.privateKey));
    const params = new PrivateEndpointConnParams(
      endpoint.identityKeyPair.publicKey,
      this.identity.internetAddress(),
      path,
      session.sessionKey,
    );
    return {
      params,
      serialized: new Uint8Array(await params.serialize()),
      pdaExpiresAt: path.leafCertificate.expiryDate,
      sessionKeyId,
      saveSessionKey: () =>
        this.ctx.keys.privateKeyStore.saveSessionKeyDer(
          sessionKeyId,
          sessionKeyDer,
          endpoint.id,
          peerId,
        ),
    };
  }

  /** Reads and checks the connection parameters a pairing parcel carries. */
  async #readPeerParams(incoming: Incoming) {
    let content;
    let params: PrivateEndpointConnParams;
    try {
      content = decodePairing(new Uint8Array(incoming.message.content));
      params = await PrivateEndpointConnParams.deserialize(toArrayBuffer(content.connectionParams));
    } catch (error) {
      throw new ParcelRefusedError(
        "bad-content",
        `Pairing message is malformed: ${error instanceof Error ? error.message : error}`,
        { cause: error },
      );
    }
    const peerId = await getIdFromIdentityKey(params.identityKey);
    await this.#checkAuthorizationFrom(params.deliveryAuth, peerId);
    return { params, peerId, nameHint: content.nameHint };
  }

  /** Checks that `path` is a PDA for this endpoint issued by `peerId`. */
  async #checkAuthorizationFrom(path: CertificationPath, peerId: string): Promise<void> {
    const pda = path.leafCertificate;
    if (await pda.calculateSubjectId() !== this.identity.id) {
      throw new ParcelRefusedError(
        "bad-content",
        "The authorisation received is for another endpoint",
      );
    }
    try {
      await verifyPathIssuedBy(path, peerId, this.ctx.now());
    } catch (error) {
      throw new ParcelRefusedError(
        "bad-content",
        `The authorisation received was not issued by its sender: ${
          error instanceof Error ? error.message : error
        }`,
      );
    }
  }

  #nameForInvitee(chosen: string | null, id: string, hint: string): string {
    if (chosen !== null && !this.contacts.nameTaken(chosen)) return chosen;
    return this.contacts.defaultName(id, hint);
  }

  #row(id: string): InvitationRow | undefined {
    return this.ctx.db.get<InvitationRow>("SELECT * FROM invitations WHERE id = ?", id);
  }

  /** The invitation whose key is `senderId`, if the sender is one of our invitation keys. */
  invitationFor(senderId: string): InvitationRow | undefined {
    return this.#row(senderId);
  }
}

/** Why a parcel signed with the key of `invitation` cannot be taken, at `now`. */
export function refusalForInvitation(invitation: InvitationRow, now: Date): ParcelRefusedError {
  const short = invitation.id.slice(1, 13);
  switch (invitation.state) {
    case "used":
      return new ParcelRefusedError(
        "invitation-used",
        `Invitation ${short} was already used on ${new Date(invitation.used_at!).toISOString()}`,
      );
    case "revoked":
      return new ParcelRefusedError("unauthorized", `Invitation ${short} was revoked`);
    default:
      if (invitation.state === "expired" || invitation.expires_at <= now.getTime()) {
        return new ParcelRefusedError(
          "invitation-expired",
          `Invitation ${short} expired on ${new Date(invitation.expires_at).toISOString()}`,
        );
      }
      return new ParcelRefusedError("invitation-used", `Invitation ${short} cannot be used now`);
  }
}

function toInvitationInfo(row: InvitationRow): InvitationInfo {
  return {
    id: row.id,
    contactName: row.contact_name,
    createdAt: new Date(row.created_at),
    expiresAt: new Date(row.expires_at),
    state: row.state,
    usedAt: row.used_at === null ? null : new Date(row.used_at),
    usedBy: row.used_by,
  };
}
