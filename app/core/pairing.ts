/**
 * Serverless, spam-free pairing. Alice creates an invitation (a bearer token for
 * one pairing request, see protocol/invitation.ts); Bob accepts it, which sends
 * Alice a parcel signed with the invitation key holding Bob's connection
 * parameters; Alice's endpoint accepts the first use only and answers with her
 * own parameters. From then on both can write, and nobody else can.
 *
 * This module holds that handshake; issuing and revoking invitations lives in
 * invitations.ts, and the authorisations (PDAs) exchanged and renewed later in
 * authorizations.ts. {@linkcode Pairing} brings the three together.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import {
  derSerializePublicKey,
  getIdFromIdentityKey,
  PrivateEndpointConnParams,
} from "@relaycorp/relaynet-core";
import { ParcelRefusedError, toArrayBuffer } from "../../bindings/validation.ts";
import { Authorizations } from "./authorizations.ts";
import type { Contact, Contacts } from "./contacts.ts";
import { emit, type NodeContext } from "./context.ts";
import { PairingRequests } from "./handshake_request.ts";
import type { IdentityManager } from "./identity.ts";
import { emitMailReceived, storeIncomingMail } from "./incoming_mail.ts";
import {
  type CreatedInvitation,
  type CreateInvitationOptions,
  type InvitationInfo,
  type InvitationRow,
  Invitations,
  refusalForInvitation,
} from "./invitations.ts";
import type { Jobs } from "./jobs.ts";
import type { Outbox } from "./outbox.ts";
import { decodeInvitation, InvalidInvitationError } from "./protocol/invitation.ts";
import {
  checkPairingProof,
  decodeMail,
  decodePairing,
  type MailContent,
  MessageType,
} from "./protocol/messages.ts";
import type { Effect, Incoming } from "./types.ts";

export type { CreatedInvitation, CreateInvitationOptions, InvitationInfo, InvitationRow };
export { refusalForInvitation };

/** Creates and accepts invitations and handles the pairing parcels. */
export class Pairing {
  readonly #invitations: Invitations;
  readonly #authorizations: Authorizations;
  readonly #requests: PairingRequests;

  constructor(
    private readonly ctx: NodeContext,
    private readonly identity: IdentityManager,
    private readonly contacts: Contacts,
    private readonly outbox: Outbox,
    private readonly jobs: Jobs,
    private readonly onContactActive: (contactId: string) => Promise<void>,
  ) {
    this.#authorizations = new Authorizations(ctx, identity, jobs);
    this.#invitations = new Invitations(ctx, identity, contacts, this.#authorizations);
    this.#requests = new PairingRequests(ctx, identity, outbox);
  }

  /** Creates an invitation: a line of text good for one pairing, until it expires. */
  createInvitation(options: CreateInvitationOptions = {}): Promise<CreatedInvitation> {
    return this.#invitations.create(options);
  }

  /** Every invitation this endpoint made, newest first. */
  listInvitations(): InvitationInfo[] {
    return this.#invitations.list();
  }

  /** The invitation whose key has id `id`. */
  getInvitation(id: string): InvitationInfo | undefined {
    return this.#invitations.get(id);
  }

  /** Withdraws a pending invitation (by id or an id prefix of at least 6 hex digits). */
  revokeInvitation(reference: string): InvitationInfo {
    return this.#invitations.revoke(reference);
  }

  /** Marks invitations past their expiry and deletes their keys; returns how many. */
  expireInvitations(): number {
    return this.#invitations.expire();
  }

  /** The invitation whose key is `senderId`, if the sender is one of our invitation keys. */
  invitationFor(senderId: string): InvitationRow | undefined {
    return this.#invitations.row(senderId);
  }

  /**
   * Accepts someone's invitation: the inviter becomes a contact at once and a
   * pairing request joins the outbox. Mail to them rides in the request until it
   * leaves this device, and after that waits for their answer (§3.4).
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
    // A contact that lapsed may send a new invitation to pair again (§6.2): it
    // restores the same contact, which keeps its name.
    const existing = this.contacts.get(inviterId);
    if (existing?.state === "blocked") {
      throw new InvalidInvitationError(`${existing.name} is blocked: unblock them first`);
    }
    // An active contact may be paired again too: the inviter may see it lapsed
    // when we do not (our renewals lost on the way, §6.2). Nothing it knows is
    // overwritten before the answer shows the inviter took the request.
    const name = existing
      ? existing.name
      : options.name === undefined
      ? this.contacts.defaultName(inviterId, invitation.nameHint)
      : this.contacts.checkName(options.name);

    const inviterParams = invitation.connectionParams;
    const ourParams = await this.#authorizations.connectionParamsFor(
      inviterParams.identityKey,
      inviterId,
      { ahead: true },
    );
    // Pairing again, a contact we can still write to stays active; one we cannot
    // waits for the answer like a new one.
    let state = (existing?.writableUntil?.getTime() ?? 0) > now.getTime() ? "active" : "pairing";
    // A request still waiting for its answer gives way to this one (its invitation
    // may have expired, or the request been lost): the mail riding in it waits
    // again, to ride in this one.
    if (existing?.state === "pairing") {
      if (this.#requests.offeredFor(inviterId) === invitation.invitationId) {
        throw new InvalidInvitationError(
          `You already accepted this invitation from ${existing.name}: waiting for their ` +
            "answer. If your request was lost, ask them for a new invitation",
        );
      }
      this.ctx.db.transaction(() => this.#requests.abandon(inviterId));
    }
    // Mail written until this request leaves rides in it, and so does mail that
    // waited for a contact we pair with again (§3.4).
    const request = await this.#requests.start(
      invitation,
      text,
      {
        connectionParams: ourParams.serialized,
        nameHint: this.identity.name,
        authorizations: ourParams.authorizations,
      },
      ourParams,
      { carryWaiting: state === "pairing" },
    );
    const inviterKeyDer = new Uint8Array(await derSerializePublicKey(inviterParams.identityKey));
    this.ctx.db.transaction(() => {
      // An answer to an earlier request, taken while this one was built, made the
      // contact active: it stays so, and nothing waits to ride.
      const answered = existing?.state === "pairing" && this.#storedState(inviterId) === "active";
      if (answered) state = "active";
      // An existing contact keeps its authorisation date and address until the
      // answer shows the inviter took this request (prepareAccept).
      this.ctx.db.run(
        `INSERT INTO contacts
           (id, name, name_hint, state, created_at, last_activity_at, pda_expires_at, internet_address)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET state = excluded.state,
           last_activity_at = excluded.last_activity_at`,
        inviterId,
        name,
        invitation.nameHint,
        state,
        now.getTime(),
        now.getTime(),
        ourParams.authorizedUntil.getTime(),
        inviterParams.internetGatewayAddress,
      );
      this.ctx.keys.publicKeyStore.saveIdentityKeyDer(inviterId, inviterKeyDer);
      ourParams.saveSessionKey();
      this.#requests.noteOffered(inviterId, invitation.invitationId, ourParams.authorizedUntil);
      this.outbox.insert(request.parcel);
      // Only mail to a contact we cannot write to yet rides in the request.
      if (state === "pairing") request.keep();
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
    const { params, peerId: requesterId, nameHint, ahead, datesAhead, content } = await this
      .#readPeerParams(incoming);
    const ourId = this.identity.id;
    const firstMail = (content.mail ?? []).map(readFirstMail);
    if (requesterId === ourId) {
      throw new ParcelRefusedError(
        "bad-content",
        "A pairing request cannot come from this endpoint itself",
      );
    }
    const repairing = this.#invitations.repairing(invitation.id);
    if (repairing !== null && repairing !== requesterId) {
      throw new ParcelRefusedError(
        "unauthorized",
        `Invitation ${invitation.id.slice(1, 13)} was made to pair again with ${
          this.contacts.get(repairing)?.name ?? repairing.slice(0, 13)
        } only`,
      );
    }
    const existing = this.contacts.get(requesterId);
    if (existing?.state === "blocked") {
      throw new ParcelRefusedError(
        "blocked",
        `Pairing request from blocked contact ${existing.name}`,
      );
    }
    // Without a proof (an older acceptor), nothing shows the requester holds the
    // identity key its parameters name: their PDA may have been seen on its way to
    // us. Such a request pairs a new endpoint only, and its mail is not taken (§3.2).
    const proven = content.proof !== undefined;
    if (proven) {
      await checkPairingProof(content, params, { inviterId: ourId, invitationId: invitation.id });
    } else if (existing) {
      refuseUnproven(existing);
    }
    const ourParams = await this.#authorizations.connectionParamsFor(
      params.identityKey,
      requesterId,
      { ahead: datesAhead },
    );
    const requesterKeyDer = new Uint8Array(await derSerializePublicKey(params.identityKey));
    const requesterSessionKeyDer = new Uint8Array(
      await derSerializePublicKey(params.sessionKey.publicKey),
    );
    const now = this.ctx.now().getTime();
    const received: MailContent[] = [];
    let requesterName = "";
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
        if (used === 0) {
          throw refusalForInvitation(this.#invitations.row(invitation.id)!, this.ctx.now());
        }
        const meanwhile = this.contacts.get(requesterId);
        if (meanwhile && !proven) refuseUnproven(meanwhile);
        // Forward secrecy: the invitation's session key has done its one job.
        this.ctx.keys.privateKeyStore.deleteSessionKey(invitation.session_key_id);
        // Nor can it be shown again: its text goes with its key.
        this.#invitations.forgetText(invitation.id);
        const name = existing?.name ??
          this.#nameForInvitee(invitation.contact_name, requesterId, nameHint);
        requesterName = name;
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
          ourParams.authorizedUntil.getTime(),
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
        for (const path of ahead) this.ctx.keys.certificateStore.savePath(path, ourId, requesterId);
        this.#authorizations.noteDatesAhead(requesterId, datesAhead);
        ourParams.saveSessionKey();
        this.jobs.add(
          "pairing-accept",
          requesterId,
          [ourParams.serialized, ...ourParams.authorizations]
            .map((der) => Buffer.from(der).toString("base64")).join(" "),
        );
        // The first mail, stored with the pairing it came with; its receipts are
        // built with the answer, and so travel with it (§3.4).
        for (const item of proven ? firstMail : []) {
          if (storeIncomingMail(this.ctx, this.jobs, requesterId, item)) {
            received.push(item);
          }
        }
      },
      after: async () => {
        emit(this.ctx, "contact-changed", { id: requesterId });
        for (const mail of received) {
          emitMailReceived(this.ctx, { id: requesterId, name: requesterName }, mail);
        }
        await this.onContactActive(requesterId);
      },
      savesSenderSessionKey: false,
    };
  }

  /** Handles the inviter's answer to our pairing request. */
  async prepareAccept(incoming: Incoming, contact: Contact): Promise<Effect> {
    const { params, peerId, nameHint, ahead, datesAhead } = await this.#readPeerParams(incoming);
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
        for (const path of ahead) this.ctx.keys.certificateStore.savePath(path, ourId, contact.id);
        this.#authorizations.noteDatesAhead(contact.id, datesAhead);
        // The inviter took our request, and with it the PDAs it offered (§6.2).
        const offered = this.#requests.authorizedUntil(contact.id);
        if (offered) {
          this.ctx.db.run(
            `UPDATE contacts SET pda_expires_at = max(coalesce(pda_expires_at, 0), ?)
             WHERE id = ?`,
            offered.getTime(),
            contact.id,
          );
        }
        // An older inviter ignored the PDAs we sent ahead: it holds only the first,
        // and gets one that starts now at the next maintenance.
        if (!datesAhead) {
          this.ctx.db.run("UPDATE contacts SET pda_expires_at = NULL WHERE id = ?", contact.id);
        }
        // Mail that rode in our request and has no receipt yet goes again, as
        // ordinary mail, once this commits (§3.4).
        this.#requests.answered(contact.id);
      },
      after: async () => {
        emit(this.ctx, "contact-changed", { id: contact.id });
        await this.onContactActive(contact.id);
      },
      savesSenderSessionKey: true,
    };
  }

  /**
   * Handles a PDA a contact issued us (Awala's `pda-path` message): mail that
   * waited for one leaves once it arrives.
   */
  async preparePdaPath(incoming: Incoming, contact: Contact): Promise<Effect> {
    const effect = await this.#authorizations.preparePdaPath(incoming, contact);
    return {
      ...effect,
      after: async () => {
        emit(this.ctx, "contact-changed", { id: contact.id });
        await this.onContactActive(contact.id);
      },
    };
  }

  /**
   * Issues a contact the PDAs that keep its authorisation reaching the horizon, and
   * queues them for it; returns how many (none when they reach it already).
   */
  renewAuthorization(contactId: string): Promise<number> {
    const contact = this.contacts.get(contactId);
    if (!contact) throw new RangeError(`No contact ${contactId}`);
    return this.#authorizations.renew(contactId, contact.authorizationExpiresAt);
  }

  /**
   * Creates an invitation for `reference` (a contact's name or fingerprint) to pair
   * again, when authorisations lapsed (§6.2): only that contact can use it, and
   * using it restores the same contact on both sides.
   */
  repairInvitation(
    reference: string,
    options: Omit<CreateInvitationOptions, "contactName"> = {},
  ): Promise<CreatedInvitation> {
    const contact = this.contacts.find(reference);
    if (contact.state === "blocked") {
      throw new RangeError(`${contact.name} is blocked: unblock them before pairing again`);
    }
    return this.#invitations.create({ ttlMs: options.ttlMs }, contact);
  }

  /**
   * Sends every active contact new connection parameters: a PDA issued under our
   * current certificate chain and our current Internet gateway address. Called
   * when our gateway registration changes, so that contacts paired earlier can
   * reach us through the gateway. Returns how many contacts were told.
   */
  announceConnectionParams(): Promise<number> {
    return this.#authorizations.announceConnectionParams();
  }

  /**
   * Handles new connection parameters from a contact: its new PDA path for us and
   * its Internet gateway address. The channel's session keys carry on as they
   * were; the session key the parameters must carry is not adopted.
   */
  prepareConnectionParams(incoming: Incoming, contact: Contact): Promise<Effect> {
    return this.#authorizations.prepareConnectionParams(incoming, contact);
  }

  /** Reads and checks the connection parameters a pairing parcel carries. */
  /** A contact's state as stored (not as shown: a lapsed contact is stored active). */
  #storedState(contactId: string): string | undefined {
    return this.ctx.db.get<{ state: string }>("SELECT state FROM contacts WHERE id = ?", contactId)
      ?.state;
  }

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
    await this.#authorizations.checkIssuedBy(params.deliveryAuth, peerId);
    const ahead = await this.#authorizations.checkIssuedAhead(content.authorizations ?? [], peerId);
    // A peer that sent no `authorizations` predates them, and takes no PDA dated ahead.
    const datesAhead = content.authorizations !== undefined;
    return { params, peerId, nameHint: content.nameHint, ahead, datesAhead, content };
  }

  #nameForInvitee(chosen: string | null, id: string, hint: string): string {
    if (chosen !== null && !this.contacts.nameTaken(chosen)) return chosen;
    return this.contacts.defaultName(id, hint);
  }
}

/** Refuses a pairing request without proof from `contact`, already a contact (§3.2). */
function refuseUnproven(contact: Contact): never {
  throw new ParcelRefusedError(
    "unauthorized",
    `Pairing request naming ${contact.name}, already a contact, carries no proof that it comes ` +
      "from them",
  );
}

/** Decodes the `index`th first mail of a pairing request (§3.4). */
function readFirstMail(der: Uint8Array, index: number): MailContent {
  try {
    return decodeMail(der);
  } catch (error) {
    throw new ParcelRefusedError(
      "bad-content",
      `Mail ${index + 1} of the pairing request is malformed: ${
        error instanceof Error ? error.message : error
      }`,
      { cause: error },
    );
  }
}
