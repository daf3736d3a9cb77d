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

const MIGRATIONS = [
  `
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
`,
  `
-- Protocol 2: only a recipient's signature makes a tombstone worth spreading.
-- proven: its proof was checked against the parcel's recipient; unverified: a
-- peer's proof for a parcel never held here (bounded, checked if the parcel comes);
-- local: this node's own knowledge, with no proof (a gateway, a PoWeb endpoint).
ALTER TABLE delivered ADD COLUMN state TEXT NOT NULL DEFAULT 'local'
  CHECK (state IN ('proven', 'unverified', 'local'));
ALTER TABLE delivered ADD COLUMN proof BLOB;
ALTER TABLE delivered ADD COLUMN from_peer TEXT;
ALTER TABLE delivered ADD COLUMN from_host TEXT;
CREATE INDEX delivered_unverified ON delivered (state, from_peer);
ALTER TABLE parcels ADD COLUMN from_host TEXT;
ALTER TABLE parcels ADD COLUMN known_recipient INTEGER NOT NULL DEFAULT 1;
-- Recipients known to be real: hosted here, or seen in a verified proof or claim.
CREATE TABLE known_recipients (id TEXT PRIMARY KEY, until INTEGER NOT NULL);
`,
  `
-- A parcel is (sender, parcel id), whatever its octets: one signed parcel can be
-- re-encoded (BER) into other octets under the same signature.
ALTER TABLE parcels ADD COLUMN parcel_id TEXT;
CREATE INDEX parcels_by_id ON parcels (sender_id, parcel_id);
ALTER TABLE delivered ADD COLUMN sender_id TEXT;
ALTER TABLE delivered ADD COLUMN parcel_id TEXT;
CREATE INDEX delivered_by_id ON delivered (sender_id, parcel_id);
`,
  `
-- Making room for a peer's unverifiable proofs evicts the oldest: without this
-- index each eviction sorted every unverified tombstone.
CREATE INDEX delivered_unverified_by_age ON delivered (state, delivered_at);
`,
];

/** How much of a store a class of parcels may fill, counted by these keys. */
export type ShareKey =
  | `sender:${string}`
  | `recipient:${string}`
  | `peer:${string}`
  | `host:${string}`
  | "unknown";

/** State of a tombstone (see the migration above). */
export type TombstoneState = "proven" | "unverified" | "local";

/** A parcel the store holds, without its bytes. */
export interface StoredParcel {
  /** Hex SHA-256 of its bytes. */
  readonly key: string;
  /** Id of the endpoint it is addressed to. */
  readonly recipientId: string;
  /** Id of its sender's key (an endpoint id, or an invitation key's id). */
  readonly senderId: string;
  /** Size of the serialised parcel, in octets. */
  readonly size: number;
  /** When it expires, and is purged. */
  readonly expiresAt: Date;
  /** `local`: handed in by this node's own host; `relay`: by a peer (counted against the quota). */
  readonly origin: "local" | "relay";
  /** Copies this node may still hand out (spray-and-wait, routing.ts). */
  readonly copies: number;
}

/** A parcel with its bytes, as stored. */
export type ParcelRecord = StoredParcel & {
  /** The serialised parcel. */
  readonly bytes: Uint8Array;
  /** Peer id of the peer that delivered it. */
  readonly fromPeer?: string;
  /** Remote host (IP address) of the peer that delivered it. */
  readonly fromHost?: string;
  /** Whether its recipient was known to be real when it was stored (default true). */
  readonly knownRecipient?: boolean;
  /** The parcel's id (RAMF), which with its sender names it whatever its encoding. */
  readonly parcelId?: string;
};

/** The share keys a relayed parcel counts against. */
export function shareKeys(parcel: {
  senderId: string;
  recipientId: string;
  fromPeer?: string | null;
  fromHost?: string | null;
  knownRecipient?: boolean;
}): ShareKey[] {
  const keys: ShareKey[] = [`sender:${parcel.senderId}`, `recipient:${parcel.recipientId}`];
  if (parcel.fromPeer) keys.push(`peer:${parcel.fromPeer}`);
  if (parcel.fromHost) keys.push(`host:${parcel.fromHost}`);
  if (parcel.knownRecipient === false) keys.push("unknown");
  return keys;
}

/** Kind byte of a reconciliation item. */
export const ItemKind = { PARCEL: 0, DELIVERED: 1 } as const;

/** Length of a reconciliation item: kind, 32-byte key, expiry in seconds (uint32). */
export const ITEM_LENGTH = 37;

/** A parcel or a tombstone, as the two sides of a connection compare them. */
export interface Item {
  /** What it is, by {@linkcode ItemKind}: 0 a parcel, 1 a tombstone. */
  readonly kind: 0 | 1;
  /** Hex SHA-256 of the parcel. */
  readonly key: string;
  /** When the parcel expires (or would have), to the second. */
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

interface ShareRow {
  sender_id: string;
  recipient_id: string;
  from_peer: string | null;
  from_host: string | null;
  known_recipient: number;
  size: number;
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
  /** Octets of relayed parcels, in all and by share key, kept in step with the table. */
  #relayBytes = 0;
  #relayParcels = 0;
  readonly #shares = new Map<ShareKey, { bytes: number; parcels: number }>();
  /** Writes whose loss in a crash is harmless, committed together a moment later. */
  readonly #later: (() => void)[] = [];
  #laterTimer: ReturnType<typeof setTimeout> | undefined;

  private constructor(db: SqliteDatabase, private readonly now: () => Date) {
    this.#db = db;
    this.#countUsage();
  }

  #countUsage(): void {
    this.#shares.clear();
    this.#relayBytes = 0;
    this.#relayParcels = 0;
    for (
      const row of this.#db.all<ShareRow>(
        `SELECT sender_id, recipient_id, from_peer, from_host, known_recipient, size
         FROM parcels WHERE origin = 'relay'`,
      )
    ) {
      this.#count(row, 1);
    }
  }

  #count(row: ShareRow, sign: 1 | -1): void {
    const keys = shareKeys({
      senderId: row.sender_id,
      recipientId: row.recipient_id,
      fromPeer: row.from_peer,
      fromHost: row.from_host,
      knownRecipient: row.known_recipient !== 0,
    });
    for (const key of keys) {
      const entry = this.#shares.get(key) ?? { bytes: 0, parcels: 0 };
      entry.bytes += sign * row.size;
      entry.parcels += sign;
      if (entry.parcels <= 0) this.#shares.delete(key);
      else this.#shares.set(key, entry);
    }
    this.#relayBytes += sign * row.size;
    this.#relayParcels += sign;
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
    try {
      this.#write(() => {
        for (const write of writes) write();
      });
    } catch {
      // A full disk, say: these writes were harmless to lose, and now are lost.
      // What the store answered for them in the meantime goes with them.
      this.#deliveredLater.clear();
    }
  }

  /**
   * Runs `fn` in a transaction; if it fails (a full disk), the usage counters,
   * which `fn` may have moved, are counted again from what was committed.
   */
  #write<T>(fn: () => T): T {
    try {
      return this.#db.transaction(fn);
    } catch (error) {
      this.#countUsage();
      throw error;
    }
  }

  /** Opens (creating) the store at `path` (`:memory:` for a throwaway one). */
  static open(path: string, now: () => Date = () => new Date()): MeshStore {
    return new MeshStore(SqliteDatabase.open(path, { migrations: MIGRATIONS }), now);
  }

  /** A value kept in the store's meta table. */
  getMeta(key: string): Uint8Array | undefined {
    return this.#db.get<{ value: Uint8Array }>("SELECT value FROM meta WHERE key = ?", key)?.value;
  }

  /** Removes a value of the meta table. */
  deleteMeta(key: string): void {
    this.#db.run("DELETE FROM meta WHERE key = ?", key);
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
  markDeliveredLater(key: string, expiresAt: Date, local: boolean, proof?: Uint8Array): void {
    this.#deliveredLater.set(key, { local, proof });
    this.later(() => {
      this.markDelivered(key, expiresAt, local, proof);
      this.#deliveredLater.delete(key);
    });
  }
  readonly #deliveredLater = new Map<string, { local: boolean; proof?: Uint8Array }>();

  /**
   * Whether the parcel is held or known delivered (by a proof checked here, or by
   * this node's own knowledge). A peer's unverified proof does not count: see
   * {@linkcode unverifiedProof}.
   */
  knows(key: string): "held" | "delivered" | null {
    if (this.#deliveredLater.has(key)) return "delivered";
    if (this.#db.get("SELECT 1 FROM parcels WHERE key = ?", key)) return "held";
    if (this.#db.get("SELECT 1 FROM delivered WHERE key = ? AND state <> 'unverified'", key)) {
      return "delivered";
    }
    return null;
  }

  /**
   * Whether a parcel with this sender and id (another encoding of it, say) is
   * held or known delivered here.
   */
  knowsId(senderId: string, parcelId: string): "held" | "delivered" | null {
    if (
      this.#db.get(
        "SELECT 1 FROM parcels WHERE sender_id = ? AND parcel_id = ?",
        senderId,
        parcelId,
      )
    ) {
      return "held";
    }
    return this.#db.get(
        "SELECT 1 FROM delivered WHERE sender_id = ? AND parcel_id = ? AND state <> 'unverified'",
        senderId,
        parcelId,
      )
      ? "delivered"
      : null;
  }

  /** The delivery proof of a delivered parcel, when this node has one it checked. */
  proofOf(key: string): Uint8Array | undefined {
    const later = this.#deliveredLater.get(key);
    if (later) return later.proof;
    return this.#db.get<{ proof: Uint8Array }>(
      "SELECT proof FROM delivered WHERE key = ? AND state = 'proven'",
      key,
    )?.proof ?? undefined;
  }

  /** A peer's proof for a parcel never held here, kept to check if the parcel comes. */
  unverifiedProof(key: string): Uint8Array | undefined {
    return this.#db.get<{ proof: Uint8Array }>(
      "SELECT proof FROM delivered WHERE key = ? AND state = 'unverified'",
      key,
    )?.proof;
  }

  /** Forgets an unverified tombstone (its proof turned out false). */
  dropUnverified(key: string): void {
    this.#db.run("DELETE FROM delivered WHERE key = ? AND state = 'unverified'", key);
  }

  /**
   * Keeps peers' proofs for parcels never held here, within bounds: at most
   * `perPeer` from one peer, `perHost` from one remote host and `total` in all
   * (the oldest others make room). Returns how many were kept.
   */
  addUnverified(
    tombstones: readonly { key: string; expiresAt: Date; proof: Uint8Array }[],
    from: { peer: string; host: string },
    limits: { perPeer: number; perHost: number; total: number },
  ): number {
    if (tombstones.length === 0) return 0;
    return this.#db.transaction(() => {
      const count = (sql: string, ...args: string[]) =>
        this.#db.get<{ n: number }>(sql, ...args)!.n;
      let peerRoom = limits.perPeer -
        count(
          "SELECT count(*) AS n FROM delivered WHERE state = 'unverified' AND from_peer = ?",
          from.peer,
        );
      let hostRoom = limits.perHost -
        count(
          "SELECT count(*) AS n FROM delivered WHERE state = 'unverified' AND from_host = ?",
          from.host,
        );
      let total = count("SELECT count(*) AS n FROM delivered WHERE state = 'unverified'");
      let kept = 0;
      const now = this.now().getTime();
      for (const t of tombstones) {
        if (peerRoom <= 0 || hostRoom <= 0) break;
        if (total >= limits.total) {
          this.#db.run(
            `DELETE FROM delivered WHERE rowid =
               (SELECT rowid FROM delivered WHERE state = 'unverified' ORDER BY delivered_at LIMIT 1)`,
          );
          total--;
        }
        const added = this.#db.run(
          `INSERT OR IGNORE INTO delivered (key, expires_at, delivered_at, local, state, proof, from_peer, from_host)
           VALUES (?, ?, ?, 0, 'unverified', ?, ?, ?)`,
          t.key,
          t.expiresAt.getTime(),
          now,
          t.proof,
          from.peer,
          from.host,
        );
        if (added === 0) continue;
        kept++;
        peerRoom--;
        hostRoom--;
        total++;
      }
      return kept;
    });
  }

  /** Tombstones with their proofs, for the keys asked (those without a proof are left out). */
  proofs(keys: readonly string[]): { key: string; expiresAt: Date; proof: Uint8Array }[] {
    const out = [];
    for (const key of keys) {
      const row = this.#db.get<{ expires_at: number; proof: Uint8Array }>(
        "SELECT expires_at, proof FROM delivered WHERE key = ? AND proof IS NOT NULL",
        key,
      );
      if (row) out.push({ key, expiresAt: new Date(row.expires_at), proof: row.proof });
    }
    return out;
  }

  /** Whether `recipientId` is known to be real (hosted here, or in a verified proof or claim). */
  isKnownRecipient(recipientId: string): boolean {
    return this.#knownRecipients.has(recipientId) ||
      this.#db.get(
          "SELECT 1 FROM known_recipients WHERE id = ? AND until > ?",
          recipientId,
          this.now().getTime(),
        ) !== undefined;
  }

  /** Notes that `recipientId` is real, until `until`; written with the next batch. */
  noteKnownRecipient(recipientId: string, until: Date): void {
    if (this.#knownRecipients.has(recipientId)) return;
    this.#knownRecipients.add(recipientId);
    this.later(() =>
      this.#db.run(
        `INSERT INTO known_recipients (id, until) VALUES (?, ?)
         ON CONFLICT (id) DO UPDATE SET until = max(until, excluded.until)`,
        recipientId,
        until.getTime(),
      )
    );
  }
  readonly #knownRecipients = new Set<string>();

  /** Stores parcels in one transaction; committed when this returns. */
  putMany(parcels: readonly ParcelRecord[]): void {
    this.#write(() => {
      for (const parcel of parcels) this.put(parcel);
    });
  }

  /** Stores a parcel; committed when this returns. Returns false if it was already held. */
  put(parcel: ParcelRecord): boolean {
    const inserted = this.#db.run(
      `INSERT OR IGNORE INTO parcels
         (key, recipient_id, sender_id, size, expires_at, received_at, origin, copies, from_peer,
          from_host, known_recipient, parcel_id, bytes)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      parcel.key,
      parcel.recipientId,
      parcel.senderId,
      parcel.size,
      parcel.expiresAt.getTime(),
      this.now().getTime(),
      parcel.origin,
      parcel.copies,
      parcel.fromPeer ?? null,
      parcel.fromHost ?? null,
      parcel.knownRecipient === false ? 0 : 1,
      parcel.parcelId ?? null,
      parcel.bytes,
    ) === 1;
    if (inserted && parcel.origin === "relay") {
      this.#count({
        sender_id: parcel.senderId,
        recipient_id: parcel.recipientId,
        from_peer: parcel.fromPeer ?? null,
        from_host: parcel.fromHost ?? null,
        known_recipient: parcel.knownRecipient === false ? 0 : 1,
        size: parcel.size,
      }, 1);
    }
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

  /** Parcels held for one recipient, oldest first. */
  heldFor(recipientId: string): StoredParcel[] {
    return this.#db.all<ParcelRow>(
      `SELECT key, recipient_id, sender_id, size, expires_at, origin, copies FROM parcels
       WHERE recipient_id = ? ORDER BY received_at, rowid`,
      recipientId,
    ).map(toParcel);
  }

  /** Every held parcel, oldest first. */
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
    if (this.#deliveredLater.get(key)?.local) return true;
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
  markDelivered(key: string, expiresAt: Date, local = false, proof?: Uint8Array): boolean {
    return this.#write(() => {
      const gone = this.#db.get<ShareRow & { origin: string; parcel_id: string | null }>(
        `DELETE FROM parcels WHERE key = ?
         RETURNING sender_id, recipient_id, from_peer, from_host, known_recipient, size, origin,
           parcel_id`,
        key,
      );
      const removed = gone ? 1 : 0;
      if (gone?.origin === "relay") this.#count(gone, -1);
      // A proof replaces what was there without one (a local or unverified tombstone).
      const added = this.#db.run(
        `INSERT INTO delivered
           (key, expires_at, delivered_at, local, state, proof, sender_id, parcel_id)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (key) DO UPDATE SET state = excluded.state, proof = excluded.proof,
           local = max(local, excluded.local), from_peer = NULL, from_host = NULL,
           sender_id = coalesce(excluded.sender_id, sender_id),
           parcel_id = coalesce(excluded.parcel_id, parcel_id)
         WHERE excluded.state = 'proven' AND delivered.state <> 'proven'`,
        key,
        expiresAt.getTime(),
        this.now().getTime(),
        local ? 1 : 0,
        proof ? "proven" : "local",
        proof ?? null,
        gone?.sender_id ?? null,
        gone?.parcel_id ?? null,
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
    return this.share(`sender:${senderId}`);
  }

  /** Octets and parcels of relayed parcels counted against one share key. */
  share(key: ShareKey): { bytes: number; parcels: number } {
    const entry = this.#shares.get(key);
    return { bytes: entry?.bytes ?? 0, parcels: entry?.parcels ?? 0 };
  }

  /**
   * The parcels and tombstones with proofs, as reconciliation items: at most
   * `limit` (parcels first, then checked proofs, then the newest unverified), so
   * that the list always fits a sync frame however much was pushed at this node.
   */
  items(limit = Number.MAX_SAFE_INTEGER): Item[] {
    const now = this.now().getTime();
    const parcels = this.#db.all<{ key: string; expires_at: number }>(
      "SELECT key, expires_at FROM parcels WHERE expires_at > ? ORDER BY received_at DESC LIMIT ?",
      now,
      limit,
    );
    const delivered = this.#db.all<{ key: string; expires_at: number }>(
      `SELECT key, expires_at FROM delivered WHERE expires_at > ? AND proof IS NOT NULL
       ORDER BY state = 'proven' DESC, delivered_at DESC LIMIT ?`,
      now,
      Math.max(0, limit - parcels.length),
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
