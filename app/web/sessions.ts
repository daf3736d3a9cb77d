/**
 * Who may use the web app's API: the holder of the install's secret, and the
 * pages that traded it for a session.
 *
 * A session is bound to one instance, not merely to the host: the page keeps
 * its token in `sessionStorage`, which belongs to one origin (scheme, host *and
 * port*), and sends it as `Authorization: Bearer <token>`. No cookie is ever
 * set, because on `http://127.0.0.1` a cookie is scoped to the host and not the
 * port: every other server on the machine would receive it, and a second
 * Relaymail on another port would overwrite it. (`__Host-` cookies need https,
 * and a cookie `Path` cannot tell ports apart.)
 *
 * Sessions live in memory and end:
 * - after {@linkcode DEFAULT_IDLE_MS} (12 hours) without use: any API call, or
 *   an open page's event stream, counts as use;
 * - {@linkcode DEFAULT_LIFETIME_MS} (7 days) after the secret was traded for
 *   them, used or not;
 * - when the secret is rotated ({@linkcode rotateWebSecret}), even by another
 *   process: the secret is read from the database on each check;
 * - when the app stops.
 *
 * A page whose session ended asks for the printed address again.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash, timingSafeEqual } from "node:crypto";
import { rotateWebSecret, webAppUrl, webSecret } from "../core/web_secret.ts";
import type { SqliteDatabase } from "../../bindings/durable.ts";

/** Default of {@linkcode WebSessionOptions.idleMs}: 12 hours. */
export const DEFAULT_IDLE_MS = 12 * 3_600_000;
/** Default of {@linkcode WebSessionOptions.lifetimeMs}: 7 days. */
export const DEFAULT_LIFETIME_MS = 7 * 86_400_000;
/** How long a download ticket stays good: long enough for the page to follow it. */
export const TICKET_MS = 60_000;
/** Sessions kept at most; the oldest go first (only the secret's holder can open one). */
export const MAX_SESSIONS = 64;

/** Options of {@linkcode WebSessions}. */
export interface WebSessionOptions {
  /** A session unused for this long ends (default {@linkcode DEFAULT_IDLE_MS}, 12 hours). */
  readonly idleMs?: number;
  /** A session ends this long after it was opened (default {@linkcode DEFAULT_LIFETIME_MS}, 7 days). */
  readonly lifetimeMs?: number;
  /** The clock (default: the system's). */
  readonly now?: () => Date;
}

/** What `POST /api/session` hands the page. */
export interface OpenedSession {
  /** The bearer token: 32 random bytes, base64url. */
  readonly token: string;
  /** When the session ends at the latest (ISO 8601). */
  readonly expiresAt: string;
  /** How long it may go unused. */
  readonly idleMs: number;
}

interface Session {
  readonly openedAt: number;
  lastUsedAt: number;
}

interface Ticket {
  readonly path: string;
  /** The digest of the session's token; null when issued to the secret's holder. */
  readonly session: string | null;
  readonly expiresAt: number;
}

export { rotateWebSecret, webAppUrl, webSecret };

/** Constant-time comparison of two strings. */
export function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * The sessions of one web app: opened with the secret, checked on each request,
 * ended by time or by a new secret.
 */
export class WebSessions {
  /** Sessions by the SHA-256 of their token, so that lookups leak nothing of a token. */
  readonly #sessions = new Map<string, Session>();
  readonly #tickets = new Map<string, Ticket>();
  readonly #ended = new Set<() => void>();
  readonly #idleMs: number;
  readonly #lifetimeMs: number;
  readonly #now: () => Date;
  #secret: string;

  constructor(private readonly db: SqliteDatabase, options: WebSessionOptions = {}) {
    this.#idleMs = options.idleMs ?? DEFAULT_IDLE_MS;
    this.#lifetimeMs = options.lifetimeMs ?? DEFAULT_LIFETIME_MS;
    this.#now = options.now ?? (() => new Date());
    this.#secret = webSecret(db);
  }

  /** The current secret; a change (a rotation, maybe by another process) ends every session. */
  get secret(): string {
    return this.reload();
  }

  /** Reads the secret afresh, ending every session if it changed; returns it. */
  reload(): string {
    const secret = webSecret(this.db);
    if (secret !== this.#secret) {
      this.#secret = secret;
      this.endAll();
    }
    return secret;
  }

  /** Trades the secret for a new session; null when `secret` is not the secret. */
  open(secret: string): OpenedSession | null {
    if (!sameSecret(secret, this.secret)) return null;
    const now = this.#now().getTime();
    this.#prune(now);
    while (this.#sessions.size >= MAX_SESSIONS) {
      this.#sessions.delete(this.#sessions.keys().next().value!);
    }
    const token = randomToken();
    this.#sessions.set(digest(token), { openedAt: now, lastUsedAt: now });
    return {
      token,
      expiresAt: new Date(now + this.#lifetimeMs).toISOString(),
      idleMs: this.#idleMs,
    };
  }

  /**
   * Whether `bearer` may use the API: the secret itself (for scripts), or the
   * token of a live session, which counts as a use of it.
   */
  authorize(bearer: string): boolean {
    if (sameSecret(bearer, this.secret)) return true;
    return this.#use(digest(bearer));
  }

  /**
   * A single-use ticket that lets a plain navigation (a download, which cannot
   * carry a header) GET `path` within {@linkcode TICKET_MS}, while `bearer`'s
   * session lives.
   */
  ticket(bearer: string, path: string): string {
    const now = this.#now().getTime();
    for (const [key, ticket] of this.#tickets) {
      if (ticket.expiresAt <= now) this.#tickets.delete(key);
    }
    const ticket = randomToken();
    this.#tickets.set(digest(ticket), {
      path,
      session: sameSecret(bearer, this.secret) ? null : digest(bearer),
      expiresAt: now + TICKET_MS,
    });
    return ticket;
  }

  /** Uses up `ticket` if it was issued for `path`, is not stale and its session lives. */
  redeem(ticket: string, path: string): boolean {
    this.reload(); // after a rotation, no ticket is left
    const key = digest(ticket);
    const found = this.#tickets.get(key);
    if (!found || found.path !== path) return false;
    this.#tickets.delete(key);
    if (found.expiresAt <= this.#now().getTime()) return false;
    return found.session === null || this.#use(found.session);
  }

  /** Ends every session and ticket, and tells the listeners (open event streams). */
  endAll(): void {
    this.#sessions.clear();
    this.#tickets.clear();
    for (const listener of this.#ended) listener();
  }

  /** Calls `listener` whenever every session ends; returns a function that stops that. */
  onEndAll(listener: () => void): () => void {
    this.#ended.add(listener);
    return () => this.#ended.delete(listener);
  }

  #use(key: string): boolean {
    const session = this.#sessions.get(key);
    if (!session) return false;
    const now = this.#now().getTime();
    if (!this.#live(session, now)) {
      this.#sessions.delete(key);
      return false;
    }
    session.lastUsedAt = now;
    return true;
  }

  #live(session: Session, now: number): boolean {
    return now - session.lastUsedAt < this.#idleMs && now - session.openedAt < this.#lifetimeMs;
  }

  #prune(now: number): void {
    for (const [key, session] of this.#sessions) {
      if (!this.#live(session, now)) this.#sessions.delete(key);
    }
  }
}

function randomToken(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url");
}

function digest(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}
