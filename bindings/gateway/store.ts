/**
 * What a PoWeb server keeps: the private nodes it registered, and the parcels
 * waiting for them to collect. Committed before any acknowledgement.
 *
 * @module
 */
import { SqliteDatabase } from "../durable.ts";

const MIGRATIONS = [`
CREATE TABLE registrations (
  node_id TEXT PRIMARY KEY,
  certificate BLOB NOT NULL,     -- DER, issued by this gateway
  expires_at INTEGER NOT NULL,
  registered_at INTEGER NOT NULL
);

CREATE TABLE queue (
  delivery_id TEXT PRIMARY KEY,
  recipient_id TEXT NOT NULL,
  parcel_key TEXT NOT NULL,
  bytes BLOB NOT NULL,
  expires_at INTEGER NOT NULL,
  queued_at INTEGER NOT NULL,
  UNIQUE (recipient_id, parcel_key)
);
CREATE INDEX queue_by_recipient ON queue (recipient_id, queued_at);
`];

/** A parcel waiting for collection. */
export interface QueuedParcel {
  /** Id of this delivery, by which the collector acknowledges it. */
  readonly deliveryId: string;
  /** Id of the registered node it is for. */
  readonly recipientId: string;
  /** The serialised parcel. */
  readonly bytes: Uint8Array;
}

/** Registrations and the collection queue of a PoWeb server. */
export class GatewayStore {
  readonly #db: SqliteDatabase;

  private constructor(db: SqliteDatabase, private readonly now: () => Date) {
    this.#db = db;
  }

  /** Opens (creating) the store at `path` (`:memory:` for a throwaway one). */
  static open(path: string, now: () => Date = () => new Date()): GatewayStore {
    return new GatewayStore(SqliteDatabase.open(path, { migrations: MIGRATIONS }), now);
  }

  /** Records (or renews) a private node's registration. */
  register(nodeId: string, certificate: Uint8Array, expiresAt: Date): void {
    this.#db.run(
      `INSERT INTO registrations (node_id, certificate, expires_at, registered_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (node_id) DO UPDATE SET certificate = excluded.certificate,
         expires_at = excluded.expires_at, registered_at = excluded.registered_at`,
      nodeId,
      certificate,
      expiresAt.getTime(),
      this.now().getTime(),
    );
  }

  /** Whether a node is registered (and its certificate still valid). */
  isRegistered(nodeId: string): boolean {
    return this.#db.get(
      "SELECT 1 FROM registrations WHERE node_id = ? AND expires_at > ?",
      nodeId,
      this.now().getTime(),
    ) !== undefined;
  }

  /** Ids of every node with a valid registration. */
  registeredNodes(): string[] {
    return this.#db.all<{ node_id: string }>(
      "SELECT node_id FROM registrations WHERE expires_at > ?",
      this.now().getTime(),
    ).map((r) => r.node_id);
  }

  /** Queues a parcel for a registered node; false if it was already queued. */
  enqueue(recipientId: string, parcelKey: string, bytes: Uint8Array, expiresAt: Date): boolean {
    return this.#db.run(
      `INSERT OR IGNORE INTO queue (delivery_id, recipient_id, parcel_key, bytes, expires_at, queued_at)
       VALUES (?, ?, ?, ?, ?, ?)`,
      crypto.randomUUID(),
      recipientId,
      parcelKey,
      bytes,
      expiresAt.getTime(),
      this.now().getTime(),
    ) === 1;
  }

  /**
   * Parcels waiting for these nodes (node by node, oldest first), except the
   * deliveries in `skip`; at most `limit` of them, so that a collection reads only
   * the parcels it is about to send.
   */
  waiting(
    recipientIds: readonly string[],
    skip: ReadonlySet<string>,
    limit = Infinity,
  ): QueuedParcel[] {
    const now = this.now().getTime();
    const found: QueuedParcel[] = [];
    for (const id of recipientIds) {
      if (found.length >= limit) break;
      const rows = this.#db.all<{ delivery_id: string; recipient_id: string; bytes: Uint8Array }>(
        `SELECT delivery_id, recipient_id, bytes FROM queue WHERE recipient_id = ? AND expires_at > ?
         ORDER BY queued_at LIMIT ?`,
        id,
        now,
        // Skipped rows may come first: ask for enough to make up for them (-1: no limit).
        Number.isFinite(limit) ? limit - found.length + skip.size : -1,
      );
      for (const row of rows) {
        if (skip.has(row.delivery_id) || found.length >= limit) continue;
        found.push({
          deliveryId: row.delivery_id,
          recipientId: row.recipient_id,
          bytes: row.bytes,
        });
      }
    }
    return found;
  }

  /** Deletes a collected parcel; false if the delivery id is unknown. */
  acknowledge(deliveryId: string): boolean {
    return this.#db.run("DELETE FROM queue WHERE delivery_id = ?", deliveryId) === 1;
  }

  /** Drops expired parcels and registrations. */
  purgeExpired(): void {
    const now = this.now().getTime();
    this.#db.run("DELETE FROM queue WHERE expires_at <= ?", now);
    this.#db.run("DELETE FROM registrations WHERE expires_at <= ?", now);
  }

  /** How many parcels wait, for all nodes. */
  queued(): number {
    return this.#db.get<{ n: number }>("SELECT count(*) AS n FROM queue")!.n;
  }

  /** Closes the database; later calls fail. */
  close(): void {
    this.#db.close();
  }
}
