/**
 * What every service of a mesh node speaks in: the events it reports, its
 * lifecycle, and the few steps several services take alike (reporting a lying
 * peer, acting on a checked delivery proof, decoding what a peer sent without
 * trusting it).
 *
 * @module
 */
import type { Libp2p } from "libp2p";
import { decodeProof, type DeliveryProof } from "./proofs.ts";
import { decodeItem, type Item, type MeshStore, type StoredParcel } from "./store.ts";
import type { LogFields, Logger } from "./log.ts";
import type { MeshEventMap, MeshStats } from "./types.ts";

/** Dispatches one of the node's events. */
export type Emit = <K extends keyof MeshEventMap>(type: K, detail: MeshEventMap[K]) => void;

/** A part of a node with a lifecycle: once `stop()` resolves, nothing of it runs. */
export interface Service {
  start(): Promise<void> | void;
  stop(): Promise<void>;
}

/** What a protocol service asks of libp2p: to take and give back its protocol. */
export type Registrar = Pick<Libp2p, "handle" | "unhandle">;

/** A peer said something false: logged, and reported to the node's listeners. */
export function reportMisbehaviour(
  deps: { readonly logger: Logger; readonly emit: Emit },
  peer: string,
  reason: string,
): void {
  // Info, not warn: the event reaches the node's owner, who decides how loud it is.
  deps.logger.info("Peer misbehaved", { peer, reason });
  deps.emit("peer:misbehaved", { peer, reason });
}

/** A held parcel reached its recipient, as a checked proof says: its copy goes. */
export function recordDelivery(
  deps: { readonly store: MeshStore; readonly emit: Emit },
  key: string,
  held: StoredParcel,
  proof: Uint8Array,
): void {
  deps.store.markDeliveredLater(key, held.expiresAt, held.origin === "local", proof);
  deps.store.noteKnownRecipient(held.recipientId, held.expiresAt);
  deps.emit("parcel:delivered", { key });
}

/** A delivery proof a peer sent, or null when it is malformed. */
export function safeDecodeProof(bytes: Uint8Array): DeliveryProof | null {
  try {
    return decodeProof(bytes);
  } catch {
    return null;
  }
}

/** A reconciliation item a peer sent, or null when it is malformed. */
export function safeDecodeItem(raw: Uint8Array): Item | null {
  try {
    return decodeItem(raw);
  } catch {
    return null;
  }
}

/**
 * Logs an exchange with a peer that failed: at debug when the node is stopping
 * (`signal` aborted: nothing went wrong), at info when the peer does not speak
 * the protocol (an old version: retrying cannot help), else at warn.
 */
export function logFailure(
  logger: Logger,
  signal: AbortSignal,
  message: string,
  fields: { readonly peer: string; readonly error: unknown } & LogFields,
): void {
  if (signal.aborted) logger.debug(`${message}: the node is stopping`, fields);
  else if ((fields.error as Error)?.name === "UnsupportedProtocolError") {
    logger.info(`${message}: the peer does not speak the protocol`, fields);
  } else logger.warn(message, fields);
}

/** Why a stream ended, for an error thrown as anything. */
export function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/** A node's counters, all zero. */
export function emptyStats(): MeshStats {
  return {
    syncBytesSent: 0,
    syncBytesReceived: 0,
    syncs: 0,
    parcelsSent: 0,
    parcelsReceived: 0,
    parcelBytesSent: 0,
    parcelBytesReceived: 0,
    transferBytesSent: 0,
    transferBytesReceived: 0,
    refusals: 0,
    postsSent: 0,
    postsReceived: 0,
    postsRefused: 0,
    postsFollowed: 0,
    postsCarried: 0,
    interestTokens: 0,
  };
}
