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

/** What {@linkcode MailActions.delete} purged (recipients by endpoint id). */
export interface Purged {
  readonly deleted: string;
  readonly attachments: number;
  readonly parcels: number;
  /** The recipients whose copy was still waiting or queued: it will never be delivered. */
  readonly cancelled: readonly string[];
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
  constructor(private readonly ctx: NodeContext) {}

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
   * of another kind (a pairing request) is not cancelled: that parcel is needed.
   */
  delete(reference: string): Purged {
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
      let parcels = 0;
      const cancelled: string[] = [];
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
