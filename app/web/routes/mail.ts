/**
 * The web API's mail: listing, reading, threads, attachments, `.eml` exports,
 * sending (and forwarding), archiving, read state, deleting, and the drafts.
 *
 * @module
 */
import type { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { messageToEml, threadToEml } from "../../core/eml.ts";
import { MAX_MAIL_LENGTH } from "../../core/mailbox.ts";
import { contentDisposition } from "../content_disposition.ts";
import { fromUser, HttpError } from "../errors.ts";
import { type JsonFields, jsonFields, kindOf } from "../input.ts";
import { readForm } from "../multipart.ts";

import type * as api from "../api_types.ts";
import { answer, type RouteContext } from "./context.ts";

/** A composed message's upload: the mail limit, plus room for the form's own encoding. */
const MAX_UPLOAD = MAX_MAIL_LENGTH + 256 * 1024;

/** Messages in a page of `GET /api/messages`, unless `limit` says otherwise, and at most. */
const PAGE = 100;
const MAX_WEB_PAGE = 500;

/** The folders of `GET /api/messages?folder=`. */
const FOLDERS: readonly api.Folder[] = ["inbox", "sent", "archive"];

/** A draft as JSON: its text, and room for the object around it. */
const MAX_DRAFT_REQUEST = MAX_MAIL_LENGTH + 64 * 1024;

/** Adds the routes to `app`. */
export function mailRoutes(app: Hono, web: RouteContext): void {
  const node = web.node;
  // Mail: a page of a folder or, with `q`, of what a search finds in every folder.
  app.get("/api/messages", async (c) => {
    const folder = (c.req.query("folder") ?? "inbox") as api.Folder;
    const q = c.req.query("q");
    if (!FOLDERS.includes(folder)) {
      throw new HttpError(400, `No folder "${folder}": there are ${FOLDERS.join(", ")}`);
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
  app.post("/api/messages/:id/archive", web.small, async (c) => {
    const archived = booleanField(await jsonFields(c.req), "archived");
    const message = node.mailbox.archive(c.req.param("id"), archived);
    return c.json(answer<api.MessageSummary>(message));
  });
  app.post("/api/messages/:id/read", web.small, async (c) => {
    const read = booleanField(await jsonFields(c.req), "read");
    return c.json(answer<api.MessageSummary>(node.mailbox.markRead(c.req.param("id"), read)));
  });
  app.delete("/api/messages/:id", (c) => {
    const { deleted, attachments, parcels, riding } = node.mailbox.delete(c.req.param("id"));
    return c.json(
      answer<api.DeleteAnswer>({
        deleted,
        attachments,
        parcels,
        riding: riding.map((party) => party.name),
      }),
    );
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
      const forward = field("forward")[0] || undefined;
      const indices = field("forwardAttachment");
      const message = await fromUser(() =>
        node.mailbox.send({
          to: to.length > 0 ? to : undefined,
          subject: form.fields.has("subject") ? field("subject")[0] : undefined,
          body: field("body")[0] ?? "",
          attachments,
          replyTo: field("replyTo")[0] || undefined,
          forward,
          forwardAttachments: forward && indices.length > 0 ? indices.map(index) : undefined,
          draft: field("draft")[0] || undefined,
        })
      );
      return c.json(answer<api.MessageDetail>(web.detail(message)));
    },
  );

  // Drafts: saved as they are typed, so a save is small and the same save changes nothing.
  const draftLimit = bodyLimit({
    maxSize: MAX_DRAFT_REQUEST,
    onError: (c) =>
      c.json({ error: `The draft is over the limit of ${MAX_MAIL_LENGTH} bytes` }, 413),
  });
  app.get("/api/drafts", (c) => c.json(answer<api.Draft[]>(node.mailbox.drafts.list())));
  app.post("/api/drafts", draftLimit, async (c) => {
    const input = draftRequest(await jsonFields(c.req));
    return c.json(answer<api.Draft>(await fromUser(() => node.mailbox.drafts.create(input))));
  });
  app.put("/api/drafts/:id", draftLimit, async (c) => {
    const input = draftRequest(await jsonFields(c.req));
    const id = c.req.param("id");
    node.mailbox.drafts.get(id); // unknown (sent or deleted meanwhile): a 404
    return c.json(answer<api.Draft>(await fromUser(() => node.mailbox.drafts.update(id, input))));
  });
  app.delete(
    "/api/drafts/:id",
    (c) =>
      c.json(answer<api.DraftDeleted>({ deleted: node.mailbox.drafts.delete(c.req.param("id")) })),
  );
}

/** The boolean field `name` of `fields`: a 400 naming it when it is missing or not one. */
function booleanField(fields: JsonFields, name: string): boolean {
  const value = fields[name];
  if (typeof value !== "boolean") {
    throw new HttpError(400, `"${name}" must be true or false, not ${kindOf(value)}`);
  }
  return value;
}

/** An attachment's index in `forwardAttachment`. */
function index(text: string): number {
  if (!/^\d{1,4}$/.test(text)) {
    throw new HttpError(
      400,
      `"forwardAttachment" takes an attachment's index, not "${text.slice(0, 20)}"`,
    );
  }
  return Number(text);
}

/** A {@linkcode api.DraftRequest}, each field checked for its type. */
function draftRequest(fields: JsonFields): api.DraftRequest {
  const text = (name: string) => {
    const value = fields[name];
    if (value === undefined || typeof value === "string") return value;
    throw new HttpError(400, `"${name}" must be text, not ${kindOf(value)}`);
  };
  const reference = (name: string) => fields[name] === null ? null : text(name) || null;
  const to = fields.to;
  if (to !== undefined && !(Array.isArray(to) && to.every((id) => typeof id === "string"))) {
    throw new HttpError(400, `"to" must be a list of contact ids, not ${kindOf(to)}`);
  }
  return {
    to: to as string[] | undefined,
    subject: text("subject"),
    body: text("body"),
    replyTo: fields.replyTo === undefined ? undefined : reference("replyTo"),
    forward: fields.forward === undefined ? undefined : reference("forward"),
  };
}
