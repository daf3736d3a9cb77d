/**
 * Mail: `GET /api/messages`, `/api/messages/:id`, `/api/threads/:id`, `POST /api/send`.
 *
 * @module
 */
import type { IsoDate } from "./common.ts";

/** A folder of `GET /api/messages?folder=`. */
export type Folder = "inbox" | "sent";

/** Where a sent message is, for one recipient. */
export type DeliveryState = "waiting" | "queued" | "sent" | "delivered" | "expired";

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
  readonly updatedAt: IsoDate;
  readonly parcelKey: string | null;
}

/** One step of a parcel's way out of this device. */
export interface Handover {
  /** The binding that took it: "mesh", "gateway", "sneakernet"… */
  readonly binding: string;
  readonly hop: string | null;
  /** Whether the next hop was the recipient's own device. */
  readonly toRecipient: boolean;
  readonly at: IsoDate;
}

/** A delivery with the path its parcel took (in a message's detail). */
export interface DeliveryWithPath extends Delivery {
  readonly path: readonly Handover[];
}

/** An attachment as listed (its bytes: `GET /api/messages/:id/attachments/:index`). */
export interface AttachmentInfo {
  readonly fileName: string;
  readonly mediaType: string;
  readonly size: number;
}

/** A message as `GET /api/messages` lists it. */
export interface MessageSummary {
  /** The sender-chosen message id (a UUID). */
  readonly id: string;
  readonly folder: Folder;
  readonly threadId: string;
  readonly inReplyTo: string | null;
  readonly from: Party;
  readonly to: readonly Party[];
  readonly subject: string;
  readonly sentAt: IsoDate;
  readonly receivedAt: IsoDate | null;
  readonly read: boolean;
  readonly attachments: readonly AttachmentInfo[];
  /** For sent messages: each recipient's delivery. */
  readonly deliveries: readonly Delivery[];
}

/**
 * `GET /api/messages?folder=&q=&cursor=&limit=`: newest first, a page of `folder` (`inbox`, the
 * default, or `sent`) or with `q` of what a search finds in every folder (whole words; `word*`
 * for starts). `limit`: 1 to 500, default 100. The next page: `cursor=` this one's `next`.
 */
export interface MessagePage {
  readonly messages: readonly MessageSummary[];
  /** The cursor of the next (older) page; null when this page is the last. */
  readonly next: string | null;
}

/**
 * A message with its body and each delivery's path: the answer to
 * `GET /api/messages/:id` and `POST /api/send`; `GET /api/threads/:id` answers
 * with a list of them.
 *
 * `POST /api/send` takes `multipart/form-data`, not JSON: `to` (a contact, once
 * per recipient), `subject`, `body`, `replyTo` (a message id) and `attachments`
 * (files).
 */
export interface MessageDetail extends MessageSummary {
  readonly body: string;
  readonly deliveries: readonly DeliveryWithPath[];
}
