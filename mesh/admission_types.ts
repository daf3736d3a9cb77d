/**
 * The limits, options and statistics of {@linkcode Admission} (`admission.ts`),
 * apart from its code.
 *
 * @module
 */
import type { Logger } from "./log.ts";

/** Limits on inbound connections, per remote host and in all. */
export interface AdmissionLimits {
  /** Connections (pending or open) one remote host (IP address) may have at once (default 8). */
  readonly maxConnectionsPerHost: number;
  /** Handshakes one remote host may have pending at once (default 4). */
  readonly maxPendingPerHost: number;
  /** Handshakes pending in all (default 64). */
  readonly maxPendingTotal: number;
  /** A handshake not finished by then is dropped (default 5000 ms). */
  readonly handshakeTimeoutMs: number;
  /** Open connections in all (default 256). */
  readonly maxConnections: number;
}

/**
 * Default limits. Eight connections per host is go-libp2p's resource manager's
 * default per IPv4 address too; half of them may be handshaking at once, which
 * covers simultaneous dials both ways and a reconnect racing a closing
 * connection. 64 pending handshakes take a few hundred KiB and leave room for
 * dozens of newcomers at once. Noise over a LAN takes milliseconds, so five
 * seconds is generous even for a slow phone on poor Wi-Fi.
 */
export const DEFAULT_ADMISSION_LIMITS: AdmissionLimits = {
  maxConnectionsPerHost: 8,
  maxPendingPerHost: 4,
  maxPendingTotal: 64,
  handshakeTimeoutMs: 5000,
  maxConnections: 256,
};

/** Options of `Admission` beyond its limits. */
export interface AdmissionOptions {
  /** Where refusals, evictions and timeouts are logged, at debug (default: warnings on stderr). */
  readonly logger?: Logger;
}

/** Connections of one host. */
export interface HostCounts {
  /** Its inbound handshakes pending now. */
  readonly pending: number;
  /** Its inbound connections open now (handshake finished). */
  readonly open: number;
}

/** What `Admission.stats` reports. */
export interface AdmissionStats {
  /** The limits in force. */
  readonly limits: AdmissionLimits;
  /** Inbound handshakes pending now. */
  readonly pending: number;
  /** Inbound connections open now (handshake finished). */
  readonly open: number;
  /** Pending and open inbound connections per host, for hosts with any. */
  readonly hosts: Readonly<Record<string, HostCounts>>;
  /** Handshakes admitted since creation. */
  readonly admitted: number;
  /** Handshakes that finished since creation. */
  readonly upgraded: number;
  /** Connections refused since creation, by the limit that refused them. */
  readonly refused: {
    readonly hostConnections: number;
    readonly hostPending: number;
    readonly pendingTotal: number;
  };
  /** Pending handshakes aborted to make room for a newcomer. */
  readonly evicted: number;
  /** Pending handshakes aborted for taking longer than the timeout. */
  readonly timedOut: number;
}
