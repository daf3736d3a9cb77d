/**
 * Relaymail's bindings: the transports that carry Relaynet parcels between a node
 * and its next hops.
 *
 * A binding only moves bytes. Every binding implements the one contract in
 * bindings/binding.ts: it takes a {@linkcode ParcelNode}'s
 * {@linkcode ParcelNode.outgoingParcels | outgoing parcels} to a next hop, reports
 * each {@linkcode ParcelNode.parcelHandedOver | handover} only once the next hop
 * has durably stored the parcel (RS-000, "Message delivery"), and hands incoming
 * parcels to {@linkcode ParcelNode.receiveParcel}. The node, not the binding,
 * decides what to accept.
 *
 * - Sneakernet ({@linkcode exportParcels}, {@linkcode importParcels}): parcels
 *   carried on a directory, such as a USB stick (docs/protocol.md §9).
 * - Gateway: PoWeb (RS-016). {@linkcode attachGateway} joins a node to an Awala
 *   gateway; {@linkcode PoWebServer} makes a node the gateway of others.
 * - Mesh: libp2p between nearby peers, in mesh/mod.ts (`attachParcelNode`).
 *
 * Every hop validates a parcel before it stores or relays it
 * ({@linkcode validateParcel}; {@linkcode FastParcelValidator} for relays) and
 * refuses it with a {@linkcode ParcelRefusedError} carrying a stable
 * {@linkcode RefusalCode}. {@linkcode SqliteDatabase} is the durable storage that
 * lets a hop acknowledge a parcel only once it is committed.
 *
 * @example Carrying a parcel on a directory
 * ```ts
 * import assert from "node:assert/strict";
 * import { exportParcels, importParcels } from "./mod.ts";
 * import { createParcelFixture } from "./testing/fixtures.ts";
 * import { MemoryParcelNode } from "./testing/memory_node.ts";
 *
 * // Two in-memory nodes; a real one validates what it receives.
 * const fixture = await createParcelFixture();
 * const parcel = await fixture.makeParcel();
 * const alice = new MemoryParcelNode("alice");
 * const key = await alice.enqueue(parcel, fixture.recipientId);
 * const bob = new MemoryParcelNode("bob");
 *
 * const stick = await Deno.makeTempDir();
 * try {
 *   await exportParcels(alice, stick);
 *   const report = await importParcels(bob, stick);
 *   assert.equal(report.accepted, 1);
 *   assert.deepEqual(bob.stored.get(key), parcel);
 * } finally {
 *   await Deno.remove(stick, { recursive: true });
 * }
 * ```
 *
 * @module
 */
export * from "./binding.ts";
export {
  checkParcel,
  MAX_CLOCK_DRIFT_TOLERANCE_MS,
  MAX_PARCEL_LENGTH,
  ParcelRefusedError,
  parseParcel,
  RAMF_MAX_TTL_SECONDS,
  sha256Hex,
  type ValidatedParcel,
  validateParcel,
  type ValidateParcelOptions,
  verifyDeliveryAuthorization,
  verifyPathIssuedBy,
} from "./validation.ts";
export {
  FastParcelValidator,
  type FastValidatorOptions,
  type ParcelFacts,
} from "./fast_validation.ts";
export {
  ForeignFileError,
  type OpenDatabaseOptions,
  refuseForeignFile,
  replaceFile,
  type Row,
  SqliteDatabase,
  StorageFullError,
} from "./durable.ts";
export {
  type ExportOptions,
  exportParcels,
  type ExportReport,
  type IgnoredEntry,
  type IgnoredEntryCode,
  type ImportOptions,
  importParcels,
  type ImportReport,
  PARCEL_FILE_EXTENSION,
  SNEAKERNET,
  type SneakernetProgress,
} from "./sneakernet/sneakernet.ts";
export {
  attachGateway,
  GATEWAY,
  type GatewayBinding,
  type GatewayBindingOptions,
  type GatewayBindingStatus,
  type GatewayCredentials,
  parsePoWebUrl,
  type PoWebAddress,
  registerWithGateway,
} from "./gateway/client.ts";
export { PoWebServer, type PoWebServerOptions } from "./gateway/poweb_server.ts";
export { type GatewayIdentity, makeGatewayIdentity } from "./gateway/identity.ts";
export { MIN_RSA_MODULUS_BITS, NO_INTERNET_GATEWAY } from "./gateway/registration.ts";
export type { ParcelSink } from "./gateway/parcel_delivery.ts";
export type { HttpFrontOptions } from "./gateway/http_front.ts";
export { GatewayStore, type QueuedParcel } from "./gateway/store.ts";
export { CloseCode, COLLECTION_WINDOW_HEADER, ContentType } from "./gateway/rs016.ts";
