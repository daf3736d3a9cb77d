// @ts-check
/// <reference lib="dom" />
// The page's side of the session (see app/web/sessions.ts): the secret in the printed
// address is traded for a token kept in sessionStorage, which belongs to this origin
// (host *and* port), and sent as `Authorization: Bearer`. No cookie: a cookie on
// 127.0.0.1 would go to every server on the machine, and to every other Relaymail.

/** @typedef {import("../api_types.ts").PushEvents} PushEvents */
/** @typedef {import("../api_types.ts").PushEventName} PushEventName */
/** @typedef {import("../api_types.ts").Session} Session */
/** @typedef {import("../api_types.ts").Ticket} Ticket */
/** @typedef {import("../api_types.ts").TicketRequest} TicketRequest */

/**
 * What to do with each event, by name: its data as the server sent it (JSON).
 * @typedef {{ [K in PushEventName]?: (data: PushEvents[K]) => void }} EventHandlers
 */

/**
 * Options of {@linkcode api}: those of `fetch`, and `json`, a body to send as JSON
 * (by POST unless `method` says otherwise).
 * @typedef {RequestInit & { json?: unknown, headers?: Record<string, string> }} ApiOptions
 */

const TOKEN = "relaymail.session";

/** An answer with an error status: its `error` text is the message. */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} message
   */
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** @type {() => void} */
let sessionEnded = () => {};

/**
 * Calls `fn` when the server stops accepting the session (it expired, or the secret changed).
 * @param {() => void} fn
 */
export function onSessionEnded(fn) {
  sessionEnded = fn;
}

/** @returns {Record<string, string>} */
function authorization() {
  const token = sessionStorage.getItem(TOKEN);
  return token ? { authorization: `Bearer ${token}` } : {};
}

function ended() {
  sessionStorage.removeItem(TOKEN);
  sessionEnded();
}

/**
 * Trades the secret in the address (`#key=…`) for a session, then takes it out of
 * the address bar. Without one, an earlier session of this tab goes on.
 */
export async function openSession() {
  const match = /key=([A-Za-z0-9_-]+)/.exec(location.hash);
  if (!match) return;
  history.replaceState(null, "", "/#/inbox");
  const response = await fetch("/api/session", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ secret: match[1] }),
  });
  if (response.ok) {
    const session = /** @type {Session} */ (await response.json());
    sessionStorage.setItem(TOKEN, session.token);
  }
}

/**
 * A call to the JSON API. `T` is what the server answers at `path` (a type of
 * api_types.ts, named by the caller: see endpoints.js); nothing checks it at run time.
 * @template T
 * @param {string} path
 * @param {ApiOptions} [options]
 * @returns {Promise<T>}
 */
export async function api(path, options = {}) {
  const { json, ...rest } = options;
  /** @type {RequestInit & { headers: Record<string, string> }} */
  const init = { ...rest, headers: { ...authorization(), ...options.headers } };
  if (json !== undefined) {
    init.method = options.method ?? "POST";
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(json);
  }
  const response = await fetch(path, init);
  const type = response.headers.get("content-type") ?? "";
  const body = type.includes("application/json") ? await response.json() : null;
  if (response.status === 401) ended();
  if (!response.ok) throw new ApiError(response.status, body?.error ?? response.statusText);
  return body;
}

/**
 * Downloads `path` (an attachment, an `.eml` export) as the browser downloads any
 * file, under the name its Content-Disposition gives. A navigation carries no
 * header, so it goes through a single-use ticket for that path.
 * @param {string} path
 */
export async function download(path) {
  /** @type {Ticket} */
  const { url } = await api("/api/tickets", {
    json: /** @satisfies {TicketRequest} */ ({ path }),
  });
  const link = document.createElement("a");
  link.href = url;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
}

/**
 * Follows the server's events (server-sent events, read through fetch so that
 * the request carries the session), calling `handlers[name](data)`; reconnects
 * after a break. The promise settles when the session has ended.
 * @param {EventHandlers} handlers
 * @returns {Promise<void>}
 */
export async function follow(handlers) {
  /** @type {(event: string, data: string) => void} */
  const dispatch = (event, data) => {
    const handler = /** @type {((data: unknown) => void) | undefined} */ (
      handlers[/** @type {PushEventName} */ (event)]
    );
    handler?.(JSON.parse(data));
  };
  for (let delay = 1000;; delay = Math.min(delay * 2, 30_000)) {
    try {
      const response = await fetch("/api/events", { headers: authorization() });
      if (response.status === 401) return ended();
      if (response.ok && response.body) {
        delay = 1000;
        if (await readEvents(response.body, dispatch) === "session ended") return ended();
      }
    } catch {
      // the server went away: try again shortly
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

/**
 * Reads `text/event-stream` blocks until the stream ends.
 * @param {ReadableStream<Uint8Array>} body
 * @param {(event: string, data: string) => void} dispatch
 * @returns {Promise<"closed" | "session ended">}
 */
async function readEvents(body, dispatch) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return "closed";
    buffer += decoder.decode(value, { stream: true }).replaceAll("\r\n", "\n");
    for (let end; (end = buffer.indexOf("\n\n")) !== -1;) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (event === "session") return "session ended";
      if (data.length > 0) dispatch(event, data.join("\n"));
    }
  }
}
