/**
 * The mesh node's parcel store: the parcels it carries (its own and other
 * people's), the keys of parcels known to be delivered (tombstones, kept until
 * the parcel would have expired, so that delivered parcels stop spreading), and
 * the node's persistent libp2p key. One SQLite database, committed before any
 * acknowledgement (RS-000).
 *
 * Retention states of a parcel are explicit: `held` (carried, copies left to
 * give), then `delivered` (a tombstone replaces it) or `expired` (purged).
 *
 * @module
 */
import { SqliteDatabase } from "../bindings/durable.ts";
import { fromHex, toHex } from "../bindings/validation.ts";

const MIGRATIONS = [`
CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);

CREATE TABLE parcels (
  key TEXT PRIMARY KEY,          -- hex SHA-256 of the parcel
  recipient_id TEXT NOT NULL,
  sender_id TEXT NOT NULL,
  size INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,   -- ms since the epoch
  received_at INTEGER NOT NULL,
  origin TEXT NOT NULL CHECK (origin IN ('local', 'relay')),
  copies INTEGER NOT NULL,       -- spray-and-wait: copies this node may still hand out
  from_peer TEXT,
  handed_to TEXT,                -- first peer that acknowledged it (for local parcels)
  handed_to_recipient INTEGER NOT NULL DEFAULT 0,
  bytes BLOB NOT NULL
);
CREATE INDEX parcels_by_recipient ON parcels (recipient_id);
CREATE INDEX parcels_by_expiry ON parcels (expires_at);
CREATE INDEX parcels_by_sender ON parcels (origin, sender_id);

CREATE TABLE delivered (
  key TEXT PRIMARY KEY,
  expires_at INTEGER NOT NULL,
  delivered_at INTEGER NOT NULL,
  local INTEGER NOT NULL DEFAULT 0  -- the parcel was handed in by this node's own host
);
CREATE INDEX delivered_by_expiry ON delivered (expires_at);
`];

/** A parcel the store holds, without its bytes. */
export interface StoredParcel {
  readonly key: string;
  readonly recipientId: string;
  readonly senderId: string;
  readonly size: number;
  readonly expiresAt: Date;
  readonly origin: "local" | "relay";
  readonly copies: number;
}

/** A parcel with its bytes, as stored. */
export type ParcelRecord = StoredParcel & {
  readonly bytes: Uint8Array;
  readonly fromPeer?: string;
};

/** Kind byte of a reconciliation item. */
export const ItemKind = { PARCEL: 0, DELIVERED: 1 } as const;

/** Length of a reconciliation item: kind, 32-byte key, expiry in seconds (uint32). */
export const ITEM_LENGTH = 37;

/** A parcel or a tombstone, as the two sides of a connection compare them. */
export interface Item {
  readonly kind: 0 | 1;
  readonly key: string;
  readonly expiresAt: Date;
}

/** Encodes an item as {@linkcode ITEM_LENGTH} bytes. */
export function encodeItem(item: Item): Uint8Array {
  const bytes = new Uint8Array(ITEM_LENGTH);
  bytes[0] = item.kind;
  bytes.set(fromHex(item.key), 1);
  new DataView(bytes.buffer).setUint32(
    33,
    Math.min(Math.floor(item.expiresAt.getTime() / 1000), 0xffffffff),
  );
  return bytes;
}

/** Decodes an item; throws on an unknown kind. */
export function decodeItem(bytes: Uint8Array): Item {
  if (bytes.length !== ITEM_LENGTH || (bytes[0] !== 0 && bytes[0] !== 1)) {
    throw new RangeError("Not a reconciliation item");
  }
  const seconds = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(33);
  return {
    kind: bytes[0] as 0 | 1,
    key: toHex(bytes.subarray(1, 33)),
    expiresAt: new Date(seconds * 1000),
  };
}

interface ParcelRow {
  key: string;
  recipient_id: string;
  sender_id: string;
  size: number;
  expires_at: number;
  origin: "local" | "relay";
  copies: number;
}

/** The mesh node's durable state. */
export class MeshStore {
  readonly #db: SqliteDatabase;
  /** Octets of relayed parcels, in all and by sender, kept in step with the table. */
  #relayBytes = 0;
  #relayParcels = 0;
  readonly #bySender = new Map<string, { bytes: number; parcels: number }>();
  /** Writes whose loss in a crash is harmless, committed together a moment later. */
  readonly #later: (() => void)[] = [];
  #laterTimer: ReturnType<typeof setTimeout> | undefined;

  private constructor(db: SqliteDatabase, private readonly now: () => Date) {
    this.#db = db;
    this.#countUsage();
  }

  #countUsage(): void {
    this.#bySender.clear();
    this.#relayBytes = 0;
    this.#relayParcels = 0;
    for (
      const row of this.#db.all<{ sender_id: string; bytes: number; parcels: number }>(
        `SELECT sender_id, sum(size) AS bytes, count(*) AS parcels FROM parcels
         WHERE origin = 'relay' GROUP BY sender_id`,
      )
    ) {
      this.#bySender.set(row.sender_id, { bytes: row.bytes, parcels: row.parcels });
      this.#relayBytes += row.bytes;
      this.#relayParcels += row.parcels;
    }
  }

  #count(senderId: string, bytes: number, parcels: number): void {
    const entry = this.#bySender.get(senderId) ?? { bytes: 0, parcels: 0 };
    entry.bytes += bytes;
    entry.parcels += parcels;
    if (entry.parcels <= 0) this.#bySender.delete(senderId);
    else this.#bySender.set(senderId, entry);
    this.#relayBytes += bytes;
    this.#relayParcels += parcels;
  }

  /**
   * Queues a write that may be lost in a crash without harm (a copy count, a
   * tombstone of a parcel the recipient already has): such writes are committed
   * together shortly after, instead of one disk sync each.
   */
  later(write: () => void): void {
    this.#later.push(write);
    this.#laterTimer ??= setTimeout(() => this.flush(), 25);
  }

  /** Commits the queued writes now. */
  flush(): void {
    clearTimeout(this.#laterTimer);
    this.#laterTimer = undefined;
    if (this.#later.length === 0) return;
    const writes = this.#later.splice(0);
    this.#db.transaction(() => {
      for (const write of writes) write();
    });
  }

  /** Opens (creating) the store at `path` (`:memory:` for a throwaway one). */
  static open(path: string, now: () => Date = () => new Date()): MeshStore {
    return new MeshStore(SqliteDatabase.open(path, { migrations: MIGRATIONS }), now);
  }

  /** A value kept in the store's meta table. */
  getMeta(key: string): Uint8Array | undefined {
    return this.#db.get<{ value: Uint8Array }>("SELECT value FROM meta WHERE key = ?", key)?.value;
  }

  /** Sets a value of the meta table. */
  setMeta(key: string, value: Uint8Array): void {
    this.#db.run("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", key, value);
  }

  /**
   * Records that a parcel reached its recipient, like {@linkcode markDelivered},
   * with the next batch of writes ({@linkcode later}); until then
   * {@linkcode knows}, {@linkcode handover} and {@linkcode isLocal} answer as if
   * it were written.
   */
  markDeliveredLater(key: string, expiresAt: Date, local: boolean): void {
    this.#deliveredLater.set(key, local);
    this.later(() => {
      this.markDelivered(key, expiresAt, local);
      this.#deliveredLater.delete(key);
    });
  }
  readonly #deliveredLater = new Map<string, boolean>();

  /** Whether the parcel is held or known delivered. */
  knows(key: string): "held" | "delivered" | null {
    if (this.#deliveredLater.has(key)) return "delivered";
    if (this.#db.get("SELECT 1 FROM parcels WHERE key = ?", key)) return "held";
    if (this.#db.get("SELECT 1 FROM delivered WHERE key = ?", key)) return "delivered";
    return null;
  }

  /** Stores parcels in one transaction; committed when this returns. */
  putMany(parcels: readonly ParcelRecord[]): void {
    this.#db.transaction(() => {
      for (const parcel of parcels) this.put(parcel);
    });
  }

  /** Stores a parcel; committed when this returns. Returns false if it was already held. */
  put(parcel: ParcelRecord): boolean {
    const inserted = this.#db.run(
      `INSERT OR IGNORE INTO parcels
         (key, recipient_id, sender_id, size, expires_at, received_at, origin, copies, from_peer, bytes)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      parcel.key,
      parcel.recipientId,
      parcel.senderId,
      parcel.size,
      parcel.expiresAt.getTime(),
      this.now().getTime(),
      parcel.origin,
      parcel.copies,
      parcel.fromPeer ?? null,
      parcel.bytes,
    ) === 1;
    if (inserted && parcel.origin === "relay") this.#count(parcel.senderId, parcel.size, 1);
    return inserted;
  }

  /** A held parcel's metadata. */
  get(key: string): StoredParcel | undefined {
    const row = this.#db.get<ParcelRow>(
      "SELECT key, recipient_id, sender_id, size, expires_at, origin, copies FROM parcels WHERE key = ?",
      key,
    );
    return row ? toParcel(row) : undefined;
  }

  /** A held parcel's bytes. */
  bytes(key: string): Uint8Array | undefined {
    return this.#db.get<{ bytes: Uint8Array }>("SELECT bytes FROM parcels WHERE key = ?", key)
      ?.bytes;
  }

  /** Every held parcel, oldest first. */
  /** Parcels held for one recipient, oldest first. */
  heldFor(recipientId: string): StoredParcel[] {
    return this.#db.all<ParcelRow>(
      `SELECT key, recipient_id, sender_id, size, expires_at, origin, copies FROM parcels
       WHERE recipient_id = ? ORDER BY received_at, rowid`,
      recipientId,
    ).map(toParcel);
  }

  list(): StoredParcel[] {
    return this.#db.all<ParcelRow>(
      "SELECT key, recipient_id, sender_id, size, expires_at, origin, copies FROM parcels ORDER BY received_at, rowid",
    ).map(toParcel);
  }

  /** Records the first peer that took a parcel (kept for local parcels' senders). */
  recordHandover(key: string, peer: string, toRecipient: boolean): void {
    this.#db.run(
      `UPDATE parcels SET handed_to = coalesce(handed_to, ?),
         handed_to_recipient = max(handed_to_recipient, ?) WHERE key = ?`,
      peer,
      toRecipient ? 1 : 0,
      key,
    );
  }

  /** How a parcel left this node, if it did: still held and handed to a peer, or delivered. */
  handover(key: string): { peer: string | null; toRecipient: boolean } | undefined {
    if (this.#deliveredLater.has(key)) return { peer: null, toRecipient: true };
    const held = this.#db.get<{ handed_to: string | null; handed_to_recipient: number }>(
      "SELECT handed_to, handed_to_recipient FROM parcels WHERE key = ?",
      key,
    );
    if (held) {
      return held.handed_to
        ? { peer: held.handed_to, toRecipient: held.handed_to_recipient === 1 }
        : undefined;
    }
    return this.#db.get("SELECT 1 FROM delivered WHERE key = ?", key)
      ? { peer: null, toRecipient: true }
      : undefined;
  }

  /** Whether this node's own host handed the parcel in (held or delivered). */
  isLocal(key: string): boolean {
    if (this.#deliveredLater.get(key)) return true;
    return this.#db.get("SELECT 1 FROM parcels WHERE key = ? AND origin = 'local'", key) !==
        undefined ||
      this.#db.get("SELECT 1 FROM delivered WHERE key = ? AND local = 1", key) !== undefined;
  }

  /** Sets how many copies this node may still hand out. */
  setCopies(key: string, copies: number): void {
    this.#db.run("UPDATE parcels SET copies = ? WHERE key = ?", copies, key);
  }

  /**
   * Records that a parcel reached its recipient: its bytes go, a tombstone stays
   * until it would have expired. Returns true if that is news.
   */
  markDelivered(key: string, expiresAt: Date, local = false): boolean {
    return this.#db.transaction(() => {
      const gone = this.#db.get<{ sender_id: string; size: number; origin: string }>(
        "DELETE FROM parcels WHERE key = ? RETURNING sender_id, size, origin",
        key,
      );
      const removed = gone ? 1 : 0;
      if (gone?.origin === "relay") this.#count(gone.sender_id, -gone.size, -1);
      const added = this.#db.run(
        "INSERT OR IGNORE INTO delivered (key, expires_at, delivered_at, local) VALUES (?, ?, ?, ?)",
        key,
        expiresAt.getTime(),
        this.now().getTime(),
        local ? 1 : 0,
      );
      return removed + added > 0;
    });
  }

  /** Drops expired parcels and tombstones; returns how many parcels went. */
  purgeExpired(): number {
    const now = this.now().getTime();
    const purged = this.#db.transaction(() => {
      this.#db.run("DELETE FROM delivered WHERE expires_at <= ?", now);
      return this.#db.run("DELETE FROM parcels WHERE expires_at <= ?", now);
    });
    if (purged > 0) this.#countUsage();
    return purged;
  }

  /** Octets of relayed parcels held, in all and from one sender. */
  usage(senderId?: string): { bytes: number; parcels: number } {
    if (senderId === undefined) return { bytes: this.#relayBytes, parcels: this.#relayParcels };
    const entry = this.#bySender.get(senderId);
    return { bytes: entry?.bytes ?? 0, parcels: entry?.parcels ?? 0 };
  }

  /** Every parcel and tombstone, as reconciliation items. */
  items(): Item[] {
    const now = this.now().getTime();
    const parcels = this.#db.all<{ key: string; expires_at: number }>(
      "SELECT key, expires_at FROM parcels WHERE expires_at > ?",
      now,
    );
    const delivered = this.#db.all<{ key: string; expires_at: number }>(
      "SELECT key, expires_at FROM delivered WHERE expires_at > ?",
      now,
    );
    return [
      ...parcels.map((r) => ({
        kind: ItemKind.PARCEL,
        key: r.key,
        expiresAt: new Date(r.expires_at),
      })),
      ...delivered.map((r) => ({
        kind: ItemKind.DELIVERED,
        key: r.key,
        expiresAt: new Date(r.expires_at),
      })),
    ];
  }

  /** Commits what is queued and closes the database. */
  close(): void {
    this.flush();
    this.#db.close();
  }
}

function toParcel(row: ParcelRow): StoredParcel {
  return {
    key: row.key,
    recipientId: row.recipient_id,
    senderId: row.sender_id,
    size: row.size,
    expiresAt: new Date(row.expires_at),
    origin: row.origin,
    copies: row.copies,
  };
}
