/**
 * The invitations this endpoint issues: creating one (a bearer token for one
 * pairing request, see protocol/invitation.ts), listing, revoking and expiring
 * them, and why a parcel signed with an invitation key that is no longer
 * pending is refused.
 *
 * @module
 */
import { generateRSAKeyPair, getIdFromIdentityKey } from "@relaycorp/relaynet-core";
import { ParcelRefusedError } from "../../bindings/validation.ts";
import type { Authorizations } from "./authorizations.ts";
import type { Contact, Contacts } from "./contacts.ts";
import type { NodeContext } from "./context.ts";
import type { IdentityManager } from "./identity.ts";
import { encodeInvitation } from "./protocol/invitation.ts";

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

/** Options of `Pairing.createInvitation` (and {@linkcode Invitations.create}). */
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

/** Key in table `meta` that binds invitation `id` to the contact it pairs again with. */
const REPAIRS = "invitation.repairs.";

/** Issues, lists, revokes and expires this endpoint's invitations. */
export class Invitations {
  constructor(
    private readonly ctx: NodeContext,
    private readonly identity: IdentityManager,
    private readonly contacts: Contacts,
    private readonly authorizations: Authorizations,
  ) {}

  /**
   * Creates an invitation: a line of text good for one pairing, until it expires.
   * With `repairing`, only that contact may use it, to pair again (§6.2); it keeps
   * its name.
   */
  async create(
    options: CreateInvitationOptions = {},
    repairing?: Contact,
  ): Promise<CreatedInvitation> {
    const ttl = options.ttlMs ?? this.ctx.tunables.invitationTtlMs;
    if (typeof ttl !== "number" || !(ttl > 0 && ttl <= MAX_INVITATION_TTL_MS)) {
      throw new RangeError(
        `An invitation must last between 1 second and 90 days: got ${ttl / 1000} seconds`,
      );
    }
    const contactName = repairing
      ? repairing.name
      : options.contactName === undefined
      ? null
      : this.contacts.checkName(options.contactName);
    const now = this.ctx.now().getTime();
    const invitationKey = await generateRSAKeyPair();
    const invitationId = await getIdFromIdentityKey(invitationKey.publicKey);
    // Its session key is bound to the invitation key: it decrypts the one pairing
    // request and nothing else.
    const issued = await this.authorizations.connectionParamsFor(
      invitationKey.publicKey,
      invitationId,
      { validityMs: ttl },
    );
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
      if (repairing) {
        this.ctx.db.run(
          "INSERT INTO meta (key, value) VALUES (?, ?)",
          REPAIRS + invitationId,
          repairing.id,
        );
      }
    });
    return { ...this.get(invitationId)!, text };
  }

  /** The contact invitation `id` was made to pair again with, or null. */
  repairing(id: string): string | null {
    return this.ctx.db.get<{ value: string }>(
      "SELECT value FROM meta WHERE key = ?",
      REPAIRS + id,
    )?.value ?? null;
  }

  /** Every invitation this endpoint made, newest first. */
  list(): InvitationInfo[] {
    return this.ctx.db.all<InvitationRow>(
      "SELECT * FROM invitations ORDER BY created_at DESC, rowid DESC",
    )
      .map(toInvitationInfo);
  }

  /** The invitation whose key has id `id`. */
  get(id: string): InvitationInfo | undefined {
    const row = this.row(id);
    return row ? toInvitationInfo(row) : undefined;
  }

  /** The row of the invitation whose key has id `id`. */
  row(id: string): InvitationRow | undefined {
    return this.ctx.db.get<InvitationRow>("SELECT * FROM invitations WHERE id = ?", id);
  }

  /** Withdraws a pending invitation (by id or an id prefix of at least 6 hex digits). */
  revoke(reference: string): InvitationInfo {
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
    return this.get(row.id)!;
  }

  /** Marks invitations past their expiry and deletes their keys; returns how many. */
  expire(): number {
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
      // A binding outlives no use of its invitation.
      this.ctx.db.run(
        `DELETE FROM meta WHERE key >= ? AND key < ? AND substr(key, ?) IN
           (SELECT id FROM invitations WHERE state != 'pending')`,
        REPAIRS,
        REPAIRS.slice(0, -1) + "/",
        REPAIRS.length + 1,
      );
      return rows.length;
    });
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
