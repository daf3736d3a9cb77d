/**
 * The gateway binding's types, apart from its code so that the binding's parts
 * (the client, the collector) can share them without importing each other.
 *
 * @module
 */
// `@internal` marks types of npm packages that our public API names: they are documented
// upstream, and `deno doc --lint` should not ask us to export them (denoland/deno#27364).
import type {
  /** @internal */
  Certificate,
} from "@relaycorp/relaynet-core";
import type { OutgoingParcel, ReceiveOutcome } from "../binding.ts";

/** Where a PoWeb server is, parsed from a URL such as `http://127.0.0.1:13276`. */
export interface PoWebAddress {
  /** Host name or IP address (an IPv6 address without its brackets). */
  readonly host: string;
  /** TCP port (default 80, or 443 with TLS). */
  readonly port: number;
  /** Whether to speak HTTPS (an `https:` URL). */
  readonly tls: boolean;
  /** The URL in its canonical form, without `/v1`. */
  readonly url: string;
}

/** The node's standing with its gateway: its gateway-issued certificate and key. */
export interface GatewayCredentials {
  /** The node's certificate, issued by the gateway (relaynet-core's `Certificate`). */
  readonly certificate: Certificate;
  /** The node's private key, whose public key that certificate holds. */
  readonly privateKey: CryptoKey;
}

/** Options of `attachGateway`. */
export interface GatewayBindingOptions {
  /** The gateway. */
  readonly address: PoWebAddress;
  /** The node's current credentials (they change when the registration is renewed). */
  readonly credentials: () => Promise<GatewayCredentials>;
  /**
   * How long a parcel waits for the other bindings before it goes to the gateway,
   * in ms from when it was queued (e.g. 0 when no mesh peer is known).
   */
  readonly delayMs: (parcel: OutgoingParcel) => number;
  /** How often to look for parcels that became due, in ms (default 5000). */
  readonly pollIntervalMs?: number;
  /** Collection: first reconnection delay (default 1000 ms), doubled up to `maxBackoffMs`. */
  readonly initialBackoffMs?: number;
  /** Collection: longest reconnection delay (default 60 000 ms). */
  readonly maxBackoffMs?: number;
  /** Collection: how often to ping the gateway (default 15 000 ms). */
  readonly pingIntervalMs?: number;
  /**
   * Collection: a socket that brought nothing for this long is replaced by a fresh
   * one (default 300 000 ms): it may be up but no longer delivering.
   */
  readonly recycleAfterMs?: number;
  /** Told about every parcel collected and what the node did with it. */
  readonly onCollected?: (bytes: Uint8Array, key: string, outcome: ReceiveOutcome) => void;
  /** Told when the gateway says the node is not (or no longer) registered. */
  readonly onUnauthorized?: (reason: string) => void;
  /** Where diagnostics go. */
  readonly log?: (line: string) => void;
}

/** What the gateway binding is doing, for status displays. */
export interface GatewayBindingStatus {
  /** State of the collection socket: `waiting` is between attempts to connect. */
  readonly collecting: "connecting" | "connected" | "waiting";
  /** When the collection socket came up, or null while it is not. */
  readonly connectedSince: Date | null;
  /** Why collection last failed; null once a collection socket is up again. */
  readonly lastError: string | null;
  /** Parcels delivered to the gateway since the node was joined to it. */
  readonly delivered: number;
  /** Parcels collected from the gateway since the node was joined to it. */
  readonly collected: number;
}
