/**
 * The messenger people use: a web app served on 127.0.0.1 by the process that
 * also runs the daemon. The page (app/web/static/) talks to the JSON API below
 * and follows live state over server-sent events: new mail, each message's path,
 * nearby peers, the gateway, refusals and sneakernet progress.
 *
 * @module
 */
import { StorageFullError } from "../../bindings/durable.ts";
import { Buffer } from "node:buffer";
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { setCookie } from "hono/cookie";
import { streamSSE } from "hono/streaming";
// @deno-types="@types/qrcode"
import QRCode from "qrcode";
import { exportParcels, importParcels } from "../../bindings/sneakernet/sneakernet.ts";
import { ContactLookupError } from "../contacts.ts";
import type { RelaymailEventName } from "../context.ts";
import { Daemon, type DaemonOptions } from "../daemon.ts";
import { messageToEml, safeFileName, threadToEml } from "../eml.ts";
import { MAX_MAIL_LENGTH, type MessageDetail, MessageLookupError } from "../mailbox.ts";
import { splitInvitation } from "../protocol/invitation.ts";
import type { Relaymail } from "../relaymail.ts";
import { Settings } from "../settings.ts";
import { guard, sameSecret, SESSION_COOKIE, sessionToken, webSecret } from "./security.ts";

/** Options of {@linkcode WebApp.start}. */
export interface WebAppOptions {
  /** Port on 127.0.0.1 (0: any free one). */
  readonly port: number;
  /** The daemon's options, read afresh at each (re)start, so settings changes apply. */
  readonly daemonOptions: () => DaemonOptions;
  /** Where log lines go. */
  readonly log?: (line: string) => void;
}

const STATIC_DIR = new URL("./static/", import.meta.url);
const STATIC_FILES: Record<string, string> = {
  "/": "index.html",
  "/app.js": "app.js",
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

/** Events pushed to the page. */
type PushEvent = RelaymailEventName | "peers" | "status" | "progress" | "daemon";

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
  readonly #clients = new Set<(event: PushEvent, data: unknown) => void>();
  readonly #secret: string;
  readonly #app = new Hono();
  readonly #log: (line: string) => void;
  #lastStatus = "";
  #stopping = false;
  #statusTimer: ReturnType<typeof setInterval> | undefined;
  readonly #forward: EventListener = (event) =>
    this.#push(event.type as PushEvent, (event as CustomEvent).detail ?? null);

  private constructor(readonly node: Relaymail, private readonly options: WebAppOptions) {
    this.#secret = webSecret(node.ctx.db);
    this.#log = options.log ?? ((line) => console.log(line));
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

  /** The address to open: it carries the secret, which the page trades for a session cookie. */
  get url(): string {
    return `http://127.0.0.1:${this.port}/#key=${this.#secret}`;
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
    this.#stopping = true;
    for (const client of this.#clients) client("daemon", { stopping: true });
    this.#clients.clear();
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
    for (const client of this.#clients) client(event, data);
  }

  #pushStatusIfChanged(): void {
    if (this.#clients.size === 0) return; // nobody is looking
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
    app.use("*", guard(this.#secret, () => this.port, new Set(["/api/session"])));
    app.onError((error, c) => {
      // Mistakes in what the user asked for (RangeError and TypeError are how the
      // messenger reports bad input) are theirs to fix; anything else is ours.
      const status = error instanceof ContactLookupError || error instanceof MessageLookupError ||
          error instanceof RangeError || error instanceof TypeError ||
          error.name === "InvalidInvitationError"
        ? 400
        : error instanceof StorageFullError
        ? 507
        : 500;
      if (status === 500) this.#log(`web: ${error.stack ?? error.message}`);
      return c.json({ error: error.message }, status);
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
      onError: (c) => c.json({ error: `Request body over ${MAX_JSON} bytes` }, 413),
    });
    const json = async <T>(c: { req: { json(): Promise<unknown> } }): Promise<T> => {
      try {
        return await c.req.json() as T;
      } catch {
        throw new TypeError("The request body must be JSON");
      }
    };

    app.post("/api/session", small, async (c) => {
      const { secret } = await json<{ secret?: string }>(c);
      if (typeof secret !== "string" || !sameSecret(secret, this.#secret)) {
        return c.json({ error: "Wrong key: open the address Relaymail printed" }, 401);
      }
      setCookie(c, SESSION_COOKIE, sessionToken(this.#secret), {
        httpOnly: true,
        sameSite: "Strict",
        path: "/",
      });
      return c.json({ ok: true });
    });

    app.get("/api/state", (c) => c.json(this.#state()));

    app.post("/api/identity", small, async (c) => {
      const { name } = await json<{ name?: string }>(c);
      if (node.identity.exists()) return c.json({ error: "There is already an identity" }, 409);
      await node.identity.create(String(name ?? ""));
      await this.#startDaemon();
      return c.json(this.#state());
    });

    app.get("/api/events", (c) =>
      streamSSE(c, async (stream) => {
        const queue: { event: PushEvent; data: unknown }[] = [];
        let wake: (() => void) | null = null;
        const client = (event: PushEvent, data: unknown) => {
          queue.push({ event, data });
          wake?.();
        };
        this.#clients.add(client);
        stream.onAbort(() => {
          this.#clients.delete(client);
          wake?.();
        });
        await stream.writeSSE({ event: "hello", data: JSON.stringify(this.#state()) });
        while (!stream.aborted && !stream.closed) {
          if (queue.length === 0) {
            if (this.#stopping) break;
            let timer: ReturnType<typeof setTimeout> | undefined;
            await new Promise<void>((resolve) => {
              wake = resolve;
              timer = setTimeout(resolve, 15_000); // a comment line keeps sockets honest
            });
            clearTimeout(timer);
            wake = null;
            if (queue.length === 0) {
              await stream.write(": keep-alive\n\n");
              continue;
            }
          }
          const { event, data } = queue.shift()!;
          await stream.writeSSE({ event, data: JSON.stringify(data) });
        }
        this.#clients.delete(client);
        await stream.close();
      }));

    // Mail
    app.get("/api/messages", (c) => {
      const folder = c.req.query("folder") ?? "inbox";
      const q = c.req.query("q");
      if (folder !== "inbox" && folder !== "sent") throw new TypeError(`No folder "${folder}"`);
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
      const attachment = node.mailbox.attachments(c.req.param("id"))[Number(c.req.param("index"))];
      if (!attachment) return c.json({ error: "No such attachment" }, 404);
      return c.body(new Uint8Array(attachment.content), 200, {
        // Served as a download, never rendered: the sender chose the bytes.
        "content-type": "application/octet-stream",
        "content-disposition": `attachment; filename="${safeFileName(attachment.fileName)}"`,
      });
    });
    app.get("/api/threads/:id/eml", async (c) => {
      const messages = node.mailbox.conversation(c.req.param("id"));
      const eml = messages.length === 1
        ? await messageToEml(messages[0])
        : await threadToEml(messages, { ...node.identity.info(), isMe: true }, new Date());
      const name = safeFileName(messages[0]?.message.subject || "conversation");
      return c.body(new Uint8Array(eml), 200, {
        "content-type": "message/rfc822",
        "content-disposition": `attachment; filename="${name}.eml"`,
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
        const form = await c.req.formData();
        const files = form.getAll("attachments").filter((f): f is File => f instanceof File);
        const attachments = await Promise.all(
          files.filter((f) => f.size > 0 || f.name).map(
            async (file) => ({
              fileName: file.name || "attachment",
              mediaType: file.type || undefined,
              content: new Uint8Array(await file.arrayBuffer()),
            }),
          ),
        );
        const to = form.getAll("to").map(String).filter(Boolean);
        const replyTo = String(form.get("replyTo") ?? "") || undefined;
        const message = await node.mailbox.send({
          to: to.length > 0 ? to : undefined,
          subject: form.has("subject") ? String(form.get("subject")) : undefined,
          body: String(form.get("body") ?? ""),
          attachments,
          replyTo,
        });
        return c.json(this.#detail(message));
      },
    );

    // Contacts and pairing
    app.get("/api/contacts", (c) => c.json(node.contacts.list()));
    app.post("/api/contacts/:id/rename", small, async (c) => {
      const { name } = await json<{ name?: string }>(c);
      return c.json(node.contacts.rename(c.req.param("id"), String(name ?? "")));
    });
    app.post("/api/contacts/:id/block", (c) => c.json(node.contacts.block(c.req.param("id"))));
    app.post("/api/contacts/:id/unblock", (c) => c.json(node.contacts.unblock(c.req.param("id"))));
    app.get("/api/invitations", (c) => c.json(node.pairing.listInvitations()));
    app.post("/api/invitations", small, async (c) => {
      const { name } = await json<{ name?: string }>(c);
      const invitation = await node.pairing.createInvitation({
        contactName: name ? String(name) : undefined,
      });
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
      (c) => c.json(node.pairing.revokeInvitation(c.req.param("id"))),
    );
    app.post("/api/accept", small, async (c) => {
      const { text, name } = await json<{ text?: string; name?: string }>(c);
      const contact = await node.pairing.acceptInvitation(String(text ?? ""), {
        name: name ? String(name) : undefined,
      });
      return c.json(contact);
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
      const { directory } = await json<{ directory?: string }>(c);
      if (typeof directory !== "string" || directory.trim() === "") {
        throw new TypeError("Give the directory of the stick, e.g. /media/usb");
      }
      const onProgress = (p: { done: number; total: number }) =>
        this.#push("progress", { direction, ...p });
      if (direction === "export") {
        return c.json(await exportParcels(node, directory, { onProgress }));
      }
      if (direction === "import") {
        return c.json(await importParcels(node, directory, { onProgress }));
      }
      return c.json({ error: `No such direction "${direction}"` }, 404);
    });

    // Settings
    app.get("/api/settings", (c) => c.json(new Settings(node.ctx.db).all()));
    app.post("/api/settings", small, async (c) => {
      const changes = await json<Record<string, string>>(c);
      const settings = new Settings(node.ctx.db);
      for (const [name, value] of Object.entries(changes)) {
        if (value === "") settings.unset(name);
        else settings.set(name, String(value));
      }
      if (node.identity.exists()) await this.restartDaemon();
      return c.json({ settings: settings.all(), daemon: this.#daemonState() });
    });
    app.post("/api/gateway", small, async (c) => {
      const { url } = await json<{ url?: string }>(c);
      await node.useGateway(String(url ?? ""));
      await this.restartDaemon();
      return c.json(this.#state());
    });
    app.post("/api/passphrase", small, async (c) => {
      const { passphrase } = await json<{ passphrase?: string | null }>(c);
      if (passphrase !== null && (typeof passphrase !== "string" || passphrase.length < 8)) {
        throw new RangeError("A passphrase needs at least 8 characters");
      }
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
