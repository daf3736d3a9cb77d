/**
 * Broadcast channels in Relaymail (docs/broadcast.md): the channels this device
 * owns, writes to or follows, and their posts. Posts travel on the mesh (the
 * daemon attaches a {@linkcode ChannelMesh}); without one, own posts wait and are
 * published when the mesh next runs. Owners with a gateway also fan posts out
 * as parcels to subscribers who are contacts.
 *
 * @module
 */
import {
  createChannelKey,
  needsRenewal,
  PostVerifier,
  renewChannelCertificate,
} from "../../mesh/posts.ts";
import { newContentKey } from "./channels_content.ts";
import { prepareChannelMessage } from "./channels_incoming.ts";
import {
  channelLinkText,
  checkTitle,
  makeChannelLink,
  parseChannelLinkText,
} from "./channels_link.ts";
import { encodeFollowNotice } from "./channels_messages.ts";
import {
  addAuthor,
  addSubscriber,
  fanOut,
  issueAuthor,
  listAuthors,
  listSubscribers,
  type PeopleDeps,
  removeAuthor,
  removeSubscriber,
  requireOwner,
  sendToContact,
  signedGrant,
} from "./channels_people.ts";
import {
  type ChannelMesh,
  missedPosts,
  type NewPost,
  purgeExpired,
  type ReadOptions,
  readPosts,
  reopenPosts,
  storePost,
  unpublished,
  writePost,
} from "./channels_posts.ts";
import {
  type AuthorInfo,
  type ChannelInfo,
  channelInfo,
  channelRow,
  findChannel,
  linkCertificate,
  type PostInfo,
  requireFollowRoom,
  type SubscriberInfo,
} from "./channels_store.ts";
import type { Contact, Contacts } from "./contacts.ts";
import { emit, type NodeContext } from "./context.ts";
import { ConflictError, UserInputError } from "./errors.ts";
import type { IdentityManager } from "./identity.ts";
import type { Outbox } from "./outbox.ts";
import { MessageType } from "./protocol/messages.ts";
import type { Effect, Incoming } from "./types.ts";

export type { AuthorInfo, ChannelInfo, ChannelMesh, PostInfo, SubscriberInfo };

const DAY_MS = 86_400_000;
/** Author certificates are renewed when fewer days than this are left. */
const AUTHOR_RENEWAL_DAYS = 10;

/** What {@linkcode Channels.maintain} did. */
export interface ChannelMaintenance {
  readonly certificatesRenewed: number;
  readonly authorsRenewed: number;
  readonly channelsWithExpiredPosts: number;
  /** Posts made while there was no gateway, fanned out now that there is. */
  readonly postsFannedOut: number;
}

/** The channels of one data directory. */
export class Channels {
  readonly #deps: PeopleDeps;
  #mesh: ChannelMesh | null = null;
  /**
   * Whether this device fans its channels' posts out as parcels: by default when
   * it is registered with a gateway (docs/broadcast.md §8).
   */
  fanOutEnabled: () => boolean;

  constructor(ctx: NodeContext, identity: IdentityManager, contacts: Contacts, outbox: Outbox) {
    this.#deps = {
      ctx,
      identity,
      contacts,
      outbox,
      verifier: new PostVerifier(),
      postLimit: ctx.tunables.channelPostLimit,
    };
    this.fanOutEnabled = () => identity.gatewayRegistration() !== null;
  }

  get #ctx(): NodeContext {
    return this.#deps.ctx;
  }

  /**
   * Joins the mesh: follows every channel followed here and publishes the own
   * posts still waiting. Until {@linkcode detach}, new posts are published at once.
   */
  async attach(mesh: ChannelMesh): Promise<void> {
    this.#mesh = mesh;
    // The mesh keeps what it follows: a channel unfollowed while it was not running
    // (from the CLI without a daemon, say) is unfollowed there now.
    for (
      const { id, following } of this.#ctx.db.all<{ id: string; following: number }>(
        "SELECT id, following FROM channels",
      )
    ) {
      if (following === 1) mesh.follow(id);
      else mesh.unfollow(id);
    }
    await this.#publishWaiting();
    // Posts the mesh took whose "post" event this device missed (it stopped first).
    for (const bytes of missedPosts(this.#ctx, mesh)) {
      await this.receivePost(bytes).catch(() => null);
    }
  }

  /** Leaves the mesh: posts made from now on wait for the next {@linkcode attach}. */
  detach(): void {
    this.#mesh = null;
  }

  async #publishWaiting(): Promise<void> {
    for (const { key, bytes } of unpublished(this.#ctx)) {
      const mesh = this.#mesh;
      if (!mesh) return;
      try {
        await mesh.publish(bytes);
        this.#ctx.db.run("UPDATE channel_posts SET published = 1 WHERE key = ?", key);
      } catch (error) {
        // Refused by the mesh (expired meanwhile, say): the next attach retries, and
        // maintenance deletes it once expired.
        console.error(
          `Relaymail: post ${key.slice(0, 12)} not published: ${(error as Error).message}`,
        );
      }
    }
  }

  /** Creates a channel owned by this device; the owner is its first author. */
  async create(title: unknown, visibility: unknown = "public"): Promise<ChannelInfo> {
    if (typeof title !== "string") throw new UserInputError("A channel's title must be text");
    const checked = checkTitle(title);
    if (visibility !== "public" && visibility !== "private") {
      throw new UserInputError(`A channel is "public" or "private", not "${visibility}"`);
    }
    const { ctx, identity } = this.#deps;
    requireFollowRoom(ctx);
    const key = await createChannelKey(ctx.now());
    await ctx.keys.privateKeyStore.saveIdentityKey(key.id, key.privateKey);
    const link = await makeChannelLink(key.certificate, key.privateKey, checked);
    ctx.db.transaction(() => {
      ctx.db.run(
        `INSERT INTO channels (id, title, visibility, role, following, link, certificate_expires_at, created_at)
         VALUES (?, ?, ?, 'owner', 1, ?, ?, ?)`,
        key.id,
        checked,
        visibility,
        link,
        key.certificate.expiryDate.getTime(),
        ctx.now().getTime(),
      );
      if (visibility === "private") this.#insertKey(key.id);
    });
    const row = channelRow(ctx, key.id)!;
    const { identityKeyPair } = await identity.endpoint();
    await issueAuthor(this.#deps, row, identity.id, identityKeyPair.publicKey, 30);
    this.#mesh?.follow(key.id);
    return this.get(key.id);
  }

  #insertKey(channelId: string): void {
    const key = newContentKey();
    this.#ctx.db.run(
      "INSERT INTO channel_content_keys (channel_id, key_id, key, created_at) VALUES (?, ?, ?, ?)",
      channelId,
      key.id,
      key.key,
      this.#ctx.now().getTime(),
    );
  }

  /** Every channel, owned ones first, then by title. */
  list(): ChannelInfo[] {
    const me = this.#deps.identity.id;
    return this.#ctx.db.all<Parameters<typeof channelInfo>[1]>(
      "SELECT * FROM channels ORDER BY role = 'owner' DESC, title COLLATE NOCASE, id",
    ).map((row) => channelInfo(this.#ctx, row, me));
  }

  /** The channel `reference` (id, id prefix or title). */
  get(reference: unknown): ChannelInfo {
    return channelInfo(this.#ctx, findChannel(this.#ctx, reference), this.#deps.identity.id);
  }

  /** A channel's link text: public channels, or private ones for their owner. */
  link(reference: unknown): { text: string } {
    const row = findChannel(this.#ctx, reference);
    if (row.visibility === "private" && row.role !== "owner") {
      throw new ConflictError(`"${row.title}" is private: only its owner hands out its link`);
    }
    return { text: channelLinkText(row.link) };
  }

  /** Follows the channel a link names; needs no answer from its owner. */
  async follow(text: unknown): Promise<ChannelInfo> {
    if (typeof text !== "string") throw new UserInputError("A channel link must be text");
    const link = await parseChannelLinkText(text);
    const { ctx } = this.#deps;
    ctx.db.transaction(() => {
      requireFollowRoom(ctx, link.channelId);
      ctx.db.run(
        `INSERT INTO channels (id, title, visibility, role, following, link, certificate_expires_at, created_at)
         VALUES (?, ?, 'public', 'follower', 1, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET following = 1`,
        link.channelId,
        link.title,
        link.bytes,
        link.certificate.expiryDate.getTime(),
        ctx.now().getTime(),
      );
      emit(ctx, "channel-changed", { channelId: link.channelId });
    });
    this.#mesh?.follow(link.channelId);
    return this.get(link.channelId);
  }

  /** Stops following a channel: its posts are no longer received (those held stay until they expire). */
  async unfollow(reference: unknown): Promise<{ channel: string }> {
    const row = findChannel(this.#ctx, reference);
    if (row.role === "owner") {
      throw new ConflictError(`"${row.title}" is your own channel: you always follow it`);
    }
    const notified = this.#ctx.db.transaction(() => {
      this.#ctx.db.run("UPDATE channels SET following = 0 WHERE id = ?", row.id);
      emit(this.#ctx, "channel-changed", { channelId: row.id });
      const ids = this.#ctx.db.all<{ contact_id: string }>(
        "SELECT contact_id FROM channel_subscribers WHERE channel_id = ? AND kind = 'notified'",
        row.id,
      ).map((r) => r.contact_id);
      this.#ctx.db.run(
        "DELETE FROM channel_subscribers WHERE channel_id = ? AND kind = 'notified'",
        row.id,
      );
      return ids;
    });
    this.#mesh?.unfollow(row.id);
    const notice = encodeFollowNotice({ channelId: row.id, following: false });
    for (const id of notified) {
      await sendToContact(this.#deps, id, MessageType.CHANNEL_FOLLOW, notice);
    }
    return { channel: row.id };
  }

  /** Posts in a channel this device may write to. */
  async post(reference: unknown, post: NewPost): Promise<PostInfo> {
    const row = findChannel(this.#ctx, reference);
    if (row.role === "owner") await this.#ensureOwnAuthor(row.id, post.ttlDays ?? 30);
    const made = await writePost(this.#deps, row.id, post);
    await this.#afterStored(made.key);
    return made;
  }

  /** The owner's own certificate, renewed when it would lapse before a post of `days` days. */
  async #ensureOwnAuthor(channelId: string, days: number): Promise<void> {
    const { identity, ctx } = this.#deps;
    const mine = ctx.db.get<{ expires_at: number }>(
      "SELECT expires_at FROM channel_authors WHERE channel_id = ? AND author_id = ?",
      channelId,
      identity.id,
    );
    const wanted = ctx.now().getTime() + (Number.isInteger(days) ? days : 30) * DAY_MS;
    if (mine && mine.expires_at >= wanted) return;
    const { identityKeyPair } = await identity.endpoint();
    const length = Math.min(181, Math.max(30, Number.isInteger(days) ? days + 1 : 30));
    await issueAuthor(
      this.#deps,
      channelRow(ctx, channelId)!,
      identity.id,
      identityKeyPair.publicKey,
      length,
    );
  }

  /** Publishes, fans out and notifies after a post was stored. */
  async #afterStored(key: string): Promise<void> {
    await this.#publishWaiting();
    if (this.fanOutEnabled()) await fanOut(this.#deps, key);
    await this.#notifyAuthor(key);
  }

  /**
   * Tells a post's author, when they are a contact, that this device follows the
   * channel (once per channel and contact): if they own it, their fan-out includes
   * us (docs/broadcast.md §8).
   */
  async #notifyAuthor(key: string): Promise<void> {
    const { ctx } = this.#deps;
    const post = ctx.db.get<
      { channel_id: string; author_id: string; role: string; following: number }
    >(
      `SELECT p.channel_id, p.author_id, c.role, c.following FROM channel_posts p
       JOIN channels c ON c.id = p.channel_id WHERE p.key = ?`,
      key,
    );
    if (!post || post.role === "owner" || post.following === 0) return;
    if (post.author_id === this.#deps.identity.id || !this.#deps.contacts.get(post.author_id)) {
      return;
    }
    const added = ctx.db.run(
      `INSERT OR IGNORE INTO channel_subscribers (channel_id, contact_id, kind, added_at)
       VALUES (?, ?, 'notified', ?)`,
      post.channel_id,
      post.author_id,
      ctx.now().getTime(),
    );
    if (added === 0) return;
    const notice = encodeFollowNotice({ channelId: post.channel_id, following: true });
    await sendToContact(this.#deps, post.author_id, MessageType.CHANNEL_FOLLOW, notice);
  }

  /**
   * Takes a post from the mesh (or a fan-out parcel): checked, read if it can be,
   * stored once. Null when it was here already; a refusal when it is not valid.
   */
  async receivePost(bytes: Uint8Array): Promise<PostInfo | null> {
    const stored = await storePost(this.#deps, bytes);
    if (stored) await this.#afterStored(stored.key);
    return stored;
  }

  /** A page of a channel's posts, newest first; marks nothing read. */
  read(reference: unknown, options: ReadOptions = {}): { posts: PostInfo[]; next: string | null } {
    return readPosts(this.#deps, findChannel(this.#ctx, reference).id, options);
  }

  /** Marks every post of a channel read. */
  markRead(reference: unknown): { channel: string } {
    const row = findChannel(this.#ctx, reference);
    this.#ctx.db.transaction(() => {
      this.#ctx.db.run(
        "UPDATE channel_posts SET read = 1 WHERE channel_id = ? AND read = 0",
        row.id,
      );
      emit(this.#ctx, "channel-changed", { channelId: row.id });
    });
    return { channel: row.id };
  }

  /** A channel's authors (its owner sees them all; an author sees itself). */
  authors(reference: unknown): AuthorInfo[] {
    return listAuthors(this.#deps, findChannel(this.#ctx, reference));
  }

  /** Authorises a contact to post, sending them the certificate end to end. */
  addAuthor(reference: unknown, contact: unknown, days?: unknown): Promise<AuthorInfo> {
    return addAuthor(this.#deps, findChannel(this.#ctx, reference), contact, days);
  }

  /** Stops renewing an author's certificate: it lapses at its expiry. */
  removeAuthor(reference: unknown, author: unknown): AuthorInfo[] {
    return removeAuthor(this.#deps, findChannel(this.#ctx, reference), author);
  }

  /** The contacts a channel's posts fan out to. */
  subscribers(reference: unknown): SubscriberInfo[] {
    const row = findChannel(this.#ctx, reference);
    requireOwner(row);
    return listSubscribers(this.#deps, row);
  }

  /** Adds a subscriber: sends them the link (and a private channel's content keys). */
  addSubscriber(reference: unknown, contact: unknown): Promise<SubscriberInfo[]> {
    return addSubscriber(this.#deps, findChannel(this.#ctx, reference), contact);
  }

  /** Removes a subscriber; a private channel's content key is rotated. */
  removeSubscriber(reference: unknown, contact: unknown): Promise<SubscriberInfo[]> {
    return removeSubscriber(this.#deps, findChannel(this.#ctx, reference), contact);
  }

  /** Prepares a channel service message from a contact, for the receiver. */
  prepareMessage(incoming: Incoming, sender: Contact): Promise<Effect> {
    return prepareChannelMessage(
      this.#deps,
      {
        granted: async (channelId) => {
          this.#mesh?.follow(channelId);
          await reopenPosts(this.#deps, channelId);
        },
        stored: (key) => this.#afterStored(key),
      },
      incoming,
      sender,
    );
  }

  /**
   * Housekeeping: renews owned channels' certificates and the authors' that are
   * due (sending each author its new one), deletes expired posts.
   */
  async maintain(): Promise<ChannelMaintenance> {
    const { ctx } = this.#deps;
    const now = ctx.now();
    let certificatesRenewed = 0;
    let authorsRenewed = 0;
    for (
      const row of ctx.db.all<Parameters<typeof channelInfo>[1]>(
        "SELECT * FROM channels WHERE role = 'owner'",
      )
    ) {
      let current = row;
      if (needsRenewal(linkCertificate(row.link), now)) {
        const privateKey = await ctx.keys.privateKeyStore.retrieveIdentityKey(row.id);
        if (!privateKey) continue;
        const certificate = await renewChannelCertificate(privateKey, now);
        const link = await makeChannelLink(certificate, privateKey, row.title);
        ctx.db.run(
          "UPDATE channels SET link = ?, certificate_expires_at = ? WHERE id = ?",
          link,
          certificate.expiryDate.getTime(),
          row.id,
        );
        current = channelRow(ctx, row.id)!;
        certificatesRenewed++;
      }
      const due = ctx.db.all<{ author_id: string; days: number }>(
        `SELECT author_id, days FROM channel_authors WHERE channel_id = ? AND renew = 1 AND expires_at < ?`,
        row.id,
        now.getTime() + AUTHOR_RENEWAL_DAYS * DAY_MS,
      );
      for (const author of due) {
        const key = author.author_id === this.#deps.identity.id
          ? (await this.#deps.identity.endpoint()).identityKeyPair.publicKey
          : await ctx.keys.publicKeyStore.retrieveIdentityKey(author.author_id);
        if (!key) continue;
        const der = await issueAuthor(this.#deps, current, author.author_id, key, author.days);
        if (author.author_id !== this.#deps.identity.id) {
          await sendToContact(
            this.#deps,
            author.author_id,
            MessageType.CHANNEL_AUTHOR,
            await signedGrant(this.#deps, current, author.author_id, der),
          );
        }
        authorsRenewed++;
      }
    }
    const expired = purgeExpired(ctx);
    await this.#publishWaiting();
    return {
      certificatesRenewed,
      authorsRenewed,
      channelsWithExpiredPosts: expired.length,
      postsFannedOut: await this.#fanOutWaiting(),
    };
  }

  /**
   * Fans out the owned channels' posts made while this device had no gateway
   * (from the CLI before the daemon first registered, say), once it has one.
   */
  async #fanOutWaiting(): Promise<number> {
    if (!this.fanOutEnabled()) return 0;
    const { ctx } = this.#deps;
    const waiting = ctx.db.all<{ key: string }>(
      `SELECT p.key FROM channel_posts p JOIN channels c ON c.id = p.channel_id
       WHERE c.role = 'owner' AND p.fanned_out = 0 AND p.expires_at > ? ORDER BY p.created_at`,
      ctx.now().getTime(),
    );
    for (const { key } of waiting) await fanOut(this.#deps, key);
    return waiting.length;
  }
}
