/**
 * Posts in the app (docs/broadcast.md §4, §9): writing one under this device's
 * author certificate, taking one in (from the mesh or a fan-out parcel) after
 * checking it as every hop does, exactly once by its key, and reading them.
 *
 * @module
 */
import { Certificate, type Parcel } from "@relaycorp/relaynet-core";
import {
  DEFAULT_POST_TTL_SECONDS,
  makePost,
  MAX_POST_TTL_SECONDS,
  type PostVerifier,
  readPost,
} from "../../mesh/posts.ts";
import { ParcelRefusedError, parseParcel, toArrayBuffer } from "../../bindings/validation.ts";
import { encodePostPayload, openPostPayload, type PostContent } from "./channels_content.ts";
import {
  channelRow,
  contentKeys,
  linkCertificate,
  newestContentKey,
  type PostInfo,
  postInfo,
  type PostRow,
} from "./channels_store.ts";
import { emit, type NodeContext } from "./context.ts";
import type { Contacts } from "./contacts.ts";
import { ConflictError, UserInputError } from "./errors.ts";
import type { IdentityManager } from "./identity.ts";

const DAY_MS = 86_400_000;

/** Most octets of a post the app stores: a full text and title, sealed, with its chain, fit. */
export const MAX_STORED_POST_OCTETS = 128 * 1024;

/** Days a post lives when its writer does not say (docs/broadcast.md). */
export const DEFAULT_POST_DAYS = DEFAULT_POST_TTL_SECONDS / 86_400;
/**
 * Most octets of posts kept per channel (§9): past it, as past the post limit, the
 * earliest dated go. Without it a channel's authors could make this device keep
 * 5 000 posts of 128 KiB, 640 MiB, for each channel it follows.
 */
export const MAX_CHANNEL_OCTETS = 32 * 1024 * 1024;

/** What channels need of the mesh: the daemon hands its MeshNode. */
export interface ChannelMesh {
  follow(channelId: string): void;
  unfollow(channelId: string): void;
  publish(post: Uint8Array): Promise<unknown>;
  /** The posts the mesh holds for a channel (the daemon's MeshNode has it). */
  posts?(channelId: string): readonly { readonly key: string }[];
  /** A post the mesh holds, by key. */
  post?(key: string): Uint8Array | undefined;
}

/** What posting and taking in posts need. */
export interface PostDeps {
  readonly ctx: NodeContext;
  readonly identity: IdentityManager;
  readonly contacts: Contacts;
  readonly verifier: PostVerifier;
  /** Most posts kept per channel: past it, the oldest go. */
  readonly postLimit: number;
  /** Most octets of posts kept per channel; default {@linkcode MAX_CHANNEL_OCTETS}. */
  readonly octetLimit?: number;
}

/** What a person writes. */
export interface NewPost {
  readonly text: string;
  readonly title?: string | null;
  /** 1 to 180 days, default 30. */
  readonly ttlDays?: number;
}

/** This device's author certificate for `channelId`, parsed, or undefined. */
export function ownAuthorCertificate(
  deps: PostDeps,
  channelId: string,
): { certificate: Certificate; expiresAt: number } | undefined {
  const row = deps.ctx.db.get<{ certificate: Uint8Array; expires_at: number }>(
    "SELECT certificate, expires_at FROM channel_authors WHERE channel_id = ? AND author_id = ?",
    channelId,
    deps.identity.id,
  );
  return row && {
    certificate: Certificate.deserialize(toArrayBuffer(row.certificate)),
    expiresAt: row.expires_at,
  };
}

/** Checks what a person asked to post, naming what is wrong. */
export function checkNewPost(post: NewPost): { content: PostContent; ttlDays: number } {
  if (typeof post.text !== "string" || post.text.trim() === "") {
    throw new UserInputError("A post's text must be given");
  }
  const ttlDays = post.ttlDays ?? DEFAULT_POST_DAYS;
  if (!Number.isInteger(ttlDays) || ttlDays < 1 || ttlDays > 180) {
    throw new UserInputError(`A post lives 1 to 180 days, not ${ttlDays}`);
  }
  const title = post.title === undefined || post.title === null || post.title.trim() === ""
    ? null
    : post.title.trim();
  const content = { text: post.text, title };
  const octets = (s: string) => new TextEncoder().encode(s).length;
  if (octets(post.text) > 65_536) {
    throw new UserInputError(
      `A post's text takes at most 65536 UTF-8 octets, not ${octets(post.text)}`,
    );
  }
  if (title !== null && octets(title) > 200) {
    throw new UserInputError(`A post's title takes at most 200 UTF-8 octets, not ${octets(title)}`);
  }
  return { content, ttlDays };
}

/**
 * Writes a post in channel `channelId` with this device's author certificate
 * (the owner's own is renewed first by the caller when needed), and stores it
 * as its own, not yet published.
 */
export async function writePost(
  deps: PostDeps,
  channelId: string,
  post: NewPost,
): Promise<PostInfo> {
  const { content, ttlDays } = checkNewPost(post);
  const { ctx } = deps;
  const row = channelRow(ctx, channelId)!;
  const mine = ownAuthorCertificate(deps, channelId);
  const now = ctx.now();
  if (!mine || mine.expiresAt <= now.getTime() + 10 * 60_000) {
    throw new ConflictError(
      mine
        ? `Cannot post in "${row.title}": your author certificate expired on ${
          new Date(mine.expiresAt).toISOString()
        }; ask the channel's owner for a new one`
        : `Cannot post in "${row.title}": you are not one of its authors`,
    );
  }
  let seal;
  if (row.visibility === "private") {
    const key = newestContentKey(ctx, channelId);
    if (!key) {
      throw new ConflictError(`Cannot post in "${row.title}": no content key has reached you yet`);
    }
    seal = { channelId, key };
  }
  const { identityKeyPair } = await deps.identity.endpoint();
  const bytes = await makePost({
    channelCertificate: linkCertificate(row.link),
    authorCertificate: mine.certificate,
    authorPrivateKey: identityKeyPair.privateKey,
    payload: await encodePostPayload(content, seal),
    ttlSeconds: Math.min(ttlDays * 86_400, MAX_POST_TTL_SECONDS),
    now,
  });
  const stored = await storePost(deps, bytes, { own: true });
  if (!stored) throw new Error("A post just written was already stored");
  return stored;
}

/** How a post reached this device. */
export interface StoreOptions {
  /** Written here: kept until published on the mesh. */
  readonly own?: boolean;
  /** The post already parsed by relaynet-core from these octets, if the caller has it. */
  readonly parsed?: Parcel;
}

/**
 * Checks a post as every hop does (docs/broadcast.md §3.1) for a channel this
 * device has, reads it if it can, and stores it once: the stored post, or null
 * when it was here already. Refuses (a {@linkcode ParcelRefusedError}) a post of a
 * channel it does not have, a forged or expired one, or one too large.
 */
export async function storePost(
  deps: PostDeps,
  bytes: Uint8Array,
  options: StoreOptions = {},
): Promise<PostInfo | null> {
  return (await preparePost(deps, bytes, options))?.() ?? null;
}

/**
 * {@linkcode storePost} in two steps: the checks and reading (asynchronous), then
 * a synchronous store, which may run inside a caller's transaction (that of a
 * fan-out parcel, so the parcel is never taken without its post). Null when the
 * post was here already.
 */
export async function preparePost(
  deps: PostDeps,
  bytes: Uint8Array,
  options: StoreOptions = {},
): Promise<(() => PostInfo | null) | null> {
  const { ctx } = deps;
  if (bytes.length > MAX_STORED_POST_OCTETS) {
    throw new ParcelRefusedError(
      "too-large",
      `Post takes ${bytes.length} octets; Relaymail keeps posts of at most ${MAX_STORED_POST_OCTETS}`,
    );
  }
  const parsed = options.parsed ?? await parseParcel(bytes);
  const recipient = parsed.recipient.id;
  const row = channelRow(ctx, recipient);
  // An unfollowed channel's posts are no longer taken (a fan-out parcel may still come).
  if (!row || (row.following === 0 && !options.own)) {
    throw new ParcelRefusedError(
      "unauthorized",
      `Post of channel ${recipient}, which is not followed here`,
    );
  }
  const post = await readPost(bytes, {
    now: ctx.now(),
    channelId: row.id,
    verifier: deps.verifier,
    parsed,
  });
  if (ctx.db.get("SELECT 1 FROM channel_posts WHERE key = ?", post.key)) return null;
  const opened = await openPostPayload(
    post.payload,
    row.id,
    (id) => contentKeys(ctx, row.id).get(id),
  );
  const postRow: PostRow = {
    key: post.key,
    channel_id: row.id,
    author_id: post.authorId,
    key_id: opened.keyId,
    title: opened.content?.title ?? null,
    text: opened.content?.text ?? null,
    created_at: post.createdAt.getTime(),
    expires_at: post.expiresAt.getTime(),
    read: options.own ? 1 : 0,
  };
  return () => insertPost(deps, bytes, postRow, options);
}

function insertPost(
  deps: PostDeps,
  bytes: Uint8Array,
  postRow: PostRow,
  options: StoreOptions,
): PostInfo | null {
  const { ctx } = deps;
  const inserted = ctx.db.transaction(() => {
    const n = ctx.db.run(
      `INSERT OR IGNORE INTO channel_posts (key, channel_id, author_id, bytes, key_id, title, text,
         created_at, expires_at, received_at, read, own, published)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      postRow.key,
      postRow.channel_id,
      postRow.author_id,
      bytes,
      postRow.key_id,
      postRow.title,
      postRow.text,
      postRow.created_at,
      postRow.expires_at,
      ctx.now().getTime(),
      postRow.read,
      options.own ? 1 : 0,
      // Posts that came from elsewhere are on the mesh already (or need not be).
      options.own ? 0 : 1,
    );
    if (n === 0) return false;
    // Past either bound, the posts dated earliest go (the newest are what readers want).
    ctx.db.run(
      `DELETE FROM channel_posts WHERE key IN (
         SELECT key FROM (
           SELECT key, row_number() OVER w AS n, sum(length(bytes)) OVER w AS octets
           FROM channel_posts WHERE channel_id = ?
           WINDOW w AS (ORDER BY created_at DESC, rowid DESC))
         WHERE n > ? OR octets > ?)`,
      postRow.channel_id,
      deps.postLimit,
      deps.octetLimit ?? MAX_CHANNEL_OCTETS,
    );
    // Dated before all it would displace, a post that came is gone at once: no
    // news, as if it never came (one's own is still answered, as written).
    if (!options.own && !ctx.db.get("SELECT 1 FROM channel_posts WHERE key = ?", postRow.key)) {
      return false;
    }
    emit(ctx, "channel-changed", { channelId: postRow.channel_id, key: postRow.key });
    return true;
  });
  return inserted ? postInfo(postRow, deps.identity.id, (id) => contactName(deps, id)) : null;
}

/**
 * The posts `mesh` holds, of channels followed here, that this device has not:
 * those whose "post" event came while the app could not take it.
 */
export function missedPosts(ctx: NodeContext, mesh: ChannelMesh): Uint8Array[] {
  const missed: Uint8Array[] = [];
  if (!mesh.posts || !mesh.post) return missed;
  for (const { id } of ctx.db.all<{ id: string }>("SELECT id FROM channels WHERE following = 1")) {
    for (const { key } of mesh.posts(id)) {
      if (ctx.db.get("SELECT 1 FROM channel_posts WHERE key = ?", key)) continue;
      const bytes = mesh.post(key);
      if (bytes) missed.push(bytes);
    }
  }
  return missed;
}

/** A contact's name, or null. */
export function contactName(deps: Pick<PostDeps, "contacts">, id: string): string | null {
  try {
    const contact = deps.contacts.get(id);
    return contact?.name ?? null;
  } catch {
    return null;
  }
}

/** Reads the stored posts of `channelId` sealed under `keyId` again, now that the key is here. */
export async function reopenPosts(deps: PostDeps, channelId: string): Promise<number> {
  const { ctx } = deps;
  const keys = contentKeys(ctx, channelId);
  const rows = ctx.db.all<{ key: string; bytes: Uint8Array }>(
    "SELECT key, bytes FROM channel_posts WHERE channel_id = ? AND text IS NULL",
    channelId,
  );
  let opened = 0;
  for (const { key, bytes } of rows) {
    let payload;
    try {
      payload = (await readPost(bytes, { verifier: deps.verifier, now: ctx.now() })).payload;
    } catch {
      continue; // expired meanwhile: maintenance deletes it
    }
    const result = await openPostPayload(payload, channelId, (id) => keys.get(id));
    if (!result.content) continue;
    ctx.db.run(
      "UPDATE channel_posts SET title = ?, text = ? WHERE key = ?",
      result.content.title,
      result.content.text,
      key,
    );
    opened++;
  }
  if (opened > 0) emit(ctx, "channel-changed", { channelId });
  return opened;
}

/** Options of {@linkcode readPosts}. */
export interface ReadOptions {
  /** Default 50, at most 500. */
  readonly limit?: number;
  /** The cursor a previous page returned as `next`. */
  readonly before?: string | null;
}

/** A page of `channelId`'s posts, newest first. */
export function readPosts(
  deps: PostDeps,
  channelId: string,
  options: ReadOptions = {},
): { posts: PostInfo[]; next: string | null } {
  const limit = options.limit ?? 50;
  if (!Number.isInteger(limit) || limit < 1 || limit > 500) {
    throw new UserInputError(`A page holds 1 to 500 posts, not ${limit}`);
  }
  let cursor: [number, number] | null = null;
  if (options.before) {
    const match = /^(\d{1,16})\.(\d{1,16})$/.exec(options.before);
    if (!match) throw new UserInputError(`"${options.before}" is not a cursor a page gave`);
    cursor = [Number(match[1]), Number(match[2])];
  }
  // Posts are dated to the second: those of one second are in the order they came.
  const rows = deps.ctx.db.all<PostRow & { rowid: number }>(
    `SELECT rowid, key, channel_id, author_id, key_id, title, text, created_at, expires_at, read
     FROM channel_posts WHERE channel_id = ? AND expires_at > ?
       AND (? IS NULL OR created_at < ? OR (created_at = ? AND rowid < ?))
     ORDER BY created_at DESC, rowid DESC LIMIT ?`,
    channelId,
    deps.ctx.now().getTime(),
    cursor?.[0] ?? null,
    cursor?.[0] ?? 0,
    cursor?.[0] ?? 0,
    cursor?.[1] ?? 0,
    limit + 1,
  );
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return {
    posts: page.map((r) => postInfo(r, deps.identity.id, (id) => contactName(deps, id))),
    next: rows.length > limit && last ? `${last.created_at}.${last.rowid}` : null,
  };
}

/** Own posts not yet handed to the mesh, unexpired. */
export function unpublished(ctx: NodeContext): { key: string; bytes: Uint8Array }[] {
  return ctx.db.all<{ key: string; bytes: Uint8Array }>(
    "SELECT key, bytes FROM channel_posts WHERE published = 0 AND expires_at > ? ORDER BY created_at",
    ctx.now().getTime(),
  );
}

/** Deletes expired posts; returns the channels that lost some. */
export function purgeExpired(ctx: NodeContext): string[] {
  return ctx.db.transaction(() => {
    const now = ctx.now().getTime();
    const channels = ctx.db.all<{ channel_id: string }>(
      "SELECT DISTINCT channel_id FROM channel_posts WHERE expires_at <= ?",
      now,
    ).map((r) => r.channel_id);
    ctx.db.run("DELETE FROM channel_posts WHERE expires_at <= ?", now);
    for (const channelId of channels) emit(ctx, "channel-changed", { channelId });
    return channels;
  });
}

export { DAY_MS };
