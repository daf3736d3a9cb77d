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
 * The schema is in `store_schema.ts`, tombstones in `store_tombstones.ts`, the
 * storage shares relayed parcels count against in `store_shares.ts`, and the
 * reconciliation items the store lists in `sync_item.ts`; this module
 * re-exports what callers use of them.
 *
 * @module
 */
import { SqliteDatabase } from "../bindings/durable.ts";
import { PostStore } from "./post_store.ts";
import { MIGRATIONS } from "./store_schema.ts";
import { type ShareKey, ShareLedger, type ShareRow } from "./store_shares.ts";
import { Tombstones } from "./store_tombstones.ts";
import { type Item, ItemKind } from "./sync_item.ts";

export { type ShareKey, shareKeys } from "./store_shares.ts";
export type { TombstoneState } from "./store_tombstones.ts";
export { decodeItem, encodeItem, type Item, ITEM_LENGTH, ItemKind } from "./sync_item.ts";

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
  readonly #tombstones: Tombstones;
  /** The broadcast posts held and the channels followed (post_store.ts). */
  readonly posts: PostStore;
  /** Octets of relayed parcels, in all and by share key, kept in step with the table. */
  readonly #usage = new ShareLedger();
  /** Writes whose loss in a crash is harmless, committed together a moment later. */
  readonly #later: (() => void)[] = [];
  #laterTimer: ReturnType<typeof setTimeout> | undefined;

  private constructor(db: SqliteDatabase, private readonly now: () => Date) {
    this.#db = db;
    this.#tombstones = new Tombstones(db, now);
    this.posts = new PostStore(db, now);
    this.#countUsage();
  }

  #countUsage(): void {
    this.#usage.reset(
      this.#db.all<ShareRow>(
        `SELECT sender_id, recipient_id, from_peer, from_host, known_recipient, size
         FROM parcels WHERE origin = 'relay'`,
      ),
    );
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
    return this.#tombstones.has(key) ? "delivered" : null;
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
    return this.#tombstones.hasId(senderId, parcelId) ? "delivered" : null;
  }

  /** The delivery proof of a delivered parcel, when this node has one it checked. */
  proofOf(key: string): Uint8Array | undefined {
    const later = this.#deliveredLater.get(key);
    if (later) return later.proof;
    return this.#tombstones.provenProof(key);
  }

  /** A peer's proof for a parcel never held here, kept to check if the parcel comes. */
  unverifiedProof(key: string): Uint8Array | undefined {
    return this.#tombstones.unverifiedProof(key);
  }

  /** Forgets an unverified tombstone (its proof turned out false). */
  dropUnverified(key: string): void {
    this.#tombstones.dropUnverified(key);
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
    return this.#tombstones.addUnverified(tombstones, from, limits);
  }

  /** Tombstones with their proofs, for the keys asked (those without a proof are left out). */
  proofs(keys: readonly string[]): { key: string; expiresAt: Date; proof: Uint8Array }[] {
    return this.#tombstones.proofs(keys);
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
      this.#usage.count({
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
    return this.#tombstones.exists(key) ? { peer: null, toRecipient: true } : undefined;
  }

  /** Whether this node's own host handed the parcel in (held or delivered). */
  isLocal(key: string): boolean {
    if (this.#deliveredLater.get(key)?.local) return true;
    return this.#db.get("SELECT 1 FROM parcels WHERE key = ? AND origin = 'local'", key) !==
        undefined || this.#tombstones.isLocal(key);
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
      if (gone?.origin === "relay") this.#usage.count(gone, -1);
      const added = this.#tombstones.record(key, expiresAt, {
        local,
        proof,
        senderId: gone?.sender_id ?? null,
        parcelId: gone?.parcel_id ?? null,
      });
      return removed + added > 0;
    });
  }

  /** Drops expired parcels, posts and tombstones; returns how many parcels and posts went. */
  purgeExpired(): number {
    const now = this.now().getTime();
    let posts = 0;
    const purged = this.#db.transaction(() => {
      this.#tombstones.purge(now);
      posts = this.posts.purge(now);
      return this.#db.run("DELETE FROM parcels WHERE expires_at <= ?", now);
    });
    if (purged === 0) return posts;
    this.#countUsage();
    return purged + posts;
  }

  /** Octets of relayed parcels held, in all and from one sender. */
  usage(senderId?: string): { bytes: number; parcels: number } {
    if (senderId === undefined) return this.#usage.total();
    return this.share(`sender:${senderId}`);
  }

  /** Octets and parcels of relayed parcels counted against one share key. */
  share(key: ShareKey): { bytes: number; parcels: number } {
    return this.#usage.share(key);
  }

  /**
   * The parcels, posts and tombstones with proofs, as reconciliation items: at
   * most `limit` (parcels first, then the posts of channels `wantedPosts` names,
   * then checked proofs, then the newest unverified), so that the list always
   * fits a sync frame however much was pushed at this node.
   */
  items(
    limit = Number.MAX_SAFE_INTEGER,
    wantedPosts: (channelId: string) => boolean = () => false,
  ): Item[] {
    const now = this.now().getTime();
    const parcels = this.#db.all<{ key: string; expires_at: number }>(
      "SELECT key, expires_at FROM parcels WHERE expires_at > ? ORDER BY received_at DESC LIMIT ?",
      now,
      limit,
    );
    const posts = this.posts.items(wantedPosts, limit - parcels.length);
    const left = Math.max(0, limit - parcels.length - posts.length);
    return [
      ...parcels.map((r): Item => ({
        kind: ItemKind.PARCEL,
        key: r.key,
        expiresAt: new Date(r.expires_at),
      })),
      ...posts,
      ...this.#tombstones.items(now, left),
    ];
  }

  /** At least as many items as {@linkcode items} lists, whatever posts it is asked for. */
  itemCount(limit = Number.MAX_SAFE_INTEGER): number {
    const now = this.now().getTime();
    const parcels = this.#db.get<{ n: number }>(
      "SELECT count(*) AS n FROM parcels WHERE expires_at > ?",
      now,
    )?.n ?? 0;
    return Math.min(limit, parcels + this.posts.count() + this.#tombstones.count(now));
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
