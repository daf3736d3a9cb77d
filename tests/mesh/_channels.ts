/**
 * Channels for the mesh channel tests: a channel key, an author it authorised,
 * and posts made with mesh/posts.ts exactly as an app makes them; in-memory
 * nodes in a line.
 *
 * @module
 */
import { generateRSAKeyPair } from "@relaycorp/relaynet-core";
import { memory } from "@libp2p/memory";
import { createLibp2p } from "libp2p";
import {
  authorizeAuthor,
  type ChannelKey,
  createChannelKey,
  type Libp2pFactory,
  makePost,
  MeshNode,
  type MeshNodeOptions,
  silentLogger,
} from "../../mesh/mod.ts";
import type { Certificate } from "@relaycorp/relaynet-core";

/** A channel and one author it authorised. */
export interface TestChannel {
  readonly key: ChannelKey;
  readonly id: string;
  readonly authorCertificate: Certificate;
  readonly authorPrivateKey: CryptoKey;
  /** Makes a post of `text`, by the author. */
  post(text: string, options?: { ttlSeconds?: number; now?: Date }): Promise<Uint8Array>;
}

/** Makes a channel and authorises a fresh author key, for `days` (default 30). */
export async function testChannel(
  options: { now?: Date; authorDays?: number } = {},
): Promise<TestChannel> {
  const now = options.now ?? new Date();
  const key = await createChannelKey(now);
  const author = await generateRSAKeyPair();
  const authorCertificate = await authorizeAuthor({
    channel: key,
    authorPublicKey: author.publicKey,
    expiresAt: new Date(now.getTime() + (options.authorDays ?? 30) * 86_400_000),
    now,
  });
  return {
    key,
    id: key.id,
    authorCertificate,
    authorPrivateKey: author.privateKey,
    post: (text, postOptions = {}) =>
      makePost({
        channelCertificate: key.certificate,
        authorCertificate,
        authorPrivateKey: author.privateKey,
        payload: new TextEncoder().encode(text),
        ttlSeconds: postOptions.ttlSeconds,
        now: postOptions.now ?? now,
      }),
  };
}

/** Builds a node's libp2p host over the in-memory transport. */
export const inMemory: Libp2pFactory = (config) =>
  createLibp2p({ ...config, transports: [memory()] });

/** A started in-memory node. */
export async function memoryNode(options: Partial<MeshNodeOptions> = {}): Promise<MeshNode> {
  const node = await MeshNode.create({
    storePath: ":memory:",
    listen: [`/memory/${crypto.randomUUID()}`],
    mdns: false,
    createLibp2p: inMemory,
    logger: silentLogger,
    ...options,
  });
  await node.start();
  return node;
}

/** `n` nodes connected in a line: each dials the next. */
export async function line(
  n: number,
  options: Partial<MeshNodeOptions> = {},
): Promise<MeshNode[]> {
  const nodes: MeshNode[] = [];
  for (let i = 0; i < n; i++) nodes.push(await memoryNode(options));
  for (let i = 0; i + 1 < n; i++) await nodes[i].dial(nodes[i + 1].addresses[0]);
  return nodes;
}

/** Stops every node. */
export async function stopAll(nodes: readonly MeshNode[]): Promise<void> {
  await Promise.all(nodes.map((node) => node.stop()));
}
