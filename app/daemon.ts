/**
 * The long-running messenger: one data directory joined to the libp2p mesh. It
 * hosts the user's endpoint (parcels for it go through the receiving path),
 * carries its outgoing parcels and other people's, falls back to a gateway when
 * one is configured, serves PoWeb when asked, runs housekeeping, logs peers and
 * parcels, and shuts down cleanly on SIGINT or SIGTERM: nothing acknowledged is
 * lost, since every acknowledgement follows a commit.
 *
 * @module
 */
import { join } from "node:path";
import { type Attachment, attachParcelNode, MeshNode } from "../mesh/mod.ts";
import { type GatewayService, startGatewayFallback, startPoWebServer } from "./gateway_services.ts";
import type { Relaymail } from "./relaymail.ts";

/** Options of {@linkcode runDaemon}. */
export interface DaemonOptions {
  /** Multiaddrs to listen on (default `/ip4/0.0.0.0/tcp/4747`). */
  readonly listen?: readonly string[];
  /** Peers to dial and keep dialling. */
  readonly peers?: readonly string[];
  /** Discover peers by mDNS (default true). */
  readonly mdns?: boolean;
  /** mDNS query interval in ms (default 10 000). */
  readonly mdnsIntervalMs?: number;
  /** Storage quota for other people's parcels, in octets. */
  readonly quotaBytes?: number;
  /** A peer silent this long mid-exchange is dropped, in ms (default 20 000). */
  readonly stallTimeoutMs?: number;
  /** Fall back to this gateway (PoWeb URL) for parcels the mesh does not deliver in time. */
  readonly gatewayUrl?: string;
  /** How long the mesh may try before a parcel also goes to the gateway, in ms (default 10 min). */
  readonly gatewayWindowMs?: number;
  /** Serve PoWeb on this address (default: not at all). */
  readonly poweb?: { readonly hostname: string; readonly port: number };
  /** Where log lines go (default: stdout). */
  readonly log?: (line: string) => void;
  /** Resolves when the daemon should stop (default: SIGINT or SIGTERM). */
  readonly until?: Promise<unknown>;
}

/** Name of the file the daemon keeps its live status in, inside the data directory. */
export const STATUS_FILE = "daemon-status.json";

/** What the daemon writes to {@linkcode STATUS_FILE}. */
export interface DaemonStatus {
  readonly pid: number;
  readonly peerId: string;
  readonly addresses: readonly string[];
  readonly startedAt: string;
  readonly updatedAt: string;
  readonly peers: readonly {
    id: string;
    addresses: readonly string[];
    endpoints: readonly string[];
  }[];
  readonly parcelsCarried: number;
  /** The gateway this node falls back to, if any. */
  readonly gateway?: Record<string, unknown>;
  /** The PoWeb server, if this node serves one. */
  readonly poweb?: Record<string, unknown>;
}

const MAINTENANCE_INTERVAL_MS = 10 * 60_000;

/** Runs the daemon until `options.until` resolves or a termination signal arrives. */
export async function runDaemon(node: Relaymail, options: DaemonOptions = {}): Promise<void> {
  const log = options.log ?? ((line: string) => console.log(`${new Date().toISOString()} ${line}`));
  const endpointId = node.identity.id;
  const mesh = await MeshNode.create({
    storePath: join(node.dataDir, "mesh.sqlite"),
    listen: options.listen ?? ["/ip4/0.0.0.0/tcp/4747"],
    peers: options.peers,
    mdns: options.mdns ?? true,
    mdnsIntervalMs: options.mdnsIntervalMs,
    quotaBytes: options.quotaBytes,
    stallTimeoutMs: options.stallTimeoutMs,
    now: node.ctx.now,
    clockDriftToleranceMs: node.ctx.settings.clockDriftToleranceMs,
  });
  const short = (id: string) => id.length > 16 ? `…${id.slice(-8)}` : id;
  mesh.on("peer:connect", (p) => log(`peer found ${p.id} ${p.addresses.join(" ")}`));
  mesh.on("peer:disconnect", (p) => log(`peer lost ${p.id}`));
  mesh.on("parcel:received", (e) =>
    log(
      e.delivered
        ? `parcel ${e.key.slice(0, 12)} from ${short(e.from)} delivered here`
        : `parcel ${e.key.slice(0, 12)} from ${short(e.from)} stored for ${
          e.recipientId.slice(0, 13)
        }`,
    ));
  mesh.on(
    "parcel:handed",
    (e) =>
      log(
        `parcel ${e.key.slice(0, 12)} handed to ${short(e.peer)}${
          e.toRecipient ? " (its recipient's node)" : ""
        }`,
      ),
  );
  mesh.on("parcel:delivered", (e) => log(`parcel ${e.key.slice(0, 12)} delivered: copy dropped`));
  mesh.on(
    "parcel:refused",
    (e) =>
      log(
        `parcel ${e.key?.slice(0, 12) ?? "?"} refused${
          e.from ? ` from ${short(e.from)}` : ` by ${short(e.peer!)}`
        }: ${e.code}: ${e.reason}`,
      ),
  );

  let attachment: Attachment | undefined;
  let fallback: GatewayService | undefined;
  let poweb: GatewayService | undefined;
  const statusPath = join(node.dataDir, STATUS_FILE);
  const startedAt = new Date().toISOString();
  const writeStatus = async () => {
    const status: DaemonStatus = {
      pid: Deno.pid,
      peerId: mesh.peerId,
      addresses: mesh.addresses,
      startedAt,
      updatedAt: new Date().toISOString(),
      peers: mesh.peers().map((p) => ({
        id: p.id,
        addresses: p.addresses,
        endpoints: p.endpoints,
      })),
      parcelsCarried: mesh.store.usage().parcels,
      gateway: fallback?.describe(),
      poweb: poweb?.describe(),
    };
    const temporary = `${statusPath}.${Deno.pid}.tmp`;
    await Deno.writeTextFile(temporary, JSON.stringify(status, null, 2));
    await Deno.rename(temporary, statusPath);
  };

  const signals = Promise.withResolvers<string>();
  const onSignal = (name: Deno.Signal) => () => signals.resolve(name);
  const handlers = (["SIGINT", "SIGTERM"] as const).map((name) => [name, onSignal(name)] as const);
  for (const [name, handler] of handlers) Deno.addSignalListener(name, handler);

  const timers: ReturnType<typeof setInterval>[] = [];
  try {
    attachment = attachParcelNode(mesh, node, {
      endpointIds: [endpointId],
      onRefused: (key, error) =>
        log(`own parcel ${key.slice(0, 12)} not carried: ${error.code}: ${error.message}`),
    });
    await mesh.start();
    log(`mesh node ${mesh.peerId} listening on ${mesh.addresses.join(" ")}`);
    log(`hosting endpoint ${endpointId}${options.mdns === false ? " (mDNS off)" : ""}`);
    if (options.poweb) poweb = await startPoWebServer(node, mesh, options.poweb, log);
    if (options.gatewayUrl) {
      fallback = startGatewayFallback(node, mesh, {
        url: options.gatewayUrl,
        windowMs: options.gatewayWindowMs ?? 10 * 60_000,
      }, log);
    }
    await writeStatus();
    await attachment.pump();
    const pump = () => {
      attachment!.pump().catch((e) => log(`could not hand parcels to the mesh: ${e.message}`));
      fallback?.pump().catch((e) => log(`could not hand parcels to the gateway: ${e.message}`));
    };
    node.events.addEventListener("outbox-changed", pump);
    mesh.on("peer:connect", () => writeStatus().catch(() => {}));
    mesh.on("peer:disconnect", () => writeStatus().catch(() => {}));
    mesh.on("sync", () => writeStatus().catch(() => {}));
    timers.push(setInterval(() => writeStatus().catch(() => {}), 30_000));
    timers.push(setInterval(() => {
      Promise.all([node.maintain(), fallback?.maintain(), poweb?.maintain()]).then(pump)
        .catch((e) => log(`housekeeping failed: ${e.message}`));
    }, MAINTENANCE_INTERVAL_MS));
    const reason = await Promise.race([
      signals.promise,
      ...(options.until ? [options.until.then(() => "stop requested")] : []),
    ]);
    log(`stopping (${reason})`);
  } finally {
    for (const timer of timers) clearInterval(timer);
    for (const [name, handler] of handlers) Deno.removeSignalListener(name, handler);
    attachment?.stop();
    await fallback?.stop().catch(() => {});
    await poweb?.stop().catch(() => {});
    await mesh.stop();
    await node.flush().catch(() => {});
    await Deno.remove(statusPath).catch(() => {});
    log("stopped");
  }
}

/** The running daemon's status, if one runs for this data directory. */
export async function readDaemonStatus(dataDir: string): Promise<DaemonStatus | null> {
  try {
    const status = JSON.parse(await Deno.readTextFile(join(dataDir, STATUS_FILE))) as DaemonStatus;
    try {
      Deno.kill(status.pid, "SIGCONT"); // signal 0 is not offered; SIGCONT is harmless
    } catch {
      return null; // stale: the daemon is gone
    }
    return status;
  } catch {
    return null;
  }
}
