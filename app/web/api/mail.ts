/**
 * Mail: `GET /api/messages`, `/api/messages/:id`, `/api/threads/:id`, `POST /api/send`,
 * archiving, read state, deleting (`/api/messages/:id/...`) and drafts (`/api/drafts`).
 *
 * @module
 */
import type { IsoDate } from "./common.ts";

/**
 * A folder of `GET /api/messages?folder=`: received mail, sent mail, and what was archived
 * of either (it leaves `inbox` or `sent` until unarchived; search still finds it).
 */
export type Folder = "inbox" | "sent" | "archive";

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
  /** Where it is listed: `archive` once archived, else `inbox` or `sent` by its direction. */
  readonly folder: Folder;
  /** Whether it is archived (then `folder` is `archive`). */
  readonly archived: boolean;
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
 * default, `sent` or `archive`) or with `q` of what a search finds in every folder, archive
 * included (whole words; `word*` for starts; each result says its folder). `limit`: 1 to 500, default 100. The next page: `cursor=` this one's `next`.
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
 * per recipient), `subject`, `body`, `replyTo` (a message id), `attachments`
 * (files), `forward` (the id of a message whose attachments to carry),
 * `forwardAttachment` (repeatable: the index of one of them; absent, all of them)
 * and `draft` (the id of the draft this message was written in: deleted once sent;
 * a draft no longer there, sent or deleted meanwhile, fails the send with a 400
 * and sends nothing, so two pages cannot send one draft twice). The size limit
 * holds for the whole message, forwarded attachments included. The page fills in
 * a forward's subject ("Fwd: …") and quoted body itself.
 */
export interface MessageDetail extends MessageSummary {
  readonly body: string;
  readonly deliveries: readonly DeliveryWithPath[];
}

/** `POST /api/messages/:id/archive` takes it; answers the {@linkcode MessageSummary} as it is now. */
export interface ArchiveRequest {
  /** True to archive; false to return it to `inbox` or `sent` (by its direction). */
  readonly archived: boolean;
}

/** `POST /api/messages/:id/read` takes it (mark unread / read); answers the `MessageSummary`. */
export interface ReadRequest {
  readonly read: boolean;
}

/**
 * The answer to `DELETE /api/messages/:id` (404 for an unknown id). Deleting is permanent: the
 * message's attachments are purged, and the outgoing parcels no recipient needs any more are
 * dropped, so a copy still waiting or queued on this device is never delivered.
 */
export interface DeleteAnswer {
  /** The deleted message's id. */
  readonly deleted: string;
  /** Attachments purged with it. */
  readonly attachments: number;
  /** Outgoing parcels dropped (deliveries cancelled before they left this device). */
  readonly parcels: number;
  /**
   * The names of the recipients whose copy is already packed with our pairing request to
   * them, still on this device: it cannot be taken out, and will still be delivered.
   */
  readonly riding: readonly string[];
}

/**
 * A message being written, saved as it is typed: `GET /api/drafts` lists them newest first.
 * Files picked into a draft are not kept: only its text, recipients and what it answers or
 * forwards.
 */
export interface Draft {
  readonly id: string;
  /** Recipients: contact ids. */
  readonly to: readonly string[];
  readonly subject: string;
  readonly body: string;
  /** The id of the message it answers, if any. */
  readonly replyTo: string | null;
  /** The id of the message it forwards, if any. */
  readonly forward: string | null;
  readonly updatedAt: IsoDate;
}

/**
 * What `POST /api/drafts` (creates one) and `PUT /api/drafts/:id` (replaces what it gives of
 * one) take; each answers the {@linkcode Draft}. A draft holds at most the mail size limit, and
 * there are at most 1,000 drafts.
 */
export interface DraftRequest {
  readonly to?: readonly string[];
  readonly subject?: string;
  readonly body?: string;
  readonly replyTo?: string | null;
  readonly forward?: string | null;
}

/** The answer to `DELETE /api/drafts/:id`. */
export interface DraftDeleted {
  /** The deleted draft's id. */
  readonly deleted: string;
}
