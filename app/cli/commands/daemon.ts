/**
 * `relaymail daemon` and `relaymail start`: the long-running commands. Each
 * opens the data directory in a runtime of its own and holds its writer lock
 * until stopped, runs the daemon (and `start`, the web app) and serves the
 * control API through which the other commands reach it meanwhile.
 *
 * @module
 */
import type { Command } from "commander";
import { parsePoWebUrl } from "../../../bindings/gateway/client.ts";
import { parseDuration } from "../../core/clock.ts";
import { ConflictError, UserInputError } from "../../core/errors.ts";
import { NoIdentityError } from "../../core/identity.ts";
import { parseAddress, parseSize, type Settings } from "../../core/settings.ts";
import { lockForDaemon } from "../../runtime/client.ts";
import type { Runtime } from "../../runtime/runtime.ts";
import type { DaemonOptions } from "../../services/daemon.ts";
import type { WebApp } from "../../web/server.ts";
import { collect } from "../args.ts";
import { type GlobalOptions, openRuntime } from "../connection.ts";
import type { Output } from "../render.ts";

/** The daemon's command-line flags (shared by `daemon` and `start`). */
interface DaemonFlags {
  listen?: string[];
  peer?: string[];
  mdns?: boolean;
  mdnsInterval: string;
  mdnsInterface?: string[];
  quota?: string;
  stallTimeout: string;
  gateway?: string;
  gatewayWindow?: string;
  servePoweb?: boolean | string;
}

/** Adds `start` to `program`. */
export function addStartCommand(program: Command, output: Output): void {
  addDaemonOptions(
    program.command("start")
      .description(
        "start the messenger: the daemon and the web app on 127.0.0.1 (Ctrl-C stops both)",
      )
      .option("--port <port>", "the web app's port on 127.0.0.1 (setting web.port)"),
  ).action(function (this: Command, flags: DaemonFlags & { port?: string }) {
    return withRuntime(this, flags, async (runtime, stopped) => {
      const port = flags.port !== undefined ? Number(flags.port) : runtime.settings.get("web.port");
      if (!Number.isInteger(port) || port < 0 || port > 65535) {
        throw new UserInputError(`--port takes a port number, not "${flags.port}"`);
      }
      // Loaded here only: the other commands need none of the web app.
      const { WebApp } = await import("../../web/server.ts");
      let web: WebApp;
      try {
        web = await WebApp.start(runtime, { port, log: runtime.log });
      } catch (error) {
        if (error instanceof Deno.errors.AddrInUse) {
          throw new ConflictError(
            `Port ${port} on 127.0.0.1 is taken (is Relaymail already running?): use --port`,
            { cause: error },
          );
        }
        throw error;
      }
      try {
        // The page serves before the mesh is up (it shows the daemon starting), so that
        // it paints sooner. A daemon that cannot start is shown on the page too, which
        // can change the settings.
        output.print(`Relaymail is running. Open this address in your browser:\n\n  ${web.url}\n`);
        await runtime.runDaemon(() => daemonOptionsFrom(flags, runtime.settings));
        output.print(
          runtime.messenger.identity.exists()
            ? `Data directory ${runtime.dataDir}. Ctrl-C stops it.`
            : `First run: the page walks you through creating your identity. Ctrl-C stops it.`,
        );
        runtime.log(`stopping (${await stopped})`);
      } finally {
        await web.stop();
      }
    });
  });
}

/** Adds `daemon` to `program`. */
export function addDaemonCommand(program: Command): void {
  addDaemonOptions(
    program.command("daemon")
      .description(
        "run the mesh: find peers nearby, carry parcels, receive mail (Ctrl-C stops it)",
      ),
  ).action(function (this: Command, flags: DaemonFlags) {
    return withRuntime(this, flags, async (runtime, stopped) => {
      if (!runtime.messenger.identity.exists()) throw new NoIdentityError(runtime.dataDir);
      await runtime.runDaemon(() => daemonOptionsFrom(flags, runtime.settings));
      // It could not start: the command fails with that error, whoever's fault it is.
      const failure = runtime.daemonFailure();
      if (failure !== null) throw failure;
      runtime.log(`stopping (${await stopped})`);
    });
  });
}

/**
 * Opens `command`'s data directory in a runtime held by this process (failing
 * at once if another process holds it), serves its control API, and runs `fn`
 * with a promise of the signal that stops it; then closes the runtime.
 */
async function withRuntime(
  command: Command,
  flags: DaemonFlags,
  fn: (runtime: Runtime, stopped: Promise<Deno.Signal>) => Promise<void>,
): Promise<void> {
  const options = command.optsWithGlobals<GlobalOptions>();
  const lock = await lockForDaemon(options.dataDir);
  let runtime: Runtime;
  try {
    runtime = await openRuntime(options.dataDir, { passphraseFile: options.passphraseFile, lock });
  } catch (error) {
    lock.release();
    throw error;
  }
  const stop = Promise.withResolvers<Deno.Signal>();
  const handlers = (["SIGINT", "SIGTERM"] as const).map((name) =>
    [name, () => stop.resolve(name)] as const
  );
  for (const [name, handler] of handlers) Deno.addSignalListener(name, handler);
  try {
    daemonOptionsFrom(flags, runtime.settings); // flags that cannot work fail the command now
    // Renewals and expiries due while nothing ran, before anyone asks for anything.
    await runtime.messenger.maintain();
    await runtime.serveControl();
    await fn(runtime, stop.promise);
  } finally {
    for (const [name, handler] of handlers) Deno.removeSignalListener(name, handler);
    await runtime.close();
  }
}

function addDaemonOptions(command: Command): Command {
  return command
    .option("-l, --listen <multiaddr...>", "addresses to listen on (setting mesh.listen)")
    .option(
      "-p, --peer <multiaddr>",
      "a peer to dial and keep dialling, repeatable (setting mesh.peers)",
      collect,
    )
    .option("--mdns", "find peers by mDNS (setting mesh.mdns, on by default)")
    .option("--no-mdns", "do not find peers by mDNS: dial --peer addresses only")
    .option("--mdns-interval <ms>", "how often to ask the network for peers by mDNS", "10000")
    .option(
      "--mdns-interface <name>",
      "speak mDNS on this interface only, repeatable (setting mesh.interfaces; default: all)",
      collect,
    )
    .option(
      "--quota <size>",
      "storage for other people's parcels, e.g. 512M or 2G (setting mesh.quota)",
    )
    .option("--stall-timeout <ms>", "drop a peer that makes no progress for this long", "20000")
    .option(
      "-g, --gateway <url>",
      "fall back to this Awala gateway over PoWeb, e.g. http://127.0.0.1:13276 (setting gateway.url)",
    )
    .option(
      "--gateway-window <duration>",
      "how long the mesh may try before a parcel also goes to the gateway, e.g. 10m (setting gateway.window)",
    )
    .option(
      "--serve-poweb [host:port]",
      "serve PoWeb, as the gateway of Awala apps and other nodes (settings poweb.serve, poweb.listen)",
    )
    .option("--no-serve-poweb", "do not serve PoWeb");
}

/** The daemon's options: command-line flags first, then the settings kept in the data directory. */
function daemonOptionsFrom(opts: DaemonFlags, settings: Settings): DaemonOptions {
  const gatewayUrl = opts.gateway ?? settings.get("gateway.url");
  const serve = opts.servePoweb ?? settings.get("poweb.serve");
  return {
    listen: opts.listen ?? settings.get("mesh.listen"),
    peers: [...settings.get("mesh.peers"), ...(opts.peer ?? [])],
    mdns: opts.mdns ?? settings.get("mesh.mdns"),
    mdnsIntervalMs: Number(opts.mdnsInterval),
    mdnsInterfaces: opts.mdnsInterface ?? settings.get("mesh.interfaces"),
    quotaBytes: opts.quota ? parseSize(opts.quota) : settings.get("mesh.quota"),
    stallTimeoutMs: Number(opts.stallTimeout),
    gatewayUrl: gatewayUrl ? parsePoWebUrl(gatewayUrl).url : undefined,
    gatewayWindowMs: opts.gatewayWindow
      ? parseDuration(opts.gatewayWindow)
      : settings.get("gateway.window"),
    poweb: serve === false
      ? undefined
      : parseAddress(typeof serve === "string" ? serve : settings.get("poweb.listen")),
  };
}
