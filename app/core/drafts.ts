/**
 * Drafts: messages being written, saved as they are typed. A draft keeps its
 * text, its recipients (contact ids) and the message it answers or forwards;
 * files picked into it are not kept. Saving is one statement, and saving what
 * is already saved writes nothing, so a page may save on every keystroke.
 *
 * @module
 */
import type { Contacts } from "./contacts.ts";
import { emit, type NodeContext } from "./context.ts";
import { NotFoundError } from "./errors.ts";
import { MAX_MAIL_LENGTH } from "./mail_sending.ts";
import { findMessage } from "./message_rows.ts";
import { MAIL_LIMITS } from "./protocol/messages.ts";

/** A message being written. */
export interface Draft {
  readonly id: string;
  /** Recipients: contact ids. */
  readonly to: readonly string[];
  readonly subject: string;
  readonly body: string;
  /** The id of the message it answers, if any. */
  readonly replyTo: string | null;
  /** The id of the message it forwards, if any. */
  readonly forward: string | null;
  readonly updatedAt: Date;
}

/**
 * What a draft is saved with; what is left out stays as it was (empty for a new
 * draft). Recipients are contact references (names, fingerprints or ids), and
 * `replyTo` and `forward` message references (an id or its first characters):
 * the draft keeps the ids they name. Null clears `replyTo` or `forward`.
 */
export interface DraftInput {
  readonly to?: readonly string[];
  readonly subject?: string;
  readonly body?: string;
  readonly replyTo?: string | null;
  readonly forward?: string | null;
}

/** Most drafts kept at once. */
export const MAX_DRAFTS = 1000;

interface DraftRow {
  id: string;
  recipients: string;
  subject: string;
  body: string;
  reply_to: string | null;
  forward: string | null;
  updated_at: number;
}

/** The drafts of this endpoint. */
export class Drafts {
  constructor(private readonly ctx: NodeContext, private readonly contacts: Contacts) {}

  /** Every draft, the most recently saved first. */
  list(): Draft[] {
    return this.ctx.db.all<DraftRow>("SELECT * FROM drafts ORDER BY updated_at DESC, rowid DESC")
      .map(toDraft);
  }

  /** The draft `reference` names: its id, or at least 4 of its first characters. */
  get(reference: string): Draft {
    return toDraft(this.#find(reference));
  }

  /** Saves a new draft. */
  create(input: DraftInput): Draft {
    const fields = this.#fields(input, null);
    return this.ctx.db.transaction(() => {
      const n = this.ctx.db.get<{ n: number }>("SELECT count(*) AS n FROM drafts")!.n;
      if (n >= MAX_DRAFTS) {
        throw new RangeError(
          `Cannot save another draft: there are ${n}, the most kept; send or delete some first`,
        );
      }
      const row: DraftRow = { id: crypto.randomUUID(), ...fields };
      insertDraft(this.ctx, row, "INSERT");
      draftsChanged(this.ctx);
      return toDraft(row);
    });
  }

  /** Saves what `input` gives of the draft `reference` names; the same again changes nothing. */
  update(reference: string, input: DraftInput): Draft {
    return this.ctx.db.transaction(() => {
      const before = this.#find(reference);
      const fields = this.#fields(input, before);
      const unchanged = fields.recipients === before.recipients &&
        fields.subject === before.subject && fields.body === before.body &&
        fields.reply_to === before.reply_to && fields.forward === before.forward;
      if (unchanged) return toDraft(before);
      this.ctx.db.run(
        `UPDATE drafts SET recipients = ?, subject = ?, body = ?, reply_to = ?, forward = ?,
           updated_at = ? WHERE id = ?`,
        fields.recipients,
        fields.subject,
        fields.body,
        fields.reply_to,
        fields.forward,
        fields.updated_at,
        before.id,
      );
      draftsChanged(this.ctx);
      return toDraft({ id: before.id, ...fields });
    });
  }

  /** Deletes the draft `reference` names; returns its id. */
  delete(reference: string): string {
    return this.ctx.db.transaction(() => {
      const { id } = this.#find(reference);
      this.ctx.db.run("DELETE FROM drafts WHERE id = ?", id);
      draftsChanged(this.ctx);
      return id;
    });
  }

  /**
   * Deletes the draft with id `id` as it is sent: call it inside the transaction
   * that stores the message, so that a crash before the commit leaves the draft
   * and one after leaves the message, never neither. However many pages send it
   * at once, one gets it: the others find it gone, and their transaction is
   * rolled back with this error.
   */
  take(id: string): void {
    if (this.ctx.db.run("DELETE FROM drafts WHERE id = ?", id) === 0) {
      throw new NotFoundError(`No draft "${id}": it was sent or deleted meanwhile`);
    }
    draftsChanged(this.ctx);
  }

  #find(reference: string): DraftRow {
    const ref = reference.trim().toLowerCase();
    if (ref.length < 4) {
      throw new NotFoundError(
        `Draft reference "${reference}" is too short: give at least 4 characters`,
      );
    }
    const rows = this.ctx.db.all<DraftRow>(
      "SELECT * FROM drafts WHERE id = ? OR substr(id, 1, ?) = ? LIMIT 2",
      ref,
      ref.length,
      ref,
    );
    const exact = rows.find((row) => row.id === ref);
    if (exact) return exact;
    if (rows.length === 1) return rows[0];
    if (rows.length === 0) {
      throw new NotFoundError(`No draft "${reference}": it was sent or deleted, or never saved`);
    }
    throw new NotFoundError(`"${reference}" matches several drafts: give more of its id`);
  }

  /** The columns of a draft saved with `input` over `before`, checked against the limits. */
  #fields(input: DraftInput, before: DraftRow | null): Omit<DraftRow, "id"> {
    const subject = input.subject ?? before?.subject ?? "";
    const body = input.body ?? before?.body ?? "";
    if (subject.length > MAIL_LIMITS.subjectLength) {
      throw new RangeError(
        `Cannot save draft: the subject exceeds ${MAIL_LIMITS.subjectLength} characters`,
      );
    }
    const bytes = new TextEncoder().encode(body).byteLength;
    if (bytes > MAX_MAIL_LENGTH) {
      throw new RangeError(
        `Cannot save draft: its body is ${bytes} bytes, over the mail limit of ${MAX_MAIL_LENGTH}`,
      );
    }
    let recipients = before?.recipients ?? "[]";
    if (input.to !== undefined) {
      const ids = [...new Set(input.to.map((ref) => this.contacts.find(ref).id))];
      if (ids.length > MAIL_LIMITS.recipients) {
        throw new RangeError(
          `Cannot save draft to ${ids.length} people: the limit is ${MAIL_LIMITS.recipients}`,
        );
      }
      recipients = JSON.stringify(ids);
    }
    const message = (ref: string | null | undefined, old: string | null) =>
      ref === undefined ? old : ref === null ? null : findMessage(this.ctx.db, ref).message_id;
    return {
      recipients,
      subject,
      body,
      reply_to: message(input.replyTo, before?.reply_to ?? null),
      forward: message(input.forward, before?.forward ?? null),
      updated_at: this.ctx.now().getTime(),
    };
  }
}

/** Writes draft `row`; "INSERT OR IGNORE" leaves one of the same id as it is. */
function insertDraft(ctx: NodeContext, row: DraftRow, verb: "INSERT" | "INSERT OR IGNORE"): void {
  ctx.db.run(
    `${verb} INTO drafts (id, recipients, subject, body, reply_to, forward, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, ?)`,
    row.id,
    row.recipients,
    row.subject,
    row.body,
    row.reply_to,
    row.forward,
    row.updated_at,
  );
}

/** Tells live views that the drafts changed, once the transaction commits. */
function draftsChanged(ctx: NodeContext): void {
  emit(ctx, "drafts-changed");
}

function toDraft(row: DraftRow): Draft {
  return {
    id: row.id,
    to: JSON.parse(row.recipients),
    subject: row.subject,
    body: row.body,
    replyTo: row.reply_to,
    forward: row.forward,
    updatedAt: new Date(row.updated_at),
  };
}
