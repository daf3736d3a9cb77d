/**
 * The web API's device: refusals, the sneakernet stick, settings, the gateway and the passphrase.
 *
 * @module
 */
import { isAbsolute } from "node:path";
import type { Hono } from "hono";
import { StorageFullError } from "../../../bindings/durable.ts";
import { exportParcels, importParcels } from "../../../bindings/sneakernet/sneakernet.ts";
import { fromUser, HttpError } from "../errors.ts";
import { jsonFields, kindOf, requiredText, textField } from "../input.ts";
import type { RouteContext } from "./context.ts";

/** Adds the routes to `app`. */
export function deviceRoutes(app: Hono, web: RouteContext): void {
  const node = web.node;
  // What is happening
  // Extra copies of parcels already received (a second path, a replay) are only counted.
  app.get("/api/refused", (c) =>
    c.json({
      refusals: node.refusals.list({ limit: 500, except: "duplicate" }),
      copies: node.refusals.parcels("duplicate"),
    }));

  // Sneakernet, with progress pushed as events
  app.post("/api/sneakernet/:direction", web.small, async (c) => {
    const direction = c.req.param("direction");
    if (direction !== "export" && direction !== "import") {
      throw new HttpError(404, `No such direction "${direction}": there are export and import`);
    }
    const directory = textField(await jsonFields(c.req), "directory")?.trim();
    if (!directory) throw new HttpError(400, "Give the folder of the stick, e.g. /media/usb");
    // This process's working directory is no folder the person can see.
    if (!isAbsolute(directory)) {
      throw new HttpError(
        400,
        `Give the folder's full path, starting with /, not "${directory}"`,
      );
    }
    const onProgress = (p: { done: number; total: number }) =>
      web.push("progress", { direction, ...p });
    try {
      return c.json(
        direction === "export"
          ? await exportParcels(node, directory, { onProgress })
          : await importParcels(node, directory, { onProgress }),
      );
    } catch (error) {
      throw stickError(error, directory);
    }
  });

  // Settings
  app.get("/api/settings", (c) => c.json(web.runtime.settings.all()));
  app.post("/api/settings", web.small, async (c) => {
    const changes = Object.entries(await jsonFields(c.req)).map(([name, value]) => {
      if (!["string", "number", "boolean"].includes(typeof value)) {
        throw new HttpError(400, `Setting "${name}" takes text, not ${kindOf(value)}`);
      }
      return [name, String(value)] as const;
    });
    const settings = web.runtime.settings;
    // All or nothing: one bad value leaves every setting as it was.
    await fromUser(() =>
      node.ctx.db.transaction(() => {
        for (const [name, value] of changes) {
          if (value === "") settings.unset(name);
          else settings.set(name, value);
        }
      })
    );
    if (changes.length > 0 && node.identity.exists()) await web.runtime.settingsChanged();
    return c.json({ settings: settings.all(), daemon: web.runtime.daemonState() });
  });
  app.post("/api/gateway", web.small, async (c) => {
    const url = requiredText(await jsonFields(c.req), "url");
    try {
      await node.useGateway(url);
    } catch (error) {
      if (error instanceof TypeError || error instanceof RangeError) {
        throw new HttpError(400, error.message, { cause: error });
      }
      if (error instanceof StorageFullError || !(error instanceof Error)) throw error;
      // The gateway could not be reached, or answered wrongly: not our failure.
      throw new HttpError(502, error.message, { cause: error });
    }
    await web.runtime.settingsChanged();
    return c.json(web.state());
  });
  app.post("/api/passphrase", web.small, async (c) => {
    const fields = await jsonFields(c.req);
    const passphrase = fields.passphrase;
    if (passphrase !== null && (typeof passphrase !== "string" || passphrase.length < 8)) {
      throw new HttpError(
        400,
        typeof passphrase === "string"
          ? `A passphrase needs at least 8 characters, not ${passphrase.length}`
          : `"passphrase" must be text (8 characters or more), or null to remove it`,
      );
    }
    web.passphrases.check(node.ctx.db, node.hasPassphrase, textField(fields, "current"));
    node.setPassphrase(passphrase);
    return c.json({ passphraseProtected: node.hasPassphrase });
  });
}

/**
 * What went wrong with the stick's directory, as the user's mistake (it does not
 * exist, is not a directory, is read-only or full): a 400 naming it. A missing
 * one is refused by the binding, never created, with a sentence that names it.
 */
function stickError(error: unknown, directory: string): unknown {
  const fromFileSystem = Object.values(Deno.errors).some((kind) => error instanceof kind) ||
    (error instanceof Error && /\(os error \d+\)/.test(error.message));
  if (!fromFileSystem) return error;
  const message = (error as Error).message;
  return new HttpError(
    400,
    message.includes(directory) && !message.includes("os error")
      ? message
      : `Cannot use ${directory} as the stick: ${message}`,
    { cause: error },
  );
}
