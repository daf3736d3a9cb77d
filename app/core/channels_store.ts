/**
 * Channels as the database keeps them (schema V8, docs/broadcast.md §9): the
 * rows, the views built from them, and finding a channel by what a person types.
 *
 * @module
 */
import { Certificate } from "@relaycorp/relaynet-core";
import { toArrayBuffer } from "../../bindings/validation.ts";
import { channelLinkText } from "./channels_link.ts";
import type { NodeContext } from "./context.ts";
import { ConflictError, NotFoundError, UserInputError } from "./errors.ts";

/**
 * Most channels followed at once: a mesh node asks its peers for the first 256 it
 * follows and no more (docs/mesh-protocol.md §2.6), so a channel past them would
 * get no post over the mesh.
 */
export const MAX_FOLLOWED_CHANNELS = 256;

/** Refuses to follow one more channel past {@linkcode MAX_FOLLOWED_CHANNELS}. */
export function requireFollowRoom(ctx: NodeContext, channelId?: string): void {
  const followed = ctx.db.get<{ n: number }>(
    "SELECT count(*) AS n FROM channels WHERE following = 1 AND id != ?",
    channelId ?? "",
  )!.n;
  if (followed >= MAX_FOLLOWED_CHANNELS) {
    throw new ConflictError(
      `You follow ${followed} channels, the most the mesh asks its peers for (${MAX_FOLLOWED_CHANNELS}): unfollow one first`,
    );
  }
}

/** A channel as listed (the operations' `Channel`). */
export interface ChannelInfo {
  readonly id: string;
  readonly title: string;
  readonly visibility: "public" | "private";
  readonly role: "owner" | "author" | "follower";
  readonly following: boolean;
  /** True when this device holds an author certificate valid now (the owner can always renew its own). */
  readonly canPost: boolean;
  /** When this device's author certificate expires, or null with none. */
  readonly authorUntil: Date | null;
  readonly posts: number;
  readonly unread: number;
  /** A public channel's link text; a private channel's only for its owner. */
  readonly link: string | null;
}

/** A post as listed (the operations' `Post`). */
export interface PostInfo {
  readonly key: string;
  readonly channelId: string;
  readonly authorId: string;
  /** "you", a contact's name, or null. */
  readonly authorName: string | null;
  readonly title: string | null;
  /** Null while unreadable. */
  readonly text: string | null;
  readonly readable: boolean;
  readonly createdAt: Date;
  readonly expiresAt: Date;
  readonly read: boolean;
}

/** An author of a channel, as its owner lists them. */
export interface AuthorInfo {
  readonly id: string;
  readonly name: string | null;
  /** The owner's own identity. */
  readonly owner: boolean;
  readonly expiresAt: Date;
  /** False once removed: the certificate is not renewed and lapses at `expiresAt`. */
  readonly renewed: boolean;
}

/** A contact posts fan out to. */
export interface SubscriberInfo {
  readonly contactId: string;
  readonly name: string;
  /** Added to a private channel, or told the owner it follows a public one. */
  readonly kind: "subscriber" | "follower";
}

/** A channel's row. */
export interface ChannelRow {
  id: string;
  title: string;
  visibility: "public" | "private";
  role: "owner" | "author" | "follower";
  following: number;
  link: Uint8Array;
  certificate_expires_at: number;
  source_id: string | null;
  created_at: number;
}

/** A post's row, without its octets. */
export interface PostRow {
  key: string;
  channel_id: string;
  author_id: string;
  key_id: string | null;
  title: string | null;
  text: string | null;
  created_at: number;
  expires_at: number;
  read: number;
}

/** The certificate a link's octets carry (checked when the link was stored). */
export function linkCertificate(link: Uint8Array): Certificate {
  const length = new DataView(link.buffer, link.byteOffset).getUint16(1);
  return Certificate.deserialize(toArrayBuffer(link.subarray(3, 3 + length)));
}

/** The channel `id`'s row, or undefined. */
export function channelRow(ctx: NodeContext, id: string): ChannelRow | undefined {
  return ctx.db.get<ChannelRow>("SELECT * FROM channels WHERE id = ?", id);
}

/**
 * Finds a channel by its id, a unique prefix of it (6 hex digits at least), or
 * its unique title (any case).
 */
export function findChannel(ctx: NodeContext, reference: unknown): ChannelRow {
  if (typeof reference !== "string" || reference.trim() === "") {
    throw new UserInputError("The channel must be given: its id, an id prefix or its title");
  }
  const ref = reference.trim();
  const exact = channelRow(ctx, ref.toLowerCase());
  if (exact) return exact;
  const hex = ref.toLowerCase();
  const byPrefix = /^[0-9a-f]{6,65}$/.test(hex)
    ? ctx.db.all<ChannelRow>(
      "SELECT * FROM channels WHERE substr(id, 1, ?) = ? OR substr(id, 2, ?) = ?",
      hex.length,
      hex,
      hex.length,
      hex,
    )
    : [];
  const byTitle = ctx.db.all<ChannelRow>(
    "SELECT * FROM channels WHERE title = ? COLLATE NOCASE",
    ref,
  );
  const matches = [...new Map([...byPrefix, ...byTitle].map((r) => [r.id, r])).values()];
  if (matches.length === 1) return matches[0];
  if (matches.length > 1) {
    throw new UserInputError(
      `"${ref}" matches ${matches.length} channels (${
        matches.map((m) => `${m.title} ${m.id.slice(0, 13)}`).join(", ")
      }): give more of the id`,
    );
  }
  throw new NotFoundError(`No channel with the id or title "${ref}"`);
}

/** The view of a channel for this device (`me`: its identity id). */
export function channelInfo(ctx: NodeContext, row: ChannelRow, me: string): ChannelInfo {
  const now = ctx.now().getTime();
  const mine = ctx.db.get<{ expires_at: number }>(
    "SELECT expires_at FROM channel_authors WHERE channel_id = ? AND author_id = ?",
    row.id,
    me,
  );
  const counts = ctx.db.get<{ posts: number; unread: number }>(
    `SELECT count(*) AS posts, coalesce(sum(read = 0), 0) AS unread FROM channel_posts
     WHERE channel_id = ? AND expires_at > ?`,
    row.id,
    now,
  )!;
  return {
    id: row.id,
    title: row.title,
    visibility: row.visibility,
    role: row.role,
    following: row.following === 1,
    canPost: row.role === "owner" || (mine !== undefined && mine.expires_at > now),
    authorUntil: mine ? new Date(mine.expires_at) : null,
    posts: counts.posts,
    unread: counts.unread,
    link: row.visibility === "public" || row.role === "owner" ? channelLinkText(row.link) : null,
  };
}

/** The view of a post; `names` gives a contact's name by id. */
export function postInfo(row: PostRow, me: string, name: (id: string) => string | null): PostInfo {
  return {
    key: row.key,
    channelId: row.channel_id,
    authorId: row.author_id,
    authorName: row.author_id === me ? "you" : name(row.author_id),
    title: row.title,
    text: row.text,
    readable: row.text !== null,
    createdAt: new Date(row.created_at),
    expiresAt: new Date(row.expires_at),
    read: row.read === 1,
  };
}

/** A private channel's content keys, by id (hex). */
export function contentKeys(ctx: NodeContext, channelId: string): Map<string, Uint8Array> {
  return new Map(
    ctx.db.all<{ key_id: string; key: Uint8Array }>(
      "SELECT key_id, key FROM channel_content_keys WHERE channel_id = ?",
      channelId,
    ).map((r) => [r.key_id, r.key]),
  );
}

/** The newest content key of a private channel, if any. */
export function newestContentKey(
  ctx: NodeContext,
  channelId: string,
): { id: string; key: Uint8Array } | undefined {
  const row = ctx.db.get<{ key_id: string; key: Uint8Array }>(
    `SELECT key_id, key FROM channel_content_keys WHERE channel_id = ?
     ORDER BY created_at DESC, rowid DESC LIMIT 1`,
    channelId,
  );
  return row ? { id: row.key_id, key: row.key } : undefined;
}
