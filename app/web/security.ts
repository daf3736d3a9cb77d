/**
 * What keeps the local web app the user's own: it listens on loopback only, every
 * API call needs the per-install secret or a session opened with it (see
 * `sessions.ts`: a bearer token the page keeps in `sessionStorage`, never a
 * cookie), and requests that name a foreign `Host` (DNS rebinding) or come from
 * a foreign `Origin` (cross-site requests) are refused before anything else
 * runs. Every response carries a strict Content-Security-Policy: the app loads
 * nothing from anywhere else.
 *
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import type { WebSessions } from "./sessions.ts";

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

/** The `Host` values under which the app may be reached on `port`. */
function allowedHosts(port: number): Set<string> {
  return new Set([`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]);
}

/**
 * Refuses foreign hosts and origins, adds the security headers, and requires
 * `Authorization: Bearer <secret or session token>` on `/api/` except for
 * `publicPaths`; a GET may instead carry `?ticket=` issued for its path (a
 * download, which a page starts as a plain navigation, without headers).
 */
export function guard(
  sessions: WebSessions,
  port: () => number,
  publicPaths: ReadonlySet<string>,
): MiddlewareHandler {
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
    const url = new URL(c.req.url);
    if (url.pathname.startsWith("/api/") && !publicPaths.has(url.pathname)) {
      const bearer = bearerOf(c);
      const ticket = url.searchParams.get("ticket");
      const ok = bearer !== undefined
        ? sessions.authorize(bearer)
        : ticket !== null && c.req.method === "GET" && sessions.redeem(ticket, url.pathname);
      if (!ok) {
        return refuse(
          c,
          401,
          "Your session has ended or this page was not opened from Relaymail's address: open the address Relaymail printed when it started",
        );
      }
    }
    await next();
    setSecurityHeaders(c.res.headers);
  };
}

/** The bearer token of a request, if it has one. */
export function bearerOf(c: Context): string | undefined {
  return /^Bearer ([A-Za-z0-9_-]+)$/.exec(c.req.header("authorization") ?? "")?.[1];
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
