/**
 * The messenger people use: a web app served on 127.0.0.1 by the process that
 * also runs the daemon. The page (app/web/static/) talks to the JSON API below
 * and follows live state over server-sent events: new mail, each message's path,
 * nearby peers, the gateway, refusals and sneakernet progress.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
// @deno-types="@types/qrcode"
import QRCode from "qrcode";
import { StorageFullError } from "../../bindings/durable.ts";
import { exportParcels, importParcels } from "../../bindings/sneakernet/sneakernet.ts";
import type { RelaymailEventName } from "../core/context.ts";
import { Daemon, type DaemonOptions } from "../services/daemon.ts";
import { messageToEml, threadToEml } from "../core/eml.ts";
import { MAX_MAIL_LENGTH, type MessageDetail } from "../core/mailbox.ts";
import { splitInvitation } from "../core/protocol/invitation.ts";
import type { Relaymail } from "../services/relaymail.ts";
import { Settings } from "../core/settings.ts";
import { contentDisposition } from "./content_disposition.ts";
import { errorAnswer, fromUser, HttpError } from "./errors.ts";
import { EventStreams, type PushEvent } from "./events.ts";
import { jsonFields, kindOf, requiredText, textField } from "./input.ts";
import { readForm } from "./multipart.ts";
import { PassphraseGuard } from "./passphrase.ts";
import { bearerOf, guard } from "./security.ts";
import { rotateWebSecret, webAppUrl, type WebSessionOptions, WebSessions } from "./sessions.ts";

/** Options of {@linkcode WebApp.start}. */
export interface WebAppOptions {
  /** Port on 127.0.0.1 (0: any free one). */
  readonly port: number;
  /** The daemon's options, read afresh at each (re)start, so settings changes apply. */
  readonly daemonOptions: () => DaemonOptions;
  /** Where log lines go. */
  readonly log?: (line: string) => void;
  /** How long sessions last (defaults: 12 hours unused, 7 days in all; see `sessions.ts`). */
  readonly sessions?: Pick<WebSessionOptions, "idleMs" | "lifetimeMs">;
  /** The clock of sessions and passphrase attempts (default: the messenger's). */
  readonly now?: () => Date;
}

const STATIC_DIR = new URL("./static/", import.meta.url);
const STATIC_FILES: Record<string, string> = {
  "/": "index.html",
  "/app.js": "app.js",
  "/api.js": "api.js",
  "/style.css": "style.css",
  "/icon.svg": "icon.svg",
};
const MEDIA_TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  svg: "image/svg+xml",
};
/** A composed message's upload: the mail limit, plus room for the form's own encoding. */
const MAX_UPLOAD = MAX_MAIL_LENGTH + 256 * 1024;
const MAX_JSON = 64 * 1024;
/** The downloads a ticket may open (`POST /api/tickets`): attachments and `.eml` exports. */
const DOWNLOADS = [/^\/api\/messages\/[^/]+\/attachments\/\d+$/, /^\/api\/threads\/[^/]+\/eml$/];

/** The messenger's own events, forwarded to the page as they are. */
const FORWARDED: readonly RelaymailEventName[] = [
  "mail-received",
  "delivery-changed",
  "contact-changed",
  "parcel-refused",
  "outbox-changed",
  "gateway-changed",
];

/** The running web app and the daemon it drives. */
export class WebApp {
  #server: Deno.HttpServer<Deno.NetAddr> | null = null;
  #daemon: Daemon | null = null;
  #daemonError: string | null = null;
  #restarting: Promise<void> | null = null;
  readonly #events = new EventStreams();
  readonly #sessions: WebSessions;
  readonly #passphrases: PassphraseGuard;
  readonly #app = new Hono();
  readonly #log: (line: string) => void;
  #lastStatus = "";
  #statusTimer: ReturnType<typeof setInterval> | undefined;
  readonly #forward: EventListener = (event) =>
    this.#push(event.type as PushEvent, (event as CustomEvent).detail ?? null);

  private constructor(readonly node: Relaymail, private readonly options: WebAppOptions) {
    const now = options.now ?? node.ctx.now;
    this.#sessions = new WebSessions(node.ctx.db, { ...options.sessions, now });
    this.#passphrases = new PassphraseGuard(now);
    this.#log = options.log ?? ((line) => console.log(line));
    // Pages whose sessions all ended (a new secret) are told at once.
    this.#sessions.onEndAll(() => this.#events.endAll("session", { ended: true }));
    this.#routes();
  }

  /** Serves the app on 127.0.0.1 and starts the daemon if there is an identity. */
  static async start(node: Relaymail, options: WebAppOptions): Promise<WebApp> {
    const app = new WebApp(node, options);
    app.#server = Deno.serve({
      hostname: "127.0.0.1",
      port: options.port,
      onListen: () => {},
    }, (request, info) => app.#app.fetch(request, { info }));
    for (const name of FORWARDED) node.events.addEventListener(name, app.#forward);
    app.#statusTimer = setInterval(() => app.#pushStatusIfChanged(), 2000);
    if (node.identity.exists()) await app.#startDaemon();
    return app;
  }

  /** The address to open: it carries the secret, which the page trades for a session. */
  get url(): string {
    return webAppUrl(this.port, this.#sessions.secret);
  }

  /**
   * Replaces the secret (see {@linkcode rotateWebSecret}): every session ends,
   * and open pages ask for the new address, which this returns.
   */
  rotateSecret(): string {
    rotateWebSecret(this.node.ctx.db);
    this.#sessions.reload(); // ends the sessions now rather than at the next request
    return this.url;
  }

  get port(): number {
    return this.#server!.addr.port;
  }

  /** The daemon, when running. */
  get daemon(): Daemon | null {
    return this.#daemon;
  }

  /** Stops the daemon and the server. */
  async stop(): Promise<void> {
    clearInterval(this.#statusTimer);
    for (const name of FORWARDED) this.node.events.removeEventListener(name, this.#forward);
    await this.#daemon?.stop();
    this.#daemon = null;
    // Open event streams say goodbye and end, or the server would wait on them.
    this.#events.close("daemon", { stopping: true });
    await this.#server?.shutdown();
  }

  async #startDaemon(): Promise<void> {
    try {
      const daemon = await Daemon.start(this.node, {
        ...this.options.daemonOptions(),
        log: this.#log,
      });
      // The page refetches its state on any event: the event itself says only what changed.
      daemon.mesh.on("peer:connect", () => this.#push("peers", null));
      daemon.mesh.on("peer:disconnect", () => this.#push("peers", null));
      this.#daemon = daemon;
      this.#daemonError = null;
    } catch (error) {
      this.#daemonError = (error as Error).message;
      this.#log(`the daemon could not start: ${this.#daemonError}`);
    }
    this.#push("daemon", this.#daemonState());
  }

  /** Restarts the daemon with the current settings (one restart at a time). */
  restartDaemon(): Promise<void> {
    this.#restarting ??= (async () => {
      await this.#daemon?.stop();
      this.#daemon = null;
      await this.#startDaemon();
    })().finally(() => (this.#restarting = null));
    return this.#restarting;
  }

  #push(event: PushEvent, data: unknown): void {
    this.#events.push(event, data);
  }

  #pushStatusIfChanged(): void {
    if (this.#events.size === 0) return; // nobody is looking
    const state = this.#daemonState();
    const status = JSON.stringify(state);
    if (status === this.#lastStatus) return;
    this.#lastStatus = status;
    this.#push("status", state);
  }

  #daemonState() {
    const status = this.#daemon?.status();
    return {
      running: this.#daemon !== null,
      error: this.#daemonError,
      peerId: status?.peerId ?? null,
      addresses: status?.addresses ?? [],
      parcelsCarried: status?.parcelsCarried ?? 0,
      gateway: status?.gateway ?? null,
      poweb: status?.poweb ?? null,
    };
  }

  #peers() {
    const contacts = new Map(this.node.contacts.list().map((c) => [c.id, c.name]));
    const me = this.node.identity.exists() ? this.node.identity.id : "";
    return (this.#daemon?.mesh.peers() ?? []).map((peer) => ({
      id: peer.id,
      addresses: peer.addresses,
      endpoints: peer.endpoints.map((id) => ({
        id,
        name: id === me ? "you" : contacts.get(id) ?? null,
      })),
    }));
  }

  #routes(): void {
    const app = this.#app;
    const node = this.node;
    app.use("*", guard(this.#sessions, () => this.port, new Set(["/api/session"])));
    // The one place that maps errors to statuses (see errors.ts).
    app.onError((error, c) => {
      const { status, body } = errorAnswer(
        error,
        { method: c.req.method, path: new URL(c.req.url).pathname },
        this.#log,
      );
      return c.json(body, status as 400);
    });
    app.notFound((c) => c.json({ error: "Not found" }, 404));

    for (const [path, file] of Object.entries(STATIC_FILES)) {
      app.get(path, async (c) => {
        const body = await Deno.readFile(new URL(file, STATIC_DIR));
        return c.body(body, 200, {
          "content-type": MEDIA_TYPES[file.split(".").pop()!],
          "cache-control": "no-cache",
        });
      });
    }

    const small = bodyLimit({
      maxSize: MAX_JSON,
      onError: (c) => c.json({ error: `The request is over the limit of ${MAX_JSON} bytes` }, 413),
    });

    app.post("/api/session", small, async (c) => {
      const secret = textField(await jsonFields(c.req), "secret") ?? "";
      const session = this.#sessions.open(secret);
      if (!session) return c.json({ error: "Wrong key: open the address Relaymail printed" }, 401);
      return c.json(session);
    });

    // A download is a plain navigation, which cannot carry the session's header:
    // the page first asks for a single-use ticket for it.
    app.post("/api/tickets", small, async (c) => {
      const path = requiredText(await jsonFields(c.req), "path");
      if (!DOWNLOADS.some((pattern) => pattern.test(path))) {
        throw new HttpError(400, `No download at "${path}"`);
      }
      const ticket = this.#sessions.ticket(bearerOf(c)!, path);
      return c.json({ url: `${path}?ticket=${ticket}` });
    });

    app.get("/api/state", (c) => c.json(this.#state()));

    app.post("/api/identity", small, async (c) => {
      const name = requiredText(await jsonFields(c.req), "name");
      if (node.identity.exists()) throw new HttpError(409, "There is already an identity");
      await fromUser(() => node.identity.create(name));
      await this.#startDaemon();
      return c.json(this.#state());
    });

    app.get("/api/events", (c) => {
      const bearer = bearerOf(c)!;
      // An open page keeps its session alive; a session that ended ends the stream.
      return this.#events.respond(c, this.#state(), () => this.#sessions.authorize(bearer));
    });

    // Mail
    app.get("/api/messages", (c) => {
      const folder = c.req.query("folder") ?? "inbox";
      const q = c.req.query("q");
      if (folder !== "inbox" && folder !== "sent") {
        throw new HttpError(400, `No folder "${folder}": there are inbox and sent`);
      }
      const list = q ? node.mailbox.search(q) : node.mailbox.list(folder);
      return c.json(list);
    });
    app.get("/api/messages/:id", (c) => {
      const message = node.mailbox.read(c.req.param("id"), { markRead: true });
      return c.json(this.#detail(message));
    });
    app.get("/api/threads/:id", (c) => {
      const messages = node.mailbox.thread(c.req.param("id"), { markRead: true });
      return c.json(messages.map((m) => this.#detail(m)));
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
        return c.json(this.#detail(message));
      },
    );

    // Contacts and pairing
    app.get("/api/contacts", (c) => c.json(node.contacts.list()));
    app.post("/api/contacts/:id/rename", small, async (c) => {
      const name = requiredText(await jsonFields(c.req), "name");
      const contact = node.contacts.find(c.req.param("id")); // unknown: a 404
      return c.json(await fromUser(() => node.contacts.rename(contact.id, name)));
    });
    app.post("/api/contacts/:id/block", (c) => c.json(node.contacts.block(c.req.param("id"))));
    app.post("/api/contacts/:id/unblock", (c) => c.json(node.contacts.unblock(c.req.param("id"))));
    app.get("/api/invitations", (c) => c.json(node.pairing.listInvitations()));
    app.post("/api/invitations", small, async (c) => {
      const name = textField(await jsonFields(c.req), "name");
      const invitation = await fromUser(() => node.pairing.createInvitation({ contactName: name }));
      const parts = splitInvitation(invitation.text);
      const qrCodes = await Promise.all(
        parts.map((part) =>
          QRCode.toString(part, { type: "svg", errorCorrectionLevel: "L", margin: 2 })
        ),
      );
      return c.json({
        ...invitation,
        parts,
        qrCodes: qrCodes.map((svg) =>
          `data:image/svg+xml;base64,${Buffer.from(svg).toString("base64")}`
        ),
      });
    });
    app.post(
      "/api/invitations/:id/revoke",
      async (c) => c.json(await fromUser(() => node.pairing.revokeInvitation(c.req.param("id")))),
    );
    app.post("/api/accept", small, async (c) => {
      const fields = await jsonFields(c.req);
      const text = requiredText(fields, "text");
      const name = textField(fields, "name");
      return c.json(await fromUser(() => node.pairing.acceptInvitation(text, { name })));
    });

    // What is happening
    // Extra copies of parcels already received (a second path, a replay) are only counted.
    app.get("/api/refused", (c) =>
      c.json({
        refusals: node.refusals.list({ limit: 500, except: "duplicate" }),
        copies: node.refusals.parcels("duplicate"),
      }));

    // Sneakernet, with progress pushed as events
    app.post("/api/sneakernet/:direction", small, async (c) => {
      const direction = c.req.param("direction");
      if (direction !== "export" && direction !== "import") {
        throw new HttpError(404, `No such direction "${direction}": there are export and import`);
      }
      const directory = textField(await jsonFields(c.req), "directory")?.trim();
      if (!directory) throw new HttpError(400, "Give the directory of the stick, e.g. /media/usb");
      const onProgress = (p: { done: number; total: number }) =>
        this.#push("progress", { direction, ...p });
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
    app.get("/api/settings", (c) => c.json(new Settings(node.ctx.db).all()));
    app.post("/api/settings", small, async (c) => {
      const changes = Object.entries(await jsonFields(c.req)).map(([name, value]) => {
        if (!["string", "number", "boolean"].includes(typeof value)) {
          throw new HttpError(400, `Setting "${name}" takes text, not ${kindOf(value)}`);
        }
        return [name, String(value)] as const;
      });
      const settings = new Settings(node.ctx.db);
      // All or nothing: one bad value leaves every setting as it was.
      await fromUser(() =>
        node.ctx.db.transaction(() => {
          for (const [name, value] of changes) {
            if (value === "") settings.unset(name);
            else settings.set(name, value);
          }
        })
      );
      if (changes.length > 0 && node.identity.exists()) await this.restartDaemon();
      return c.json({ settings: settings.all(), daemon: this.#daemonState() });
    });
    app.post("/api/gateway", small, async (c) => {
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
      await this.restartDaemon();
      return c.json(this.#state());
    });
    app.post("/api/passphrase", small, async (c) => {
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
      this.#passphrases.check(node.ctx.db, node.hasPassphrase, textField(fields, "current"));
      node.setPassphrase(passphrase);
      return c.json({ passphraseProtected: node.hasPassphrase });
    });
  }

  #state() {
    const node = this.node;
    if (!node.identity.exists()) {
      return { identity: null, dataDir: node.dataDir, limits: { mail: MAX_MAIL_LENGTH } };
    }
    const registration = node.gateway.registration();
    return {
      identity: node.identity.info(),
      dataDir: node.dataDir,
      passphraseProtected: node.hasPassphrase,
      unread: node.mailbox.unreadCount(),
      contacts: node.contacts.count(),
      waiting: node.outbox.queuedCount(),
      refusals: node.refusals.count({ except: "duplicate" }),
      limits: { mail: MAX_MAIL_LENGTH },
      daemon: this.#daemonState(),
      peers: this.#peers(),
      registration: registration
        ? {
          url: registration.gatewayUrl,
          expiresAt: registration.expiresAt,
          internetAddress: registration.internetAddress,
        }
        : null,
    };
  }

  /** A message with, for each delivery, the path its parcel took (lists do without it). */
  #detail(m: MessageDetail) {
    return {
      ...m,
      deliveries: m.deliveries.map((d) => ({
        ...d,
        path: d.parcelKey ? this.node.outbox.handovers(d.parcelKey) : [],
      })),
    };
  }
}

/**
 * What went wrong with the stick's directory, as the user's mistake (it does not
 * exist, is not a directory, is read-only or full): a 400 naming it.
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
