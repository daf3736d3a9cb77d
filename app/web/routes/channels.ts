/**
 * The web API's broadcast channels (docs/broadcast.md): creating, following and
 * unfollowing, reading and posting, the channel's link and QR code, and for its
 * owner the authors and the subscribers of a private channel. Each route runs
 * the runtime operation of the same name (`channel.*`, as the CLI does), so the
 * page and the CLI act alike and fail alike.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { fromUser, HttpError } from "../errors.ts";
import { type JsonFields, jsonFields, kindOf, requiredText, textField } from "../input.ts";
import type { InputOf, OperationName, ResultOf } from "../../runtime/operations/mod.ts";
import type * as api from "../api_types.ts";
import { answer, type RouteContext } from "./context.ts";

/** Posts in a page of `GET /api/channels/:id/posts`, unless `limit` says otherwise, and at most. */
const PAGE = 50;
const MAX_PAGE = 500;
/** A post's lifetime and an author certificate's, in days (docs/broadcast.md). */
const MAX_DAYS = 180;
/**
 * Most octets of a new post's JSON: the text may take 65 536 UTF-8 octets (§4),
 * and JSON writes a control character in 6 (`\u0001`): the operation names a
 * text past its limit, so the body limit only keeps absurd requests out.
 */
const MAX_POST_BODY = 6 * 65_536 + 8_192;

/** Adds the routes to `app`. */
export function channelRoutes(app: Hono, web: RouteContext): void {
  /**
   * Runs the operation `name`: its answer is plain JSON data, as the CLI gets it.
   * Errors keep their fault: an unknown channel in the address is a 404.
   */
  const run = <N extends OperationName>(name: N, input: InputOf<N>) =>
    web.runtime.call(name, input) as Promise<ResultOf<N>>;
  /** {@linkcode run} on what the person typed: what it names and is not there is a 400. */
  const runOnInput = <N extends OperationName>(name: N, input: InputOf<N>) =>
    fromUser(() => run(name, input));

  app.get(
    "/api/channels",
    async (c) => c.json(answer<api.ChannelList>(await run("channel.list", undefined))),
  );
  app.post("/api/channels", web.small, async (c) => {
    const fields = await jsonFields(c.req);
    const title = requiredText(fields, "title").trim();
    if (!title) throw new HttpError(400, "Give the channel a title");
    const visibility = textField(fields, "visibility") ?? "public";
    if (visibility !== "public" && visibility !== "private") {
      throw new HttpError(400, `A channel is "public" or "private", not "${visibility}"`);
    }
    return c.json(
      answer<api.Channel>(await runOnInput("channel.create", { title, visibility })),
    );
  });
  app.post("/api/channels/follow", web.small, async (c) => {
    const link = textField(await jsonFields(c.req), "link")?.trim();
    if (!link) {
      throw new HttpError(400, "Paste the channel's link: it starts with RELAYMAIL-CHANNEL:");
    }
    return c.json(answer<api.Channel>(await runOnInput("channel.follow", { link })));
  });

  app.get("/api/channels/:id", async (c) => {
    const id = c.req.param("id");
    const { channels } = await run("channel.list", undefined);
    const channel = channels.find((channel) => channel.id === id);
    if (!channel) throw new HttpError(404, `No channel ${id} here: follow it first`);
    return c.json(answer<api.Channel>(channel));
  });
  app.get("/api/channels/:id/link", async (c) => {
    const { text, qrSvg } = await run("channel.link", {
      channel: c.req.param("id"),
    });
    const qrCode = `data:image/svg+xml;base64,${Buffer.from(qrSvg).toString("base64")}`;
    return c.json(answer<api.ChannelLink>({ text, qrCode }));
  });
  app.post(
    "/api/channels/:id/unfollow",
    async (c) => c.json(await run("channel.unfollow", { channel: c.req.param("id") })),
  );
  app.post(
    "/api/channels/:id/read",
    async (c) => c.json(await run("channel.mark-read", { channel: c.req.param("id") })),
  );

  // Posts
  app.get("/api/channels/:id/posts", async (c) => {
    const limitText = c.req.query("limit") ?? String(PAGE);
    const limit = /^\d{1,4}$/.test(limitText) ? Number(limitText) : NaN;
    if (!(limit >= 1 && limit <= MAX_PAGE)) {
      throw new HttpError(
        400,
        `A page holds 1 to ${MAX_PAGE} posts: received "${limitText.slice(0, 20)}"`,
      );
    }
    const input = { channel: c.req.param("id"), limit, before: c.req.query("before") || undefined };
    return c.json(answer<api.PostPage>(await run("channel.read", input)));
  });
  const postBody = bodyLimit({
    maxSize: MAX_POST_BODY,
    onError: (c) =>
      c.json({ error: `A post's request is over the limit of ${MAX_POST_BODY} bytes` }, 413),
  });
  app.post("/api/channels/:id/posts", postBody, async (c) => {
    const fields = await jsonFields(c.req);
    const text = requiredText(fields, "text");
    if (!text.trim()) throw new HttpError(400, "Write something to post");
    const input = {
      channel: c.req.param("id"),
      text,
      title: textField(fields, "title")?.trim() || undefined,
      ttlDays: daysField(fields, "ttlDays", "A post's lifetime"),
    };
    return c.json(answer<api.Post>(await runOnInput("channel.post", input)));
  });

  // Authors: the owner's to change
  app.get(
    "/api/channels/:id/authors",
    async (c) =>
      c.json(
        answer<api.AuthorList>(
          await run("channel.authors", { channel: c.req.param("id") }),
        ),
      ),
  );
  app.post("/api/channels/:id/authors", web.small, async (c) => {
    const fields = await jsonFields(c.req);
    const input = {
      channel: c.req.param("id"),
      contact: requiredText(fields, "contact"),
      days: daysField(fields, "days", "An author's certificate"),
    };
    return c.json(answer<api.Author>(await runOnInput("channel.authors.add", input)));
  });
  app.delete("/api/channels/:id/authors/:author", async (c) => {
    const input = { channel: c.req.param("id"), author: c.req.param("author") };
    return c.json(
      answer<api.AuthorList>(await run("channel.authors.remove", input)),
    );
  });

  // Subscribers of a private channel: adding one sends the content key, removing one rotates it.
  app.get("/api/channels/:id/subscribers", async (c) =>
    c.json(
      answer<api.SubscriberList>(
        await run("channel.subscribers", { channel: c.req.param("id") }),
      ),
    ));
  app.post("/api/channels/:id/subscribers", web.small, async (c) => {
    const input = {
      channel: c.req.param("id"),
      contact: requiredText(await jsonFields(c.req), "contact"),
    };
    return c.json(
      answer<api.SubscriberList>(
        await runOnInput("channel.subscribers.add", input),
      ),
    );
  });
  app.delete("/api/channels/:id/subscribers/:contact", async (c) => {
    const input = { channel: c.req.param("id"), contact: c.req.param("contact") };
    return c.json(
      answer<api.SubscriberList>(
        await run("channel.subscribers.remove", input),
      ),
    );
  });
}

/**
 * The number of days in field `name` (1 to 180), or undefined when it is absent
 * (the operation's default, 30, applies); a 400 naming `what` otherwise.
 */
function daysField(fields: JsonFields, name: string, what: string): number | undefined {
  const value = fields[name];
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > MAX_DAYS) {
    throw new HttpError(
      400,
      `${what} is 1 to ${MAX_DAYS} whole days, not ${
        typeof value === "number" ? value : kindOf(value)
      }`,
    );
  }
  return value;
}
