/**
 * The web API's backup and restore (see `app/core/backup.ts`). A backup is made
 * into a temporary file of the data directory, then downloaded through a ticket
 * as any file is; it waits {@linkcode READY_MS} at most. A restore uploads the
 * file first (streamed to disk, at most {@linkcode MAX_BACKUP_UPLOAD}), then
 * names it with the passphrase, so that a mistyped passphrase does not mean
 * sending the file again.
 *
 * @module
 */
import type { Hono } from "hono";
import { createPrivateFile, tempPath } from "../../core/backup_db.ts";
import { backupFileName } from "../../core/backup_format.ts";
import { answer, type RouteContext } from "./context.ts";
import { contentDisposition } from "../content_disposition.ts";
import { fromUser, HttpError } from "../errors.ts";
import { jsonFields, kindOf, requiredText, textField } from "../input.ts";
import { NO_CURRENT } from "../../runtime/operations/backup.ts";
import type { BackupReady, Restored, RestoreUpload } from "../api_types.ts";

/** The largest backup a restore takes: 4 GiB. */
export const MAX_BACKUP_UPLOAD = 4 * 1024 ** 3;
/** How long a backup made for download waits for it: 10 minutes. */
export const READY_MS = 10 * 60_000;
/** How long an uploaded backup waits for its passphrase: 30 minutes. */
const UPLOAD_MS = 30 * 60_000;
/** The path a backup is downloaded at. */
export const BACKUP_DOWNLOAD = /^\/api\/backup\/[0-9a-f-]{36}$/;

/** A temporary file and the timer that removes it. */
interface Kept {
  readonly path: string;
  readonly name: string;
  readonly timer: ReturnType<typeof setTimeout>;
}

/** The routes' temporary files, removed when they expire or the app stops. */
class TempFiles {
  readonly #files = new Map<string, Kept>();

  keep(id: string, path: string, name: string, ms: number): void {
    const timer = setTimeout(() => this.forget(id), ms);
    this.#files.set(id, { path, name, timer });
  }

  get(id: string): Kept | undefined {
    return this.#files.get(id);
  }

  forget(id: string): void {
    const kept = this.#files.get(id);
    if (!kept) return;
    clearTimeout(kept.timer);
    this.#files.delete(id);
    Deno.remove(kept.path).catch(() => {});
  }

  forgetAll(): void {
    for (const id of [...this.#files.keys()]) this.forget(id);
  }
}

/** Adds the routes to `app`; returns what removes their files when the app stops. */
export function backupRoutes(app: Hono, web: RouteContext): { stop(): void } {
  const node = web.node;
  const ready = new TempFiles();
  const uploads = new TempFiles();
  /** Whether an upload is being received: one at a time, or a page could fill the disk with them. */
  let receiving = false;

  app.post("/api/backup", web.small, async (c) => {
    const fields = await jsonFields(c.req);
    const passphrase = requiredText(fields, "passphrase");
    const withoutMail = fields.withoutMail ?? false;
    if (typeof withoutMail !== "boolean") {
      throw new HttpError(400, `"withoutMail" must be true or false, not ${kindOf(withoutMail)}`);
    }
    if (!node.identity.exists()) throw new HttpError(409, "There is no identity to back up yet");
    // As for changing the passphrase: the keys leave under another one.
    const current = textField(fields, "current");
    if (node.hasPassphrase && current === undefined) throw new HttpError(400, NO_CURRENT);
    web.passphrases.check(node.ctx.db, node.hasPassphrase, current);
    const id = crypto.randomUUID();
    const path = tempPath(node.dataDir, ".rmbackup");
    const report = await fromUser(() => node.backup(path, { passphrase, withoutMail }));
    const fileName = backupFileName(node.ctx.now());
    ready.keep(id, path, fileName, READY_MS);
    return c.json(answer<BackupReady>({
      download: `/api/backup/${id}`,
      fileName,
      bytes: report.bytes,
      contacts: report.contacts,
      messages: report.messages,
      includesMail: report.includesMail,
      expiresAt: new Date(Date.now() + READY_MS),
    }));
  });

  app.get("/api/backup/:id", async (c) => {
    const id = c.req.param("id");
    const kept = ready.get(id);
    if (!kept) {
      throw new HttpError(404, "This backup is gone (they wait 10 minutes): make it again");
    }
    const file = await Deno.open(kept.path, { read: true });
    const { size } = await file.stat();
    // Once downloaded whole, the file is not kept: it is forgotten as its last
    // octets go out, before the client can ask again (the open file still reads).
    let sent = 0;
    const body = file.readable.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          sent += chunk.length;
          if (sent >= size) ready.forget(id);
          controller.enqueue(chunk);
        },
      }),
    );
    return c.body(body, 200, {
      "content-type": "application/octet-stream",
      "content-length": String(size),
      "content-disposition": contentDisposition(kept.name, { fallback: "relaymail.rmbackup" }),
    });
  });

  app.post("/api/restore/upload", async (c) => {
    refuseIdentity(web);
    const declared = Number(c.req.header("content-length") ?? "0");
    if (declared > MAX_BACKUP_UPLOAD) throw tooLarge(declared);
    const body = c.req.raw.body;
    if (!body) throw new HttpError(400, "Send the backup file as the request's body");
    if (receiving) {
      throw new HttpError(
        409,
        "Another backup file is being sent already: wait for it to arrive, or reload the page",
      );
    }
    // One upload waits at a time: a new one replaces it.
    uploads.forgetAll();
    const id = crypto.randomUUID();
    const path = tempPath(node.dataDir, ".upload");
    let bytes = 0;
    receiving = true;
    try {
      using file = await createPrivateFile(path);
      for await (const chunk of body) {
        bytes += chunk.length;
        if (bytes > MAX_BACKUP_UPLOAD) throw tooLarge(bytes);
        for (let offset = 0; offset < chunk.length;) {
          offset += await file.write(chunk.subarray(offset));
        }
      }
      if (bytes === 0) throw new HttpError(400, "The file is empty: choose the backup file");
    } catch (error) {
      await Deno.remove(path).catch(() => {});
      throw error;
    } finally {
      receiving = false;
    }
    const name = (c.req.query("name") ?? "").slice(0, 200) || "the backup";
    uploads.keep(id, path, name, UPLOAD_MS);
    return c.json(answer<RestoreUpload>({ upload: id, bytes, maxBytes: MAX_BACKUP_UPLOAD }));
  });

  app.post("/api/restore", web.small, async (c) => {
    const fields = await jsonFields(c.req);
    const id = requiredText(fields, "upload");
    const passphrase = requiredText(fields, "passphrase");
    refuseIdentity(web);
    const kept = uploads.get(id);
    if (!kept) throw new HttpError(400, "The uploaded backup is gone: choose the file again");
    const report = await fromUser(() => node.restore(kept.path, passphrase, { name: kept.name }));
    uploads.forget(id);
    // The daemon starts as the restored identity.
    await web.runtime.settingsChanged();
    return c.json(answer<Restored>({
      identity: report.identity,
      contacts: report.contacts,
      messages: report.messages,
      includesMail: report.backup.includesMail,
      backupCreatedAt: report.backup.createdAt,
      state: web.state(),
    }));
  });

  return {
    stop() {
      ready.forgetAll();
      uploads.forgetAll();
    },
  };
}

function refuseIdentity(web: RouteContext): void {
  if (!web.node.identity.exists()) return;
  throw new HttpError(
    409,
    `This device has an identity already (${web.node.identity.info().name}): a backup restores only into a new one`,
  );
}

function tooLarge(bytes: number): HttpError {
  return new HttpError(
    413,
    `The backup is over the limit of ${MAX_BACKUP_UPLOAD} bytes (4 GiB): it has ${bytes} or more`,
  );
}
