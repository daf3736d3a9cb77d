/**
 * The web API's mail: listing, reading, threads, attachments, `.eml` exports and sending.
 *
 * @module
 */
import type { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { messageToEml, threadToEml } from "../../core/eml.ts";
import { MAX_MAIL_LENGTH } from "../../core/mailbox.ts";
import { contentDisposition } from "../content_disposition.ts";
import { fromUser, HttpError } from "../errors.ts";
import { readForm } from "../multipart.ts";

import type * as api from "../api_types.ts";
import { answer, type RouteContext } from "./context.ts";

/** A composed message's upload: the mail limit, plus room for the form's own encoding. */
const MAX_UPLOAD = MAX_MAIL_LENGTH + 256 * 1024;

/** Messages in a page of `GET /api/messages`, unless `limit` says otherwise, and at most. */
const PAGE = 100;
const MAX_WEB_PAGE = 500;

/** Adds the routes to `app`. */
export function mailRoutes(app: Hono, web: RouteContext): void {
  const node = web.node;
  // Mail: a page of a folder or, with `q`, of what a search finds in every folder.
  app.get("/api/messages", async (c) => {
    const folder = c.req.query("folder") ?? "inbox";
    const q = c.req.query("q");
    if (folder !== "inbox" && folder !== "sent") {
      throw new HttpError(400, `No folder "${folder}": there are inbox and sent`);
    }
    const limitText = c.req.query("limit") ?? String(PAGE);
    const limit = /^\d{1,4}$/.test(limitText) ? Number(limitText) : NaN;
    if (!(limit >= 1 && limit <= MAX_WEB_PAGE)) {
      throw new HttpError(
        400,
        `A page holds 1 to ${MAX_WEB_PAGE} messages: received "${limitText.slice(0, 20)}"`,
      );
    }
    const options = { limit, cursor: c.req.query("cursor") || null };
    const page = await fromUser(() =>
      q ? node.mailbox.searchPage(q, options) : node.mailbox.folderPage(folder, options)
    );
    return c.json(answer<api.MessagePage>(page));
  });
  app.get("/api/messages/:id", (c) => {
    const message = node.mailbox.read(c.req.param("id"), { markRead: true });
    return c.json(answer<api.MessageDetail>(web.detail(message)));
  });
  app.get("/api/threads/:id", (c) => {
    const messages = node.mailbox.thread(c.req.param("id"), { markRead: true });
    return c.json(answer<api.MessageDetail[]>(messages.map((m) => web.detail(m))));
  });
  app.get("/api/messages/:id/attachments/:index", (c) => {
    const index = c.req.param("index");
    const attachment = /^\d{1,4}$/.test(index)
      ? node.mailbox.attachments(c.req.param("id"))[Number(index)]
      : undefined;
    if (!attachment) throw new HttpError(404, "No such attachment");
    return c.body(new Uint8Array(attachment.content), 200, {
      // Served as a download, never rendered: the sender chose the bytes.
      "content-type": "application/octet-stream",
      "content-disposition": contentDisposition(attachment.fileName, { fallback: "attachment" }),
    });
  });
  app.get("/api/threads/:id/eml", async (c) => {
    const messages = node.mailbox.conversation(c.req.param("id"));
    const eml = messages.length === 1
      ? await messageToEml(messages[0])
      : await threadToEml(messages, { ...node.identity.info(), isMe: true }, new Date());
    const subject = messages[0]?.message.subject || "conversation";
    return c.body(new Uint8Array(eml), 200, {
      "content-type": "message/rfc822",
      "content-disposition": contentDisposition(`${subject}.eml`, { fallback: "conversation" }),
    });
  });
  app.post(
    "/api/send",
    bodyLimit({
      maxSize: MAX_UPLOAD,
      onError: (c) =>
        c.json({ error: `The message is over the limit of ${MAX_MAIL_LENGTH} bytes` }, 413),
    }),
    async (c) => {
      const form = await readForm(c.req.raw, {
        maxFileSize: MAX_UPLOAD,
        maxTotalSize: MAX_UPLOAD,
      });
      const field = (name: string) => form.fields.get(name) ?? [];
      const attachments = form.files
        // An empty file input still sends a part: no name, no bytes.
        .filter((file) => file.content.length > 0 || file.name)
        .map((file) => ({
          fileName: file.name || "attachment",
          mediaType: file.mediaType,
          content: file.content,
        }));
      const to = field("to").filter(Boolean);
      const message = await fromUser(() =>
        node.mailbox.send({
          to: to.length > 0 ? to : undefined,
          subject: form.fields.has("subject") ? field("subject")[0] : undefined,
          body: field("body")[0] ?? "",
          attachments,
          replyTo: field("replyTo")[0] || undefined,
        })
      );
      return c.json(answer<api.MessageDetail>(web.detail(message)));
    },
  );
}
