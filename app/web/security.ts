/**
 * What keeps the local web app the user's own: it listens on loopback only, every
 * API call needs the per-install secret (or the session cookie that opening the
 * printed address sets), and requests that name a foreign `Host` (DNS
 * rebinding) or come from a foreign `Origin` (cross-site requests) are refused
 * before anything else runs. Every response carries a strict
 * Content-Security-Policy: the app loads nothing from anywhere else.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash, timingSafeEqual } from "node:crypto";
import type { Context, MiddlewareHandler } from "hono";
import { getCookie } from "hono/cookie";
import type { SqliteDatabase } from "../../bindings/durable.ts";

/** Name of the session cookie. */
export const SESSION_COOKIE = "relaymail_session";

/** The Content-Security-Policy of every response. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join("; ");

/** The install's secret, created on first use and kept in the data directory's database. */
export function webSecret(db: SqliteDatabase): string {
  const row = db.get<{ value: string }>("SELECT value FROM meta WHERE key = 'web.secret'");
  if (row) return row.value;
  const secret = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url");
  db.run("INSERT INTO meta (key, value) VALUES ('web.secret', ?)", secret);
  return secret;
}

/** The cookie value a secret grants (the secret itself never sits in a cookie). */
export function sessionToken(secret: string): string {
  return createHash("sha256").update(`relaymail-web-session:${secret}`).digest("hex");
}

/** Constant-time comparison of two strings. */
export function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The `Host` values under which the app may be reached on `port`. */
function allowedHosts(port: number): Set<string> {
  return new Set([`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]);
}

/**
 * Refuses foreign hosts and origins, adds the security headers, and requires a
 * session (cookie or `Authorization: Bearer <secret>`) on `/api/` except for
 * `publicPaths`.
 */
export function guard(
  secret: string,
  port: () => number,
  publicPaths: ReadonlySet<string>,
): MiddlewareHandler {
  const token = sessionToken(secret);
  return async (c, next) => {
    const hosts = allowedHosts(port());
    const host = c.req.header("host") ?? "";
    if (!hosts.has(host)) {
      return refuse(c, 403, `Refused: this app answers only at 127.0.0.1:${port()}, not "${host}"`);
    }
    const origin = c.req.header("origin");
    if (origin !== undefined && !hosts.has(origin.replace(/^http:\/\//, ""))) {
      return refuse(c, 403, `Refused: requests from ${origin} are not allowed`);
    }
    const fetchSite = c.req.header("sec-fetch-site");
    if (fetchSite === "cross-site" || fetchSite === "same-site") {
      return refuse(c, 403, "Refused: cross-site request");
    }
    const path = new URL(c.req.url).pathname;
    if (path.startsWith("/api/") && !publicPaths.has(path)) {
      const bearer = /^Bearer (.+)$/.exec(c.req.header("authorization") ?? "")?.[1];
      const cookie = getCookie(c, SESSION_COOKIE);
      const ok = (bearer !== undefined && sameSecret(bearer, secret)) ||
        (cookie !== undefined && sameSecret(cookie, token));
      if (!ok) return refuse(c, 401, "Open the address Relaymail printed when it started");
    }
    await next();
    setSecurityHeaders(c.res.headers);
  };
}

function setSecurityHeaders(headers: Headers): void {
  headers.set("content-security-policy", CONTENT_SECURITY_POLICY);
  headers.set("x-content-type-options", "nosniff");
  headers.set("referrer-policy", "no-referrer");
  headers.set("x-frame-options", "DENY");
  headers.set("cross-origin-opener-policy", "same-origin");
  headers.set("cross-origin-resource-policy", "same-origin");
  if (!headers.has("cache-control")) headers.set("cache-control", "no-store");
}

function refuse(c: Context, status: 401 | 403, message: string): Response {
  const response = c.json({ error: message }, status);
  setSecurityHeaders(response.headers);
  return response;
}
