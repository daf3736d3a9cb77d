/**
 * The types the domain core shares across its modules and with the services
 * above it: messages as the mailbox shows them, and an incoming parcel with
 * what taking it in changes. They live here, apart from the code that makes
 * them, so that modules which only pass them along do not import each other.
 *
 * @module
 */
import type { ServiceMessage } from "@relaycorp/relaynet-core";
import type { ParcelOrigin } from "../../bindings/binding.ts";
import type { ValidatedParcel } from "../../bindings/validation.ts";
import type { Attachment } from "./protocol/messages.ts";

/** Where a sent message is, for one recipient. */
export type DeliveryState =
  /** Waiting for the contact's pairing answer (or a renewed authorisation). */
  | "waiting"
  /** Encrypted and in the outbox, still on this device. */
  | "queued"
  /** Left this device: on a stick, with a relay or a gateway. */
  | "sent"
  /** The recipient's receipt came back. */
  | "delivered"
  /** Its parcel expired before delivery. */
  | "expired";

/** A person a message is from or to. */
export interface Party {
  readonly id: string;
  /** The local name: the contact's, the user's own, or "unknown". */
  readonly name: string;
  readonly fingerprint: string;
  readonly isMe: boolean;
}

/** A recipient of a sent message and how far its copy got. */
export interface Delivery extends Party {
  readonly state: DeliveryState;
  readonly via: string | null;
  readonly updatedAt: Date;
  /** The parcel carrying this copy, once built: its handovers tell the path it took. */
  readonly parcelKey: string | null;
}

/** A message as listed. */
export interface MessageSummary {
  /** The sender-chosen message id (a UUID). */
  readonly id: string;
  readonly folder: "inbox" | "sent";
  readonly threadId: string;
  readonly inReplyTo: string | null;
  readonly from: Party;
  readonly to: readonly Party[];
  readonly subject: string;
  readonly sentAt: Date;
  readonly receivedAt: Date | null;
  readonly read: boolean;
  readonly attachments: readonly { fileName: string; mediaType: string; size: number }[];
  /** For sent messages: each recipient's delivery. */
  readonly deliveries: readonly Delivery[];
}

/** A message with its body. */
export interface MessageDetail extends MessageSummary {
  readonly body: string;
}

/** A message with its attachments, ready to export. */
export interface ExportableMessage {
  readonly message: MessageDetail;
  readonly attachments: readonly Attachment[];
}

/** A parcel that passed validation, decrypted. */
export interface Incoming {
  readonly parcel: ValidatedParcel;
  readonly message: ServiceMessage;
  readonly origin: ParcelOrigin;
}

/** What taking in a parcel changes, prepared (asynchronously) before the transaction. */
export interface Effect {
  /** Writes the changes; runs inside the receiving transaction and may throw a refusal. */
  apply(): void;
  /** Runs after the commit (events, follow-up parcels). */
  after?(): Promise<void>;
  /** Whether to keep the sender's next session key (not for invitation keys). */
  readonly savesSenderSessionKey: boolean;
  /** For mail, its message id, kept with the replay record. */
  readonly messageId?: string;
}
