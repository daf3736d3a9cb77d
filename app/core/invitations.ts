/**
 * The invitations this endpoint issues: creating one (a bearer token for one
 * pairing request, see protocol/invitation.ts), listing, revoking and expiring
 * them, and why a parcel signed with an invitation key that is no longer
 * pending is refused.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import {
  derDeserializeRSAPrivateKey,
  derDeserializeRSAPublicKey,
  derSerializePrivateKey,
  getIdFromIdentityKey,
} from "@relaycorp/relaynet-core";
import { ParcelRefusedError } from "../../bindings/validation.ts";
import type { Authorizations } from "./authorizations.ts";
import type { Contact, Contacts } from "./contacts.ts";
import type { NodeContext } from "./context.ts";
import { ConflictError, NotFoundError } from "./errors.ts";
import type { IdentityManager } from "./identity.ts";
import {
  encodeInvitation,
  type InvitationFormat,
  invitationKeyFromSeed,
  withSeed,
} from "./protocol/invitation.ts";

/**
 * An invitation as listed. Its text is kept while it is pending, so that it can be
 * shown again ({@linkcode invitationText}), and deleted once it is not.
 */
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
  /**
   * The text's format (default 2, compact: one QR code). 1 is for someone whose
   * Relaymail predates version 2 invitations.
   */
  readonly format?: InvitationFormat;
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

/** Key in table `meta` that holds the text of pending invitation `id`, to show it again. */
const TEXTS = "invitation.text.";

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
    // K comes from a seed, which a version 2 text carries instead of K itself. The
    // seed comes from a nonce and the identity key, so that the text kept to show it
    // again holds the nonce, not K: K is as safe at rest as the identity key.
    const nonce = crypto.getRandomValues(new Uint8Array(16));
    const seed = await invitationSeed(this.identity, nonce);
    const invitationKey = await seededKeyPair(seed);
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
      invitationKeySeed: seed,
    }, options.format ?? 2);
    const blanked = await withSeed(text, new Uint8Array(32));
    // A version 1 text (asked for, or an inviter registered with a gateway) holds K
    // itself: it is kept encrypted under a key drawn from the identity key, so that
    // it too is as safe at rest as the identity key (sealed under the passphrase).
    const kept = blanked === null
      ? await sealText(this.identity, text)
      : `${Buffer.from(nonce).toString("base64url")} ${blanked}`;
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
      this.ctx.db.run("INSERT INTO meta (key, value) VALUES (?, ?)", TEXTS + invitationId, kept);
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

  /**
   * Forgets the kept text of invitation `id` (it was used: the text could pair
   * nobody more). Maintenance forgets it otherwise, in {@linkcode expire}.
   */
  forgetText(id: string): void {
    forgetInvitationText(this.ctx, id);
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
    const row = findInvitation(this.ctx, reference);
    if (row.state !== "pending") {
      throw new RangeError(`Invitation ${row.id.slice(1, 13)} is ${row.state}, not pending`);
    }
    this.ctx.db.transaction(() => {
      this.ctx.db.run("UPDATE invitations SET state = 'revoked' WHERE id = ?", row.id);
      this.ctx.db.run("DELETE FROM meta WHERE key = ?", TEXTS + row.id);
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
      // A binding outlives no use of its invitation, nor does a text (it holds the
      // invitation key, of no use once the invitation is not pending).
      for (const prefix of [REPAIRS, TEXTS]) {
        this.ctx.db.run(
          `DELETE FROM meta WHERE key >= ? AND key < ? AND substr(key, ?) IN
             (SELECT id FROM invitations WHERE state != 'pending')`,
          prefix,
          prefix.slice(0, -1) + "/",
          prefix.length + 1,
        );
      }
      return rows.length;
    });
  }
}

/** Forgets the kept text of invitation `id` (see {@linkcode Invitations.forgetText}). */
export function forgetInvitationText(ctx: NodeContext, id: string): void {
  ctx.db.run("DELETE FROM meta WHERE key = ?", TEXTS + id);
}

/**
 * The invitation `reference` names: its id, or an id prefix of at least 6 hex digits
 * (without the leading 0, as listed).
 */
export function findInvitation(ctx: NodeContext, reference: string): InvitationRow {
  const ref = reference.trim().toLowerCase();
  const rows = ctx.db.all<InvitationRow>(
    "SELECT * FROM invitations WHERE id = ? OR (length(?) >= 6 AND substr(id, 2, length(?)) = ?)",
    ref,
    ref,
    ref,
    ref,
  );
  if (rows.length !== 1) {
    // A RangeError, as before: the web API and the CLI answer it as the person's input.
    throw new RangeError(
      rows.length
        ? `"${reference}" matches several invitations: give more of its id`
        : `No invitation "${reference}"`,
    );
  }
  return rows[0];
}

/**
 * The text of the pending invitation `reference` names, to hand over again. An
 * invitation used, revoked or expired has none: it could pair nobody.
 */
export async function invitationText(
  ctx: NodeContext,
  identity: IdentityManager,
  reference: string,
): Promise<InvitationInfo & { readonly text: string }> {
  const row = findInvitation(ctx, reference);
  const expired = row.state === "pending" && row.expires_at <= ctx.now().getTime();
  const state = expired ? "expired" : row.state;
  if (state !== "pending") {
    throw new ConflictError(
      `Invitation ${row.id.slice(1, 13)} is ${state}: make a new one to pair with someone`,
    );
  }
  const kept = ctx.db.get<{ value: string }>(
    "SELECT value FROM meta WHERE key = ?",
    TEXTS + row.id,
  )?.value;
  if (kept === undefined) {
    throw new NotFoundError(
      `Invitation ${
        row.id.slice(1, 13)
      } was made before texts were kept: revoke it and make a new one`,
    );
  }
  const [nonce, blanked] = kept.split(" ");
  const text = kept.startsWith(SEALED)
    ? await openText(identity, kept)
    : blanked === undefined
    ? kept // a version 1 text kept before they were sealed
    : await withSeed(blanked, await invitationSeed(identity, Buffer.from(nonce, "base64url")));
  if (text === null) throw new Error(`The kept text of invitation ${row.id} is damaged`);
  return { ...toInvitationInfo(row), text };
}

/** The seed of the invitation key made with `nonce`: HMAC-SHA-256 under the identity key. */
function invitationSeed(identity: IdentityManager, nonce: Uint8Array): Promise<Uint8Array> {
  return identityMac(identity, "relaymail invitation seed ", nonce);
}

/** How a kept version 1 text starts: then come its nonce and its ciphertext. */
const SEALED = "sealed ";

/**
 * The AES-256-GCM key that seals a kept version 1 text made with `nonce`: an
 * HMAC-SHA-256 under the identity key, as the seed of a version 2 one.
 */
async function textKey(
  identity: IdentityManager,
  nonce: Uint8Array<ArrayBuffer>,
): Promise<CryptoKey> {
  const raw = await identityMac(identity, "relaymail invitation text ", nonce);
  return await crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]);
}

/** `text`, sealed to be kept: "sealed <nonce> <ciphertext>" (base64url). */
async function sealText(identity: IdentityManager, text: string): Promise<string> {
  const nonce = crypto.getRandomValues(new Uint8Array(12));
  const sealed = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv: nonce },
    await textKey(identity, nonce),
    new TextEncoder().encode(text),
  );
  const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64url");
  return `${SEALED}${b64(nonce)} ${b64(new Uint8Array(sealed))}`;
}

/** The text {@linkcode sealText} sealed in `kept`. */
async function openText(identity: IdentityManager, kept: string): Promise<string> {
  const [nonce, sealed] = kept.slice(SEALED.length).split(" ").map((part) =>
    new Uint8Array(Buffer.from(part ?? "", "base64url"))
  );
  try {
    const text = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: nonce },
      await textKey(identity, nonce),
      sealed,
    );
    return new TextDecoder().decode(text);
  } catch (error) {
    throw new Error("A kept invitation text cannot be opened: it is damaged", { cause: error });
  }
}

/** HMAC-SHA-256 of `label` then `nonce` under the identity key. */
async function identityMac(
  identity: IdentityManager,
  label: string,
  nonce: Uint8Array,
): Promise<Uint8Array<ArrayBuffer>> {
  const { identityKeyPair } = await identity.endpoint();
  const secret = new Uint8Array(await derSerializePrivateKey(identityKeyPair.privateKey));
  const key = await crypto.subtle.importKey(
    "raw",
    secret,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const message = new Uint8Array([...new TextEncoder().encode(label), ...nonce]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, message));
}

/** The invitation key pair `seed` stands for (docs/protocol.md §2). */
async function seededKeyPair(seed: Uint8Array) {
  const key = await invitationKeyFromSeed(seed);
  return {
    privateKey: await derDeserializeRSAPrivateKey(Buffer.from(key.pkcs8)),
    publicKey: await derDeserializeRSAPublicKey(Buffer.from(key.spki)),
  };
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
