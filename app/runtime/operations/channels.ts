/**
 * Broadcast channels (docs/broadcast.md): create, link, follow, post, read, and
 * the owner's authors and subscribers. The CLI and the web app call these by
 * name; shapes are in /docs/broadcast.md §9 and the channels contract.
 *
 * @module
 */
// @deno-types="@types/qrcode"
import QRCode from "qrcode";
import { DEFAULT_POST_DAYS } from "../../core/channels_posts.ts";
import { UserInputError } from "../../core/errors.ts";
import type { Operation, OperationContext } from "../types.ts";
import { count, optionalText, text } from "./_input.ts";

const channels = (context: OperationContext) => context.messenger.channels;

/** The channel operations. */
export const CHANNEL_OPERATIONS = {
  /** A new channel owned by this device, public unless `visibility` is "private". */
  "channel.create": (
    context: OperationContext,
    input: { title: string; visibility?: "public" | "private" },
  ) => channels(context).create(text(input.title, "The title"), visibilityOf(input.visibility)),

  /** Every channel: owned, written to, followed. */
  "channel.list": (context: OperationContext) => ({ channels: channels(context).list() }),

  /** A channel's link, as text and as a QR code (SVG). */
  "channel.link": async (context: OperationContext, input: { channel: string }) => {
    const { text: link } = channels(context).link(input.channel);
    const qrSvg = await QRCode.toString([{ data: link, mode: "alphanumeric" }], {
      type: "svg",
      errorCorrectionLevel: "M",
      margin: 2,
    });
    return { text: link, qrSvg };
  },

  /** Follows a public channel by its link. */
  "channel.follow": (context: OperationContext, input: { link: string }) =>
    channels(context).follow(text(input.link, "The link")),

  /** Stops following a channel. */
  "channel.unfollow": (context: OperationContext, input: { channel: string }) =>
    channels(context).unfollow(input.channel),

  /** Posts in a channel: `text`, an optional `title`, living `ttlDays` (1 to 180, default 30). */
  "channel.post": (
    context: OperationContext,
    input: { channel: string; text: string; title?: string; ttlDays?: number },
  ) =>
    channels(context).post(input.channel, {
      text: text(input.text, "The post's text"),
      title: optionalText(input.title, "The post's title"),
      ttlDays: count(input.ttlDays, "The post's lifetime (days)", DEFAULT_POST_DAYS, 180, 1),
    }),

  /** A page of a channel's posts, newest first (`next`: the cursor of the page after). */
  "channel.read": (
    context: OperationContext,
    input: { channel: string; limit?: number; before?: string },
  ) =>
    channels(context).read(input.channel, {
      limit: count(input.limit, "The page size", 50, 500, 1),
      before: optionalText(input.before, "The cursor"),
    }),

  /** Marks every post of a channel read. */
  "channel.mark-read": (context: OperationContext, input: { channel: string }) =>
    channels(context).markRead(input.channel),

  /** A channel's authors. */
  "channel.authors": (context: OperationContext, input: { channel: string }) => ({
    authors: channels(context).authors(input.channel),
  }),

  /** Authorises a contact to post for `days` (1 to 180, default 30), sending them the certificate. */
  "channel.authors.add": (
    context: OperationContext,
    input: { channel: string; contact: string; days?: number },
  ) =>
    channels(context).addAuthor(
      input.channel,
      text(input.contact, "The contact"),
      count(input.days, "The author certificate's lifetime (days)", 30, 180, 1),
    ),

  /**
   * Stops renewing an author's certificate. It cannot be revoked: it lapses at
   * its expiry: the answer lists it with `renewed: false` and its `expiresAt`.
   */
  "channel.authors.remove": (
    context: OperationContext,
    input: { channel: string; author: string },
  ) => {
    const authors = channels(context).removeAuthor(input.channel, text(input.author, "The author"));
    return { authors };
  },

  /** The contacts a channel's posts fan out to (owner only). */
  "channel.subscribers": (context: OperationContext, input: { channel: string }) => ({
    subscribers: channels(context).subscribers(input.channel),
  }),

  /** Adds a subscriber: the link (and a private channel's content keys) go to them end to end. */
  "channel.subscribers.add": async (
    context: OperationContext,
    input: { channel: string; contact: string },
  ) => ({
    subscribers: await channels(context).addSubscriber(
      input.channel,
      text(input.contact, "The contact"),
    ),
  }),

  /** Removes a subscriber; a private channel's content key is rotated. */
  "channel.subscribers.remove": async (
    context: OperationContext,
    input: { channel: string; contact: string },
  ) => ({
    subscribers: await channels(context).removeSubscriber(
      input.channel,
      text(input.contact, "The contact"),
    ),
  }),
} satisfies Record<string, Operation>;

/** Refuses an unknown visibility early, naming it. */
export function visibilityOf(value: unknown): "public" | "private" {
  if (value === undefined || value === null) return "public";
  if (value !== "public" && value !== "private") {
    throw new UserInputError(`A channel is "public" or "private", not "${value}"`);
  }
  return value;
}
