/**
 * Contacts: the people this endpoint paired with. A contact's display name is the
 * one the local user chose; what the contact calls itself is kept as a hint only,
 * shown beside its key fingerprint, so nobody can pose as somebody else.
 *
 * @module
 */
import { emit, type NodeContext } from "./context.ts";
import { fingerprint } from "./identity.ts";

/** Where a pairing stands. */
export type ContactState =
  /** We accepted their invitation and wait for their answer; mail to them waits too. */
  | "pairing"
  /** Both sides can write. */
  | "active"
  /**
   * Paired, but every authorisation they gave us, or every one we gave them, has
   * expired (after a silence longer than the horizon, docs/protocol.md §6): one of
   * the two cannot write until they pair again. Mail to them waits. Never stored:
   * an active contact is shown so while it lasts.
   */
  | "lapsed"
  /** Their parcels are refused. */
  | "blocked";

/** A contact as listed. */
export interface Contact {
  readonly id: string;
  readonly name: string;
  readonly nameHint: string;
  readonly fingerprint: string;
  readonly state: ContactState;
  readonly createdAt: Date;
  readonly lastActivityAt: Date;
  /**
   * When the last authorisation we gave them runs out: they can write to us until
   * then (we issue them ahead to the horizon while we can reach them).
   */
  readonly authorizationExpiresAt: Date | null;
  /** When the last authorisation they gave us runs out: we can write to them until then. */
  readonly writableUntil: Date | null;
}

interface ContactRow {
  id: string;
  name: string;
  name_hint: string;
  state: Exclude<ContactState, "lapsed">;
  created_at: number;
  last_activity_at: number;
  pda_expires_at: number | null;
  writable_until: number | null;
}

/** The authorisations contact `c` gave us (by the index on subject and issuer). */
const PATHS_FROM_CONTACT = `certification_paths p
  WHERE p.subject_id = (SELECT node_id FROM identity) AND p.issuer_id = c.id`;

/** A contact's row, with how long the authorisations it gave us last. */
const SELECT_CONTACTS = `SELECT c.*, (SELECT max(p.expires_at) FROM ${PATHS_FROM_CONTACT})
  AS writable_until FROM contacts c`;

/** Raised when a contact reference matches none or several contacts. */
export class ContactLookupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ContactLookupError";
  }
}

/** Limits on local names. */
export const MAX_CONTACT_NAME_LENGTH = 100;

/** Reads and changes the contact list. */
export class Contacts {
  constructor(private readonly ctx: NodeContext) {}

  /** Every contact, by name. */
  list(): Contact[] {
    return this.ctx.db.all<ContactRow>(`${SELECT_CONTACTS} ORDER BY c.name COLLATE NOCASE`)
      .map((row) => this.#toContact(row));
  }

  /** The contact with endpoint id `id`, if any. */
  get(id: string): Contact | undefined {
    const row = this.ctx.db.get<ContactRow>(`${SELECT_CONTACTS} WHERE c.id = ?`, id);
    return row ? this.#toContact(row) : undefined;
  }

  /**
   * Finds a contact by its local name (any case), its endpoint id, or a prefix of
   * its id or fingerprint of at least 6 hex digits.
   */
  find(reference: string): Contact {
    const ref = reference.trim();
    const byName = this.ctx.db.get<ContactRow>(
      `${SELECT_CONTACTS} WHERE c.name = ? COLLATE NOCASE`,
      ref,
    );
    if (byName) return this.#toContact(byName);
    const hex = ref.replace(/\s+/g, "").toLowerCase();
    if (/^[0-9a-f]{6,65}$/.test(hex)) {
      const matches = this.ctx.db.all<ContactRow>(
        `${SELECT_CONTACTS} WHERE c.id = ? OR substr(c.id, 2, ?) = ?`,
        hex,
        hex.length,
        hex,
      );
      if (matches.length === 1) return this.#toContact(matches[0]);
      if (matches.length > 1) {
        throw new ContactLookupError(
          `"${reference}" matches ${matches.length} contacts (${
            matches.map((m) => m.name).join(", ")
          }): give more of the fingerprint`,
        );
      }
    }
    throw new ContactLookupError(`No contact named or with fingerprint "${reference}"`);
  }

  /**
   * Gives a contact a new local name. Their mail is found by it at once: a search
   * matches names as they are now, not as the mail was indexed (migration V5).
   */
  rename(reference: string, name: string): Contact {
    const contact = this.find(reference);
    const newName = this.checkName(name, contact.id);
    this.ctx.db.run("UPDATE contacts SET name = ? WHERE id = ?", newName, contact.id);
    emit(this.ctx, "contact-changed", { id: contact.id });
    return this.get(contact.id)!;
  }

  /** Refuses the contact's parcels from now on. */
  block(reference: string): Contact {
    const contact = this.find(reference);
    this.ctx.db.run(
      "UPDATE contacts SET state = 'blocked', blocked_at = ? WHERE id = ?",
      this.ctx.now().getTime(),
      contact.id,
    );
    emit(this.ctx, "contact-changed", { id: contact.id });
    return this.get(contact.id)!;
  }

  /** Accepts the contact's parcels again. */
  unblock(reference: string): Contact {
    const contact = this.find(reference);
    if (contact.state !== "blocked") return contact;
    const hasChannel = this.ctx.db.get(
      "SELECT 1 FROM certification_paths WHERE issuer_id = ?",
      contact.id,
    ) !== undefined;
    this.ctx.db.run(
      "UPDATE contacts SET state = ?, blocked_at = NULL, last_activity_at = ? WHERE id = ?",
      hasChannel ? "active" : "pairing",
      this.ctx.now().getTime(),
      contact.id,
    );
    emit(this.ctx, "contact-changed", { id: contact.id });
    return this.get(contact.id)!;
  }

  /**
   * Checks a local name the user chose: non-empty, not too long, not already another
   * contact's. Returns it trimmed.
   */
  checkName(name: string, forId?: string): string {
    const trimmed = name.trim();
    if (trimmed.length === 0 || trimmed.length > MAX_CONTACT_NAME_LENGTH) {
      throw new RangeError(`A contact name must have 1 to ${MAX_CONTACT_NAME_LENGTH} characters`);
    }
    const clash = this.#named(trimmed);
    if (clash !== undefined && clash !== forId) {
      throw new RangeError(`A contact named "${trimmed}" already exists: choose another name`);
    }
    return trimmed;
  }

  /** Whether some contact is already called `name` (case aside). */
  nameTaken(name: string): boolean {
    return this.#named(name) !== undefined;
  }

  /**
   * The active contacts we can still write to whose authorisations from us end
   * before `horizon` (or who have none): more are due, whether or not we heard
   * from them lately. Those we cannot reach are left out: what we issued could not
   * travel.
   */
  dueForRenewal(horizon: number): string[] {
    return this.ctx.db.all<{ id: string }>(
      `SELECT c.id FROM contacts c WHERE c.state = 'active'
         AND (c.pda_expires_at IS NULL OR c.pda_expires_at < ?)
         AND EXISTS (SELECT 1 FROM ${PATHS_FROM_CONTACT} AND p.expires_at > ?)`,
      horizon,
      this.ctx.now().getTime(),
    ).map((row) => row.id);
  }

  /** How many contacts there are, in any state. */
  count(): number {
    return this.ctx.db.get<{ n: number }>("SELECT count(*) AS n FROM contacts")!.n;
  }

  #named(name: string): string | undefined {
    return this.ctx.db.get<{ id: string }>(
      "SELECT id FROM contacts WHERE name = ? COLLATE NOCASE",
      name,
    )?.id;
  }

  /**
   * The name a contact gets when the user chose none: its own hint followed by its
   * fingerprint's start, which makes impersonation visible.
   */
  defaultName(id: string, hint: string): string {
    const base = hint.trim().slice(0, 60) || "Contact";
    const prints = fingerprint(id).split(" ");
    for (let groups = 2; groups <= prints.length; groups++) {
      const candidate = `${base} (${prints.slice(0, groups).join(" ")})`;
      if (!this.nameTaken(candidate)) return candidate;
    }
    return `${base} (${id})`;
  }

  /** Notes traffic with a contact (its last activity, as listed). */
  touch(id: string): void {
    this.ctx.db.run(
      "UPDATE contacts SET last_activity_at = max(last_activity_at, ?) WHERE id = ?",
      this.ctx.now().getTime(),
      id,
    );
  }

  /** A row as a contact, its state shown `lapsed` while an authorisation is missing. */
  #toContact(row: ContactRow): Contact {
    const now = this.ctx.now().getTime();
    const lapsed = row.state === "active" &&
      ((row.writable_until ?? 0) <= now || (row.pda_expires_at ?? Infinity) <= now);
    return {
      id: row.id,
      name: row.name,
      nameHint: row.name_hint,
      fingerprint: fingerprint(row.id),
      state: lapsed ? "lapsed" : row.state,
      createdAt: new Date(row.created_at),
      lastActivityAt: new Date(row.last_activity_at),
      authorizationExpiresAt: row.pda_expires_at === null ? null : new Date(row.pda_expires_at),
      writableUntil: row.writable_until === null ? null : new Date(row.writable_until),
    };
  }
}
