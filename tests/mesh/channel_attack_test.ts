/**
 * Attacks on a node's channels (docs/mesh-protocol.md §0, channel rows): a raw
 * libp2p peer that speaks the wire directly pushes forged posts, floods a node
 * with self-made channels and with interest tokens; each is refused with the
 * code the spec names, or bounded, and what is refused is not stored. The
 * victim is a real `MeshNode` on loopback TCP; "hosts" are loopback addresses.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { Connection } from "@libp2p/interface";
import type { Libp2p } from "libp2p";
import { generateRSAKeyPair, issueEndpointCertificate, Parcel } from "@relaycorp/relaynet-core";
import { sha256Hex } from "../../bindings/validation.ts";
import { interestToken, MeshNode, type MeshNodeOptions, silentLogger } from "../../mesh/mod.ts";
import {
  decodeSync,
  decodeTransfer,
  encodeSync,
  encodeTransfer,
  type InterestToken,
  MAX_FRAME_LENGTH,
  MAX_INTEREST_TOKENS,
  MAX_SYNC_FRAME_LENGTH,
  NONCE_LENGTH,
  PROTOCOL_VERSION,
  SYNC_PROTOCOL,
  type SyncMessage,
  TRANSFER_PROTOCOL,
} from "../../mesh/wire.ts";
import { waitFor } from "../helpers.ts";
import { dial, Framed, openStream, rawPeer } from "./_attack_peer.ts";
import { type TestChannel, testChannel } from "./_channels.ts";

const DAY_MS = 86_400_000;

async function victimNode(options: Partial<MeshNodeOptions> = {}): Promise<MeshNode> {
  const node = await MeshNode.create({
    storePath: ":memory:",
    listen: ["/ip4/127.0.0.1/tcp/0"],
    mdns: false,
    logger: silentLogger,
    ...options,
  });
  await node.start();
  return node;
}

/** A raw peer from `localAddress` (another loopback address: another host), connected. */
async function attacker(
  victim: MeshNode,
  localAddress = "127.0.0.1",
): Promise<{ peer: Libp2p; connection: Connection }> {
  const peer = await rawPeer({ localAddress });
  return { peer, connection: await dial(peer, victim.addresses[0]) };
}

/**
 * Runs one reconciliation as initiator whose HELLO is `hello` (a frame, or the
 * interest tokens of an otherwise honest HELLO); returns the victim's first answer.
 */
async function sayHello(
  connection: Connection,
  hello: Uint8Array | InterestToken[],
): Promise<SyncMessage> {
  const stream = await openStream(connection, SYNC_PROTOCOL);
  const framed = new Framed(stream, MAX_SYNC_FRAME_LENGTH);
  const frame = hello instanceof Uint8Array ? hello : encodeSync({
    type: "hello",
    version: PROTOCOL_VERSION,
    salt: 1,
    itemCount: 0,
    nonce: new Uint8Array(NONCE_LENGTH),
    announcements: [],
    interest: hello,
  });
  await framed.write(frame);
  const reply = decodeSync((await framed.read())!);
  if (reply.type === "hello") {
    await framed.write(encodeSync({ type: "items", items: new Uint8Array(0) }));
    await framed.read(); // DIFF
    await framed.write(encodeSync({ type: "proofs", proofs: [] }));
    await framed.read(); // PROOFS
  }
  await stream.close().catch(() => {});
  return reply;
}

/** Pushes posts one at a time on one transfer stream; returns each answer as `ack:n` or `refuse:code`. */
async function pushPosts(connection: Connection, posts: readonly Uint8Array[]): Promise<string[]> {
  const stream = await openStream(connection, TRANSFER_PROTOCOL);
  const framed = new Framed(stream, MAX_FRAME_LENGTH);
  const answers: string[] = [];
  for (const bytes of posts) {
    await framed.write(encodeTransfer({ type: "post", key: await sha256Hex(bytes), bytes }));
    for (;;) {
      const reply = decodeTransfer((await framed.read())!);
      if (reply.type === "progress") continue;
      answers.push(
        reply.type === "ack"
          ? `ack:${reply.status}`
          : reply.type === "refuse"
          ? `refuse:${reply.code}`
          : reply.type,
      );
      break;
    }
  }
  await stream.close().catch(() => {});
  return answers;
}

/** A post of `channel` signed by a key the channel never authorised. */
async function postByStranger(channel: TestChannel): Promise<Uint8Array> {
  const mallory = await generateRSAKeyPair();
  const certificate = await issueEndpointCertificate({
    issuerPrivateKey: mallory.privateKey,
    subjectPublicKey: mallory.publicKey,
    validityEndDate: new Date(Date.now() + DAY_MS),
  });
  const parcel = new Parcel({ id: channel.id }, certificate, Buffer.from("forged"), {
    senderCaCertificateChain: [channel.key.certificate],
  });
  return new Uint8Array(await parcel.serialize(mallory.privateKey));
}

/** A post whose author certificate expired yesterday, though the post itself lives on. */
async function postOfExpiredAuthor(): Promise<{ channel: TestChannel; bytes: Uint8Array }> {
  const then = new Date(Date.now() - 10 * DAY_MS);
  const channel = await testChannel({ now: then, authorDays: 9 });
  const parcel = new Parcel({ id: channel.id }, channel.authorCertificate, Buffer.from("late"), {
    creationDate: then,
    ttl: 30 * 86_400,
    senderCaCertificateChain: [channel.key.certificate],
  });
  return { channel, bytes: new Uint8Array(await parcel.serialize(channel.authorPrivateKey)) };
}

Deno.test({
  name: "MeshNode refuses forged posts at the first hop, stores none, and reports the peer",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const channel = await testChannel();
    const expired = await postOfExpiredAuthor();
    const victim = await victimNode();
    const misbehaved: string[] = [];
    victim.on("peer:misbehaved", ({ reason }) => misbehaved.push(reason));
    const { peer, connection } = await attacker(victim);
    try {
      victim.follow(channel.id);
      victim.follow(expired.channel.id);
      const genuine = await channel.post("genuine");
      const tampered = genuine.slice();
      const at = Buffer.from(tampered).indexOf(Buffer.from("genuine"));
      tampered[at] ^= 0x01; // "fenuine": the signature no longer covers it
      const answers = await pushPosts(connection, [
        await postByStranger(channel),
        expired.bytes,
        tampered,
        genuine,
      ]);
      assert.deepEqual(answers, [
        "refuse:unauthorized",
        "refuse:unauthorized",
        "refuse:bad-signature",
        "ack:0",
      ]);
      assert.deepEqual(victim.posts().map((p) => p.key), [await sha256Hex(genuine)]);
      assert.equal(victim.stats.postsRefused, 3);
      assert.equal(misbehaved.length, 3, `forgeries are reported: ${misbehaved.join("; ")}`);
    } finally {
      await peer.stop();
      await victim.stop();
    }
  },
});

Deno.test({
  name: "MeshNode counts posts against the rate limit before verifying them, forged or not",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const channel = await testChannel();
    // Two posts a second, a burst of one second: the third is over the limit.
    const victim = await victimNode({ rateLimit: { parcelsPerSecond: 2, burstSeconds: 1 } });
    const misbehaved: string[] = [];
    victim.on("peer:misbehaved", ({ reason }) => misbehaved.push(reason));
    const { peer, connection } = await attacker(victim);
    try {
      victim.follow(channel.id);
      const forged = [];
      for (let i = 0; i < 4; i++) forged.push(await postByStranger(channel));
      const genuine = await channel.post("genuine");
      assert.deepEqual(await pushPosts(connection, [...forged, genuine]), [
        "refuse:unauthorized",
        "refuse:unauthorized",
        "refuse:rate-limited",
        "refuse:rate-limited",
        "refuse:rate-limited",
      ]);
      // Only the two within the budget cost a verification (and a report); the rest
      // were refused before it, the genuine post too: forgeries spend the budget.
      assert.equal(misbehaved.length, 2, misbehaved.join("; "));
      assert.equal(victim.posts().length, 0);
      // The limit is for now only: a second later the genuine post goes in.
      await new Promise((r) => setTimeout(r, 1100));
      assert.deepEqual(await pushPosts(connection, [genuine]), ["ack:0"]);
      assert.deepEqual(victim.posts().map((p) => p.key), [await sha256Hex(genuine)]);
    } finally {
      await peer.stop();
      await victim.stop();
    }
  },
});

Deno.test({
  name: "MeshNode refuses posts of channels nobody asked it for",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const channel = await testChannel();
    const victim = await victimNode();
    const { peer, connection } = await attacker(victim);
    try {
      // The pusher's own interest does not count: it would ask for what it pushes.
      await sayHello(connection, [{ token: interestToken(channel.id), seconds: 600 }]);
      assert.deepEqual(await pushPosts(connection, [await channel.post("unwanted")]), [
        "refuse:unauthorized",
      ]);
      assert.equal(victim.stats.postsCarried + victim.stats.postsFollowed, 0);
    } finally {
      await peer.stop();
      await victim.stop();
    }
  },
});

Deno.test({
  name:
    "MeshNode bounds a host's self-made channels by its shares, and keeps room for an honest one",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const postQuota = { posts: 40, bytes: 64 * 1024 * 1024 };
    const victim = await victimNode({ postQuota });
    const channels = await Promise.all(Array.from({ length: 8 }, () => testChannel()));
    const honest = await testChannel();
    // One host, two peer ids: one asks for the channels, the other pushes them.
    const asker = await attacker(victim);
    const pusher = await attacker(victim);
    const honestAsker = await attacker(victim, "127.0.0.3");
    const honestPusher = await attacker(victim, "127.0.0.2");
    try {
      await sayHello(
        asker.connection,
        channels.map((c) => ({ token: interestToken(c.id), seconds: 600 })),
      );
      const flood = [];
      for (const c of channels) for (let i = 0; i < 5; i++) flood.push(await c.post(`spam ${i}`));
      const answers = await pushPosts(pusher.connection, flood);
      const stored = answers.filter((a) => a === "ack:0").length;
      // Host share: half of the 40 posts; channel share: a quarter (10) each.
      assert.equal(stored, 20, `one host fills its share and no more: ${answers.join(",")}`);
      assert.ok(answers.every((a) => a === "ack:0" || a === "refuse:quota"), answers.join(","));
      for (const c of channels) assert.ok(victim.posts(c.id).length <= 10);
      assert.equal(victim.stats.postsCarried, 20);

      await sayHello(honestAsker.connection, [{ token: interestToken(honest.id), seconds: 600 }]);
      const post = await honest.post("honest news");
      assert.deepEqual(await pushPosts(honestPusher.connection, [post]), ["ack:0"]);
      assert.deepEqual(victim.posts(honest.id).map((p) => p.key), [await sha256Hex(post)]);
    } finally {
      for (const { peer } of [asker, pusher, honestAsker, honestPusher]) await peer.stop();
      await victim.stop();
    }
  },
});

Deno.test({
  name:
    "MeshNode refuses a HELLO over MAX_INTEREST_TOKENS and bounds what one host makes it remember",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const victim = await victimNode();
    const peers: Libp2p[] = [];
    try {
      const first = await attacker(victim);
      peers.push(first.peer);
      const tokens = (n: number) =>
        Array.from({ length: n }, () => ({
          token: crypto.getRandomValues(new Uint8Array(16)),
          seconds: 0xffffffff, // longer than anyone may ask: capped at 10 minutes
        }));
      const full = encodeSync({
        type: "hello",
        version: PROTOCOL_VERSION,
        salt: 1,
        itemCount: 0,
        nonce: new Uint8Array(NONCE_LENGTH),
        announcements: [],
        interest: tokens(MAX_INTEREST_TOKENS),
      });
      // The same HELLO claiming one token more, and carrying it.
      const over = new Uint8Array(full.length + 20);
      over.set(full);
      const countAt = full.length - MAX_INTEREST_TOKENS * 20 - 2;
      new DataView(over.buffer).setUint16(countAt, MAX_INTEREST_TOKENS + 1);
      const reply = await sayHello(first.connection, over);
      assert.equal(reply.type, "error");
      assert.match(
        reply.type === "error" ? reply.message : "",
        new RegExp(`${MAX_INTEREST_TOKENS + 1} interest tokens, over ${MAX_INTEREST_TOKENS}`),
      );
      assert.equal(victim.stats.interestTokens, 0);

      // Three peer ids of one host, 256 tokens each: the host is kept to 512.
      for (let i = 0; i < 3; i++) {
        const sybil = await attacker(victim);
        peers.push(sybil.peer);
        assert.equal((await sayHello(sybil.connection, tokens(MAX_INTEREST_TOKENS))).type, "hello");
      }
      await waitFor("the victim to take the tokens", () => victim.stats.interestTokens > 0);
      assert.equal(victim.stats.interestTokens, 2 * MAX_INTEREST_TOKENS);
    } finally {
      for (const peer of peers) await peer.stop();
      await victim.stop();
    }
  },
});

Deno.test({
  name: "MeshNode makes room for a wanted post by dropping carried posts nobody asks for any more",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const shares = { channel: 1, peer: 1, host: 1 };
    const victim = await victimNode({ postQuota: { posts: 3, shares } });
    const old = await testChannel();
    const fresh = await testChannel();
    const asker = await attacker(victim, "127.0.0.3");
    const pusher = await attacker(victim, "127.0.0.2");
    try {
      const ask = (c: TestChannel) => [{ token: interestToken(c.id), seconds: 600 }];
      await sayHello(asker.connection, ask(old));
      const stale = [await old.post("1"), await old.post("2"), await old.post("3")];
      assert.deepEqual(await pushPosts(pusher.connection, stale), ["ack:0", "ack:0", "ack:0"]);
      // Still wanted: a full quota refuses the next post, and drops nothing.
      assert.deepEqual(await pushPosts(pusher.connection, [await old.post("4")]), [
        "refuse:quota",
      ]);
      assert.equal(victim.posts(old.id).length, 3);
      // The asker now asks only for another channel: the old posts are nobody's.
      await sayHello(asker.connection, ask(fresh));
      assert.deepEqual(await pushPosts(pusher.connection, [await fresh.post("news")]), ["ack:0"]);
      assert.equal(victim.posts(fresh.id).length, 1);
      assert.equal(victim.posts(old.id).length, 2, "the oldest carried post made room");
    } finally {
      for (const { peer } of [asker, pusher]) await peer.stop();
      await victim.stop();
    }
  },
});
