/**
 * The HTTP/1.1 front of the PoWeb server: it listens, bounds what a client may
 * hold, and hands Fetch API requests to a handler and WebSocket upgrades to
 * another.
 *
 * It is `node:http`, not `Deno.serve`: Deno's server (Deno 2.9) has no timeout
 * for request heads nor for idle keep-alive connections (a partial head stays
 * open for good), and the WebSockets it upgrades to cannot send pings. Deno's
 * `node:http` times out each request head from its first octet, each request as
 * a whole, and each idle keep-alive connection, and hands over upgraded sockets
 * as they are.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import http from "node:http";
import type { Socket } from "node:net";
import { Readable } from "node:stream";
import type { Duplex } from "node:stream";
import { errorMessage } from "../validation.ts";

/** An HTTP refusal: status, the reason given in a JSON body, and extra headers. */
export interface HttpRefusal {
  readonly status: number;
  readonly reason: string;
  readonly headers?: Record<string, string>;
}

/** Options of {@linkcode HttpFront.listen}. */
export interface HttpFrontOptions {
  /** Address to listen on. */
  readonly hostname: string;
  /** Port to listen on (0: any free port). */
  readonly port: number;
  /**
   * A request head (request line and headers) must arrive in full within this
   * long of its first octet; otherwise the client gets 408 and the connection is
   * closed (default 10 000 ms). A connection that sends nothing is closed too.
   */
  readonly headersTimeoutMs?: number;
  /** A whole request, head and body, must arrive within this long (default 300 000 ms). */
  readonly requestTimeoutMs?: number;
  /**
   * A keep-alive connection that carries no request for this long is closed
   * (default 5 000 ms; Node's server allows about one second more).
   */
  readonly idleTimeoutMs?: number;
  /**
   * Connections open at once from one client address (default 64); more are
   * dropped. Local apps all come from 127.0.0.1, so they share this.
   */
  readonly maxConnectionsPerAddress?: number;
  /** Connections open at once in all (default 256); more are dropped. */
  readonly maxConnections?: number;
  /** Called on every refusal, for logs. */
  readonly onRefusal?: (what: string, status: number, reason: string) => void;
}

/** What the front hands requests to. */
export interface HttpHandlers {
  /** Answers a request that is not an upgrade (`incoming` is the same request, as Node read it). */
  fetch(request: Request, incoming: http.IncomingMessage): Promise<Response> | Response;
  /**
   * Takes an upgrade request and its socket, or returns the refusal to answer
   * (the front writes it and closes the connection).
   */
  upgrade(incoming: http.IncomingMessage, socket: Duplex, head: Buffer): HttpRefusal | null;
}

/** A listening HTTP front. */
export class HttpFront {
  readonly #server: http.Server;
  readonly #options: HttpFrontOptions;
  readonly #handlers: HttpHandlers;
  /** Every TCP connection, and how many come from each address. */
  readonly #connections = new Set<Socket>();
  readonly #perAddress = new Map<string, number>();
  /** Requests being answered, which `close()` waits for. */
  readonly #inFlight = new Set<Promise<void>>();

  private constructor(options: HttpFrontOptions, handlers: HttpHandlers) {
    this.#options = options;
    this.#handlers = handlers;
    const headersTimeout = options.headersTimeoutMs ?? 10_000;
    this.#server = http.createServer({
      noDelay: true,
      headersTimeout,
      requestTimeout: Math.max(options.requestTimeoutMs ?? 300_000, headersTimeout),
      keepAliveTimeout: options.idleTimeoutMs ?? 5_000,
      // Node checks the head and request timeouts on this beat (30 s by default).
      connectionsCheckingInterval: Math.min(1_000, Math.max(50, headersTimeout / 4)),
    }, (incoming, outgoing) => this.#track(this.#answer(incoming, outgoing)));
    this.#server.on("connection", (socket: Socket) => this.#admit(socket));
    this.#server.on("upgrade", (incoming, socket, head) => this.#upgrade(incoming, socket, head));
    this.#server.on("clientError", (error, socket) => this.#clientError(error, socket));
  }

  /** Starts listening. Throws `Deno.errors.AddrInUse` if the port is taken. */
  static async listen(options: HttpFrontOptions, handlers: HttpHandlers): Promise<HttpFront> {
    const front = new HttpFront(options, handlers);
    await new Promise<void>((resolve, reject) => {
      front.#server.once("error", (error: Error & { code?: string }) => {
        reject(
          error.code === "EADDRINUSE"
            ? new Deno.errors.AddrInUse(
              `Port ${options.port} on ${options.hostname} is taken`,
              { cause: error },
            )
            : error,
        );
      });
      front.#server.listen(options.port, options.hostname, () => resolve());
    });
    return front;
  }

  /** The address it listens on. */
  get address(): { readonly address: string; readonly port: number } {
    const address = this.#server.address();
    if (!address || typeof address === "string") throw new Error("The server is not listening");
    return address;
  }

  /**
   * Stops listening and closes idle connections; requests under way get
   * `graceMs` to finish, then every connection left is cut. Resolves once every
   * request handler has returned.
   */
  async close(graceMs: number): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeIdleConnections();
    const cut = setTimeout(() => {
      for (const connection of this.#connections) connection.destroy();
    }, graceMs);
    try {
      await closed;
      await Promise.allSettled([...this.#inFlight]);
    } finally {
      clearTimeout(cut);
    }
  }

  /** Keeps count of connections, and drops those over the limits. */
  #admit(socket: Socket): void {
    const address = socket.remoteAddress ?? "unknown";
    const fromAddress = (this.#perAddress.get(address) ?? 0) + 1;
    const perAddress = this.#options.maxConnectionsPerAddress ?? 64;
    const total = this.#options.maxConnections ?? 256;
    if (fromAddress > perAddress || this.#connections.size >= total) {
      this.#options.onRefusal?.(
        "connection",
        503,
        fromAddress > perAddress
          ? `Too many connections from ${address}: at most ${perAddress}`
          : `Too many connections: at most ${total}`,
      );
      socket.destroy();
      return;
    }
    // A response's head and body may go out as two writes: no Nagle delay between them.
    socket.setNoDelay(true);
    this.#perAddress.set(address, fromAddress);
    this.#connections.add(socket);
    socket.once("close", () => {
      this.#connections.delete(socket);
      const left = (this.#perAddress.get(address) ?? 1) - 1;
      if (left > 0) this.#perAddress.set(address, left);
      else this.#perAddress.delete(address);
    });
  }

  #track(answering: Promise<void>): void {
    const work = answering.catch((error) =>
      this.#options.onRefusal?.("request", 500, `Could not answer: ${errorMessage(error)}`)
    );
    this.#inFlight.add(work);
    work.finally(() => this.#inFlight.delete(work));
  }

  async #answer(incoming: http.IncomingMessage, outgoing: http.ServerResponse): Promise<void> {
    let response: Response;
    try {
      const request = toRequest(incoming);
      if ("reason" in request) {
        this.#options.onRefusal?.("request", request.status, request.reason);
        response = Response.json({ message: request.reason }, { status: request.status });
      } else {
        response = await this.#handlers.fetch(request, incoming);
      }
    } catch (error) {
      this.#options.onRefusal?.("request", 500, errorMessage(error));
      response = Response.json({ message: "Internal error" }, { status: 500 });
    }
    // A body left unread (a refusal, a stalled client) cannot be skipped: hang up after.
    await writeResponse(outgoing, response, !incoming.complete);
  }

  #upgrade(incoming: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    // Node took its own listeners off: an error now would otherwise be uncaught.
    socket.on("error", () => socket.destroy());
    let refusal: HttpRefusal | null;
    try {
      refusal = this.#handlers.upgrade(incoming, socket, head);
    } catch (error) {
      refusal = { status: 400, reason: `Cannot upgrade: ${errorMessage(error)}` };
    }
    if (refusal === null) return;
    this.#options.onRefusal?.(`upgrade of ${pathOf(incoming.url)}`, refusal.status, refusal.reason);
    socket.end(rawResponse(refusal), () => socket.destroy());
  }

  /**
   * Node passes requests whose head it cannot take here: malformed (400), too
   * large (431), or not in full within the head or request timeout (408).
   */
  #clientError(error: Error & { code?: string }, socket: Duplex): void {
    if (error.code === "ECONNRESET" || !socket.writable || responseStarted(socket)) {
      socket.destroy();
      return;
    }
    const refusal: HttpRefusal = error.code === "ERR_HTTP_REQUEST_TIMEOUT"
      ? {
        status: 408,
        reason: `The request did not arrive in time: its head within ${
          this.#options.headersTimeoutMs ?? 10_000
        } ms, all of it within ${this.#options.requestTimeoutMs ?? 300_000} ms`,
      }
      : error.code === "HPE_HEADER_OVERFLOW"
      ? { status: 431, reason: "The request head is too large" }
      : { status: 400, reason: `Malformed request: ${error.message}` };
    this.#options.onRefusal?.("request", refusal.status, refusal.reason);
    socket.end(rawResponse(refusal), () => socket.destroy());
  }
}

/** The path of a request target, or "" if it has none. */
export function pathOf(target: string | undefined): string {
  try {
    return new URL(target ?? "/", "http://localhost").pathname;
  } catch {
    return "";
  }
}

/** A Fetch API request for a Node one, or a 400 if its headers do not fit one. */
function toRequest(incoming: http.IncomingMessage): Request | HttpRefusal {
  const headers = new Headers();
  const raw = incoming.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    try {
      headers.append(raw[i], raw[i + 1]);
    } catch {
      return { status: 400, reason: `Malformed header ${JSON.stringify(raw[i])}` };
    }
  }
  const method = incoming.method ?? "GET";
  const body = method === "GET" || method === "HEAD"
    ? null
    : Readable.toWeb(incoming) as ReadableStream<Uint8Array>;
  return new Request(new URL(pathOf(incoming.url), "http://localhost"), {
    method,
    headers,
    body,
  });
}

/** Writes `response` out; `close` hangs up after it. */
async function writeResponse(
  outgoing: http.ServerResponse,
  response: Response,
  close: boolean,
): Promise<void> {
  const body = new Uint8Array(await response.arrayBuffer());
  if (outgoing.destroyed || outgoing.headersSent) return;
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => (headers[name] = value));
  headers["content-length"] = String(body.byteLength);
  if (close) headers.connection = "close";
  outgoing.writeHead(response.status, headers);
  outgoing.end(body);
}

/** A whole HTTP/1.1 response with a JSON reason, for a connection closed after it. */
function rawResponse({ status, reason, headers = {} }: HttpRefusal): string {
  const body = JSON.stringify({ message: reason });
  const lines = [
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ""}`,
    "connection: close",
    "content-type: application/json",
    `content-length: ${Buffer.byteLength(body)}`,
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ];
  return `${lines.join("\r\n")}\r\n\r\n${body}`;
}

/** Whether Node already began a response on this connection (so no other may be written). */
function responseStarted(socket: Duplex): boolean {
  const message = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  return message?.headersSent === true;
}
