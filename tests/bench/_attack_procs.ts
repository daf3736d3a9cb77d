/**
 * Attack benchmark helper: the processes mesh_attack_bench.ts spawns (its
 * _attack_node.ts and _attack_flood.ts), spoken to by JSON lines, and what it
 * reads of them in /proc.
 *
 * @module
 */
import process from "node:process";
import type { FloodConfig } from "./_attack_flood.ts";
import type { NodeConfig } from "./_attack_node.ts";

/** A spawned helper process. */
export interface Child {
  readonly pid: number;
  readonly ready: Record<string, unknown>;
  /** Sends a command and waits for its answer, the next line of `type`. */
  ask(command: string, type: string): Promise<Record<string, any>>;
  close(): Promise<void>;
}

/** Runs `script` with `config` and waits for its `ready` line. */
export async function spawn(script: string, config: NodeConfig | FloodConfig): Promise<Child> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, JSON.stringify(config)],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).pipeThrough(lineSplitter())
    [Symbol.asyncIterator]();
  const stdin = child.stdin.getWriter();
  const next = async (type: string) => {
    for (;;) {
      const line = await lines.next();
      if (line.done) throw new Error(`${script} ended early`);
      const message = JSON.parse(line.value);
      if (message.type === type) return message;
    }
  };
  const ready = await next("ready");
  let closed: Promise<void> | null = null;
  return {
    pid: child.pid,
    ready,
    async ask(command, type) {
      await stdin.write(new TextEncoder().encode(command + "\n"));
      return await next(type);
    },
    close() {
      closed ??= (async () => {
        await stdin.close().catch(() => {});
        const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
        await child.status;
        clearTimeout(timer);
        await child.stdout.cancel().catch(() => {});
        // A child killed for hanging left its temporary directory behind.
        if (typeof ready.dir === "string") {
          await Deno.remove(ready.dir, { recursive: true }).catch(() => {});
        }
      })();
      return closed;
    },
  };
}

function lineSplitter(): TransformStream<string, string> {
  let buffer = "";
  return new TransformStream({
    transform(chunk, controller) {
      buffer += chunk;
      const parts = buffer.split("\n");
      buffer = parts.pop()!;
      for (const line of parts) if (line.trim()) controller.enqueue(line);
    },
  });
}

/** CPU seconds (user and system) a process has used so far. */
export async function cpuSeconds(pid: number): Promise<number> {
  const fields = (await Deno.readTextFile(`/proc/${pid}/stat`)).split(") ")[1].split(" ");
  // utime and stime, in clock ticks (100 a second on Linux).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * Seconds a process's main thread (for Deno, its event loop) has spent ready to
 * run but waiting for a core so far: how much other work on the machine held it back.
 */
export async function waitingSeconds(pid: number): Promise<number> {
  // Time on a CPU, time waiting on a run queue (both ns), time slices.
  const fields = (await Deno.readTextFile(`/proc/${pid}/schedstat`)).trim().split(" ");
  return Number(fields[1]) / 1e9;
}

/** CPU milliseconds (user and system, all threads) this process has used so far. */
export function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/** Resident memory of a process now and at its peak, in octets. */
export async function residentMemory(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const kib = (field: string) => Number(status.match(new RegExp(`${field}:\\s+(\\d+)`))![1]);
  return { rss: kib("VmRSS") * 1024, peak: kib("VmHWM") * 1024 };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The median of some numbers. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}
