/**
 * The one contract every Relaymail parcel transport (binding) implements.
 *
 * A binding only moves bytes between a node and its next hops. It never decides
 * who may write to whom (the node validates every parcel it is handed) and it
 * never forgets a parcel before the next hop has durably stored it (RS-000,
 * "Message delivery"): a binding reports a handover only after the receiving
 * side's {@linkcode ParcelNode.receiveParcel} has resolved.
 *
 * @module
 */

/** A parcel waiting to leave a node for its next hop. */
export interface OutgoingParcel {
  /** Stable key of the parcel in the sending node's store: hex SHA-256 of its bytes. */
  readonly key: string;
  /** Id of the endpoint the parcel is addressed to. */
  readonly recipientId: string;
  /** Size of the serialised parcel, in octets. */
  readonly size: number;
  /** When the parcel expires; past it, no hop may carry it. */
  readonly expiresAt: Date;
  /** When the node queued it (its own clock): bindings that wait for others count from here. */
  readonly queuedAt: Date;
  /**
   * Names of the bindings that already handed it over to some next hop. A parcel
   * may leave by several (a mesh relay, then a gateway); the recipient keeps one.
   */
  readonly handedTo: readonly string[];
  /**
   * Reads the serialised parcel (RAMF). Resolves null when it was delivered or
   * expired since it was listed. Reading lazily keeps a large outbox out of memory.
   */
  read(): Promise<Uint8Array | null>;
}

/** Where an incoming parcel came from, for the refusal log and statistics. */
export interface ParcelOrigin {
  /** Name of the binding that carried the parcel, e.g. `"sneakernet"` or `"mesh"`. */
  readonly binding: string;
  /** The previous hop, in the binding's own terms (a file path, a libp2p peer id, …). */
  readonly hop?: string;
}

/** What the next hop did with a parcel a binding handed it. */
export type ReceiveOutcome =
  /** Durably stored: the sender may now forget it. */
  | { readonly status: "accepted" }
  /** Already held (same parcel by another path, or the same import twice): safe to forget. */
  | { readonly status: "duplicate" }
  /** Not addressed to anything this node hosts or carries: left where it was, not logged. */
  | { readonly status: "skipped"; readonly reason: string }
  /** Never going to be accepted here (invalid, unauthorised, …); recorded in the refusal log. */
  | { readonly status: "refused"; readonly code: RefusalCode; readonly reason: string };

/**
 * Why a parcel was refused. These codes are stable: they appear in `--json` output
 * and in the refusal log.
 */
export type RefusalCode =
  | "too-large"
  | "malformed"
  | "bad-signature"
  | "expired"
  | "future-dated"
  | "unauthorized"
  | "blocked"
  | "duplicate"
  | "invitation-used"
  | "invitation-expired"
  | "undecryptable"
  | "bad-content"
  | "quota"
  | "rate-limited";

/** How a next hop took over a parcel, recorded with the parcel's new state. */
export interface Handover {
  /** Name of the binding, e.g. `"sneakernet"`. */
  readonly binding: string;
  /** The next hop, in the binding's own terms. */
  readonly hop?: string;
  /** True when the next hop is the recipient's own node, false when it is a relay or a stick. */
  readonly toRecipient: boolean;
}

/** What a node offers the bindings that carry its parcels. */
export interface ParcelNode {
  /** The parcels waiting to leave this node, oldest first. */
  outgoingParcels(options?: OutgoingParcelsOptions): Promise<OutgoingParcel[]>;
  /** Records that a next hop durably holds the parcel with this key. */
  parcelHandedOver(key: string, handover: Handover): Promise<void>;
  /**
   * Takes an incoming parcel. Resolves once it is committed to disk (or known to be
   * a duplicate, skipped or refused); rejects only when the node could not decide,
   * e.g. its storage failed, in which case the sender must keep the parcel.
   */
  receiveParcel(bytes: Uint8Array, origin: ParcelOrigin): Promise<ReceiveOutcome>;
  /**
   * Tells the node a batch of incoming parcels is over, so it can do the work it
   * deferred (such as answering with receipts, several in one parcel). Optional;
   * a node does the work later on its own if no binding calls this.
   */
  flush?(): Promise<void>;
}

/** Options of {@linkcode ParcelNode.outgoingParcels}. */
export interface OutgoingParcelsOptions {
  /** Only parcels for these endpoints (default: all). */
  readonly recipientIds?: readonly string[];
  /** Also parcels already handed over but not yet delivered (default: false). */
  readonly includeHandedOver?: boolean;
}

/** True when the sending side may forget the parcel after this outcome. */
export function isSafelyStored(outcome: ReceiveOutcome): boolean {
  return outcome.status === "accepted" || outcome.status === "duplicate";
}
