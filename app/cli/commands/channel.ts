/**
 * `relaymail channel …`: broadcast channels (docs/broadcast.md): create one,
 * hand out its link, follow, post, read, and the owner's authors and subscribers.
 *
 * @module
 */
import type { Command } from "commander";
// @deno-types="@types/qrcode"
import QRCode from "qrcode";
import { DEFAULT_POST_DAYS } from "../../core/channels_posts.ts";
import { UserInputError } from "../../core/errors.ts";
import type { ResultOf } from "../../runtime/operations/mod.ts";
import { withMessenger } from "../connection.ts";
import { shortDate, table } from "../format.ts";
import type { Output } from "../render.ts";

type Channel = ResultOf<"channel.create">;
type Post = ResultOf<"channel.post">;
type Author = ResultOf<"channel.authors.add">;
type Subscriber = ResultOf<"channel.subscribers">["subscribers"][number];

/** A whole number option, or undefined when not given. */
function wholeNumber(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value.trim())) {
    throw new UserInputError(`${name} takes a whole number, not "${value}"`);
  }
  return Number(value);
}

/** A channel's id as people see it. */
const shortChannel = (id: string) => id.slice(0, 13);

function channelsTable(list: readonly Channel[]): string {
  if (list.length === 0) return "No channels yet: create one, or follow one with its link";
  return table(
    ["CHANNEL", "TITLE", "KIND", "ROLE", "POSTS", "UNREAD", "YOU MAY POST UNTIL"],
    list.map((c) => [
      shortChannel(c.id),
      c.title,
      c.visibility,
      c.following || c.role === "owner" ? c.role : `${c.role} (unfollowed)`,
      String(c.posts),
      String(c.unread),
      c.role === "owner" ? "always (owner)" : c.canPost ? shortDate(c.authorUntil) : "-",
    ]),
  );
}

/**
 * A post's title or text as the terminal shows it: anyone who may post wrote it,
 * so control characters (escape sequences a terminal would obey) and text-direction
 * overrides are shown as U+FFFD; line breaks (and tabs, in the text) stay.
 */
export function terminalSafe(text: string, keep: "lines" | "none" = "lines"): string {
  const unsafe = keep === "lines"
    // deno-lint-ignore no-control-regex
    ? /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/gu
    // deno-lint-ignore no-control-regex
    : /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/gu;
  return text.replace(/\r\n/g, "\n").replace(unsafe, "\ufffd");
}

function postText(p: Post): string {
  const head = `${p.read ? " " : "*"} ${p.key.slice(0, 8)}  ${shortDate(p.createdAt)}  ${
    p.authorName ?? p.authorId.slice(0, 13)
  }  (expires ${shortDate(p.expiresAt)})`;
  const body = p.readable
    ? [
      ...p.title ? [`  ${terminalSafe(p.title, "none")}`] : [],
      ...terminalSafe(p.text!).split("\n").map((l) => `  ${l}`),
    ]
    : ["  (unreadable: a private post whose key has not reached you)"];
  return [head, ...body].join("\n");
}

function authorsTable(list: readonly Author[]): string {
  return table(
    ["AUTHOR", "NAME", "EXPIRES", "RENEWED"],
    list.map((a) => [
      a.id.slice(0, 13),
      a.owner ? "you (owner)" : a.name ?? "-",
      shortDate(a.expiresAt),
      a.renewed ? "yes" : "no: lapses at expiry",
    ]),
  );
}

function subscribersTable(list: readonly Subscriber[]): string {
  if (list.length === 0) return "No subscribers";
  return table(
    ["CONTACT", "NAME", "HOW"],
    list.map((s) => [s.contactId.slice(0, 13), s.name, s.kind]),
  );
}

/** Adds `channel` and its subcommands to `program`. */
export function addChannelCommands(program: Command, output: Output): void {
  const channel = program.command("channel").description(
    "broadcast channels: post once, read by many",
  );

  channel.command("create <title>").description("create a channel you own")
    .option("--private", "posts readable by subscribers only (content key sent end to end)")
    .action(function (this: Command, title: string, opts: { private?: boolean }) {
      return withMessenger(this, async (messenger, options) => {
        const created = await messenger.call("channel.create", {
          title,
          visibility: opts.private ? "private" : "public",
        });
        output.show(options, created, () =>
          [
            `Created ${created.visibility} channel "${created.title}" (${created.id})`,
            created.visibility === "public"
              ? `Its link, for anyone to follow: ${created.link}`
              : `Add subscribers with "relaymail channel subscribers ${
                created.id.slice(0, 13)
              } add CONTACT"`,
          ].join("\n"));
      });
    });

  channel.command("list").description("the channels you own, write to or follow")
    .action(function (this: Command) {
      return withMessenger(this, async (messenger, options) => {
        const list = await messenger.call("channel.list");
        output.show(options, list, () => channelsTable(list.channels));
      });
    });

  channel.command("link <channel>").description("a channel's link, to follow it")
    .option("--qr", "also print it as a QR code")
    .action(function (this: Command, ref: string, opts: { qr?: boolean }) {
      return withMessenger(this, async (messenger, options) => {
        const link = await messenger.call("channel.link", { channel: ref });
        output.show(options, link, () => link.text);
        if (opts.qr && !options.json) {
          output.print(
            await QRCode.toString([{ data: link.text, mode: "alphanumeric" }], {
              type: "utf8",
              errorCorrectionLevel: "M",
            }),
          );
        }
      });
    });

  channel.command("follow <link>").description("follow a public channel by its link")
    .action(function (this: Command, link: string) {
      return withMessenger(this, async (messenger, options) => {
        const followed = await messenger.call("channel.follow", { link });
        output.show(
          options,
          followed,
          () => `Following "${followed.title}" (${followed.id}): its posts arrive over the mesh`,
        );
      });
    });

  channel.command("unfollow <channel>").description("stop receiving a channel's posts")
    .action(function (this: Command, ref: string) {
      return withMessenger(this, async (messenger, options) => {
        const result = await messenger.call("channel.unfollow", { channel: ref });
        output.show(options, result, () => `No longer following ${shortChannel(result.channel)}`);
      });
    });

  channel.command("post <channel> <text>").description("post in a channel you may write to")
    .option("--title <title>", "a title for the post")
    .option("--days <n>", "how long it lives, 1 to 180 days (default 30)")
    .action(
      function (this: Command, ref: string, text: string, opts: { title?: string; days?: string }) {
        return withMessenger(this, async (messenger, options) => {
          const ttlDays = wholeNumber(opts.days, "--days");
          const post = await messenger.call("channel.post", {
            channel: ref,
            text,
            title: opts.title,
            ttlDays,
          });
          const asked = ttlDays ?? DEFAULT_POST_DAYS;
          const shortened = post.expiresAt.getTime() < Date.now() + (asked * 24 - 1) * 3_600_000;
          output.show(
            options,
            post,
            () =>
              `Posted ${post.key.slice(0, 8)} in ${
                shortChannel(post.channelId)
              }; it expires everywhere on ${shortDate(post.expiresAt)} UTC` +
              (shortened ? `, sooner than ${asked} days: your author certificate ends then` : ""),
          );
        });
      },
    );

  channel.command("read <channel>").description("a channel's posts, newest first (* unread)")
    .option("--limit <n>", "posts per page, 1 to 500 (default 50)")
    .option("--before <cursor>", "the page after the one that gave this cursor")
    .action(function (this: Command, ref: string, opts: { limit?: string; before?: string }) {
      return withMessenger(this, async (messenger, options) => {
        const page = await messenger.call("channel.read", {
          channel: ref,
          limit: wholeNumber(opts.limit, "--limit"),
          before: opts.before,
        });
        output.show(options, page, () =>
          [
            page.posts.length === 0 ? "No posts" : page.posts.map(postText).join("\n\n"),
            ...page.next ? [`\nMore: relaymail channel read ${ref} --before ${page.next}`] : [],
          ].join("\n"));
      });
    });

  channel.command("mark-read <channel>").description("mark every post of a channel read")
    .action(function (this: Command, ref: string) {
      return withMessenger(this, async (messenger, options) => {
        const result = await messenger.call("channel.mark-read", { channel: ref });
        output.show(
          options,
          result,
          () => `Marked the posts of ${shortChannel(result.channel)} read`,
        );
      });
    });

  const authors = channel.command("authors").description(
    "a channel's authors; add or remove one (owner)",
  )
    .argument("<channel>")
    .action(function (this: Command, ref: string) {
      return withMessenger(this, async (messenger, options) => {
        const list = await messenger.call("channel.authors", { channel: ref });
        output.show(options, list, () => authorsTable(list.authors));
      });
    });
  authors.command("add <channel> <contact>").description(
    "authorise a contact to post; the certificate goes to them end to end",
  )
    .option("--days <n>", "how long the certificate lasts, 1 to 180 days (default 30)")
    .action(function (this: Command, ref: string, contact: string, opts: { days?: string }) {
      return withMessenger(this, async (messenger, options) => {
        const author = await messenger.call("channel.authors.add", {
          channel: ref,
          contact,
          days: wholeNumber(opts.days, "--days"),
        });
        output.show(
          options,
          author,
          () =>
            `${author.name ?? author.id.slice(0, 13)} may post until ${
              shortDate(author.expiresAt)
            } UTC (renewed while they stay an author); their certificate is on its way`,
        );
      });
    });
  authors.command("remove <channel> <author>").description(
    "stop renewing an author's certificate: it lapses at its expiry",
  )
    .action(function (this: Command, ref: string, author: string) {
      return withMessenger(this, async (messenger, options) => {
        const result = await messenger.call("channel.authors.remove", { channel: ref, author });
        output.show(options, result, () => {
          const gone = result.authors.filter((a) => !a.renewed).map((a) =>
            `${
              a.name ?? a.id.slice(0, 13)
            } is no longer renewed: a certificate cannot be revoked, ` +
            `so theirs lapses on ${shortDate(a.expiresAt)} UTC`
          );
          return [...gone, authorsTable(result.authors)].join("\n");
        });
      });
    });

  channel.command("subscribers <channel> [action] [contact]").description(
    "the contacts posts fan out to; add or remove one (a private channel's key rotates)",
  )
    .action(function (this: Command, ref: string, action?: string, contact?: string) {
      return withMessenger(this, async (messenger, options) => {
        if (action !== undefined && action !== "add" && action !== "remove") {
          throw new UserInputError(`"${action}" is not add or remove`);
        }
        if (action !== undefined && contact === undefined) {
          throw new UserInputError(`Name the contact to ${action}`);
        }
        const result = action === "add"
          ? await messenger.call("channel.subscribers.add", { channel: ref, contact: contact! })
          : action === "remove"
          ? await messenger.call("channel.subscribers.remove", { channel: ref, contact: contact! })
          : await messenger.call("channel.subscribers", { channel: ref });
        output.show(options, result, () => subscribersTable(result.subscribers));
      });
    });
}
