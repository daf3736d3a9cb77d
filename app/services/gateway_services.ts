/**
 * The daemon's two gateway roles, next to the mesh:
 *
 * - the fallback: registered with a gateway, parcels the mesh did not deliver in
 *   time also go there, and parcels for us are collected from it;
 * - the PoWeb server: Awala endpoints (and other Relaymail nodes) register here,
 *   and the parcels they send travel the mesh like any other.
 *
 * @module
 */
import { join } from "node:path";
import { isSafelyStored } from "../../bindings/binding.ts";
import {
  attachGateway,
  type GatewayBinding,
  type GatewayBindingStatus,
  parsePoWebUrl,
} from "../../bindings/gateway/client.ts";
import { PoWebServer } from "../../bindings/gateway/poweb_server.ts";
import { GatewayStore } from "../../bindings/gateway/store.ts";
import type { MeshNode } from "../../mesh/mod.ts";
import { ownGatewayIdentity } from "./gateway.ts";
import type { Relaymail } from "./relaymail.ts";

/** Options of {@linkcode startGatewayFallback}. */
export interface FallbackOptions {
  /** The gateway's PoWeb URL. */
  readonly url: string;
  /** How long the mesh may try before a parcel also goes to the gateway, in ms. */
  readonly windowMs: number;
}

/** What the gateway fallback is doing. */
export interface FallbackStatus extends Partial<GatewayBindingStatus> {
  readonly url: string;
  /** When this endpoint's registration with the gateway expires; null before it registers. */
  readonly registeredUntil: string | null;
}

/** What the PoWeb server is doing. */
export interface PoWebStatus {
  readonly url: string;
  readonly registeredNodes: number;
  readonly queuedParcels: number;
}

/** A running gateway role, which says what it is doing as a `Status`. */
export interface GatewayService<Status = FallbackStatus | PoWebStatus> {
  /** Hands it the parcels that are due now. */
  pump(): Promise<unknown>;
  /** What it is doing, for status views. */
  describe(): Status;
  /** Housekeeping: renews what is due. */
  maintain(): Promise<void>;
  stop(): Promise<void>;
}

const REGISTRATION_RETRY_MS = [1000, 5000, 30_000, 120_000, 600_000];

/**
 * Registers with the gateway (retrying until it is reachable) and attaches the
 * gateway binding. Parcels wait `windowMs` for the mesh, or none at all while no
 * mesh peer is known; what is collected from the gateway is also recorded as
 * delivered in the mesh, so relays drop their copies.
 */
export function startGatewayFallback(
  node: Relaymail,
  mesh: MeshNode,
  options: FallbackOptions,
  log: (line: string) => void,
): GatewayService<FallbackStatus> {
  const address = parsePoWebUrl(options.url);
  let binding: GatewayBinding | null = null;
  let stopped = false;
  let attempt = 0;
  let retry: ReturnType<typeof setTimeout> | undefined;
  let lastRegistration = 0;

  const register = async (force: boolean) => {
    if (force) await node.gateway.register(address.url);
    else if (!await node.gateway.ensureRegistered(address.url)) return;
    lastRegistration = Date.now();
    const registration = node.gateway.registration()!;
    log(
      `registered with gateway ${address.url} until ${registration.expiresAt.toISOString()}` +
        (registration.internetAddress ? ` (Internet gateway ${registration.internetAddress})` : ""),
    );
    await node.flush(); // connection parameters for contacts, if the chain changed
  };

  const attach = () => {
    if (stopped) return; // stopped while registering
    binding = attachGateway(node, {
      address,
      credentials: () => node.gateway.credentials(),
      delayMs: () => mesh.peers().length === 0 ? 0 : options.windowMs,
      log: (line) => log(`gateway: ${line}`),
      onCollected: (bytes, key, outcome) => {
        log(`parcel ${key.slice(0, 12)} collected from the gateway: ${outcome.status}`);
        if (isSafelyStored(outcome)) {
          mesh.noteDelivered(key, bytes).catch(() => {});
        }
      },
      onUnauthorized: (reason) => {
        // The gateway forgot us (a reset, an expired registration): register again,
        // at most once a minute.
        if (Date.now() - lastRegistration < 60_000) return;
        log(`gateway refused our credentials (${reason}): registering again`);
        register(true).then(() => binding?.reconnect()).catch((error) =>
          log(`could not register again with ${address.url}: ${error.message}`)
        );
      },
    });
    binding.pump().catch((error) => log(`gateway: delivery failed: ${error.message}`));
  };

  const start = () => {
    if (stopped) return;
    register(false).then(attach, (error) => {
      const delay = REGISTRATION_RETRY_MS[Math.min(attempt++, REGISTRATION_RETRY_MS.length - 1)];
      log(
        `could not register with gateway ${address.url} (${error.message}); retrying in ${
          delay / 1000
        } s`,
      );
      retry = setTimeout(start, delay);
    });
  };
  start();

  return {
    pump: () => binding?.pump() ?? Promise.resolve(0),
    describe: () => ({
      url: address.url,
      registeredUntil: node.gateway.registration()?.expiresAt.toISOString() ?? null,
      ...binding?.status(),
    }),
    maintain: () => binding ? register(false) : Promise.resolve(),
    async stop() {
      stopped = true;
      clearTimeout(retry);
      await binding?.stop();
    },
  };
}

/** Options of {@linkcode startPoWebServer}. */
export interface PoWebServiceOptions {
  readonly hostname: string;
  readonly port: number;
}

/**
 * Serves PoWeb: endpoints register with this node's gateway identity, their
 * parcels go into the mesh (or straight to an endpoint hosted here), and parcels
 * for them are kept until they collect them.
 */
export async function startPoWebServer(
  node: Relaymail,
  mesh: MeshNode,
  options: PoWebServiceOptions,
  log: (line: string) => void,
): Promise<GatewayService<PoWebStatus>> {
  const identity = await ownGatewayIdentity(node.ctx);
  const store = GatewayStore.open(join(node.dataDir, "poweb.sqlite"), node.ctx.now);
  // The mesh validated what it hands over: the queue takes its facts as they are.
  const host = (nodeId: string) =>
    mesh.host(nodeId, async (bytes, _origin, parcel) => {
      await server.enqueue(bytes, nodeId, parcel.expiresAt, parcel.key);
      return { status: "accepted" };
    });
  const server: PoWebServer = new PoWebServer({
    identity,
    store,
    hostname: options.hostname,
    port: options.port,
    now: node.ctx.now,
    accept: async (bytes, from) => {
      const result = await mesh.send(bytes);
      log(
        `parcel ${result.key.slice(0, 12)} from PoWeb node ${from.slice(0, 13)}: ${result.status}`,
      );
    },
    onRegistered: (nodeId) => {
      log(`PoWeb node ${nodeId} registered`);
      host(nodeId);
    },
    onRefusal: (what, status, reason) => log(`PoWeb ${what} refused (${status}): ${reason}`),
  });
  for (const nodeId of store.registeredNodes()) host(nodeId);
  await server.start();
  log(
    `serving PoWeb on ${server.url} (gateway ${await identity.certificate.calculateSubjectId()})`,
  );
  return {
    pump: () => Promise.resolve(),
    maintain: () => {
      store.purgeExpired();
      return Promise.resolve();
    },
    describe: () => ({
      url: server.url,
      registeredNodes: store.registeredNodes().length,
      queuedParcels: store.queued(),
    }),
    async stop() {
      for (const nodeId of store.registeredNodes()) mesh.unhost(nodeId);
      await server.stop();
      store.close();
    },
  };
}
