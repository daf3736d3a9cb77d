/**
 * An in-memory {@linkcode ParcelNode}: the smallest real node a binding can be
 * tested against. It stores what it receives, queues what it sends, records
 * handovers, and can be told to fail or refuse.
 *
 * @module
 */
import type {
  Handover,
  OutgoingParcel,
  OutgoingParcelsOptions,
  ParcelNode,
  ParcelOrigin,
  ReceiveOutcome,
  RefusalCode,
} from "../binding.ts";
import { sha256Hex } from "../validation.ts";

interface Queued {
  readonly key: string;
  readonly recipientId: string;
  readonly bytes: Uint8Array;
  readonly expiresAt: Date;
  readonly queuedAt: Date;
  handover?: Handover;
  readonly handedTo: string[];
}

/** A node that keeps everything in maps. */
export class MemoryParcelNode implements ParcelNode {
  /** Parcels received and stored, by key. */
  readonly stored = new Map<string, Uint8Array>();
  /** How many times each key was offered. */
  readonly offers = new Map<string, number>();
  readonly #queue = new Map<string, Queued>();
  /** The next this-many `receiveParcel` calls fail as if storage broke. */
  failures = 0;
  /** Decides whether to refuse a parcel (default: accept all). */
  refuse: (bytes: Uint8Array) => { code: RefusalCode; reason: string } | null = () => null;
  /** Called with every handover, before it is recorded. */
  onHandover: (key: string, handover: Handover) => void | Promise<void> = () => {};

  constructor(readonly name = "node") {}

  /** Queues a parcel to send; returns its key. */
  async enqueue(
    bytes: Uint8Array,
    recipientId: string,
    expiresAt = new Date(Date.now() + 86_400_000),
  ) {
    const key = await sha256Hex(bytes);
    this.#queue.set(key, {
      key,
      recipientId,
      bytes,
      expiresAt,
      queuedAt: new Date(),
      handedTo: [],
    });
    return key;
  }

  /** The handover recorded for `key`, if any. */
  handoverOf(key: string): Handover | undefined {
    return this.#queue.get(key)?.handover;
  }

  outgoingParcels(options: OutgoingParcelsOptions = {}): Promise<OutgoingParcel[]> {
    const wanted = options.recipientIds ? new Set(options.recipientIds) : null;
    return Promise.resolve(
      [...this.#queue.values()]
        .filter((q) =>
          (options.includeHandedOver || !q.handover) && (!wanted || wanted.has(q.recipientId))
        )
        .map((q) => ({
          key: q.key,
          recipientId: q.recipientId,
          size: q.bytes.byteLength,
          expiresAt: q.expiresAt,
          queuedAt: q.queuedAt,
          handedTo: [...q.handedTo],
          read: () => Promise.resolve(q.bytes),
        })),
    );
  }

  async parcelHandedOver(key: string, handover: Handover): Promise<void> {
    await this.onHandover(key, handover);
    const queued = this.#queue.get(key);
    if (!queued) return;
    queued.handover = handover;
    if (!queued.handedTo.includes(handover.binding)) queued.handedTo.push(handover.binding);
  }

  async receiveParcel(bytes: Uint8Array, _origin: ParcelOrigin): Promise<ReceiveOutcome> {
    const key = await sha256Hex(bytes);
    this.offers.set(key, (this.offers.get(key) ?? 0) + 1);
    if (this.failures > 0) {
      this.failures--;
      throw new Error(`${this.name}: simulated storage failure`);
    }
    // A parcel this node sent itself (a shared medium brings it back): already held.
    if (this.#queue.has(key)) return { status: "duplicate" };
    const refusal = this.refuse(bytes);
    if (refusal) return { status: "refused", ...refusal };
    if (this.stored.has(key)) return { status: "duplicate" };
    this.stored.set(key, bytes.slice());
    return { status: "accepted" };
  }
}
