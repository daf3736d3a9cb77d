/**
 * What a node does with the parcels a peer offers (docs/mesh-protocol.md §3):
 * checks, in the order the spec gives, then each parcel placed: handed to the
 * endpoint hosted here, or stored within the shares (§6.3), the parcels of a
 * batch committed together before any is acknowledged.
 *
 * @module
 */
import { isSafelyStored, type ReceiveOutcome, type RefusalCode } from "../bindings/binding.ts";
import { StorageFullError } from "../bindings/durable.ts";
import type { ParcelFacts } from "../bindings/fast_validation.ts";
import { ParcelRefusedError, sha256Hex } from "../bindings/validation.ts";
import { safeDecodeProof } from "./core.ts";
import type { NodeParts } from "./parts.ts";
import { encodeProof, makeDeliveryProof } from "./proofs.ts";
import type { StorageQuota } from "./quota.ts";
import type { RateLimiter } from "./rate_limit.ts";
import type { ParcelRecord } from "./store.ts";
import { AckStatus, type TransferMessage } from "./wire.ts";

/** A PARCEL frame as decoded. */
export type ParcelMessage = Extract<TransferMessage, { type: "parcel" }>;

/** What {@linkcode ParcelIntake} needs. */
export interface IntakeDeps
  extends Pick<NodeParts, "store" | "hosting" | "verifier" | "stats" | "emit" | "logger"> {
  readonly quota: StorageQuota;
  /** Parcels and octets per second, per peer and per host. */
  readonly limiter: RateLimiter;
  /** Checks a parcel as RS-001 requires (throws {@linkcode ParcelRefusedError}). */
  readonly validate: (bytes: Uint8Array) => Promise<ParcelFacts>;
  /** Copies a parcel starts with: the most a peer may grant. */
  readonly initialCopies: number;
  /** Sends a parcel at once to the peers that host its recipient (the sender's). */
  readonly pushToHosts: (key: string, recipientId: string) => void;
  /** Schedules a reconciliation with every peer but `except`. */
  readonly syncAll: (except?: string) => void;
}

/** Takes the parcels peers offer. */
export class ParcelIntake {
  readonly #deps: IntakeDeps;
  /** Parcels (sender and parcel id) being stored right now, so two encodings are not both kept. */
  readonly #placing = new Set<string>();

  constructor(deps: IntakeDeps) {
    this.#deps = deps;
  }

  /**
   * Takes a batch of incoming parcels: checked side by side (their digests and
   * signatures run off the event loop together), then placed in order: handed to
   * a hosted endpoint, or stored to carry, all of those in one transaction.
   */
  async takeBatch(
    batch: ParcelMessage[],
    from: string,
    host: string,
  ): Promise<TransferMessage[]> {
    const seen = new Set<string>();
    const checked = await Promise.all(batch.map((message) => {
      if (seen.has(message.key)) {
        return { type: "ack", key: message.key, status: AckStatus.ALREADY_HELD } as TransferMessage;
      }
      seen.add(message.key);
      return this.#check(message, from, host);
    }));
    const replies: (TransferMessage | null)[] = [];
    const records: { index: number; record: ParcelRecord; release(): void }[] = [];
    try {
      for (const [i, message] of batch.entries()) {
        const check = checked[i];
        if (!("facts" in check)) {
          replies.push(check);
          continue;
        }
        const placed = await this.#place(message, check.facts, from, host);
        if ("record" in placed) {
          records.push({ index: replies.length, ...placed });
          replies.push(null);
        } else {
          replies.push(placed);
        }
      }
      if (records.length > 0) {
        try {
          this.#deps.store.putMany(records.map((r) => r.record));
        } catch (error) {
          if (!(error instanceof StorageFullError)) throw error;
          // A full disk is a passing refusal: nothing of the batch was kept.
          for (const { index, record } of records) {
            replies[index] = this.#refusal(record.key, from, "quota", error.message, true);
          }
          return replies as TransferMessage[];
        }
        for (const { index, record } of records) {
          replies[index] = { type: "ack", key: record.key, status: AckStatus.STORED };
          this.#deps.pushToHosts(record.key, record.recipientId);
          this.#deps.emit("parcel:received", {
            key: record.key,
            from,
            recipientId: record.recipientId,
            delivered: false,
          });
        }
        this.#deps.syncAll(from);
      }
    } finally {
      // Stored, they are counted by the store now; refused, their room is free again.
      for (const record of records) record.release();
    }
    return replies as TransferMessage[];
  }

  #refusal(
    key: string,
    from: string,
    code: RefusalCode,
    reason: string,
    transient: boolean,
    size?: number,
    byEndpoint = false,
  ): TransferMessage {
    this.#deps.stats.refusals++;
    this.#deps.emit("parcel:refused", { key, from, code, reason, transient, size, byEndpoint });
    return { type: "refuse", key, code, transient, reason };
  }

  /** The answer for a parcel known delivered: with its proof, or "held" when this node has none. */
  #deliveredAck(key: string): TransferMessage {
    const proof = this.#deps.store.proofOf(key);
    return proof
      ? { type: "ack", key, status: AckStatus.ALREADY_DELIVERED, proof }
      : { type: "ack", key, status: AckStatus.ALREADY_HELD };
  }

  /** Checks an incoming parcel: already known, over the rate limit, forged or invalid. */
  async #check(
    message: ParcelMessage,
    from: string,
    host: string,
  ): Promise<TransferMessage | { facts: ParcelFacts }> {
    const { key, bytes } = message;
    const refuse = (code: RefusalCode, reason: string, transient: boolean) =>
      this.#refusal(key, from, code, reason, transient, bytes.byteLength);
    // A known key is answered at once. A peer lying about a key only misleads itself.
    const known = this.#deps.store.knows(key);
    if (known === "delivered") return this.#deliveredAck(key);
    if (known === "held") return { type: "ack", key, status: AckStatus.ALREADY_HELD };
    if (!this.#deps.limiter.take([from, `host:${host}`], bytes.byteLength)) {
      return refuse("rate-limited", "Too many parcels from this peer or host: slow down", true);
    }
    const [actualKey, validation] = await Promise.all([
      sha256Hex(bytes),
      this.#deps.validate(bytes).then(
        (facts) => ({ facts, error: null }),
        (error) => ({ facts: null, error }),
      ),
    ]);
    if (actualKey !== key) return refuse("malformed", "Parcel does not match its key", false);
    if (validation.error) {
      if (!(validation.error instanceof ParcelRefusedError)) throw validation.error;
      return refuse(
        validation.error.code,
        validation.error.message,
        validation.error.code === "future-dated",
      );
    }
    const facts = validation.facts!;
    // A peer's proof that could not be checked before can be now.
    const unverified = this.#deps.store.unverifiedProof(key);
    if (unverified) {
      const proof = safeDecodeProof(unverified);
      if (proof && this.#deps.verifier.verifyProof(proof, facts.recipientId)) {
        this.#deps.store.markDelivered(key, facts.expiresAt, false, unverified);
        this.#deps.store.noteKnownRecipient(facts.recipientId, facts.expiresAt);
        return { type: "ack", key, status: AckStatus.ALREADY_DELIVERED, proof: unverified };
      }
      this.#deps.store.dropUnverified(key);
    }
    return { facts };
  }

  /**
   * Places a checked parcel: hands it to the endpoint this node hosts, or reserves
   * room for it and returns the record to store (the caller commits a batch, then
   * releases the reservation).
   */
  async #place(
    message: ParcelMessage,
    parcel: ParcelFacts,
    from: string,
    host: string,
  ): Promise<TransferMessage | { record: ParcelRecord; release(): void }> {
    const { key, bytes } = message;
    const refuse = (code: RefusalCode, reason: string, transient: boolean) =>
      this.#refusal(key, from, code, reason, transient);
    const hosted = this.#deps.hosting.get(parcel.recipientId);
    if (hosted) {
      // The same parcel by two paths at once (a direct push and a reconciliation):
      // the second waits for the first instead of handing the endpoint a copy.
      const first = this.#deps.hosting.handing.get(key);
      if (first) {
        const earlier = await first.catch(() => null);
        if (earlier && isSafelyStored(earlier)) return this.#deliveredAck(key);
      }
      let outcome: ReceiveOutcome;
      const handing = hosted.handler(bytes, { binding: "mesh", hop: from }, {
        key,
        recipientId: parcel.recipientId,
        expiresAt: parcel.expiresAt,
      });
      this.#deps.hosting.handing.set(key, handing);
      try {
        outcome = await handing;
      } catch (error) {
        this.#deps.logger.warn("A hosted endpoint failed to take a parcel", {
          endpoint: parcel.recipientId,
          key,
          from,
          error,
        });
        return refuse(
          "quota",
          `The recipient's node could not store it now: ${(error as Error)?.message}`,
          true,
        );
      } finally {
        this.#deps.hosting.handing.delete(key);
      }
      if (outcome.status === "refused") {
        return this.#refusal(
          key,
          from,
          outcome.code,
          outcome.reason,
          false,
          bytes.byteLength,
          true,
        );
      }
      if (isSafelyStored(outcome)) {
        // The recipient's node holds it now: the tombstone may follow in a batch
        // (the store answers for it meanwhile). Without the endpoint's key there
        // is no proof, and this node answers as a relay would.
        const proof = hosted.signer && encodeProof(makeDeliveryProof(hosted.signer, key));
        this.#deps.store.markDeliveredLater(key, parcel.expiresAt, false, proof);
        this.#deps.emit("parcel:received", {
          key,
          from,
          recipientId: parcel.recipientId,
          delivered: true,
        });
        this.#deps.syncAll(from);
        return proof
          ? { type: "ack", key, status: AckStatus.DELIVERED, proof }
          : { type: "ack", key, status: AckStatus.STORED };
      }
    }
    const knownRecipient = this.#deps.store.isKnownRecipient(parcel.recipientId);
    const reservation = this.#deps.quota.reserve({
      size: bytes.byteLength,
      senderId: parcel.senderId,
      recipientId: parcel.recipientId,
      fromPeer: from,
      fromHost: host,
      knownRecipient,
    });
    if ("refused" in reservation) return refuse("quota", reservation.refused, true);
    // The same parcel in other octets (a BER re-encoding under the same signature)
    // is the same parcel: it neither takes room twice nor outlives its delivery.
    const id = `${parcel.senderId} ${parcel.id}`;
    if (this.#placing.has(id) || this.#deps.store.knowsId(parcel.senderId, parcel.id)) {
      reservation.release();
      return { type: "ack", key, status: AckStatus.ALREADY_HELD };
    }
    this.#placing.add(id);
    return {
      release: () => {
        reservation.release();
        this.#placing.delete(id);
      },
      record: {
        key,
        recipientId: parcel.recipientId,
        senderId: parcel.senderId,
        size: bytes.byteLength,
        expiresAt: parcel.expiresAt,
        origin: "relay",
        // A peer cannot grant more copies than a parcel starts with.
        copies: Math.min(this.#deps.initialCopies, Math.max(1, message.copies)),
        fromPeer: from,
        fromHost: host,
        knownRecipient,
        parcelId: parcel.id,
        bytes,
      },
    };
  }
}
