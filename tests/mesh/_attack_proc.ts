/**
 * Child Deno processes that take one JSON object on their first stdin line, then
 * commands one JSON object a line, and answer with JSON lines on stdout: the
 * attacker and victim programs of the attack tests (tests/fixtures/mesh_attacker.ts,
 * tests/fixtures/mesh_victim.ts), and the line plumbing those programs share.
 *
 * @module
 */

/** One JSON line a child printed. */
export type Message = Record<string, any>;

const ROOT = new URL("../../", import.meta.url);
const CONFIG = new URL("deno.json", ROOT).pathname;

/** Reads `readable` as text lines, without their line ends. */
export async function* lines(readable: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let rest = "";
  for await (const chunk of readable.pipeThrough(new TextDecoderStream())) {
    rest += chunk;
    let end;
    while ((end = rest.indexOf("\n")) >= 0) {
      yield rest.slice(0, end);
      rest = rest.slice(end + 1);
    }
  }
  if (rest) yield rest;
}

/** Prints one JSON line on stdout (the child side). */
export function say(message: Message): void {
  console.log(JSON.stringify(message));
}

/** A child process speaking JSON lines. */
export class JsonProcess {
  readonly #child: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #messages: Message[] = [];
  #waiters: (() => void)[] = [];
  #stderr = "";
  #ended = false;
  readonly #pumps: Promise<unknown>;
  readonly status: Promise<Deno.CommandStatus>;

  private constructor(readonly label: string, child: Deno.ChildProcess) {
    this.#child = child;
    this.#stdin = child.stdin.getWriter();
    this.status = child.status;
    const out = (async () => {
      for await (const line of lines(child.stdout)) {
        let message: Message;
        try {
          message = JSON.parse(line);
        } catch {
          message = { event: "text", text: line };
        }
        this.#messages.push(message);
        this.#wake();
      }
    })();
    const err = (async () => {
      for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
        this.#stderr = (this.#stderr + chunk).slice(-64 * 1024);
      }
    })();
    this.#pumps = Promise.allSettled([out, err]).then(() => {
      this.#ended = true;
      this.#wake();
    });
  }

  /**
   * Starts `script` (a path under the repository) with `input` as its first stdin
   * line; `v8Flags` go to `--v8-flags` (`--expose-gc` lets a victim measure live memory).
   */
  static async start(
    label: string,
    script: string,
    input: Message,
    options: { v8Flags?: string[] } = {},
  ): Promise<JsonProcess> {
    const flags = options.v8Flags?.length ? [`--v8-flags=${options.v8Flags.join(",")}`] : [];
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        "--quiet",
        ...flags,
        "--config",
        CONFIG,
        new URL(script, ROOT).pathname,
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    const process = new JsonProcess(label, child);
    await process.send(input);
    return process;
  }

  /** The process id (for /proc). */
  get pid(): number {
    return this.#child.pid;
  }

  /** What the process wrote on stderr (the last 64 KiB). */
  get stderr(): string {
    return this.#stderr;
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  /** Writes one JSON line on the child's stdin. */
  async send(message: Message): Promise<void> {
    await this.#stdin.write(new TextEncoder().encode(JSON.stringify(message) + "\n"));
  }

  /**
   * The first message not yet taken whose `event` is `event` (or one of them);
   * earlier messages of other events stay for later calls. Throws, with the child's stderr, after
   * `timeoutMs` or once the child ended without printing one.
   */
  async next(event: string | readonly string[], timeoutMs = 30_000): Promise<Message> {
    const events = typeof event === "string" ? [event] : event;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.#messages.findIndex((m) => events.includes(m.event));
      if (index >= 0) return this.#messages.splice(index, 1)[0];
      const left = deadline - Date.now();
      if (this.#ended || left <= 0) {
        const seen = this.#messages.map((m) => JSON.stringify(m).slice(0, 300)).join("\n");
        throw new Error(
          `${this.label}: no "${events.join('" or "')}" message ${
            this.#ended ? "before it exited" : `within ${timeoutMs} ms`
          }\n--- stdout ---\n${seen}\n--- stderr ---\n${this.#stderr.slice(-4000)}`,
        );
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
    }
  }

  /** Sends a command and waits for the answer whose `event` is `answer`. */
  async request(command: Message, answer: string, timeoutMs = 30_000): Promise<Message> {
    await this.send(command);
    return await this.next(answer, timeoutMs);
  }

  /**
   * Closes the child's stdin (the programs take that as "stop"), waits up to
   * `graceMs` for it to exit, kills it past that, and releases its pipes.
   */
  async stop(graceMs = 10_000): Promise<Deno.CommandStatus> {
    await this.#stdin.close().catch(() => {});
    let timer: ReturnType<typeof setTimeout> | undefined;
    const exited = await Promise.race([
      this.status.then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), graceMs))),
    ]);
    clearTimeout(timer);
    if (!exited) {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* gone meanwhile */ }
    }
    const status = await this.status;
    await this.#pumps;
    return status;
  }
}
