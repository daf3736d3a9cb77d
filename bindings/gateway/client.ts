/**
 * The gateway binding: a node talks PoWeb (RS-016) to an Awala gateway, either
 * the private gateway on its own machine (Awala Desktop listens on
 * 127.0.0.1:13276) or a Relaymail node serving PoWeb as an upstream gateway.
 *
 * Registration and parcel delivery use Relaycorp's own client
 * (`@relaycorp/relaynet-poweb`), which works under Deno. Parcel collection does
 * not: that client cannot be told to drop a socket that is up but has stopped
 * delivering (the failure Awala clients are known for), and it drops healthy
 * sockets on busy transfers, because its only liveness check is the server's
 * pings, which servers send only when the line is idle. So collection is ours,
 * on the `ws` package (./collector.ts): it pings the gateway itself, recycles a
 * socket that has been silent for too long, and reconnects with exponential backoff.
 *
 * @module
 */
// `@internal` marks types of npm packages that our public API names: they are documented
// upstream, and `deno doc --lint` should not ask us to export them (denoland/deno#27364).
import {
  ParcelDeliverySigner,
  /** @internal */
  PrivateNodeRegistration,
  PrivateNodeRegistrationRequest,
} from "@relaycorp/relaynet-core";
import { ParcelDeliveryError, PoWebClient, RefusedParcelError } from "@relaycorp/relaynet-poweb";
import type { ParcelNode } from "../binding.ts";
import { toArrayBuffer } from "../validation.ts";
import { ParcelCollector } from "./collector.ts";
import type {
  GatewayBindingOptions,
  GatewayBindingStatus,
  GatewayCredentials,
  PoWebAddress,
} from "./types.ts";

export type { GatewayBindingOptions, GatewayBindingStatus, GatewayCredentials, PoWebAddress };

/** Name of this binding in handovers and refusal logs. */
export const GATEWAY = "gateway";

/** Parses a PoWeb URL (`http[s]://host[:port][/v1]`); throws a clear error when it is not one. */
export function parsePoWebUrl(text: string): PoWebAddress {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new TypeError(`Not a PoWeb URL: "${text}" (expected e.g. http://127.0.0.1:13276)`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new TypeError(`A PoWeb URL starts with http:// or https://, not "${url.protocol}//"`);
  }
  if (!/^\/?(v1\/?)?$/.test(url.pathname) || url.search || url.hash || url.username) {
    throw new TypeError(`A PoWeb URL has no path, query or credentials: "${text}"`);
  }
  const tls = url.protocol === "https:";
  const port = url.port ? Number(url.port) : tls ? 443 : 80;
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  return { host, port, tls, url: `${url.protocol}//${url.host}` };
}

/** Relaycorp's client for `address`: the library only offers TLS to hosts other than 127.0.0.1. */
export function poWebClient(address: PoWebAddress, timeoutMs = 10_000): PoWebClient {
  const Client = PoWebClient as unknown as new (
    host: string,
    port: number,
    tls: boolean,
    timeoutMs: number,
  ) => PoWebClient;
  return new Client(address.host, address.port, address.tls, timeoutMs);
}

/**
 * Registers a private node with the gateway at `address`: pre-registration, then
 * registration, as RS-016 describes. Returns the node's gateway-issued
 * certificate, the gateway's certificate and its Internet gateway address.
 */
export async function registerWithGateway(
  address: PoWebAddress,
  keyPair: CryptoKeyPair,
): Promise<PrivateNodeRegistration> {
  const client = poWebClient(address);
  const authorization = await client.preRegisterNode(keyPair.publicKey);
  const request = new PrivateNodeRegistrationRequest(keyPair.publicKey, authorization);
  return await client.registerNode(await request.serialize(keyPair.privateKey));
}

/** A node joined to its gateway. */
export interface GatewayBinding {
  /** Delivers every outgoing parcel that is due; returns how many went. */
  pump(): Promise<number>;
  /** What it is doing. */
  status(): GatewayBindingStatus;
  /** Drops the collection socket and reconnects at once (e.g. after re-registering). */
  reconnect(): void;
  /** Stops delivering and collecting. */
  stop(): Promise<void>;
}

/**
 * Joins `node` to a gateway: outgoing parcels that no other binding delivered in
 * time are delivered to it, and parcels for the node are collected from it and
 * acknowledged only once the node has stored them.
 */
export function attachGateway(node: ParcelNode, options: GatewayBindingOptions): GatewayBinding {
  const log = options.log ?? (() => {});
  const client = poWebClient(options.address);
  const refused = new Set<string>();
  let delivered = 0;
  let stopped = false;
  let pumping: Promise<number> | null = null;
  let wake: ReturnType<typeof setTimeout> | undefined;

  const pumpOnce = async (): Promise<number> => {
    let sent = 0;
    let nextDue = Infinity;
    const now = Date.now();
    let signer: ParcelDeliverySigner | undefined;
    for (const parcel of await node.outgoingParcels({ includeHandedOver: true })) {
      if (stopped) break;
      if (parcel.handedTo.includes(GATEWAY) || refused.has(parcel.key)) continue;
      const due = parcel.queuedAt.getTime() + options.delayMs(parcel);
      if (due > now) {
        nextDue = Math.min(nextDue, due);
        continue;
      }
      const bytes = await parcel.read();
      if (!bytes) continue;
      if (!signer) {
        const { certificate, privateKey } = await options.credentials();
        signer = new ParcelDeliverySigner(certificate, privateKey);
      }
      try {
        await client.deliverParcel(toArrayBuffer(bytes), signer);
      } catch (error) {
        if (error instanceof RefusedParcelError) {
          // Refused for good (422): the other bindings may still carry it.
          refused.add(parcel.key);
          log(`gateway refused parcel ${parcel.key.slice(0, 12)}: ${(error as Error).message}`);
          continue;
        }
        if (error instanceof ParcelDeliveryError && /HTTP 40[13]/.test(error.message)) {
          options.onUnauthorized?.(error.message);
        }
        throw error;
      }
      await node.parcelHandedOver(parcel.key, {
        binding: GATEWAY,
        hop: options.address.url,
        toRecipient: false,
      });
      delivered++;
      sent++;
    }
    clearTimeout(wake);
    if (nextDue < Infinity && !stopped) {
      wake = setTimeout(() => pump().catch(() => {}), Math.max(0, nextDue - Date.now()) + 10);
    }
    return sent;
  };
  const pump = () => {
    pumping ??= pumpOnce().finally(() => (pumping = null));
    return pumping;
  };
  const interval = setInterval(
    () => pump().catch((e) => log(`delivery to the gateway failed: ${e.message}`)),
    options.pollIntervalMs ?? 5000,
  );

  const collector = new ParcelCollector(options, node, {
    binding: GATEWAY,
    hop: options.address.url,
  }, log);
  collector.start();

  return {
    pump,
    status: () => ({ ...collector.status(), delivered }),
    reconnect: () => collector.recycle("reconnection requested"),
    async stop() {
      stopped = true;
      clearInterval(interval);
      clearTimeout(wake);
      await pumping?.catch(() => {});
      await collector.stop();
    },
  };
}
