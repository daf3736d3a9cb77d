/**
 * Parcels this endpoint made, from creation until delivered or expired, and the
 * delivery state of each sent message: queued → sent (left this device) →
 * delivered (the recipient's receipt came back), or expired.
 *
 * @module
 */
import { Parcel, ServiceMessage } from "@relaycorp/relaynet-core";
import { Buffer } from "node:buffer";
import type { Handover, OutgoingParcel, OutgoingParcelsOptions } from "../../bindings/binding.ts";
import { RAMF_MAX_TTL_SECONDS, sha256Hex } from "../../bindings/validation.ts";
import { emit, type NodeContext } from "./context.ts";
import type { RelaymailChannel } from "./identity.ts";

/** What a parcel carries, for statistics and listings. */
export type ParcelKind =
  | "mail"
  | "receipt"
  | "pairing-request"
  | "pairing-accept"
  | "pda-path"
  | "connection-params"
  /** A channel's service message: a post fanned out, keys, an author certificate, a follow notice. */
  | "channel";

/** A parcel built and hashed, ready to be inserted inside a transaction. */
export interface PreparedParcel {
  readonly key: string;
  readonly parcelId: string;
  readonly recipientId: string;
  readonly kind: ParcelKind;
  readonly bytes: Uint8Array;
  readonly expiresAt: Date;
}

/** A parcel row as `outbox` lists it. */
export interface OutboxEntry {
  readonly key: string;
  readonly parcelId: string;
  readonly recipientId: string;
  readonly kind: ParcelKind;
  readonly size: number;
  readonly state: "queued" | "sent" | "delivered" | "expired";
  readonly createdAt: Date;
  readonly expiresAt: Date;
  readonly handedAt: Date | null;
  readonly handedVia: string | null;
}

interface ParcelRow {
  key: string;
  parcel_id: string;
  recipient_id: string;
  kind: ParcelKind;
  bytes: Uint8Array | null;
  size: number;
  state: OutboxEntry["state"];
  created_at: number;
  expires_at: number;
  handed_at: number | null;
  handed_via: string | null;
}

/**
 * Encrypts and signs one service message for a channel's peer, dated a little in
 * the past so receivers whose clocks run slow accept it.
 */
export async function makeParcel(
  ctx: NodeContext,
  channel: RelaymailChannel,
  kind: ParcelKind,
  type: string,
  content: Uint8Array,
): Promise<PreparedParcel> {
  const now = ctx.now().getTime();
  const creationDate = new Date(now - ctx.tunables.parcelBackdateMs);
  const ttl = Math.min(
    RAMF_MAX_TTL_SECONDS,
    Math.floor((ctx.tunables.parcelTtlMs + ctx.tunables.parcelBackdateMs) / 1000),
  );
  const parcelId = crypto.randomUUID();
  const serialized = await channel.makeMessage(
    new ServiceMessage(type, Buffer.from(content)),
    Parcel,
    { id: parcelId, creationDate, ttl },
  );
  return prepareParcel(new Uint8Array(serialized), {
    parcelId,
    recipientId: channel.peer.id,
    kind,
    // RAMF dates have whole seconds.
    expiresAt: new Date(Math.floor(creationDate.getTime() / 1000) * 1000 + ttl * 1000),
  });
}

/** Hashes a serialised parcel into a {@linkcode PreparedParcel}. */
export async function prepareParcel(
  bytes: Uint8Array,
  meta: Omit<PreparedParcel, "key" | "bytes">,
): Promise<PreparedParcel> {
  return { ...meta, bytes, key: await sha256Hex(bytes) };
}

/**
 * How a delivery left, as `deliveries.via` records it: the binding, and for bindings
 * that can tell, whether the next hop was a relay or the recipient's own device
 * (`mesh relay`, `mesh recipient`, `sneakernet`).
 */
export function deliveryVia(handover: Handover): string {
  if (handover.binding === "sneakernet") return "sneakernet";
  return `${handover.binding} ${handover.toRecipient ? "recipient" : "relay"}`;
}

/** The queue of parcels waiting to leave, and their fate. */
export class Outbox {
  constructor(private readonly ctx: NodeContext) {}

  /** Queues a prepared parcel; synchronous, for use inside a transaction. */
  insert(parcel: PreparedParcel): void {
    this.ctx.db.run(
      `INSERT OR IGNORE INTO outgoing_parcels
         (key, parcel_id, recipient_id, kind, bytes, size, created_at, expires_at, state)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued')`,
      parcel.key,
      parcel.parcelId,
      parcel.recipientId,
      parcel.kind,
      parcel.bytes,
      parcel.bytes.byteLength,
      this.ctx.now().getTime(),
      parcel.expiresAt.getTime(),
    );
    emit(this.ctx, "outbox-changed");
  }

  /** Parcels waiting to leave (and, on request, those that left but are undelivered), oldest first. */
  pending(options: OutgoingParcelsOptions = {}): OutgoingParcel[] {
    const states = options.includeHandedOver ? "('queued', 'sent')" : "('queued')";
    const rows = this.ctx.db.all<
      Pick<ParcelRow, "key" | "recipient_id" | "expires_at" | "size" | "created_at"> & {
        handed_to: string | null;
      }
    >(
      `SELECT p.key, p.recipient_id, p.expires_at, p.size, p.created_at,
         (SELECT group_concat(h.binding, char(10)) FROM handovers h WHERE h.parcel_key = p.key) AS handed_to
       FROM outgoing_parcels p
       WHERE p.state IN ${states} AND p.expires_at > ? AND p.bytes IS NOT NULL
       ORDER BY p.created_at, p.rowid`,
      this.ctx.now().getTime(),
    );
    const wanted = options.recipientIds ? new Set(options.recipientIds) : null;
    return rows
      .filter((row) => !wanted || wanted.has(row.recipient_id))
      .map((row) => ({
        key: row.key,
        recipientId: row.recipient_id,
        size: row.size,
        expiresAt: new Date(row.expires_at),
        queuedAt: new Date(row.created_at),
        handedTo: row.handed_to ? row.handed_to.split("\n") : [],
        read: () => Promise.resolve(this.bytes(row.key)),
      }));
  }

  /** The message id a parcel of this device carries (mail or receipt), if it carries one. */
  messageOf(key: string): string | undefined {
    return this.ctx.db.get<{ message_id: string }>(
      `SELECT m.message_id FROM deliveries d JOIN messages m ON m.id = d.message
       WHERE d.parcel_key = ? LIMIT 1`,
      key,
    )?.message_id;
  }

  /** How many parcels wait on this device, not yet handed to any next hop. */
  queuedCount(): number {
    return this.ctx.db.get<{ n: number }>(
      "SELECT count(*) AS n FROM outgoing_parcels WHERE state = 'queued'",
    )!.n;
  }

  /** The bytes of an undelivered, unexpired parcel, or null. */
  bytes(key: string): Uint8Array | null {
    return this.ctx.db.get<{ bytes: Uint8Array | null }>(
      "SELECT bytes FROM outgoing_parcels WHERE key = ? AND state IN ('queued', 'sent') AND expires_at > ?",
      key,
      this.ctx.now().getTime(),
    )?.bytes ?? null;
  }

  /**
   * Records that a next hop holds the parcel; the messages it carries have left
   * this device. When that hop is the recipient's own node, the parcel has arrived:
   * its bytes are dropped and no binding carries it any more.
   */
  handedOver(key: string, handover: Handover): void {
    const via = handover.hop ? `${handover.binding}:${handover.hop}` : handover.binding;
    const now = this.ctx.now().getTime();
    this.ctx.db.transaction(() => {
      this.ctx.db.run(
        `INSERT INTO handovers (parcel_key, binding, hop, to_recipient, at)
         SELECT ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM outgoing_parcels WHERE key = ?1)
         ON CONFLICT (parcel_key, binding) DO UPDATE SET hop = excluded.hop,
           to_recipient = max(to_recipient, excluded.to_recipient), at = excluded.at`,
        key,
        handover.binding,
        handover.hop ?? null,
        handover.toRecipient ? 1 : 0,
        now,
      );
      const changed = this.ctx.db.run(
        `UPDATE outgoing_parcels SET state = 'sent', handed_at = ?, handed_via = ?
         WHERE key = ? AND state = 'queued'`,
        now,
        via,
        key,
      );
      if (handover.toRecipient) {
        this.ctx.db.run(
          `UPDATE outgoing_parcels SET state = 'delivered', bytes = NULL, handed_via = ?
           WHERE key = ? AND state IN ('queued', 'sent')`,
          via,
          key,
        );
      }
      // A later handover straight to the recipient's device says more than "a relay".
      if (changed === 0 && !handover.toRecipient) return;
      this.ctx.db.run(
        `UPDATE deliveries SET state = 'sent', via = ?, updated_at = ?
         WHERE parcel_key = ? AND state IN ('queued', 'sent')`,
        deliveryVia(handover),
        now,
        key,
      );
    });
    emit(this.ctx, "delivery-changed", { parcelKey: key, state: "sent", via: handover.binding });
  }

  /** Every handover of a parcel, oldest first: the path it took out of this device. */
  handovers(
    key: string,
  ): { binding: string; hop: string | null; toRecipient: boolean; at: Date }[] {
    return this.ctx.db.all<
      { binding: string; hop: string | null; to_recipient: number; at: number }
    >(
      "SELECT binding, hop, to_recipient, at FROM handovers WHERE parcel_key = ? ORDER BY at",
      key,
    ).map((row) => ({
      binding: row.binding,
      hop: row.hop,
      toRecipient: row.to_recipient === 1,
      at: new Date(row.at),
    }));
  }

  /**
   * Marks the messages `ownId` (this endpoint) sent as `messageIds` delivered to
   * `recipientId`, and drops their
   * parcels' bytes. Returns how many deliveries changed.
   */
  markDelivered(
    ownId: string,
    recipientId: string,
    messageIds: readonly string[],
  ): number {
    let changed = 0;
    const now = this.ctx.now().getTime();
    for (const messageId of messageIds) {
      const delivery = this.ctx.db.get<
        { message: number; parcel_key: string | null; state: string }
      >(
        // By (sender, message id): the unique index, not a scan of the sent folder.
        `SELECT d.message, d.parcel_key, d.state FROM deliveries d JOIN messages m ON m.id = d.message
         WHERE m.sender_id = ? AND m.message_id = ? AND m.folder = 'sent' AND d.recipient_id = ?`,
        ownId,
        messageId,
        recipientId,
      );
      if (!delivery || delivery.state === "delivered") continue;
      changed += this.ctx.db.run(
        "UPDATE deliveries SET state = 'delivered', updated_at = ? WHERE message = ? AND recipient_id = ?",
        now,
        delivery.message,
        recipientId,
      );
      if (delivery.parcel_key) {
        this.ctx.db.run(
          "UPDATE outgoing_parcels SET state = 'delivered', bytes = NULL WHERE key = ?",
          delivery.parcel_key,
        );
      }
    }
    return changed;
  }

  /** Marks parcels past their expiry expired, with the deliveries they carried. */
  expire(): number {
    const now = this.ctx.now().getTime();
    return this.ctx.db.transaction(() => {
      this.ctx.db.run(
        `UPDATE deliveries SET state = 'expired', updated_at = ?
         WHERE state IN ('queued', 'sent') AND parcel_key IN
           (SELECT key FROM outgoing_parcels WHERE state IN ('queued', 'sent') AND expires_at <= ?)`,
        now,
        now,
      );
      return this.ctx.db.run(
        `UPDATE outgoing_parcels SET state = 'expired', bytes = NULL
         WHERE state IN ('queued', 'sent') AND expires_at <= ?`,
        now,
      );
    });
  }

  /** Every parcel still held or recently settled, newest first. */
  list(): OutboxEntry[] {
    return this.ctx.db.all<ParcelRow>(
      "SELECT * FROM outgoing_parcels ORDER BY created_at DESC, rowid DESC",
    ).map((row) => ({
      key: row.key,
      parcelId: row.parcel_id,
      recipientId: row.recipient_id,
      kind: row.kind,
      size: row.size,
      state: row.state,
      createdAt: new Date(row.created_at),
      expiresAt: new Date(row.expires_at),
      handedAt: row.handed_at === null ? null : new Date(row.handed_at),
      handedVia: row.handed_via,
    }));
  }
}
