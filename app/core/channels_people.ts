/**
 * Who writes and who reads a channel, on its owner's device (docs/broadcast.md
 * §6–8): author certificates issued to contacts and renewed, subscribers given
 * the link and content keys end to end, the key rotated when one is removed,
 * and the owner's fan-out of posts as parcels.
 *
 * @module
 */
import { authorizeAuthor } from "../../mesh/posts.ts";
import { newContentKey } from "./channels_content.ts";
import { signWithChannelKey } from "./channels_link.ts";
import {
  CHANNEL_MESSAGE_LIMITS,
  type ChannelGrant,
  encodeChannelGrant,
  GRANT_SIGNATURE_LABEL,
  grantSignedInput,
} from "./channels_messages.ts";
import { contactName, type PostDeps } from "./channels_posts.ts";
import {
  type AuthorInfo,
  type ChannelRow,
  linkCertificate,
  type SubscriberInfo,
} from "./channels_store.ts";
import { emit } from "./context.ts";
import { ConflictError, NotFoundError, UserInputError } from "./errors.ts";
import type { Outbox, ParcelKind, PreparedParcel } from "./outbox.ts";
import { makeParcel } from "./outbox.ts";
import { MessageType } from "./protocol/messages.ts";

const DAY_MS = 86_400_000;
/** Most authors a channel may have (its owner among them). */
export const MAX_AUTHORS = 1_000;
/** Parcels carrying channel messages are listed as this kind in the outbox. */
const CHANNEL_PARCEL_KIND: ParcelKind = "channel";

/** What the owner's side needs beyond posting. */
export interface PeopleDeps extends PostDeps {
  readonly outbox: Outbox;
}

/** Sends service message `type` to contact `contactId` end to end; false when we cannot write to them now. */
export async function sendToContact(
  deps: PeopleDeps,
  contactId: string,
  type: string,
  content: Uint8Array,
): Promise<boolean> {
  const parcel = await contactParcel(deps, contactId, type, content);
  if (!parcel) return false;
  deps.ctx.db.transaction(() => {
    deps.outbox.insert(parcel);
    emit(deps.ctx, "outbox-changed");
  });
  return true;
}

/** The parcel {@linkcode sendToContact} queues, made but not queued; null as it returns false. */
async function contactParcel(
  deps: PeopleDeps,
  contactId: string,
  type: string,
  content: Uint8Array,
): Promise<PreparedParcel | null> {
  const contact = deps.contacts.get(contactId);
  if (!contact || contact.state === "blocked") return null;
  const channel = await deps.identity.channel(contactId);
  if (!channel) return null;
  return await makeParcel(deps.ctx, channel, CHANNEL_PARCEL_KIND, type, content);
}

/** The owner's channel `row`, or a conflict naming who owns it. */
export function requireOwner(row: ChannelRow): void {
  if (row.role !== "owner") {
    throw new ConflictError(
      `Only the owner of "${row.title}" can do this; you are its ${row.role}`,
    );
  }
}

/** The link and (private) content keys of `row`, with `certificate` for an author. */
export function grantOf(deps: PeopleDeps, row: ChannelRow, certificate?: Uint8Array): ChannelGrant {
  const keys = row.visibility === "private"
    ? deps.ctx.db.all<{ key_id: string; key: Uint8Array; created_at: number }>(
      `SELECT key_id, key, created_at FROM channel_content_keys WHERE channel_id = ?
       ORDER BY created_at DESC, rowid DESC LIMIT ?`,
      row.id,
      CHANNEL_MESSAGE_LIMITS.keys,
    ).reverse().map((k) => ({ id: k.key_id, key: k.key, createdAt: new Date(k.created_at) }))
    : [];
  return { link: row.link, keys, certificate };
}

/**
 * {@linkcode grantOf} for contact `recipientId`, signed by the channel key and
 * encoded: only the owner's device can make one (§6).
 */
export async function signedGrant(
  deps: PeopleDeps,
  row: ChannelRow,
  recipientId: string,
  certificate?: Uint8Array,
): Promise<Uint8Array> {
  const privateKey = await deps.ctx.keys.privateKeyStore.retrieveIdentityKey(row.id);
  if (!privateKey) throw new Error(`The private key of channel ${row.id} is missing`);
  const grant = grantOf(deps, row, certificate);
  const signature = await signWithChannelKey(
    privateKey,
    GRANT_SIGNATURE_LABEL,
    grantSignedInput(grant, recipientId),
  );
  return encodeChannelGrant({ ...grant, signature });
}

/** Issues (or renews) `authorId`'s certificate for `days` days and records it. */
export async function issueAuthor(
  deps: PeopleDeps,
  row: ChannelRow,
  authorId: string,
  authorPublicKey: CryptoKey,
  days: number,
): Promise<Uint8Array> {
  const privateKey = await deps.ctx.keys.privateKeyStore.retrieveIdentityKey(row.id);
  if (!privateKey) throw new Error(`The private key of channel ${row.id} is missing`);
  const now = deps.ctx.now();
  const certificate = await authorizeAuthor({
    channel: { certificate: linkCertificate(row.link), privateKey },
    authorPublicKey,
    expiresAt: new Date(now.getTime() + days * DAY_MS),
    now,
  });
  const der = new Uint8Array(certificate.serialize());
  deps.ctx.db.transaction(() => {
    deps.ctx.db.run(
      `INSERT INTO channel_authors (channel_id, author_id, certificate, expires_at, renew, days)
       VALUES (?, ?, ?, ?, 1, ?)
       ON CONFLICT (channel_id, author_id) DO UPDATE SET certificate = excluded.certificate,
         expires_at = excluded.expires_at, renew = 1, days = excluded.days`,
      row.id,
      authorId,
      der,
      certificate.expiryDate.getTime(),
      days,
    );
    emit(deps.ctx, "channel-changed", { channelId: row.id });
  });
  return der;
}

/** Checks a number of days: 1 to 180, default 30. */
export function checkDays(days: unknown, what: string): number {
  if (days === undefined || days === null) return 30;
  if (typeof days !== "number" || !Number.isInteger(days) || days < 1 || days > 180) {
    throw new UserInputError(`${what} takes 1 to 180 days, not ${days}`);
  }
  return days;
}

/** The authors of `row`, as its owner sees them. */
export function listAuthors(deps: PeopleDeps, row: ChannelRow): AuthorInfo[] {
  const me = deps.identity.id;
  return deps.ctx.db.all<{ author_id: string; expires_at: number; renew: number }>(
    "SELECT author_id, expires_at, renew FROM channel_authors WHERE channel_id = ? ORDER BY expires_at DESC",
    row.id,
  ).map((a) => ({
    id: a.author_id,
    name: a.author_id === me ? "you" : contactName(deps, a.author_id),
    owner: row.role === "owner" && a.author_id === me,
    expiresAt: new Date(a.expires_at),
    renewed: a.renew === 1,
  }));
}

/** Authorises contact `contactRef` to post in `row` and sends them the certificate. */
export async function addAuthor(
  deps: PeopleDeps,
  row: ChannelRow,
  contactRef: unknown,
  daysGiven: unknown,
): Promise<AuthorInfo> {
  requireOwner(row);
  const days = checkDays(daysGiven, "An author certificate");
  const contact = findContact(deps, contactRef);
  const count = deps.ctx.db.get<{ n: number }>(
    "SELECT count(*) AS n FROM channel_authors WHERE channel_id = ?",
    row.id,
  )!.n;
  if (count >= MAX_AUTHORS) {
    throw new ConflictError(`"${row.title}" has ${MAX_AUTHORS} authors already, the most it may`);
  }
  const key = await deps.ctx.keys.publicKeyStore.retrieveIdentityKey(contact.id);
  if (!key) throw new ConflictError(`The identity key of ${contact.name} is not known yet`);
  if (!await deps.identity.channel(contact.id)) {
    throw new ConflictError(
      `Cannot write to ${contact.name} now (pairing not finished, or their authorisation lapsed)`,
    );
  }
  const certificate = await issueAuthor(deps, row, contact.id, key, days);
  await sendToContact(
    deps,
    contact.id,
    MessageType.CHANNEL_AUTHOR,
    await signedGrant(deps, row, contact.id, certificate),
  );
  return listAuthors(deps, row).find((a) => a.id === contact.id)!;
}

/** Stops renewing author `authorRef` (an id, an id prefix or a contact's name). */
export function removeAuthor(deps: PeopleDeps, row: ChannelRow, authorRef: unknown): AuthorInfo[] {
  requireOwner(row);
  if (typeof authorRef !== "string" || authorRef.trim() === "") {
    throw new UserInputError(
      "The author must be given: their id, an id prefix or a contact's name",
    );
  }
  const ref = authorRef.trim().toLowerCase();
  const authors = listAuthors(deps, row).filter((a) =>
    a.id === ref || (ref.length >= 6 && (a.id.startsWith(ref) || a.id.slice(1).startsWith(ref))) ||
    a.name?.toLowerCase() === ref
  );
  if (authors.length === 0) {
    throw new NotFoundError(`"${authorRef}" is not an author of "${row.title}"`);
  }
  if (authors.length > 1) {
    throw new UserInputError(
      `"${authorRef}" matches ${authors.length} authors: give more of the id`,
    );
  }
  if (authors[0].owner) {
    throw new UserInputError("The owner's own author certificate cannot be removed");
  }
  deps.ctx.db.transaction(() => {
    deps.ctx.db.run(
      "UPDATE channel_authors SET renew = 0 WHERE channel_id = ? AND author_id = ?",
      row.id,
      authors[0].id,
    );
    emit(deps.ctx, "channel-changed", { channelId: row.id });
  });
  return listAuthors(deps, row);
}

/** Contact `ref` (name, id or fingerprint prefix), as an input error when there is none. */
function findContact(deps: PeopleDeps, ref: unknown) {
  if (typeof ref !== "string" || ref.trim() === "") {
    throw new UserInputError("The contact must be given: their name, id or fingerprint");
  }
  const contact = deps.contacts.find(ref);
  if (contact.state === "blocked") throw new ConflictError(`${contact.name} is blocked`);
  return contact;
}

/** The contacts posts of `row` fan out to. */
export function listSubscribers(deps: PeopleDeps, row: ChannelRow): SubscriberInfo[] {
  return deps.ctx.db.all<{ contact_id: string; kind: "subscriber" | "follower" }>(
    `SELECT contact_id, kind FROM channel_subscribers WHERE channel_id = ? AND kind != 'notified'
     ORDER BY added_at`,
    row.id,
  ).map((s) => ({
    contactId: s.contact_id,
    name: contactName(deps, s.contact_id) ?? s.contact_id.slice(0, 13),
    kind: s.kind,
  }));
}

/** Adds contact `contactRef` as a subscriber and sends them the link (and content keys). */
export async function addSubscriber(
  deps: PeopleDeps,
  row: ChannelRow,
  contactRef: unknown,
): Promise<SubscriberInfo[]> {
  requireOwner(row);
  const contact = findContact(deps, contactRef);
  if (!await deps.identity.channel(contact.id)) {
    throw new ConflictError(
      `Cannot write to ${contact.name} now (pairing not finished, or their authorisation lapsed)`,
    );
  }
  deps.ctx.db.transaction(() => {
    deps.ctx.db.run(
      `INSERT INTO channel_subscribers (channel_id, contact_id, kind, added_at) VALUES (?, ?, 'subscriber', ?)
       ON CONFLICT (channel_id, contact_id) DO UPDATE SET kind = 'subscriber'`,
      row.id,
      contact.id,
      deps.ctx.now().getTime(),
    );
    emit(deps.ctx, "channel-changed", { channelId: row.id });
  });
  await sendToContact(
    deps,
    contact.id,
    MessageType.CHANNEL_KEYS,
    await signedGrant(deps, row, contact.id),
  );
  return listSubscribers(deps, row);
}

/**
 * Removes subscriber `contactRef`. For a private channel the content key is
 * rotated: a new key, sent to the remaining subscribers and authors; the one
 * removed keeps the old keys (and the posts it could read) but not the new one.
 */
export async function removeSubscriber(
  deps: PeopleDeps,
  row: ChannelRow,
  contactRef: unknown,
): Promise<SubscriberInfo[]> {
  requireOwner(row);
  const contact = findContact(deps, contactRef);
  const removed = deps.ctx.db.transaction(() => {
    const n = deps.ctx.db.run(
      "DELETE FROM channel_subscribers WHERE channel_id = ? AND contact_id = ? AND kind != 'notified'",
      row.id,
      contact.id,
    );
    if (n > 0 && row.visibility === "private") {
      const key = newContentKey();
      deps.ctx.db.run(
        "INSERT INTO channel_content_keys (channel_id, key_id, key, created_at) VALUES (?, ?, ?, ?)",
        row.id,
        key.id,
        key.key,
        deps.ctx.now().getTime(),
      );
      trimKeys(deps, row.id);
    }
    emit(deps.ctx, "channel-changed", { channelId: row.id });
    return n;
  });
  if (removed === 0) {
    throw new NotFoundError(`${contact.name} is not a subscriber of "${row.title}"`);
  }
  if (row.visibility === "private") await sendKeysToAll(deps, row);
  return listSubscribers(deps, row);
}

/** Sends `row`'s link and content keys to every subscriber and renewed author but the owner. */
export async function sendKeysToAll(deps: PeopleDeps, row: ChannelRow): Promise<number> {
  const me = deps.identity.id;
  const recipients = new Set([
    ...listSubscribers(deps, row).filter((s) => s.kind === "subscriber").map((s) => s.contactId),
    ...listAuthors(deps, row).filter((a) => a.renewed && a.id !== me).map((a) => a.id),
  ]);
  let sent = 0;
  for (const id of recipients) {
    const content = await signedGrant(deps, row, id);
    if (await sendToContact(deps, id, MessageType.CHANNEL_KEYS, content)) sent++;
  }
  return sent;
}

/** Keeps a channel's newest {@linkcode CHANNEL_MESSAGE_LIMITS.keys} content keys. */
export function trimKeys(deps: Pick<PeopleDeps, "ctx">, channelId: string): void {
  deps.ctx.db.run(
    `DELETE FROM channel_content_keys WHERE channel_id = ? AND rowid NOT IN (
       SELECT rowid FROM channel_content_keys WHERE channel_id = ?
       ORDER BY created_at DESC, rowid DESC LIMIT ?)`,
    channelId,
    channelId,
    CHANNEL_MESSAGE_LIMITS.keys,
  );
}

/**
 * The owner's fan-out (§8): sends post `key` as an ordinary parcel to every
 * subscriber and follower of its channel who is a contact, but its author; once.
 */
export async function fanOut(deps: PeopleDeps, key: string): Promise<number> {
  const post = deps.ctx.db.get<{ channel_id: string; author_id: string; bytes: Uint8Array }>(
    `SELECT p.channel_id, p.author_id, p.bytes FROM channel_posts p JOIN channels c ON c.id = p.channel_id
     WHERE p.key = ? AND p.fanned_out = 0 AND c.role = 'owner'`,
    key,
  );
  if (!post) return 0;
  const parcels: PreparedParcel[] = [];
  for (
    const { contact_id } of deps.ctx.db.all<{ contact_id: string }>(
      "SELECT contact_id FROM channel_subscribers WHERE channel_id = ? AND kind != 'notified'",
      post.channel_id,
    )
  ) {
    if (contact_id === post.author_id) continue;
    const parcel = await contactParcel(deps, contact_id, MessageType.CHANNEL_POST, post.bytes);
    if (parcel) parcels.push(parcel);
  }
  // Marked fanned out with all its parcels queued, or not at all (a crash midway
  // leaves it to the next maintenance run); a fan-out that ran meanwhile wins.
  return deps.ctx.db.transaction(() => {
    const marked = deps.ctx.db.run(
      "UPDATE channel_posts SET fanned_out = 1 WHERE key = ? AND fanned_out = 0",
      key,
    );
    if (marked === 0) return 0;
    for (const parcel of parcels) deps.outbox.insert(parcel);
    if (parcels.length > 0) emit(deps.ctx, "outbox-changed");
    return parcels.length;
  });
}
