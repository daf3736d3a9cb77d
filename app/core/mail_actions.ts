/**
 * What a person does to a message once it is in a folder: archive it or bring
 * it back, mark it read or unread, delete it for good, and pick its attachments
 * to forward. Each change is one transaction; the schema's triggers keep the
 * counts and the search index in step (migrations V5 and V6 in `store/schema.ts`).
 *
 * @module
 */
import type { AttachmentInput } from "./mail_sending.ts";
import { emit, type NodeContext } from "./context.ts";
import type { MessageDetail } from "./mail_types.ts";
import { attachmentsOf, findMessage, type MessageRow } from "./message_rows.ts";

/** The `secure_delete` mode outside deletions: zeroing what costs no extra write. */
const FAST = "FAST";

/** What {@linkcode MailActions.delete} purged (recipients by endpoint id). */
export interface Purged {
  readonly deleted: string;
  readonly attachments: number;
  readonly parcels: number;
  /** The recipients whose copy was still waiting or queued: it will never be delivered. */
  readonly cancelled: readonly string[];
  /**
   * The recipients whose copy is packed in our pairing request to them, still
   * here: it cannot be taken out, and will still be delivered.
   */
  readonly riding: readonly string[];
}

/**
 * How long a received message deleted for good is remembered, from its deletion:
 * the lifetime of a parcel (and the back-dating of its creation time), after
 * which no copy sent before the deletion can still arrive, twice over: a copy
 * built later (the sender re-sending a first mail that rode its pairing request)
 * is built when its pairing answer arrives, which may itself take a lifetime.
 */
function forgetDeletedAt(ctx: NodeContext): number {
  // Twice: a pairing answer may take a parcel's lifetime to arrive, and the copy
  // re-sent then another lifetime to come.
  return ctx.now().getTime() + 2 * (ctx.tunables.parcelTtlMs + ctx.tunables.parcelBackdateMs);
}

/** Forgets the received messages deleted long enough ago; returns how many. */
export function purgeDeletedMail(ctx: NodeContext): number {
  return ctx.db.run("DELETE FROM deleted_mail WHERE expires_at <= ?", ctx.now().getTime());
}

/** The `meta` key set while the search index still holds words of deleted mail. */
const INDEX_HOLDS_DELETED = "mail.index_holds_deleted";

/**
 * Rewrites the search index if mail was deleted since it was last rewritten
 * (for maintenance): the index is contentless, so deleting a message only marks
 * its entry deleted, and its words stay in the index's pages until they are
 * merged. This merges them all, overwriting what it frees, and empties the
 * write-ahead log. Costs a pass over the whole index; true when it ran.
 */
export function compactSearchIndex(ctx: NodeContext): boolean {
  const db = ctx.db;
  if (!db.get("SELECT 1 AS found FROM meta WHERE key = ?", INDEX_HOLDS_DELETED)) return false;
  db.exec("PRAGMA secure_delete = ON");
  try {
    db.transaction(() => {
      db.exec("INSERT INTO message_search (message_search) VALUES ('optimize')");
      db.run("DELETE FROM meta WHERE key = ?", INDEX_HOLDS_DELETED);
    });
    checkpoint(ctx);
  } finally {
    db.exec(`PRAGMA secure_delete = ${FAST}`);
  }
  return true;
}

/**
 * Copies the write-ahead log into the database and empties it: it still holds
 * pages as they were before a deletion. Best effort: a reader elsewhere may hold
 * it, and then the next checkpoint overwrites it.
 */
function checkpoint(ctx: NodeContext): void {
  try {
    ctx.db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  } catch { /* busy */ }
}

/**
 * Tells live views (two open pages, say) that a message changed: archived, read
 * state or deleted. Dispatched once the transaction commits, as `emit` does for
 * the messenger's other events.
 */
export function messageChanged(ctx: NodeContext, messageId: string): void {
  emit(ctx, "message-changed", { id: messageId });
}

/** Changes to messages already stored. */
export class MailActions {
  constructor(private readonly ctx: NodeContext) {
    // Text freed as messages are indexed and re-indexed (an attachment's name is
    // part of its message's entry) is zeroed in the pages written anyway: none
    // of it is left for a later deletion to miss. At no cost in I/O.
    ctx.db.exec(`PRAGMA secure_delete = ${FAST}`);
  }

  /**
   * Archives the message `reference` names, or with `archived` false returns it
   * to the inbox or sent mail (by its direction). Returns its row.
   */
  setArchived(reference: string, archived: boolean): MessageRow {
    return this.#change(reference, "archived", archived ? 1 : 0);
  }

  /** Marks the message `reference` names read, or unread. Returns its row. */
  setRead(reference: string, read: boolean): MessageRow {
    const row = findMessage(this.ctx.db, reference);
    if ((row.read_at !== null) === read) return row;
    return this.#change(reference, "read_at", read ? this.ctx.now().getTime() : null);
  }

  #change(reference: string, column: "archived" | "read_at", value: number | null): MessageRow {
    return this.ctx.db.transaction(() => {
      const row = findMessage(this.ctx.db, reference);
      if (row[column] === value) return row;
      this.ctx.db.run(`UPDATE messages SET ${column} = ? WHERE id = ?`, value, row.id);
      messageChanged(this.ctx, row.message_id);
      return { ...row, [column]: value };
    });
  }

  /**
   * Deletes the message `reference` names, for good: its attachments, its
   * deliveries, its index entry and its count go with it. A copy that had not
   * left this device (a delivery waiting for its recipient, or a mail parcel
   * still queued) is cancelled, and its parcel dropped. A parcel that has left
   * (with a relay, on a stick) is kept until it is delivered or expires, as
   * every sent parcel is: the hop that holds it may still carry it on, and its
   * receipt is then recognised as for no message. A copy that rides in a parcel
   * of another kind (a pairing request) is not cancelled: that parcel is needed,
   * and the result names its recipient under `riding`.
   *
   * A received message is remembered as deleted (schema V7), so that a copy of
   * it arriving again is not stored again. What the message held is overwritten
   * in the database file (`secure_delete`) and the write-ahead log emptied, but
   * its words stay in the search index's pages until {@linkcode compactSearchIndex}.
   */
  delete(reference: string): Purged {
    const db = this.ctx.db;
    db.exec("PRAGMA secure_delete = ON");
    try {
      const purged = this.#delete(reference);
      checkpoint(this.ctx);
      return purged;
    } finally {
      db.exec(`PRAGMA secure_delete = ${FAST}`);
    }
  }

  #delete(reference: string): Purged {
    const db = this.ctx.db;
    const purged = db.transaction(() => {
      const row = findMessage(db, reference);
      const attachments = db.get<{ n: number }>(
        "SELECT count(*) AS n FROM attachments WHERE message = ?",
        row.id,
      )!.n;
      const deliveries = db.all<
        { recipient_id: string; state: string; parcel_key: string | null }
      >(
        "SELECT recipient_id, state, parcel_key FROM deliveries WHERE message = ? ORDER BY rowid",
        row.id,
      );
      // Attachments and deliveries go with the row (ON DELETE CASCADE).
      db.run("DELETE FROM messages WHERE id = ?", row.id);
      db.run("INSERT OR IGNORE INTO meta (key, value) VALUES (?, '1')", INDEX_HOLDS_DELETED);
      if (row.folder === "inbox") {
        purgeDeletedMail(this.ctx);
        db.run(
          `INSERT INTO deleted_mail (sender_id, message_id, expires_at) VALUES (?, ?, ?)
           ON CONFLICT DO UPDATE SET expires_at = excluded.expires_at`,
          row.sender_id,
          row.message_id,
          forgetDeletedAt(this.ctx),
        );
      }
      let parcels = 0;
      const cancelled: string[] = [];
      const riding: string[] = [];
      for (const delivery of deliveries) {
        const parcel = delivery.parcel_key === null ? undefined : db.get<
          { state: string; kind: string }
        >("SELECT state, kind FROM outgoing_parcels WHERE key = ?", delivery.parcel_key);
        // A copy that rides in a parcel of another kind (the first mail in a pairing
        // request) goes with it: the parcel is needed, and the copy will arrive.
        const ownParcel = parcel?.kind === "mail" &&
          !db.get("SELECT 1 AS found FROM deliveries WHERE parcel_key = ?", delivery.parcel_key);
        if (delivery.state === "waiting" || (delivery.state === "queued" && ownParcel)) {
          cancelled.push(delivery.recipient_id);
        } else if (
          delivery.state === "queued" && parcel && !ownParcel && parcel.state === "queued"
        ) {
          riding.push(delivery.recipient_id);
        }
        // Sent: the hop that holds it may carry it on. Queued: it never leaves. Delivered
        // or expired: only the record of a path that is gone.
        if (!ownParcel || parcel!.state === "sent") continue;
        db.run("DELETE FROM handovers WHERE parcel_key = ?", delivery.parcel_key);
        db.run("DELETE FROM outgoing_parcels WHERE key = ?", delivery.parcel_key);
        if (parcel!.state === "queued") parcels++;
      }
      messageChanged(this.ctx, row.message_id);
      if (parcels > 0) emit(this.ctx, "outbox-changed");
      return {
        deleted: row.message_id,
        attachments,
        parcels,
        cancelled,
        riding,
      };
    });
    if (purged.cancelled.length > 0) {
      emit(this.ctx, "delivery-changed", { messageId: purged.deleted });
    }
    return purged;
  }

  /**
   * The attachments of the message `reference` names, to carry in a forward:
   * those at `indices` (in that order), or all of them.
   */
  forwarded(reference: string, indices?: readonly number[]): AttachmentInput[] {
    const row = findMessage(this.ctx.db, reference);
    const all = attachmentsOf(this.ctx.db, row.id);
    if (indices === undefined) return all;
    const seen = new Set<number>();
    return indices.map((index) => {
      if (!Number.isInteger(index) || index < 0 || index >= all.length) {
        throw new RangeError(
          `Cannot forward attachment ${index} of message ${row.message_id.slice(0, 8)}: ` +
            (all.length === 0
              ? "it has none"
              : `it has ${all.length}, numbered 0 to ${all.length - 1}`),
        );
      }
      if (seen.has(index)) {
        throw new RangeError(`Cannot forward attachment ${index} twice`);
      }
      seen.add(index);
      return all[index];
    });
  }
}

/** The subject of a forward of a message about `subject`. */
export function forwardSubject(subject: string): string {
  return /^fwd?:/i.test(subject) ? subject : `Fwd: ${subject}`;
}

/**
 * The body of a forward: the note written above the original, then the
 * original's headers and body, quoted.
 */
export function forwardBody(original: MessageDetail, note = ""): string {
  const quoted = [
    "---------- Forwarded message ----------",
    `From: ${original.from.name} (${original.from.fingerprint})`,
    `Date: ${original.sentAt.toISOString()}`,
    `Subject: ${original.subject}`,
    `To: ${original.to.map((p) => p.name).join(", ")}`,
    "",
    original.body,
  ].map((line) => line.split("\n").map((l) => `> ${l}`.trimEnd()).join("\n"));
  return [...(note ? [note, ""] : []), ...quoted].join("\n");
}
