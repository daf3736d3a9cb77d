/**
 * Test hosts in Linux network namespaces, joined by veth links: a real LAN on one
 * machine (see ../shared/notes/lab.md). Names and subnets are unique to each lab,
 * and {@linkcode Lab.destroy} deletes every namespace and process it made, pass or
 * fail. mDNS may run inside these namespaces, and only there.
 */
import { join } from "node:path";
export { waitFor } from "../helpers.ts";

/** Whether this process can create namespaces (root, with `ip`). */
export function canMakeNamespaces(): boolean {
  try {
    return Deno.uid() === 0 &&
      new Deno.Command("ip", { args: ["-V"], stdout: "null", stderr: "null" }).outputSync().success;
  } catch {
    return false;
  }
}

/**
 * Registers a test that needs namespaces. Without root it fails under `CI=true`
 * (CI runs as root, so it must run there) and is skipped, saying why, elsewhere.
 */
export function labTest(name: string, fn: (lab: Lab) => Promise<void>): void {
  const able = canMakeNamespaces();
  const inCi = Deno.env.get("CI") === "true";
  Deno.test({
    name,
    ignore: !able && !inCi,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      if (!able) throw new Error("This test needs root and iproute2 to create network namespaces");
      const lab = await Lab.create();
      try {
        await fn(lab);
      } catch (error) {
        await lab.dumpLogs();
        throw error;
      } finally {
        await lab.destroy();
      }
    },
  });
}

async function run(cmd: string, args: string[]): Promise<string> {
  const output = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (!output.success) {
    throw new Error(
      `${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(output.stderr).trim()}`,
    );
  }
  return new TextDecoder().decode(output.stdout);
}

/** One emulated machine. */
export class Host {
  readonly addresses: string[] = [];
  constructor(readonly lab: Lab, readonly name: string, readonly namespace: string) {}

  /** Runs a command inside the namespace and waits for it. */
  exec(cmd: string, args: string[]): Promise<string> {
    return run("ip", ["netns", "exec", this.namespace, cmd, ...args]);
  }

  /** Starts a long-running process inside the namespace; its output goes to a log file. */
  spawn(label: string, cmd: string, args: string[], env: Record<string, string> = {}): LabProcess {
    return this.lab.spawn(this, label, cmd, args, env);
  }
}

/** A process started in a lab host. */
export class LabProcess {
  #exited = false;
  readonly status: Promise<Deno.CommandStatus>;

  constructor(readonly label: string, readonly child: Deno.ChildProcess, readonly logPath: string) {
    this.status = child.status.then((s) => {
      this.#exited = true;
      return s;
    });
  }

  get exited(): boolean {
    return this.#exited;
  }

  /** Sends a signal and waits for the process to end. */
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<Deno.CommandStatus> {
    if (!this.#exited) {
      try {
        this.child.kill(signal);
      } catch { /* already gone */ }
    }
    return await this.status;
  }

  /** The log so far. */
  log(): Promise<string> {
    return Deno.readTextFile(this.logPath).catch(() => "");
  }
}

/** A set of namespaces and links, unique to one test. */
export class Lab {
  readonly #hosts: Host[] = [];
  readonly #processes: LabProcess[] = [];
  #links = 0;

  private constructor(readonly prefix: string, readonly subnet: number, readonly dir: string) {}

  /** A new lab with a random name prefix and a random 10.x.0.0/16 subnet. */
  static async create(): Promise<Lab> {
    const tag = crypto.getRandomValues(new Uint8Array(2));
    const prefix = `rm${(tag[0] % 36).toString(36)}${(tag[1] % 36).toString(36)}${Deno.pid % 1000}`;
    const dir = await Deno.makeTempDir({ prefix: `relaymail-lab-${prefix}-` });
    return new Lab(prefix, 100 + (tag[0] % 150), dir);
  }

  /** Adds a host. */
  async host(name: string): Promise<Host> {
    const namespace = `${this.prefix}-${name}`;
    await run("ip", ["netns", "add", namespace]);
    const host = new Host(this, name, namespace);
    this.#hosts.push(host);
    await host.exec("ip", ["link", "set", "lo", "up"]);
    return host;
  }

  /**
   * Joins two hosts with a veth pair on a subnet of their own; returns the two
   * interface names and the addresses given to `a` and `b`.
   */
  async link(
    a: Host,
    b: Host,
  ): Promise<{ aInterface: string; bInterface: string; aAddress: string; bAddress: string }> {
    const n = ++this.#links;
    const aInterface = `${this.prefix}${n}a`.slice(0, 15);
    const bInterface = `${this.prefix}${n}b`.slice(0, 15);
    await run("ip", ["link", "add", aInterface, "type", "veth", "peer", "name", bInterface]);
    await run("ip", ["link", "set", aInterface, "netns", a.namespace]);
    await run("ip", ["link", "set", bInterface, "netns", b.namespace]);
    const aAddress = `10.${this.subnet}.${n}.1`;
    const bAddress = `10.${this.subnet}.${n}.2`;
    for (
      const [host, iface, address] of [[a, aInterface, aAddress], [
        b,
        bInterface,
        bAddress,
      ]] as const
    ) {
      await host.exec("ip", ["addr", "add", `${address}/24`, "dev", iface]);
      await host.exec("ip", ["link", "set", iface, "up"]);
      host.addresses.push(address);
    }
    return { aInterface, bInterface, aAddress, bAddress };
  }

  /** Routes multicast out of `iface`: mDNS silently finds nobody without it. */
  async multicast(host: Host, iface: string): Promise<void> {
    await host.exec("ip", ["route", "add", "224.0.0.0/4", "dev", iface]);
  }

  /** Takes an interface down or up. */
  async setLink(host: Host, iface: string, up: boolean): Promise<void> {
    await host.exec("ip", ["link", "set", iface, up ? "up" : "down"]);
  }

  /** Slows an interface to `rate` (e.g. `8mbit`) with a token bucket. */
  async throttle(host: Host, iface: string, rate: string): Promise<void> {
    await host.exec("tc", [
      "qdisc",
      "add",
      "dev",
      iface,
      "root",
      "tbf",
      "rate",
      rate,
      "burst",
      "64kbit",
      "latency",
      "300ms",
    ]);
  }

  /** Removes a throttle. */
  async unthrottle(host: Host, iface: string): Promise<void> {
    await host.exec("tc", ["qdisc", "del", "dev", iface, "root"]);
  }

  spawn(
    host: Host,
    label: string,
    cmd: string,
    args: string[],
    env: Record<string, string>,
  ): LabProcess {
    const logPath = join(this.dir, `${host.name}-${label}-${this.#processes.length}.log`);
    const log = Deno.openSync(logPath, { write: true, create: true, truncate: true });
    const child = new Deno.Command("ip", {
      args: ["netns", "exec", host.namespace, cmd, ...args],
      env: { NO_COLOR: "1", ...env },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const pump = async (stream: ReadableStream<Uint8Array>) => {
      for await (const chunk of stream) log.writeSync(chunk);
    };
    Promise.all([pump(child.stdout), pump(child.stderr)]).finally(() => log.close()).catch(
      () => {},
    );
    const process = new LabProcess(`${host.name}/${label}`, child, logPath);
    this.#processes.push(process);
    return process;
  }

  /** Prints every process's log (on failure). */
  async dumpLogs(): Promise<void> {
    for (const process of this.#processes) {
      console.error(`----- ${process.label} -----\n${await process.log()}`);
    }
  }

  /** Kills every process and deletes every namespace and the lab's files. */
  async destroy(): Promise<void> {
    await Promise.allSettled(this.#processes.map((p) => p.stop("SIGKILL")));
    for (const host of this.#hosts) {
      await run("ip", ["netns", "del", host.namespace]).catch(() => {});
    }
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}
