/**
 * Relaymail's mesh: a reusable plugin that moves Relaynet parcels between nearby
 * peers, store-and-forward, over libp2p (TCP, Noise, Yamux; peers found by mDNS
 * or given as multiaddrs). It imports nothing from the Relaymail app; any Deno
 * program can use it to carry its own Relaynet parcels.
 *
 * - {@linkcode MeshNode}: start a node, {@linkcode MeshNode.send | send} it
 *   parcels, {@linkcode MeshNode.host | host} endpoints to receive theirs, observe
 *   peers and parcels through events.
 * - Broadcast channels (docs/broadcast.md): {@linkcode createChannelKey},
 *   {@linkcode authorizeAuthor} and {@linkcode makePost} make them;
 *   {@linkcode MeshNode.follow | follow}, {@linkcode MeshNode.publish | publish}
 *   and the node's `post` event carry them over the mesh, verified at every hop.
 * - {@linkcode attachParcelNode}: join a node implementing the binding contract
 *   (bindings/binding.ts) to a mesh node.
 * - {@linkcode createLogger}: where a node logs (its `logger` option), and
 *   {@linkcode Libp2pFactory}: how it builds its libp2p host (its `createLibp2p`
 *   option, which tests use to run meshes in memory).
 *
 * The protocol is specified in docs/mesh-protocol.md.
 *
 * @example A post reaching a follower
 * ```ts
 * import assert from "node:assert/strict";
 * import { generateRSAKeyPair } from "@relaycorp/relaynet-core";
 * import { authorizeAuthor, createChannelKey, makePost, MeshNode, type PostFacts } from "./mod.ts";
 *
 * // The owner makes a channel and authorises a key to write in it.
 * const channel = await createChannelKey();
 * const author = await generateRSAKeyPair();
 * const authorCertificate = await authorizeAuthor({
 *   channel,
 *   authorPublicKey: author.publicKey,
 *   expiresAt: new Date(Date.now() + 86_400_000),
 * });
 *
 * const reader = await MeshNode.create({ storePath: ":memory:", listen: ["/ip4/127.0.0.1/tcp/0"], mdns: false });
 * reader.follow(channel.id);
 * const arrived = Promise.withResolvers<PostFacts>();
 * reader.on("post", ({ facts }) => arrived.resolve(facts));
 * await reader.start();
 *
 * const writer = await MeshNode.create({
 *   storePath: ":memory:",
 *   listen: ["/ip4/127.0.0.1/tcp/0"],
 *   mdns: false,
 *   peers: reader.addresses,
 * });
 * await writer.start();
 * const published = await writer.publish(
 *   await makePost({
 *     channelCertificate: channel.certificate,
 *     authorCertificate,
 *     authorPrivateKey: author.privateKey,
 *     payload: new TextEncoder().encode("Hello, followers"),
 *   }),
 * );
 *
 * assert.equal((await arrived.promise).key, published.key);
 * await writer.stop();
 * await reader.stop();
 * ```
 *
 * @example Two programs exchanging a parcel
 * ```ts
 * import assert from "node:assert/strict";
 * import { MeshNode } from "./mod.ts";
 * import { createParcelFixture } from "../bindings/testing/fixtures.ts";
 *
 * // Any valid Relaynet parcel will do; this one is for `fixture.recipientId`.
 * const fixture = await createParcelFixture();
 * const parcel = await fixture.makeParcel();
 *
 * const bob = await MeshNode.create({ storePath: ":memory:", listen: ["/ip4/127.0.0.1/tcp/0"], mdns: false });
 * const received = Promise.withResolvers<Uint8Array>();
 * bob.host(fixture.recipientId, (bytes) => {
 *   received.resolve(bytes); // store it durably before returning
 *   return Promise.resolve({ status: "accepted" });
 * });
 * await bob.start();
 *
 * const alice = await MeshNode.create({
 *   storePath: ":memory:",
 *   listen: ["/ip4/127.0.0.1/tcp/0"],
 *   mdns: false, // mDNS only on networks where you may multicast
 *   peers: bob.addresses,
 * });
 * await alice.start();
 * await alice.send(parcel);
 *
 * assert.deepEqual(await received.promise, parcel);
 * await alice.stop();
 * await bob.stop();
 * ```
 *
 * @module
 */
export {
  type HostedParcel,
  type HostOptions,
  type Libp2pFactory,
  MAX_ITEMS,
  type MeshEventMap,
  MeshNode,
  type MeshNodeOptions,
  type MeshPeer,
  type MeshServices,
  type MeshStats,
  type ParcelHandler,
  type SendResult,
} from "./node.ts";
export {
  createLogger,
  formatRecord,
  type LogFields,
  type Logger,
  type LoggerOptions,
  type LogLevel,
  type LogRecord,
  type LogSink,
  silentLogger,
} from "./log.ts";
export { StallError } from "./channel.ts";
export { type Attachment, type AttachOptions, attachParcelNode, MESH } from "./attach.ts";
export { DEFAULT_INITIAL_COPIES } from "./routing.ts";
export {
  type DeliveryProof,
  endpointIdOf,
  type EndpointSigner,
  type HostingClaim,
  makeDeliveryProof,
  SignatureVerifier,
  signerFromPkcs8,
} from "./proofs.ts";
export { DEFAULT_QUOTA_SHARES, type QuotaShares } from "./quota.ts";
export { DEFAULT_RATE_LIMIT, type RateLimit } from "./rate_limit.ts";
export {
  Admission,
  type AdmissionLimits,
  type AdmissionOptions,
  type AdmissionStats,
  DEFAULT_ADMISSION_LIMITS,
  type HostCounts,
} from "./admission.ts";
export { MAX_IN_FLIGHT, PROTOCOL_VERSION, SYNC_PROTOCOL, TRANSFER_PROTOCOL } from "./wire.ts";
export {
  type Item,
  MeshStore,
  type ParcelRecord,
  type ShareKey,
  type StoredParcel,
} from "./store.ts";
export type {
  Handover,
  OutgoingParcel,
  OutgoingParcelsOptions,
  ParcelNode,
  ParcelOrigin,
  ReceiveOutcome,
  RefusalCode,
} from "../bindings/binding.ts";
export { ParcelRefusedError } from "../bindings/validation.ts";
export {
  authorizeAuthor,
  type AuthorizeOptions,
  CHANNEL_CERTIFICATE_DAYS,
  CHANNEL_RENEWAL_DAYS,
  channelCertificateFromDer,
  channelIdOf,
  type ChannelKey,
  createChannelKey,
  DEFAULT_POST_TTL_SECONDS,
  makePost,
  MAX_POST_TTL_SECONDS,
  needsRenewal,
  type PostFacts,
  type PostOptions,
  PostVerifier,
  type ReadPost,
  readPost,
  type ReadPostOptions,
  renewChannelCertificate,
  type VerifyPostOptions,
} from "./posts.ts";
export { DEFAULT_POST_QUOTA, type PostQuotaOptions, type ResolvedPostQuota } from "./post_quota.ts";
export { INTEREST_LIMITS, INTEREST_SECONDS, interestToken } from "./interest.ts";
export { type PostRecord, type PostShareKey, PostStore } from "./post_store.ts";
