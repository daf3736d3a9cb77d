/**
 * The refusal log: every parcel this endpoint refused, with the reason, for the
 * user to list. Repeats of the same refusal (one parcel offered again and again)
 * are counted on one entry, and the log keeps only its most recent entries, so a
 * flood of bad parcels can neither fill the disk nor push anything else out.
 *
 * @module
 */
import type { RefusalCode } from "../../bindings/binding.ts";
import { emit, type NodeContext } from "./context.ts";

/** One refusal as listed. */
export interface Refusal {
  readonly id: number;
  readonly at: Date;
  readonly lastAt: Date;
  readonly count: number;
  /** The binding that carried the parcel, and its previous hop. */
  readonly via: string;
  readonly hop: string | null;
  readonly code: RefusalCode;
  readonly reason: string;
  /** What could be read of the parcel before it was refused. */
  readonly parcelId: string | null;
  readonly senderId: string | null;
  readonly recipientId: string | null;
  readonly size: number;
}

/** What to record about a refusal. */
export interface RefusalRecord {
  readonly via: string;
  readonly hop?: string;
  readonly code: RefusalCode;
  readonly reason: string;
  readonly parcelId?: string;
  readonly senderId?: string;
  readonly recipientId?: string;
  readonly size: number;
}

interface RefusalRow {
  id: number;
  at: number;
  last_at: number;
  count: number;
  via: string;
  hop: string | null;
  code: RefusalCode;
  reason: string;
  parcel_id: string | null;
  sender_id: string | null;
  recipient_id: string | null;
  size: number;
}

/** Records and lists refusals. */
export class RefusalLog {
  constructor(private readonly ctx: NodeContext) {}

  /** Records a refusal (or counts a repeat of a recorded one). */
  record(refusal: RefusalRecord): void {
    const now = this.ctx.now().getTime();
    const repeat = refusal.parcelId && refusal.senderId
      ? this.ctx.db.get<{ id: number }>(
        "SELECT id FROM refusals WHERE code = ? AND parcel_id = ? AND sender_id = ? ORDER BY id DESC LIMIT 1",
        refusal.code,
        refusal.parcelId,
        refusal.senderId,
      )
      : undefined;
    if (repeat) {
      this.ctx.db.run(
        "UPDATE refusals SET count = count + 1, last_at = ? WHERE id = ?",
        now,
        repeat.id,
      );
    } else {
      this.ctx.db.run(
        `INSERT INTO refusals (at, last_at, via, hop, code, reason, parcel_id, sender_id, recipient_id, size)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        now,
        now,
        refusal.via,
        refusal.hop ?? null,
        refusal.code,
        refusal.reason,
        refusal.parcelId ?? null,
        refusal.senderId ?? null,
        refusal.recipientId ?? null,
        refusal.size,
      );
    }
    emit(this.ctx, "parcel-refused", { code: refusal.code, reason: refusal.reason });
  }

  /** Most recent refusals first. */
  list(options: { limit?: number; except?: RefusalCode } = {}): Refusal[] {
    return this.ctx.db.all<RefusalRow>(
      "SELECT * FROM refusals WHERE code IS NOT ? ORDER BY last_at DESC, id DESC LIMIT ?",
      options.except ?? null,
      options.limit ?? 1000,
    ).map((row) => ({
      id: row.id,
      at: new Date(row.at),
      lastAt: new Date(row.last_at),
      count: row.count,
      via: row.via,
      hop: row.hop,
      code: row.code,
      reason: row.reason,
      parcelId: row.parcel_id,
      senderId: row.sender_id,
      recipientId: row.recipient_id,
      size: row.size,
    }));
  }

  /** How many entries the log holds (all but those with code `except`, if given). */
  count(options: { except?: RefusalCode } = {}): number {
    return this.ctx.db.get<{ n: number }>(
      "SELECT count(*) AS n FROM refusals WHERE code IS NOT ?",
      options.except ?? null,
    )!.n;
  }

  /** How many parcels were refused with `code`, repeats included. */
  parcels(code: RefusalCode): number {
    return this.ctx.db.get<{ n: number }>(
      "SELECT coalesce(sum(count), 0) AS n FROM refusals WHERE code = ?",
      code,
    )!.n;
  }

  /** Drops all but the `keep` most recent entries. */
  trim(keep: number): number {
    return this.ctx.db.run(
      "DELETE FROM refusals WHERE id NOT IN (SELECT id FROM refusals ORDER BY last_at DESC, id DESC LIMIT ?)",
      keep,
    );
  }
}
