/**
 * Tombstones: the `delivered` table of the mesh store (mesh/store.ts), which
 * remembers the keys of parcels known to be delivered until they would have
 * expired, so that delivered parcels stop spreading.
 *
 * A tombstone is in one of three states ({@linkcode TombstoneState}); only a
 * recipient's signature makes one worth spreading, and a peer's proof for a
 * parcel never held here is kept within bounds until the parcel comes.
 *
 * @module
 */
import type { SqliteDatabase } from "../bindings/durable.ts";
import { type Item, ItemKind } from "./sync_item.ts";

/**
 * State of a tombstone: `proven`, its proof was checked against the parcel's
 * recipient; `unverified`, a peer's proof for a parcel never held here (bounded,
 * checked if the parcel comes); `local`, this node's own knowledge, with no proof
 * (a gateway, a PoWeb endpoint).
 */
export type TombstoneState = "proven" | "unverified" | "local";

/** A tombstone with its delivery proof, as peers exchange them. */
export interface ProvenTombstoneRecord {
  /** Hex SHA-256 of the parcel. */
  readonly key: string;
  /** When the parcel would have expired: the tombstone goes then. */
  readonly expiresAt: Date;
  /** The recipient's delivery proof (mesh/proofs.ts). */
  readonly proof: Uint8Array;
}

/** Bounds on the unverified tombstones {@linkcode Tombstones.addUnverified} keeps. */
export interface UnverifiedLimits {
  /** Most kept from one peer. */
  readonly perPeer: number;
  /** Most kept from one remote host. */
  readonly perHost: number;
  /** Most kept in all; the oldest make room for new ones. */
  readonly total: number;
}

/** What {@linkcode Tombstones.record} writes besides the key and expiry. */
export interface TombstoneFacts {
  /** The parcel was handed in by this node's own host. */
  readonly local: boolean;
  /** The recipient's delivery proof, checked here: the tombstone is then `proven`. */
  readonly proof?: Uint8Array;
  /** The parcel's sender, when it was held here. */
  readonly senderId: string | null;
  /** The parcel's id, when it was held here. */
  readonly parcelId: string | null;
}

/**
 * The `delivered` table, on a database the store owns: every statement runs in
 * whatever transaction the store has open.
 */
export class Tombstones {
  readonly #db: SqliteDatabase;

  /** Uses the store's database and clock. */
  constructor(db: SqliteDatabase, private readonly now: () => Date) {
    this.#db = db;
  }

  /** Whether a tombstone of the key counts (proven or local: not a peer's unverified proof). */
  has(key: string): boolean {
    return this.#db.get("SELECT 1 FROM delivered WHERE key = ? AND state <> 'unverified'", key) !==
      undefined;
  }

  /** Whether a tombstone of this sender's parcel id counts (proven or local). */
  hasId(senderId: string, parcelId: string): boolean {
    return this.#db.get(
      "SELECT 1 FROM delivered WHERE sender_id = ? AND parcel_id = ? AND state <> 'unverified'",
      senderId,
      parcelId,
    ) !== undefined;
  }

  /** Whether there is a tombstone of the key, in any state. */
  exists(key: string): boolean {
    return this.#db.get("SELECT 1 FROM delivered WHERE key = ?", key) !== undefined;
  }

  /** Whether the key's tombstone says this node's own host handed the parcel in. */
  isLocal(key: string): boolean {
    return this.#db.get("SELECT 1 FROM delivered WHERE key = ? AND local = 1", key) !== undefined;
  }

  /** The proof of a `proven` tombstone. */
  provenProof(key: string): Uint8Array | undefined {
    return this.#db.get<{ proof: Uint8Array }>(
      "SELECT proof FROM delivered WHERE key = ? AND state = 'proven'",
      key,
    )?.proof ?? undefined;
  }

  /** The proof of an `unverified` tombstone. */
  unverifiedProof(key: string): Uint8Array | undefined {
    return this.#db.get<{ proof: Uint8Array }>(
      "SELECT proof FROM delivered WHERE key = ? AND state = 'unverified'",
      key,
    )?.proof;
  }

  /** Forgets an unverified tombstone. */
  dropUnverified(key: string): void {
    this.#db.run("DELETE FROM delivered WHERE key = ? AND state = 'unverified'", key);
  }

  /**
   * Keeps peers' proofs for parcels never held here, within `limits` (the oldest
   * others make room for new ones when the total is reached), in one
   * transaction. Returns how many were kept.
   */
  addUnverified(
    tombstones: readonly ProvenTombstoneRecord[],
    from: { peer: string; host: string },
    limits: UnverifiedLimits,
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

  /**
   * Writes a tombstone, `proven` with a proof and `local` without. A proof
   * replaces what was there without one (a local or unverified tombstone);
   * otherwise an existing tombstone stays as it was. Returns the rows changed
   * (0 or 1).
   */
  record(key: string, expiresAt: Date, facts: TombstoneFacts): number {
    return this.#db.run(
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
      facts.local ? 1 : 0,
      facts.proof ? "proven" : "local",
      facts.proof ?? null,
      facts.senderId,
      facts.parcelId,
    );
  }

  /** Drops the tombstones of parcels that would have expired by `now` (ms since the epoch). */
  purge(now: number): void {
    this.#db.run("DELETE FROM delivered WHERE expires_at <= ?", now);
  }

  /** Unexpired tombstones with proofs: how many {@linkcode items} lists at most. */
  count(now: number): number {
    return this.#db.get<{ n: number }>(
      "SELECT count(*) AS n FROM delivered WHERE expires_at > ? AND proof IS NOT NULL",
      now,
    )?.n ?? 0;
  }

  /**
   * Unexpired tombstones with proofs as reconciliation items, at most `limit`:
   * proven ones first, then the newest unverified.
   */
  items(now: number, limit: number): Item[] {
    return this.#db.all<{ key: string; expires_at: number }>(
      `SELECT key, expires_at FROM delivered WHERE expires_at > ? AND proof IS NOT NULL
       ORDER BY state = 'proven' DESC, delivered_at DESC LIMIT ?`,
      now,
      limit,
    ).map((r) => ({ kind: ItemKind.DELIVERED, key: r.key, expiresAt: new Date(r.expires_at) }));
  }
}
