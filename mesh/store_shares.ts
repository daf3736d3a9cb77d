/**
 * Storage shares of the mesh store: which classes of parcels a relayed parcel
 * counts against (its sender, its recipient, the peer and the host that brought
 * it, and recipients nobody vouched for), and the running totals of each, which
 * the quota (mesh/quota.ts) reads on every parcel offered. Parcels this node's
 * own host handed in count against nothing.
 *
 * @module
 */

/** How much of a store a class of parcels may fill, counted by these keys. */
export type ShareKey =
  | `sender:${string}`
  | `recipient:${string}`
  | `peer:${string}`
  | `host:${string}`
  | "unknown";

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

/** The columns of a row of the `parcels` table that say what a parcel counts against. */
export interface ShareRow {
  sender_id: string;
  recipient_id: string;
  from_peer: string | null;
  from_host: string | null;
  known_recipient: number;
  size: number;
}

/** Octets and parcels counted against one key, or in all. */
export interface ShareUsage {
  /** Octets of the parcels counted. */
  bytes: number;
  /** How many parcels are counted. */
  parcels: number;
}

/**
 * Octets and parcels of relayed parcels, in all and by share key, in memory: the
 * store keeps it in step with its `parcels` table, and counts it again from the
 * table when a write fails.
 */
export class ShareLedger {
  #bytes = 0;
  #parcels = 0;
  readonly #shares = new Map<ShareKey, ShareUsage>();

  /** Forgets what was counted and counts `rows` (every relayed parcel held) instead. */
  reset(rows: Iterable<ShareRow>): void {
    this.#shares.clear();
    this.#bytes = 0;
    this.#parcels = 0;
    for (const row of rows) this.count(row, 1);
  }

  /** Counts a relayed parcel in (`1`, stored) or out (`-1`, gone). */
  count(row: ShareRow, sign: 1 | -1): void {
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
    this.#bytes += sign * row.size;
    this.#parcels += sign;
  }

  /** Octets and parcels of every relayed parcel held. */
  total(): ShareUsage {
    return { bytes: this.#bytes, parcels: this.#parcels };
  }

  /** Octets and parcels counted against one share key (zero for a key nothing counts against). */
  share(key: ShareKey): ShareUsage {
    const entry = this.#shares.get(key);
    return { bytes: entry?.bytes ?? 0, parcels: entry?.parcels ?? 0 };
  }
}
