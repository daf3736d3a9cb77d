/**
 * Who may fill a relay's storage, and how much (docs/mesh-protocol.md §6.3).
 *
 * Other people's parcels share one quota (octets and a count of parcels). No
 * single sender, recipient, delivering peer or remote host may fill more than its
 * share, and parcels for recipients this node does not know to be real (neither
 * hosted here nor seen in a verified delivery proof or hosting claim) fill at most
 * a part of it: a Sybil that mints its own recipient key and sender keys with
 * self-issued PDAs is bounded by its host's share and by that part, so honest
 * senders keep room.
 *
 * Checks and reservations are synchronous, so two streams (or two connections) of
 * one peer cannot both pass the check before either commits: space is reserved
 * at check time and released once the store counts it or the parcel is dropped.
 *
 * @module
 */
import { type MeshStore, type ShareKey, shareKeys } from "./store.ts";

/** Shares of the quota, each as a fraction of it. */
export interface QuotaShares {
  /** One sender (default 0.1). */
  readonly sender: number;
  /** One recipient (default 0.1). */
  readonly recipient: number;
  /** One delivering peer id (default 0.25). */
  readonly peer: number;
  /** One remote host, whatever its peer ids (default 0.25). */
  readonly host: number;
  /** All recipients not known to be real, together (default 0.5). */
  readonly unknown: number;
}

/** Default shares. */
export const DEFAULT_QUOTA_SHARES: QuotaShares = {
  sender: 0.1,
  recipient: 0.1,
  peer: 0.25,
  host: 0.25,
  unknown: 0.5,
};

/** What a parcel to store counts against. */
export interface QuotaClaim {
  readonly size: number;
  readonly senderId: string;
  readonly recipientId: string;
  readonly fromPeer: string;
  readonly fromHost: string;
  readonly knownRecipient: boolean;
}

/** Space held for a parcel between its check and its commit. */
export interface Reservation {
  /** Gives the space back (the parcel was stored, and is now counted, or dropped). */
  release(): void;
}

/** Decides whether a relayed parcel may be stored, and holds its space until it is. */
export class StorageQuota {
  readonly #reserved = new Map<ShareKey | "total", { bytes: number; parcels: number }>();

  constructor(
    private readonly store: MeshStore,
    private readonly quotaBytes: number,
    private readonly maxParcels: number,
    private readonly shares: QuotaShares = DEFAULT_QUOTA_SHARES,
  ) {}

  /** Reserves room for `claim`, or says which share is full (a transient refusal). */
  reserve(claim: QuotaClaim): Reservation | { refused: string } {
    const keys: (ShareKey | "total")[] = ["total", ...shareKeys(claim)];
    for (const key of keys) {
      const limit = this.#limit(key);
      const used = key === "total" ? this.store.usage() : this.store.share(key);
      const held = this.#reserved.get(key) ?? { bytes: 0, parcels: 0 };
      if (
        used.bytes + held.bytes + claim.size > limit.bytes ||
        used.parcels + held.parcels + 1 > limit.parcels
      ) {
        return { refused: describe(key, limit) };
      }
    }
    for (const key of keys) this.#add(key, claim.size, 1);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        for (const key of keys) this.#add(key, -claim.size, -1);
      },
    };
  }

  #add(key: ShareKey | "total", bytes: number, parcels: number): void {
    const entry = this.#reserved.get(key) ?? { bytes: 0, parcels: 0 };
    entry.bytes += bytes;
    entry.parcels += parcels;
    if (entry.parcels <= 0) this.#reserved.delete(key);
    else this.#reserved.set(key, entry);
  }

  #limit(key: ShareKey | "total"): { bytes: number; parcels: number } {
    const fraction = key === "total"
      ? 1
      : key === "unknown"
      ? this.shares.unknown
      : this.shares[key.slice(0, key.indexOf(":")) as keyof QuotaShares];
    return {
      bytes: Math.floor(this.quotaBytes * fraction),
      parcels: Math.max(1, Math.floor(this.maxParcels * fraction)),
    };
  }
}

function describe(key: ShareKey | "total", limit: { bytes: number; parcels: number }): string {
  const of = `${limit.bytes} bytes or ${limit.parcels} parcels`;
  if (key === "total") return `This relay's storage quota (${of}) is full`;
  if (key === "unknown") {
    return `Parcels for recipients this relay does not know already fill their part (${of})`;
  }
  const [kind, id] = [key.slice(0, key.indexOf(":")), key.slice(key.indexOf(":") + 1)];
  return `${kind[0].toUpperCase()}${kind.slice(1)} ${
    id.slice(0, 13)
  } already fills its share (${of})`;
}
