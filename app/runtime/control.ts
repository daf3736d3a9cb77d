/**
 * The control API: how a CLI command reaches the runtime that holds a data
 * directory, so that only one process ever writes it. HTTP over the Unix socket
 * `control.sock` in the data directory (on 127.0.0.1, on a port chosen at start,
 * where a socket cannot be: on Windows, or when the directory's path is too long
 * for one). A socket works across network namespaces, where loopback does not.
 * Every request carries a bearer token. The token and the address are in
 * `control.json` in the data directory, which only its owner can read (the
 * directory is 0700, the socket and the file 0600): being able to read it is
 * what makes a caller the owner.
 *
 * `POST /v1/operations/<name>` runs an operation (see `operations/`) on the
 * control-API JSON (`json.ts`) in the body, and answers `{ "result": … }`, or
 * `{ "error": { "fault", "message" } }` with the status `faults.ts` gives. A
 * request that accepts `application/x-ndjson` gets a stream instead: a line
 * `{ "progress": … }` for each report of the operation, then the outcome's line.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { timingSafeEqual } from "node:crypto";
import { join } from "node:path";
import { errorMessage } from "../../bindings/validation.ts";
import { type Fault, FaultError, TransientError, UserInputError } from "../core/errors.ts";
import { faultOf, httpStatusOf } from "./faults.ts";
import { fromJson, toJson } from "./json.ts";
import type { CallOptions } from "./types.ts";

/** Name of the file that tells clients where the control API is, inside the data directory. */
export const CONTROL_FILE = "control.json";

/** Name of the control API's Unix socket, inside the data directory. */
export const CONTROL_SOCKET = "control.sock";

/** What {@linkcode CONTROL_FILE} holds. */
export interface ControlAddress {
  readonly pid: number;
  /** The Unix socket's path, when the API is served on one. */
  readonly socket?: string;
  /** The port on 127.0.0.1, when the API is served there. */
  readonly port?: number;
  readonly token: string;
}

/** Longest Unix socket path that fits in `sockaddr_un` everywhere (104 on macOS, 108 on Linux). */
const MAX_SOCKET_PATH = 100;

/** Largest request body: a message with attachments at the mail limit, in base64. */
const MAX_BODY = 16 * 1024 * 1024;

/** What the control server runs requests on. */
export interface ControlTarget {
  readonly dataDir: string;
  readonly log: (line: string) => void;
  call(name: string, input: unknown, options?: CallOptions): Promise<unknown>;
}

/** The media type of a streamed answer: progress lines, then the outcome's line. */
const NDJSON = "application/x-ndjson";

/** The control API of one runtime. */
export class ControlServer {
  private constructor(
    private readonly server: Deno.HttpServer<Deno.Addr>,
    private readonly path: string,
    private readonly token: string,
    private readonly socket: string | undefined,
  ) {}

  /** Serves `target`'s control API and publishes its address in the data directory. */
  static async start(target: ControlTarget): Promise<ControlServer> {
    const token = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url");
    const expected = Buffer.from(`Bearer ${token}`);
    const handler = (request: Request) => handle(target, expected, request);
    let socket: string | undefined = join(target.dataDir, CONTROL_SOCKET);
    let server: Deno.HttpServer<Deno.Addr>;
    if (Deno.build.os !== "windows" && socket.length <= MAX_SOCKET_PATH) {
      // Only a runtime holding the writer lock serves: a socket left here is stale.
      await Deno.remove(socket).catch(() => {});
      server = Deno.serve({ path: socket, onListen: () => {} }, handler);
      await Deno.chmod(socket, 0o600);
    } else {
      socket = undefined;
      server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, handler);
    }
    const path = join(target.dataDir, CONTROL_FILE);
    const address: ControlAddress = socket
      ? { pid: Deno.pid, socket, token }
      : { pid: Deno.pid, port: (server.addr as Deno.NetAddr).port, token };
    const temporary = `${path}.${Deno.pid}.tmp`;
    await Deno.writeTextFile(temporary, JSON.stringify(address), { mode: 0o600 });
    await Deno.rename(temporary, path);
    return new ControlServer(server, path, token, socket);
  }

  /** Stops answering, after the requests under way, and withdraws the address. */
  async stop(): Promise<void> {
    // Another runtime may have published its own address since: leave that one.
    const current = await readControlAddress(join(this.path, "..")).catch(() => null);
    if (current?.token === this.token) await Deno.remove(this.path).catch(() => {});
    await this.server.shutdown();
    if (this.socket && current?.token === this.token) {
      await Deno.remove(this.socket).catch(() => {});
    }
  }
}

async function handle(target: ControlTarget, expected: Buffer, request: Request) {
  const given = Buffer.from(request.headers.get("authorization") ?? "");
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return Response.json({ error: { fault: "input", message: "Wrong control token" } }, {
      status: 401,
    });
  }
  const match = /^\/v1\/operations\/([\w.-]+)$/.exec(new URL(request.url).pathname);
  if (!match || request.method !== "POST") {
    return Response.json({ error: { fault: "usage", message: "Not found" } }, { status: 404 });
  }
  const name = match[1];
  let input: unknown;
  try {
    const length = Number(request.headers.get("content-length") ?? NaN);
    if (!(length <= MAX_BODY)) {
      throw new UserInputError(
        `A control request takes at most ${MAX_BODY} bytes, with its length`,
      );
    }
    input = fromJson(await request.text());
  } catch (error) {
    return failure(target, name, error);
  }
  if (request.headers.get("accept")?.includes(NDJSON)) return streamed(target, name, input);
  try {
    const result = await target.call(name, input);
    return new Response(toJson({ result: result ?? null }), {
      headers: { "content-type": "application/json" },
    });
  } catch (error) {
    return failure(target, name, error);
  }
}

/** The answer to a failed operation; our own bugs are logged with their stack. */
function failure(target: ControlTarget, name: string, error: unknown): Response {
  return Response.json({ error: errorBody(target, name, error) }, {
    status: httpStatusOf(error, { inputBoundary: true }),
  });
}

function errorBody(target: ControlTarget, name: string, error: unknown) {
  const fault = faultOf(error, { inputBoundary: true });
  if (fault === "bug") target.log(`control: ${name} failed: ${(error as Error)?.stack ?? error}`);
  return { fault, message: errorMessage(error) };
}

/** Runs the operation, streaming its progress as lines; the last line is its outcome. */
function streamed(target: ControlTarget, name: string, input: unknown): Response {
  const encoder = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    async start(controller) {
      const line = (value: unknown) => {
        try {
          controller.enqueue(encoder.encode(`${toJson(value)}\n`));
        } catch {
          // The caller went away: the operation still finishes, unseen.
        }
      };
      try {
        const result = await target.call(name, input, {
          onProgress: (progress) => line({ progress }),
        });
        line({ result: result ?? null });
      } catch (error) {
        line({ error: errorBody(target, name, error) });
      }
      try {
        controller.close();
      } catch {
        // Already closed by the caller.
      }
    },
  });
  return new Response(body, { headers: { "content-type": NDJSON } });
}

/** The control API's address in `dataDir`, or null when none is published. */
export async function readControlAddress(dataDir: string): Promise<ControlAddress | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(join(dataDir, CONTROL_FILE));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
  const address = JSON.parse(text) as ControlAddress;
  const reachable = typeof address.socket === "string" || Number.isInteger(address.port);
  return reachable && typeof address.token === "string" ? address : null;
}

/** A client of a running runtime's control API. */
export class ControlClient {
  readonly #client: Deno.HttpClient | undefined;
  readonly #base: string;

  private constructor(readonly address: ControlAddress) {
    if (address.socket) {
      this.#client = Deno.createHttpClient({ proxy: { transport: "unix", path: address.socket } });
      this.#base = "http://relaymail";
    } else {
      this.#base = `http://127.0.0.1:${address.port}`;
    }
  }

  /**
   * The client of the runtime holding `dataDir`, or null when none answers (none
   * runs, or the address is left from one that ended).
   */
  static async connect(dataDir: string): Promise<ControlClient | null> {
    const address = await readControlAddress(dataDir).catch(() => null);
    if (!address) return null;
    const client = new ControlClient(address);
    try {
      await client.call("runtime.status");
      return client;
    } catch (error) {
      client.close();
      if (error instanceof TransientError) return null;
      throw error;
    }
  }

  /** Lets the connection go. */
  close(): void {
    this.#client?.close();
  }

  /** Runs the operation `name` in the runtime; throws what it threw, with its fault. */
  async call(name: string, input: unknown = {}, options: CallOptions = {}): Promise<unknown> {
    let response: Response;
    try {
      response = await fetch(`${this.#base}/v1/operations/${name}`, {
        client: this.#client,
        method: "POST",
        headers: {
          authorization: `Bearer ${this.address.token}`,
          "content-type": "application/json",
          accept: options.onProgress ? NDJSON : "application/json",
        },
        body: toJson(input),
      });
      if (response.headers.get("content-type") !== NDJSON) {
        return outcome(fromJson(await response.text()) as Outcome);
      }
      let buffer = "";
      for await (const chunk of response.body!.pipeThrough(new TextDecoderStream())) {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf("\n")) >= 0) {
          const line = fromJson(buffer.slice(0, end)) as Outcome & { progress?: unknown };
          buffer = buffer.slice(end + 1);
          if ("progress" in line) options.onProgress?.(line.progress);
          else return outcome(line);
        }
      }
    } catch (error) {
      if (error instanceof FaultError) throw error;
      throw new TransientError(
        `Relaymail's daemon (pid ${this.address.pid}) does not answer: ${errorMessage(error)}`,
        { cause: error },
      );
    }
    throw new TransientError(
      `Relaymail's daemon (pid ${this.address.pid}) stopped before it finished "${name}"`,
    );
  }
}

/** What a control answer says: a result, or an error with its fault. */
interface Outcome {
  result?: unknown;
  error?: { fault: Fault; message: string };
}

function outcome(body: Outcome): unknown {
  if (body.error) throw new FaultError(body.error.fault, body.error.message);
  return body.result;
}
