/**
 * The control API: how a CLI command reaches the runtime that holds a data
 * directory, so that only one process ever writes it. HTTP over a Unix socket,
 * `control.sock` in the data directory (see `control_address.ts`; on Windows,
 * 127.0.0.1 on a port chosen at start). A socket works across network
 * namespaces, where loopback does not. Every request carries a bearer token,
 * kept in `control.json` in the data directory, which only its owner can read
 * (the directory is 0700, the socket and the file 0600): being able to read it
 * is what makes a caller the owner.
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
import { join, resolve } from "node:path";
import { ForeignFileError } from "../../bindings/durable.ts";
import { errorMessage } from "../../bindings/validation.ts";
import { type Fault, FaultError, FAULTS, TransientError, UserInputError } from "../core/errors.ts";
import {
  CONTROL_FILE,
  CONTROL_SOCKET,
  type ControlAddress,
  controlSocketPath,
  publishAddress,
  readControlAddress,
} from "./control_address.ts";
import { faultOf, httpStatusOf } from "./faults.ts";

export { CONTROL_FILE, CONTROL_SOCKET, type ControlAddress, readControlAddress };
import { fromJson, toJson } from "./json.ts";
import type { CallOptions } from "./types.ts";

/** Largest request body: a message with attachments at the mail limit, in base64. */
const MAX_BODY = 16 * 1024 * 1024;

/** What the control server runs requests on. */
export interface ControlTarget {
  readonly dataDir: string;
  readonly log: (line: string) => void;
  /** Runs an operation on input decoded from the request; the server encodes the result. */
  serve(name: string, input: unknown, options?: CallOptions): Promise<unknown>;
}

/** The media type of a streamed answer: progress lines, then the outcome's line. */
const NDJSON = "application/x-ndjson";

/** How long a caller may take to send its request's body, in ms. */
const BODY_DEADLINE_MS = 30_000;

/** How long stopping waits for operations under way, in ms, before it cuts them off. */
const STOP_DEADLINE_MS = 30_000;

/** How long stopping waits, once no operation runs, for their answers to go out, in ms. */
const ANSWER_GRACE_MS = 500;

/** The control API of one runtime. */
export class ControlServer {
  private constructor(
    private readonly server: Deno.HttpServer<Deno.Addr>,
    private readonly dataDir: string,
    private readonly token: string,
    private readonly socket: string | null,
    private readonly running: Set<Promise<unknown>>,
  ) {}

  /** Serves `target`'s control API and publishes its address in the data directory. */
  static async start(target: ControlTarget): Promise<ControlServer> {
    const token = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url");
    const expected = Buffer.from(`Bearer ${token}`);
    // Operations under way, which stopping waits for (a caller still sending is not one).
    const running = new Set<Promise<unknown>>();
    const tracked: ControlTarget = {
      dataDir: target.dataDir,
      log: target.log,
      serve(name, input, options) {
        const operation = target.serve(name, input, options);
        running.add(operation);
        operation.catch(() => {}).finally(() => running.delete(operation));
        return operation;
      },
    };
    const handler = (request: Request) => handle(tracked, expected, request);
    const socket = await controlSocketPath(target.dataDir);
    let server: Deno.HttpServer<Deno.Addr>;
    if (socket) {
      // Only a runtime holding the writer lock serves: a socket left here is stale.
      // (Removing a link removes the link, not what it points to.)
      await Deno.remove(socket).catch(() => {});
      // Made owner-only from the start (bind() is synchronous here); the chmod below
      // only confirms it. Other files made meanwhile would be stricter, never looser.
      const umask = Deno.umask(0o177);
      try {
        server = Deno.serve({ path: socket, onListen: () => {} }, handler);
      } finally {
        Deno.umask(umask);
      }
    } else {
      server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, handler);
    }
    const control = new ControlServer(server, target.dataDir, token, socket, running);
    try {
      if (socket) {
        // The directory is private already; the socket is made so too, never through a link.
        if (!(await Deno.lstat(socket)).isSocket) {
          throw new ForeignFileError(socket, "not the socket just made");
        }
        await Deno.chmod(socket, 0o600);
      }
      await publishAddress(target.dataDir, {
        pid: Deno.pid,
        token,
        ...(socket ? {} : { port: (server.addr as Deno.NetAddr).port }),
      });
    } catch (error) {
      await control.stop();
      throw error;
    }
    return control;
  }

  /**
   * Withdraws the address and stops answering, after the operations under way
   * (cut off after a while); a caller still sending its request is cut off.
   */
  async stop(): Promise<void> {
    // Another runtime may have published its own address since: leave that one.
    const current = await readControlAddress(this.dataDir).catch(() => null);
    if (current?.token === this.token) {
      await Deno.remove(join(this.dataDir, CONTROL_FILE)).catch(() => {});
    }
    const stopping = this.server.shutdown();
    const timers: ReturnType<typeof setTimeout>[] = [];
    const after = (ms: number) =>
      new Promise<void>((resolve) => timers.push(setTimeout(resolve, ms)));
    const answered = Promise.allSettled([...this.running]).then(() => after(ANSWER_GRACE_MS));
    await Promise.race([stopping, answered, after(STOP_DEADLINE_MS)]);
    for (const timer of timers) clearTimeout(timer);
    if (this.socket && (current === null || current.token === this.token)) {
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
    input = fromJson(await withDeadline(request.text(), BODY_DEADLINE_MS));
  } catch (error) {
    if (error instanceof SyntaxError) {
      return failure(target, name, new UserInputError(`The request is not JSON: ${error.message}`));
    }
    if (error instanceof DeadlineError) {
      return Response.json({ error: { fault: "input", message: error.message } }, {
        status: 408,
      });
    }
    return failure(target, name, error);
  }
  if (request.headers.get("accept")?.includes(NDJSON)) return streamed(target, name, input);
  try {
    const result = await target.serve(name, input);
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
        const result = await target.serve(name, input, {
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

/** A client of a running runtime's control API. */
export class ControlClient {
  readonly #client: Deno.HttpClient | undefined;
  readonly #base: string;

  private constructor(readonly address: ControlAddress, socket: string | null) {
    if (socket) {
      this.#client = Deno.createHttpClient({ proxy: { transport: "unix", path: socket } });
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
    dataDir = resolve(dataDir);
    const address = await readControlAddress(dataDir).catch(() => null);
    if (!address) return null;
    const socket = await controlSocketPath(dataDir);
    if (!socket && !Number.isInteger(address.port)) return null;
    const client = new ControlClient(address, socket);
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
  if (body?.error) {
    const fault = FAULTS.includes(body.error.fault) ? body.error.fault : "bug";
    throw new FaultError(fault, String(body.error.message ?? "The daemon failed"));
  }
  if (!body || !("result" in body)) {
    throw new FaultError("bug", "The daemon's answer holds neither a result nor an error");
  }
  return body.result;
}

/** Raised when a caller does not finish sending in time. */
class DeadlineError extends Error {}

/** `promise`, or a {@linkcode DeadlineError} if it takes longer than `ms`. */
function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new DeadlineError(`The request's body did not arrive within ${ms} ms`)),
      ms,
    );
  });
  promise.catch(() => {}); // its failure after the deadline is nobody's concern
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}
