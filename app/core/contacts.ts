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
  /** When the authorisation we gave them runs out (renewed automatically while active). */
  readonly authorizationExpiresAt: Date | null;
}

interface ContactRow {
  id: string;
  name: string;
  name_hint: string;
  state: ContactState;
  created_at: number;
  last_activity_at: number;
  pda_expires_at: number | null;
}

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
    return this.ctx.db.all<ContactRow>("SELECT * FROM contacts ORDER BY name COLLATE NOCASE")
      .map(toContact);
  }

  /** The contact with endpoint id `id`, if any. */
  get(id: string): Contact | undefined {
    const row = this.ctx.db.get<ContactRow>("SELECT * FROM contacts WHERE id = ?", id);
    return row ? toContact(row) : undefined;
  }

  /**
   * Finds a contact by its local name (any case), its endpoint id, or a prefix of
   * its id or fingerprint of at least 6 hex digits.
   */
  find(reference: string): Contact {
    const ref = reference.trim();
    const byName = this.ctx.db.get<ContactRow>(
      "SELECT * FROM contacts WHERE name = ? COLLATE NOCASE",
      ref,
    );
    if (byName) return toContact(byName);
    const hex = ref.replace(/\s+/g, "").toLowerCase();
    if (/^[0-9a-f]{6,65}$/.test(hex)) {
      const matches = this.ctx.db.all<ContactRow>(
        "SELECT * FROM contacts WHERE id = ? OR substr(id, 2, ?) = ?",
        hex,
        hex.length,
        hex,
      );
      if (matches.length === 1) return toContact(matches[0]);
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

  /** Gives a contact a new local name. */
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

  /** How many contacts there are, in any state. */
  /**
   * The active contacts, heard from or written to since `activeSince`, whose
   * authorisation ends before `renewBefore` (or who have none): renewal is due.
   */
  dueForRenewal(activeSince: number, renewBefore: number): string[] {
    return this.ctx.db.all<{ id: string }>(
      `SELECT id FROM contacts WHERE state = 'active' AND last_activity_at > ?
         AND (pda_expires_at IS NULL OR pda_expires_at < ?)`,
      activeSince,
      renewBefore,
    ).map((row) => row.id);
  }

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

  /** Notes traffic with a contact, which keeps its authorisation renewed. */
  touch(id: string): void {
    this.ctx.db.run(
      "UPDATE contacts SET last_activity_at = max(last_activity_at, ?) WHERE id = ?",
      this.ctx.now().getTime(),
      id,
    );
  }
}

function toContact(row: ContactRow): Contact {
  return {
    id: row.id,
    name: row.name,
    nameHint: row.name_hint,
    fingerprint: fingerprint(row.id),
    state: row.state,
    createdAt: new Date(row.created_at),
    lastActivityAt: new Date(row.last_activity_at),
    authorizationExpiresAt: row.pda_expires_at === null ? null : new Date(row.pda_expires_at),
  };
}
