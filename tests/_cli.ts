/**
 * The `relaymail` command as the CLI tests run it: one process per command on a
 * data directory, and a `relaymail daemon` process whose log a test can wait on.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { waitFor } from "./helpers.ts";

/** The command's entry point. */
export const MAIN = join(import.meta.dirname!, "..", "app", "main.ts");

/** How a command ended, and what it printed. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options for {@linkcode relaymail}. */
export interface RelaymailOptions {
  /** Variables added to this process's environment (default: none). */
  env?: Record<string, string>;
  /** The directory the command runs in (default: this process's). */
  cwd?: string;
}

/** The environment every command gets: its data directory, and no colours in its output. */
function commandEnv(dataDir: string, env: Record<string, string> = {}): Record<string, string> {
  return { RELAYMAIL_DATA_DIR: dataDir, NO_COLOR: "1", ...env };
}

/**
 * Runs `relaymail <args>` on `dataDir` in a process of its own, with no stdin.
 *
 * @example
 * ```ts ignore
 * const env = { RELAYMAIL_PASSPHRASE: "s3cret" };
 * const run = await relaymail(dir, ["identity", "show"], { env });
 * ```
 */
export async function relaymail(
  dataDir: string,
  args: string[],
  options: RelaymailOptions = {},
): Promise<CliRun> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "-A", MAIN, ...args], // --quiet: no Deno download notices
    env: commandEnv(dataDir, options.env),
    cwd: options.cwd,
    stdin: "null",
  }).output();
  return {
    code: output.code,
    stdout: new TextDecoder().decode(output.stdout),
    stderr: new TextDecoder().decode(output.stderr),
  };
}

/** A `relaymail daemon` on a data directory (no mDNS, a loopback port), and its log so far. */
export class DaemonProcess {
  #stdout = "";
  #stderr = "";
  readonly #child: Deno.ChildProcess;
  readonly #reading: Promise<unknown>;

  constructor(dataDir: string, env: Record<string, string> = {}) {
    this.#child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--quiet",
        "-A",
        MAIN,
        "daemon",
        "--no-mdns",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
      ],
      env: commandEnv(dataDir, env),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const collect = async (stream: ReadableStream<Uint8Array>, add: (s: string) => void) => {
      const decoder = new TextDecoder();
      for await (const chunk of stream) add(decoder.decode(chunk, { stream: true }));
    };
    this.#reading = Promise.all([
      collect(this.#child.stdout, (s) => this.#stdout += s),
      collect(this.#child.stderr, (s) => this.#stderr += s),
    ]);
  }

  get pid(): number {
    return this.#child.pid;
  }

  get log(): string {
    return this.#stdout;
  }

  /** How many lines of the log match `pattern`. */
  count(pattern: RegExp): number {
    return this.#stdout.split("\n").filter((line) => pattern.test(line)).length;
  }

  /** Waits until `pattern` has matched `times` lines of the log. */
  async waitForLog(pattern: RegExp, times = 1): Promise<void> {
    await waitFor(
      `${times} line(s) ${pattern} in the daemon's log:\n${this.#stdout}${this.#stderr}`,
      () => this.count(pattern) >= times,
    );
  }

  /** Waits for the daemon to end; returns its exit code and output. */
  async ended(): Promise<CliRun> {
    const { code } = await this.#child.status;
    await this.#reading;
    return { code, stdout: this.#stdout, stderr: this.#stderr };
  }

  /** Stops the daemon as `kill` would; returns its exit code and output. */
  stop(): Promise<CliRun> {
    try {
      this.#child.kill("SIGTERM");
    } catch {
      // already gone
    }
    return this.ended();
  }
}

/** Runs a command that must succeed; returns what it printed. */
export async function ok(dir: string, args: string[]): Promise<string> {
  const run = await relaymail(dir, args);
  assert.equal(run.code, 0, `relaymail ${args.join(" ")} failed (${run.code}): ${run.stderr}`);
  return run.stdout;
}

/** Runs a `--json` command that must succeed; returns its parsed output. */
// deno-lint-ignore no-explicit-any
export async function json<T = any>(dir: string, args: string[]): Promise<T> {
  return JSON.parse(await ok(dir, ["--json", ...args]));
}

/** Runs a command that must fail with `code`, saying `error` on stderr. */
export async function fails(
  dir: string,
  args: string[],
  code: number,
  error: RegExp,
): Promise<void> {
  const run = await relaymail(dir, args);
  assert.equal(run.code, code, `relaymail ${args.join(" ")}: ${run.stdout}${run.stderr}`);
  assert.match(run.stderr, error);
}
