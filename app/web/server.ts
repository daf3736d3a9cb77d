/**
 * The messenger people use: a web app served on 127.0.0.1 by the runtime that
 * also runs the daemon. The page (app/web/static/) talks to the JSON API below
 * and follows live state over server-sent events: new mail, each message's path,
 * nearby peers, the gateway, refusals and sneakernet progress.
 *
 * @module
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { RelaymailEventName } from "../core/context.ts";
import { MAX_MAIL_LENGTH, type MessageDetail } from "../core/mailbox.ts";
import type { Runtime } from "../runtime/runtime.ts";
import type { Relaymail } from "../services/relaymail.ts";
import { errorAnswer, fromUser, HttpError } from "./errors.ts";
import type { MessageDetail as ApiMessageDetail, Sendable, State } from "./api_types.ts";
import { EventStreams, type PushEvent } from "./events.ts";
import { jsonFields, requiredText, textField } from "./input.ts";
import { PassphraseGuard } from "../core/passphrase_guard.ts";
import type { RouteContext } from "./routes/context.ts";
import { BACKUP_DOWNLOAD, backupRoutes } from "./routes/backup.ts";
import { channelRoutes } from "./routes/channels.ts";
import { deviceRoutes } from "./routes/device.ts";
import { mailRoutes } from "./routes/mail.ts";
import { peopleRoutes } from "./routes/people.ts";
import { bearerOf, guard } from "./security.ts";
import { rotateWebSecret, webAppUrl, type WebSessionOptions, WebSessions } from "./sessions.ts";

/** Options of {@linkcode WebApp.start}. */
export interface WebAppOptions {
  /** Port on 127.0.0.1 (0: any free one). */
  readonly port: number;
  /** Where log lines go. */
  readonly log?: (line: string) => void;
  /** How long sessions last (defaults: 12 hours unused, 7 days in all; see `sessions.ts`). */
  readonly sessions?: Pick<WebSessionOptions, "idleMs" | "lifetimeMs">;
  /** The clock of sessions and passphrase attempts (default: the messenger's). */
  readonly now?: () => Date;
}

const STATIC_DIR = new URL("./static/", import.meta.url);
const MEDIA_TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  svg: "image/svg+xml",
};
/** The page's files, by path: the files in static/ (read once), and the page itself at "/". */
const STATIC_FILES: Record<string, string> = staticFiles();
const MAX_JSON = 64 * 1024;
/** The downloads a ticket may open (`POST /api/tickets`): attachments, `.eml` exports, backups. */
const DOWNLOADS = [
  /^\/api\/messages\/[^/]+\/attachments\/\d+$/,
  /^\/api\/threads\/[^/]+\/eml$/,
  BACKUP_DOWNLOAD,
];

/** The messenger's own events, forwarded to the page as they are. */
const FORWARDED: readonly (RelaymailEventName | "channel-changed")[] = [
  "mail-received",
  "delivery-changed",
  "contact-changed",
  "parcel-refused",
  "outbox-changed",
  "gateway-changed",
  "message-changed",
  "drafts-changed",
  "channel-changed",
];

/** The running web app, on a runtime that drives the daemon. */
export class WebApp {
  #server: Deno.HttpServer<Deno.NetAddr> | null = null;
  readonly #events = new EventStreams();
  readonly #sessions: WebSessions;
  readonly #passphrases: PassphraseGuard;
  readonly #app = new Hono();
  readonly #log: (line: string) => void;
  #lastStatus = "";
  #statusTimer: ReturnType<typeof setInterval> | undefined;
  #backups: { stop(): void } | null = null;
  readonly #forward: EventListener = (event) =>
    this.#push(event.type as PushEvent, (event as CustomEvent).detail ?? null);

  readonly #onDaemon: EventListener = (event) =>
    this.#push("daemon", (event as CustomEvent).detail);
  readonly #onPeers: EventListener = () => this.#push("peers", null);

  /** The messenger (the runtime's). */
  readonly node: Relaymail;

  private constructor(readonly runtime: Runtime, options: WebAppOptions) {
    const node = runtime.messenger;
    this.node = node;
    const now = options.now ?? node.ctx.now;
    this.#sessions = new WebSessions(node.ctx.db, { ...options.sessions, now });
    // One count of wrong guesses for the web app and the control API, unless a test sets the clock.
    this.#passphrases = options.now ? new PassphraseGuard(now) : runtime.passphrases;
    this.#log = options.log ?? ((line) => console.log(line));
    // Pages whose sessions all ended (a new secret) are told at once.
    this.#sessions.onEndAll(() => this.#events.endAll("session", { ended: true }));
    this.#routes();
  }

  /**
   * Serves the app on 127.0.0.1. The runtime runs the daemon (see
   * {@linkcode Runtime.runDaemon}); the app shows it and restarts it.
   */
  static start(runtime: Runtime, options: WebAppOptions): Promise<WebApp> {
    const node = runtime.messenger;
    const app = new WebApp(runtime, options);
    app.#server = Deno.serve({
      hostname: "127.0.0.1",
      port: options.port,
      onListen: () => {},
    }, (request, info) => app.#app.fetch(request, { info }));
    for (const name of FORWARDED) node.events.addEventListener(name, app.#forward);
    runtime.events.addEventListener("daemon", app.#onDaemon);
    runtime.events.addEventListener("peers", app.#onPeers);
    app.#statusTimer = setInterval(() => app.#pushStatusIfChanged(), 2000);
    return Promise.resolve(app);
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

  /** Stops the server; the runtime, and its daemon, are the caller's to close. */
  async stop(): Promise<void> {
    clearInterval(this.#statusTimer);
    for (const name of FORWARDED) this.node.events.removeEventListener(name, this.#forward);
    this.runtime.events.removeEventListener("daemon", this.#onDaemon);
    this.runtime.events.removeEventListener("peers", this.#onPeers);
    // Open event streams say goodbye and end, or the server would wait on them.
    this.#events.close("daemon", { stopping: true });
    await this.#server?.shutdown();
    this.#backups?.stop();
  }

  #push(event: PushEvent, data: unknown): void {
    this.#events.push(event, data);
  }

  #pushStatusIfChanged(): void {
    if (this.#events.size === 0) return; // nobody is looking
    const state = this.runtime.daemonState();
    const status = JSON.stringify(state);
    if (status === this.#lastStatus) return;
    this.#lastStatus = status;
    this.#push("status", state);
  }

  #peers() {
    const contacts = new Map(this.node.contacts.list().map((c) => [c.id, c.name]));
    const me = this.node.identity.exists() ? this.node.identity.id : "";
    return (this.runtime.daemon?.status().peers ?? []).map((peer) => ({
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
        let body: Uint8Array<ArrayBuffer> = await Deno.readFile(new URL(file, STATIC_DIR));
        if (file === "index.html") body = withModulePreloads(body);
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
      await this.runtime.restartDaemon();
      return c.json(this.#state());
    });

    app.get("/api/events", (c) => {
      const bearer = bearerOf(c)!;
      // An open page keeps its session alive; a session that ended ends the stream.
      return this.#events.respond(c, this.#state(), () => this.#sessions.authorize(bearer));
    });

    const web: RouteContext = {
      runtime: this.runtime,
      node,
      small,
      passphrases: this.#passphrases,
      push: (event, data) => this.#push(event, data),
      state: () => this.#state(),
      detail: (message) => this.#detail(message),
    };
    mailRoutes(app, web);
    peopleRoutes(app, web);
    deviceRoutes(app, web);
    channelRoutes(app, web);
    this.#backups = backupRoutes(app, web);
  }

  #state(): Sendable<State> {
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
      daemon: this.runtime.daemonState(),
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
  #detail(m: MessageDetail): Sendable<ApiMessageDetail> {
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
 * The page with a `modulepreload` link for each of its modules: the browser then
 * fetches them all at once instead of a round of imports at a time (the first
 * paint of a cold start waited about 250 ms for those rounds).
 */
function withModulePreloads(page: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> {
  const text = new TextDecoder().decode(page).replace("</head>", `${MODULE_PRELOADS}  </head>`);
  return new TextEncoder().encode(text);
}

/** A `modulepreload` link for each module of the page, made once. */
const MODULE_PRELOADS = Object.keys(STATIC_FILES)
  .filter((path) => path.endsWith(".js"))
  .sort()
  .map((path) => `    <link rel="modulepreload" href="${path}">\n`)
  .join("");

function staticFiles(): Record<string, string> {
  const files: Record<string, string> = { "/": "index.html" };
  for (const entry of Deno.readDirSync(STATIC_DIR)) {
    const extension = entry.name.split(".").pop()!;
    if (entry.isFile && Object.hasOwn(MEDIA_TYPES, extension)) files[`/${entry.name}`] = entry.name;
  }
  return files;
}
