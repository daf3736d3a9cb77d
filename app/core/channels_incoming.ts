/**
 * Channel service messages from contacts (docs/broadcast.md §6–8): an author
 * certificate, a private channel's keys, a follow notice, a post fanned out as a
 * parcel. Each is checked before the transaction that takes the parcel, and
 * bounded: what a contact can make this device store is listed in §9.
 *
 * @module
 */
import { Certificate } from "@relaycorp/relaynet-core";
import { pkijsCertificateOf } from "../../bindings/_pkijs.ts";
import { ParcelRefusedError, parseParcel, toArrayBuffer } from "../../bindings/validation.ts";
import { type ChannelLink, checkChannelLink, signedByChannel } from "./channels_link.ts";
import {
  type ChannelGrant,
  decodeChannelGrant,
  decodeFollowNotice,
  type FollowNotice,
  GRANT_SIGNATURE_LABEL,
  grantSignedInput,
} from "./channels_messages.ts";
import { type PeopleDeps, trimKeys } from "./channels_people.ts";
import { preparePost } from "./channels_posts.ts";
import { channelRow, type PostInfo } from "./channels_store.ts";
import type { Contact } from "./contacts.ts";
import { emit } from "./context.ts";
import { MessageType } from "./protocol/messages.ts";
import type { Effect, Incoming } from "./types.ts";

/** Most channels one contact can make this device keep (as author or subscriber). */
export const MAX_CHANNELS_PER_CONTACT = 100;

/** What the receiver does after taking a channel message. */
export interface IncomingHooks {
  /** A channel was added or its keys changed: follow it on the mesh, read held posts again. */
  granted(channelId: string): Promise<void>;
  /** A post that arrived as a parcel was stored (with the parcel): publish, notify. */
  stored(key: string): Promise<void>;
}

/** The service message types handled here. */
export const CHANNEL_MESSAGE_TYPES: readonly string[] = [
  MessageType.CHANNEL_AUTHOR,
  MessageType.CHANNEL_KEYS,
  MessageType.CHANNEL_FOLLOW,
  MessageType.CHANNEL_POST,
];

function badContent(what: string, error: unknown): ParcelRefusedError {
  return new ParcelRefusedError(
    "bad-content",
    `${what} is malformed: ${error instanceof Error ? error.message : error}`,
    { cause: error },
  );
}

/** Prepares what a channel message from `sender` changes. */
export async function prepareChannelMessage(
  deps: PeopleDeps,
  hooks: IncomingHooks,
  incoming: Incoming,
  sender: Contact,
): Promise<Effect> {
  const content = new Uint8Array(incoming.message.content);
  switch (incoming.message.type) {
    case MessageType.CHANNEL_AUTHOR:
    case MessageType.CHANNEL_KEYS:
      return await prepareGrant(deps, hooks, content, sender, incoming.message.type);
    case MessageType.CHANNEL_FOLLOW: {
      let notice: FollowNotice;
      try {
        notice = decodeFollowNotice(content);
      } catch (error) {
        throw badContent("Follow notice", error);
      }
      return { apply: () => applyFollow(deps, notice, sender), savesSenderSessionKey: true };
    }
    default: {
      // A post fanned out: checked now as a mesh post is, stored with the parcel, so
      // that a crash cannot leave the parcel taken and its post lost.
      let parsed;
      try {
        parsed = await parseParcel(content);
      } catch (error) {
        throw badContent("Fanned-out post", error);
      }
      const store = await preparePost(deps, content, { parsed });
      let stored: PostInfo | null = null;
      return {
        apply: () => {
          stored = store?.() ?? null;
        },
        after: () => stored ? hooks.stored(stored.key) : Promise.resolve(),
        savesSenderSessionKey: true,
      };
    }
  }
}

async function prepareGrant(
  deps: PeopleDeps,
  hooks: IncomingHooks,
  content: Uint8Array,
  sender: Contact,
  type: string,
): Promise<Effect> {
  let grant: ChannelGrant;
  let link: ChannelLink;
  try {
    grant = decodeChannelGrant(content);
    link = await checkChannelLink(grant.link);
  } catch (error) {
    throw badContent("Channel grant", error);
  }
  // Only the channel's owner can give its keys or make this device an author: the
  // grant is signed by the channel key, for this device (§6). Without this, any
  // contact could claim a channel followed by its link, make it private under
  // keys of their own and shut its owner out.
  const signed = grant.signature !== undefined && await signedByChannel(
    link.certificate,
    GRANT_SIGNATURE_LABEL,
    grantSignedInput(grant, deps.identity.id),
    grant.signature,
  );
  if (!signed) {
    throw new ParcelRefusedError(
      "unauthorized",
      `Channel grant from ${sender.name} is not signed by channel ${link.channelId} for this device`,
    );
  }
  const existing = channelRow(deps.ctx, link.channelId);
  if (existing?.role === "owner") {
    throw new ParcelRefusedError("unauthorized", `Channel ${link.channelId} is this device's own`);
  }
  if (existing?.source_id && existing.source_id !== sender.id) {
    throw new ParcelRefusedError(
      "unauthorized",
      `Channel ${link.channelId} came from another contact; ${sender.name} cannot change it`,
    );
  }
  if (!existing) {
    const held = deps.ctx.db.get<{ n: number }>(
      "SELECT count(*) AS n FROM channels WHERE source_id = ?",
      sender.id,
    )!.n;
    if (held >= MAX_CHANNELS_PER_CONTACT) {
      throw new ParcelRefusedError(
        "bad-content",
        `${sender.name} gave this device ${held} channels already, the most one contact may`,
      );
    }
  }
  let author: { der: Uint8Array; expiresAt: number } | null = null;
  if (type === MessageType.CHANNEL_AUTHOR) {
    if (!grant.certificate) throw badContent("Author grant", "it carries no certificate");
    author = await checkAuthorCertificate(deps, grant.certificate, link);
  }
  const now = deps.ctx.now().getTime();
  return {
    apply: () => {
      const visibility = grant.keys.length > 0 ? "private" : (existing?.visibility ?? "public");
      deps.ctx.db.run(
        `INSERT INTO channels (id, title, visibility, role, following, link, certificate_expires_at,
           source_id, created_at)
         VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET title = excluded.title, visibility = excluded.visibility,
           role = CASE WHEN excluded.role = 'author' THEN 'author' ELSE channels.role END,
           following = 1, link = excluded.link,
           certificate_expires_at = excluded.certificate_expires_at, source_id = excluded.source_id`,
        link.channelId,
        link.title,
        visibility,
        author ? "author" : "follower",
        link.bytes,
        link.certificate.expiryDate.getTime(),
        sender.id,
        now,
      );
      for (const key of grant.keys) {
        deps.ctx.db.run(
          `INSERT OR IGNORE INTO channel_content_keys (channel_id, key_id, key, created_at)
           VALUES (?, ?, ?, ?)`,
          link.channelId,
          key.id,
          key.key,
          Math.min(key.createdAt.getTime(), now),
        );
      }
      trimKeys(deps, link.channelId);
      if (author) {
        deps.ctx.db.run(
          `INSERT INTO channel_authors (channel_id, author_id, certificate, expires_at)
           VALUES (?, ?, ?, ?)
           ON CONFLICT (channel_id, author_id) DO UPDATE SET certificate = excluded.certificate,
             expires_at = excluded.expires_at`,
          link.channelId,
          deps.identity.id,
          author.der,
          author.expiresAt,
        );
      }
      emit(deps.ctx, "channel-changed", { channelId: link.channelId });
    },
    after: () => hooks.granted(link.channelId),
    savesSenderSessionKey: true,
  };
}

/** Checks that `der` certifies this identity's key, issued by the channel, valid now. */
async function checkAuthorCertificate(
  deps: PeopleDeps,
  der: Uint8Array,
  link: ChannelLink,
): Promise<{ der: Uint8Array; expiresAt: number }> {
  let certificate: Certificate;
  try {
    certificate = Certificate.deserialize(toArrayBuffer(der));
  } catch (error) {
    throw badContent("Author certificate", error);
  }
  if (await certificate.calculateSubjectId() !== deps.identity.id) {
    throw new ParcelRefusedError("unauthorized", "Author certificate is for another key");
  }
  // Checked at this device's clock (relaynet-core's path builder uses the machine's).
  let signed = false;
  try {
    signed = certificate.getIssuerId() === link.channelId &&
      await pkijsCertificateOf(certificate).verify(pkijsCertificateOf(link.certificate));
  } catch {
    signed = false;
  }
  if (!signed) {
    throw new ParcelRefusedError(
      "unauthorized",
      `Author certificate is not issued by channel ${link.channelId}`,
    );
  }
  const now = deps.ctx.now().getTime();
  if (certificate.expiryDate.getTime() <= now) {
    throw new ParcelRefusedError("expired", "Author certificate has expired");
  }
  return { der, expiresAt: certificate.expiryDate.getTime() };
}

/** Records (or forgets) that `sender` follows a public channel this device owns. */
function applyFollow(deps: PeopleDeps, notice: FollowNotice, sender: Contact): void {
  const row = channelRow(deps.ctx, notice.channelId);
  // A notice for a channel that is not ours is no matter: it is accepted and dropped.
  // So is one for a private channel: only the owner chooses who gets its posts (a
  // removed subscriber must not come back as a "follower").
  if (row?.role !== "owner" || row.visibility !== "public") return;
  if (notice.following) {
    deps.ctx.db.run(
      `INSERT OR IGNORE INTO channel_subscribers (channel_id, contact_id, kind, added_at)
       VALUES (?, ?, 'follower', ?)`,
      row.id,
      sender.id,
      deps.ctx.now().getTime(),
    );
  } else {
    deps.ctx.db.run(
      "DELETE FROM channel_subscribers WHERE channel_id = ? AND contact_id = ? AND kind = 'follower'",
      row.id,
      sender.id,
    );
  }
  emit(deps.ctx, "channel-changed", { channelId: row.id });
}
