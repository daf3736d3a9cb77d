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
import { DatabaseSync } from "node:sqlite";
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from "@libp2p/crypto/keys";
import { peerIdFromPrivateKey } from "@libp2p/peer-id";
import {
  type Attachment,
  attachParcelNode,
  createLogger,
  formatRecord,
  type Logger,
  MeshNode,
} from "../../mesh/mod.ts";
import {
  type FallbackStatus,
  type GatewayService,
  type PoWebStatus,
  startGatewayFallback,
  startPoWebServer,
} from "./gateway_services.ts";
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
  /** Interfaces to speak mDNS on (default: every one that is up). */
  readonly mdnsInterfaces?: readonly string[];
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

/** Name of the mesh node's parcel store, inside the data directory. */
export const MESH_STORE_FILE = "mesh.sqlite";

/** Where versions before the key store kept the mesh key, in the clear: mesh.sqlite's meta. */
const LEGACY_MESH_KEY = "libp2p.private-key";

/** What the daemon is doing: {@linkcode Daemon.status}. */
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
  readonly gateway?: FallbackStatus;
  /** The PoWeb server, if this node serves one. */
  readonly poweb?: PoWebStatus;
}

const MAINTENANCE_INTERVAL_MS = 10 * 60_000;

/**
 * A running daemon: the mesh node carrying this data directory's parcels, and
 * the gateway roles when configured. The CLI's `daemon` runs one until a signal;
 * the web app runs one and restarts it when settings change.
 */
export class Daemon {
  readonly #timers: ReturnType<typeof setInterval>[] = [];
  readonly #startedAt = new Date().toISOString();
  readonly #pump: () => void;
  #attachment: Attachment | undefined;
  #fallback: GatewayService<FallbackStatus> | undefined;
  #poweb: GatewayService<PoWebStatus> | undefined;
  #stopped = false;
  #offPost: (() => void) | undefined;

  private constructor(
    readonly node: Relaymail,
    readonly mesh: MeshNode,
    private readonly options: DaemonOptions,
    private readonly log: (line: string) => void,
    private readonly logger: Logger,
  ) {
    this.#pump = () => {
      this.#attachment?.pump().catch((e) =>
        log(`could not hand parcels to the mesh: ${e.message}`)
      );
      this.#fallback?.pump().catch((e) =>
        log(`could not hand parcels to the gateway: ${e.message}`)
      );
    };
  }

  /** Starts the mesh (and gateway roles) for `node`, which must have an identity. */
  static async start(node: Relaymail, options: DaemonOptions = {}): Promise<Daemon> {
    const log = options.log ?? timestamped;
    // The mesh's own records go in the daemon's log, at its default level (warn; debug
    // with RELAYMAIL_MESH_DEBUG).
    const logger = createLogger({ component: "mesh", sink: (record) => log(formatRecord(record)) });
    const storePath = join(node.dataDir, MESH_STORE_FILE);
    const mesh = await MeshNode.create({
      storePath,
      // Given the key, the mesh deletes the copy older versions left in its store.
      privateKey: await meshPrivateKey(node, storePath),
      listen: options.listen ?? ["/ip4/0.0.0.0/tcp/4747"],
      peers: options.peers,
      mdns: options.mdns ?? true,
      mdnsIntervalMs: options.mdnsIntervalMs,
      mdnsInterfaces: options.mdnsInterfaces?.length ? options.mdnsInterfaces : undefined,
      quotaBytes: options.quotaBytes,
      stallTimeoutMs: options.stallTimeoutMs,
      now: node.ctx.now,
      clockDriftToleranceMs: node.ctx.tunables.clockDriftToleranceMs,
      logger,
    });
    logMeshEvents(mesh, node, log);
    const daemon = new Daemon(node, mesh, options, log, logger);
    try {
      await daemon.#start();
    } catch (error) {
      await daemon.stop().catch(() => {});
      throw error;
    }
    return daemon;
  }

  async #start(): Promise<void> {
    const { node, mesh, options, log } = this;
    const endpointId = node.identity.id;
    this.#attachment = attachParcelNode(mesh, node, {
      endpointIds: [endpointId],
      signers: [await node.identity.meshSigner()],
      logger: this.logger.child("attach"),
      onRefused: (key, error) =>
        log(`own parcel ${key.slice(0, 12)} not carried: ${error.code}: ${error.message}`),
    });
    // What this node turned away for good goes in the user's refusal log, like what
    // the messenger itself refuses; a full quota or a rate limit is only "later".
    mesh.on("parcel:refused", (e) => {
      if (!e.from || e.transient || e.byEndpoint) return;
      node.refusals.record({
        via: "mesh",
        hop: e.from,
        code: e.code,
        reason: e.reason,
        size: e.size ?? 0,
      });
    });
    await mesh.start();
    log(`mesh node ${mesh.peerId} listening on ${mesh.addresses.join(" ")}`);
    // Posts of followed channels, checked again and stored once (docs/broadcast.md §9).
    this.#offPost = mesh.on("post", ({ bytes }) => {
      node.channels.receivePost(bytes).catch((e) => log(`post not kept: ${e.message}`));
    });
    await node.channels.attach(mesh);
    log(`hosting endpoint ${endpointId}${options.mdns === false ? " (mDNS off)" : ""}`);
    if (options.poweb) this.#poweb = await startPoWebServer(node, mesh, options.poweb, log);
    if (options.gatewayUrl) {
      this.#fallback = startGatewayFallback(node, mesh, {
        url: options.gatewayUrl,
        windowMs: options.gatewayWindowMs ?? 10 * 60_000,
      }, log);
    }
    await this.#attachment.pump();
    node.events.addEventListener("outbox-changed", this.#pump);
    this.#timers.push(setInterval(() => {
      Promise.all([node.maintain(), this.#fallback?.maintain(), this.#poweb?.maintain()])
        .then(this.#pump)
        .catch((e) => log(`housekeeping failed: ${e.message}`));
    }, MAINTENANCE_INTERVAL_MS));
  }

  /** What the daemon is doing now. */
  status(): DaemonStatus {
    const mesh = this.mesh;
    return {
      pid: Deno.pid,
      peerId: mesh.peerId,
      addresses: mesh.addresses,
      startedAt: this.#startedAt,
      updatedAt: new Date().toISOString(),
      peers: mesh.peers().map((p) => ({
        id: p.id,
        addresses: p.addresses,
        endpoints: p.endpoints,
      })),
      parcelsCarried: mesh.store.usage().parcels,
      gateway: this.#fallback?.describe(),
      poweb: this.#poweb?.describe(),
    };
  }

  /** Stops everything; what was acknowledged stays committed. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const timer of this.#timers) clearInterval(timer);
    this.node.events.removeEventListener("outbox-changed", this.#pump);
    this.node.channels.detach();
    this.#offPost?.();
    this.#attachment?.stop();
    await this.#fallback?.stop().catch(() => {});
    await this.#poweb?.stop().catch(() => {});
    await this.mesh.stop();
    await this.node.flush().catch(() => {});
    this.log("stopped");
  }
}

/** Runs the daemon until `options.until` resolves or a termination signal arrives. */
export async function runDaemon(node: Relaymail, options: DaemonOptions = {}): Promise<void> {
  const signals = Promise.withResolvers<string>();
  const onSignal = (name: Deno.Signal) => () => signals.resolve(name);
  const handlers = (["SIGINT", "SIGTERM"] as const).map((name) => [name, onSignal(name)] as const);
  for (const [name, handler] of handlers) Deno.addSignalListener(name, handler);
  let daemon: Daemon | undefined;
  try {
    daemon = await Daemon.start(node, options);
    const reason = await Promise.race([
      signals.promise,
      ...(options.until ? [options.until.then(() => "stop requested")] : []),
    ]);
    (options.log ?? timestamped)(`stopping (${reason})`);
  } finally {
    for (const [name, handler] of handlers) Deno.removeSignalListener(name, handler);
    await daemon?.stop();
  }
}

/**
 * The mesh node's libp2p key (protobuf-encoded), kept in the messenger's key store
 * and sealed like the other private keys. On the first start after an upgrade it
 * is moved there from `storePath`, where older versions kept it in the clear, so
 * the node keeps its peer id; without one there, it is made once.
 */
async function meshPrivateKey(node: Relaymail, storePath: string): Promise<Uint8Array> {
  const keys = node.ctx.keys.privateKeyStore;
  let kept = keys.retrieveMeshKey();
  if (!kept) {
    const key = legacyMeshKey(storePath) ??
      privateKeyToProtobuf(await generateKeyPair("Ed25519"));
    kept = keys.saveMeshKey(peerIdFromPrivateKey(privateKeyFromProtobuf(key)).toString(), key);
  }
  const peerId = peerIdFromPrivateKey(privateKeyFromProtobuf(kept.key)).toString();
  if (peerId !== kept.peerId) {
    throw new Error(`The mesh key stored for peer ${kept.peerId} belongs to peer ${peerId}`);
  }
  return kept.key;
}

/** The mesh key older versions kept in mesh.sqlite's meta, read without writing anything. */
function legacyMeshKey(storePath: string): Uint8Array | undefined {
  try {
    Deno.statSync(storePath);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
  const db = new DatabaseSync(storePath, { readOnly: true });
  try {
    const hasMeta = db.prepare(
      "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
    ).get() !== undefined;
    if (!hasMeta) return undefined;
    const row = db.prepare("SELECT value FROM meta WHERE key = ?").get(LEGACY_MESH_KEY) as
      | { value: Uint8Array }
      | undefined;
    return row ? new Uint8Array(row.value) : undefined;
  } finally {
    db.close();
  }
}

/** The default log: a line on stdout, after the time. */
function timestamped(line: string): void {
  console.log(`${new Date().toISOString()} ${line}`);
}

/**
 * Logs what the mesh did, once per event, naming this device's own parcels by the
 * message they carry (as `sent` shows them) and others' by their key.
 */
function logMeshEvents(mesh: MeshNode, node: Relaymail, log: (line: string) => void): void {
  const short = (id: string) => id.length > 16 ? `…${id.slice(-8)}` : id;
  const label = (key: string) => {
    const message = node.outbox.messageOf(key);
    return message ? `message ${message}` : `parcel ${key.slice(0, 12)}`;
  };
  // The same handover may be reported by a push and a reconciliation: say it once.
  const said = new Set<string>();
  const once = (what: string, line: () => string) => {
    if (said.has(what)) return;
    said.add(what);
    if (said.size > 10_000) said.delete(said.values().next().value!);
    log(line());
  };
  mesh.on("peer:connect", (p) => log(`peer found ${p.id} ${p.addresses.join(" ")}`));
  mesh.on("peer:disconnect", (p) => log(`peer lost ${p.id}`));
  mesh.on("peer:misbehaved", (e) => log(`peer ${e.peer} misbehaved: ${e.reason}`));
  mesh.on("parcel:received", (e) =>
    log(
      e.delivered
        ? `${label(e.key)} from ${short(e.from)} delivered here`
        : `${label(e.key)} from ${short(e.from)} stored for ${e.recipientId.slice(0, 13)}`,
    ));
  mesh.on(
    "parcel:handed",
    (e) =>
      once(
        `${e.key} ${e.peer} ${e.toRecipient}`,
        () =>
          `${label(e.key)} handed to ${short(e.peer)} ${
            e.toRecipient ? "(its recipient's node, with proof)" : "(a relay)"
          }`,
      ),
  );
  mesh.on(
    "parcel:delivered",
    (e) => once(`${e.key} delivered`, () => `${label(e.key)} delivered: copy dropped`),
  );
  mesh.on(
    "parcel:refused",
    (e) =>
      log(
        `${e.key ? label(e.key) : "parcel ?"} refused${
          e.from ? ` from ${short(e.from)}` : ` by ${short(e.peer!)}`
        }: ${e.code}: ${e.reason}`,
      ),
  );
}
