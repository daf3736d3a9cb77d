/**
 * Broadcast channels (docs/broadcast.md): `/api/channels`, `/api/channels/follow`
 * and `/api/channels/:id/…` (posts, the link, authors, subscribers), and the
 * `channel-changed` event. The routes answer with what the runtime operations
 * `channel.*` return.
 *
 * @module
 */
import type { IsoDate } from "./common.ts";

/** Who anyone can follow by its link (`public`), or who the owner lets read (`private`). */
export type ChannelVisibility = "public" | "private";

/** What the user is to a channel. */
export type ChannelRole = "owner" | "author" | "follower";

/** A channel the user owns, writes to or follows: `GET /api/channels` lists them. */
export interface Channel {
  /** "0" and the hex SHA-256 of the channel key. */
  readonly id: string;
  readonly title: string;
  readonly visibility: ChannelVisibility;
  readonly role: ChannelRole;
  readonly following: boolean;
  /** Whether the user holds an author certificate valid now. */
  readonly canPost: boolean;
  /** When the user's author certificate runs out. */
  readonly authorUntil: IsoDate | null;
  /** Posts held, and how many the user has not seen. */
  readonly posts: number;
  readonly unread: number;
  /** The text to follow it by (a public channel's; a private one's for its owner only). */
  readonly link: string | null;
}

/** `GET /api/channels`. */
export interface ChannelList {
  readonly channels: readonly Channel[];
}

/** `POST /api/channels`: answers with the new {@linkcode Channel}. */
export interface ChannelRequest {
  readonly title: string;
  /** Default "public". */
  readonly visibility?: ChannelVisibility;
}

/** `POST /api/channels/follow`: a channel's link; answers with the {@linkcode Channel}. */
export interface FollowRequest {
  readonly link: string;
}

/** `GET /api/channels/:id/link`: the text to hand over, and its QR code. */
export interface ChannelLink {
  readonly text: string;
  /** A `data:image/svg+xml` URL. */
  readonly qrCode: string;
}

/** A post, as `GET /api/channels/:id/posts` lists it (newest first). */
export interface Post {
  /** Hex SHA-256 of the post's bytes. */
  readonly key: string;
  readonly channelId: string;
  readonly authorId: string;
  /** "you", a contact's name, or null for someone the user does not know. */
  readonly authorName: string | null;
  readonly title: string | null;
  /** Null when the post cannot be read (a private channel whose key the user lacks). */
  readonly text: string | null;
  readonly readable: boolean;
  readonly createdAt: IsoDate;
  /** When every node drops it. */
  readonly expiresAt: IsoDate;
  readonly read: boolean;
}

/** `GET /api/channels/:id/posts?limit=&before=`: a page, and the cursor of the next one. */
export interface PostPage {
  readonly posts: readonly Post[];
  /** The `before` of the next (older) page; null at the end. */
  readonly next: string | null;
}

/** `POST /api/channels/:id/posts`: answers with the {@linkcode Post}. */
export interface PostRequest {
  readonly text: string;
  readonly title?: string;
  /** Its lifetime, 1 to 180 days (default 30). */
  readonly ttlDays?: number;
}

/** Someone allowed to post in a channel, until `expiresAt`. */
export interface Author {
  readonly id: string;
  readonly name: string | null;
  /** The channel's owner (their own identity, as an author). */
  readonly owner: boolean;
  readonly expiresAt: IsoDate;
  /** False once removed: the certificate is not renewed, and lapses at `expiresAt`. */
  readonly renewed: boolean;
}

/** `GET /api/channels/:id/authors`, and the answer to removing one. */
export interface AuthorList {
  readonly authors: readonly Author[];
}

/** `POST /api/channels/:id/authors`: answers with the new {@linkcode Author}. */
export interface AuthorRequest {
  /** A contact's id or name. */
  readonly contact: string;
  /** How long their certificate lasts, 1 to 180 days (default 30). */
  readonly days?: number;
}

/**
 * A contact the channel's posts also go to as mail, through any gateway: one the
 * owner added (and, for a private channel, sent its content key), or one who told
 * the owner they follow a public channel.
 */
export interface Subscriber {
  readonly contactId: string;
  readonly name: string;
  readonly kind: "subscriber" | "follower";
}

/** `GET /api/channels/:id/subscribers`, and the answer to adding or removing one. */
export interface SubscriberList {
  readonly subscribers: readonly Subscriber[];
}

/** `POST /api/channels/:id/subscribers`. */
export interface SubscriberRequest {
  /** A contact's id or name. */
  readonly contact: string;
}

/** The data of `channel-changed`: a post came or went, or the channel itself changed. */
export interface ChannelChanged {
  readonly channelId: string;
  /** The post's key, when one post is what changed. */
  readonly key?: string;
}
