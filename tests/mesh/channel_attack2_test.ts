/**
 * More attacks on a node's channels (docs/mesh-protocol.md §0.2, channel rows,
 * and §2.6): a Sybil host with many peer ids against the interest table and the
 * HELLO's 256 tokens, a curious peer reading a HELLO, and posts that outlive
 * their author's certificate.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { Parcel } from "@relaycorp/relaynet-core";
import {
  INTEREST_LIMITS,
  INTEREST_SECONDS,
  InterestTable,
  interestToken,
} from "../../mesh/interest.ts";
import type { MeshNode } from "../../mesh/mod.ts";
import { emptyStats } from "../../mesh/core.ts";
import { silentLogger } from "../../mesh/log.ts";
import { PostIntake } from "../../mesh/post_intake.ts";
import { PostQuota, resolvePostQuota } from "../../mesh/post_quota.ts";
import { PostVerifier } from "../../mesh/posts.ts";
import { RateLimiter } from "../../mesh/rate_limit.ts";
import { MeshStore } from "../../mesh/store.ts";
import { MAX_INTEREST_TOKENS } from "../../mesh/wire.ts";
import { sha256Hex, toHex } from "../../bindings/validation.ts";
import { waitFor } from "../helpers.ts";
import { sybilPki } from "./_attack_parcels.ts";
import { line, memoryNode, stopAll, testChannel } from "./_channels.ts";

const DAY_MS = 86_400_000;

/** A channel id made up for the interest table, which only hashes it. */
function channelId(n: number): string {
  return "0" + n.toString(16).padStart(64, "0");
}

function ask(...ids: string[]) {
  return ids.map((id) => ({ token: interestToken(id), seconds: 600 }));
}

function hexes(tokens: readonly { token: Uint8Array }[]): Set<string> {
  return new Set(tokens.map((t) => toHex(t.token)));
}

Deno.test("InterestTable keeps honest neighbours' interest when one host comes with many peer ids", () => {
  const now = 1_000_000;
  const table = new InterestTable(() => [], () => now);
  const honest = channelId(1);
  table.learn("honest", "10.0.0.9", ask(honest));
  // One token each from more peer ids than the node remembers peers: the host
  // is far from its 512 tokens, but only its own peers may give way.
  for (let i = 0; i < INTEREST_LIMITS.peers + 44; i++) {
    table.learn(`sybil-${i}`, "10.0.0.66", ask(channelId(1000 + i)));
  }
  assert.ok(table.wants(honest), "the honest neighbour's interest is still remembered");
  assert.ok(hexes(table.advertise("other")).has(toHex(interestToken(honest))));
  assert.ok(
    table.size <= INTEREST_LIMITS.peersPerHost + 1,
    `one host kept to its peers: ${table.size}`,
  );
  // Many hosts fill the table: the busiest give way, never the one honest peer.
  for (let h = 0; h < 40; h++) {
    for (let i = 0; i < INTEREST_LIMITS.peersPerHost; i++) {
      table.learn(`s-${h}-${i}`, `10.1.${h}.1`, ask(channelId(5000 + h * 100 + i)));
    }
  }
  assert.ok(table.wants(honest), "still there once 256 peers are remembered");
});

Deno.test("InterestTable shares a HELLO's 256 tokens by host, not by peer id", () => {
  const now = 1_000_000;
  const table = new InterestTable(() => [], () => now);
  const honest = Array.from({ length: 100 }, (_, i) => channelId(i));
  table.learn("honest", "10.0.0.9", ask(...honest));
  // Eight peer ids of one host, 64 tokens each: the host's 512.
  for (let p = 0; p < 8; p++) {
    const junk = Array.from({ length: 64 }, (_, i) => channelId(10_000 + p * 64 + i));
    table.learn(`sybil-${p}`, "10.0.0.66", ask(...junk));
  }
  const told = table.advertise("other");
  assert.equal(told.length, MAX_INTEREST_TOKENS);
  const sent = hexes(told);
  const kept = honest.filter((id) => sent.has(toHex(interestToken(id)))).length;
  assert.equal(kept, honest.length, `every honest token is relayed, not ${kept}`);
});

Deno.test("InterestTable's HELLO does not tell a curious peer which channels the node follows", () => {
  let now = 1_000_000;
  const own = [channelId(7)];
  const table = new InterestTable(() => own, () => now);
  const relayed = channelId(8);
  table.learn("neighbour", "10.0.0.2", ask(relayed));
  now += 30_000; // the neighbour's HELLO is half a minute old
  const told = table.advertise("curious");
  const seconds = new Map(told.map((t) => [toHex(t.token), t.seconds]));
  assert.equal(seconds.size, 2);
  assert.equal(seconds.get(toHex(interestToken(own[0]))), INTEREST_SECONDS);
  assert.equal(
    seconds.get(toHex(interestToken(relayed))),
    INTEREST_SECONDS,
    "a fresh relayed token reads like an own one",
  );
  const order = told.map((t) => toHex(t.token));
  assert.deepEqual(order, [...order].sort(), "in the tokens' order, not own first");
  // Relayed interest still only wanes: past a minute it reads less.
  now += 60_000;
  assert.ok(table.advertise("curious").some((t) => t.seconds < INTEREST_SECONDS));
});

Deno.test({
  name: "MeshNode drops a post once its author certificate expired, instead of offering it forever",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    let offset = 0;
    const now = () => new Date(Date.now() + offset);
    // An author certified for one day writes a post meant to live 30 days (not
    // as makePost writes them: it caps a post's life at its certificates').
    const channel = await testChannel({ authorDays: 1 });
    const parcel = new Parcel({ id: channel.id }, channel.authorCertificate, Buffer.from("long"), {
      creationDate: new Date(Date.now() - 60_000),
      ttl: 30 * 86_400,
      senderCaCertificateChain: [channel.key.certificate],
    });
    const post = new Uint8Array(await parcel.serialize(channel.authorPrivateKey));
    const nodes: MeshNode[] = [];
    try {
      const holder = await memoryNode({ now });
      nodes.push(holder);
      await holder.publish(post); // valid today: the holder follows the channel
      offset = 2 * DAY_MS; // the author certificate has expired; the post has not
      const follower = await memoryNode({ now });
      nodes.push(follower);
      const misbehaved: string[] = [];
      follower.on("peer:misbehaved", ({ reason }) => misbehaved.push(reason));
      follower.follow(channel.id);
      await follower.dial(holder.addresses[0]);
      await waitFor("the follower to refuse the post", () => follower.stats.postsRefused > 0);
      await holder.syncNow();
      await waitFor("the holder to drop it", () => holder.posts(channel.id).length === 0);
      assert.deepEqual(follower.posts(channel.id), []);
      // Another reconciliation offers it to nobody: the follower refuses nothing more.
      await holder.syncNow();
      await follower.syncNow();
      assert.equal(follower.stats.postsRefused, 1);
      assert.ok(misbehaved.length <= 1, misbehaved.join("; "));
    } finally {
      await stopAll(nodes);
    }
  },
});

Deno.test("PostIntake does not read every carried post again for each post pushed at a full quota", async () => {
  const store = MeshStore.open(":memory:", () => new Date());
  try {
    const interest = new InterestTable(() => store.posts.followed(), () => Date.now());
    const quota = resolvePostQuota({ posts: 2, shares: { channel: 1, peer: 1, host: 1 } });
    const intake = new PostIntake({
      store,
      stats: emptyStats(),
      emit: () => {},
      logger: silentLogger,
      verifier: new PostVerifier(),
      interest,
      quota: new PostQuota(store.posts, quota),
      limiter: new RateLimiter(),
      now: () => new Date(),
      stored: () => {},
    });
    let looks = 0;
    const evict = store.posts.evictUnwanted.bind(store.posts);
    store.posts.evictUnwanted = (...args) => {
      looks++;
      return evict(...args);
    };
    const wanted = await testChannel();
    const other = await testChannel();
    const push = async (bytes: Uint8Array) => {
      const message = { type: "post" as const, key: await sha256Hex(bytes), bytes };
      const [reply] = await intake.takeBatch([message], "pusher", "10.0.0.2");
      return reply.type === "refuse" ? `refuse:${reply.code}` : reply.type;
    };
    interest.learn("asker", "10.0.0.3", ask(wanted.id));
    assert.equal(await push(await wanted.post("1")), "ack");
    assert.equal(await push(await wanted.post("2")), "ack");
    // Full, and every carried post still wanted: refused, one look at most.
    for (let i = 0; i < 5; i++) {
      assert.equal(await push(await wanted.post(`more ${i}`)), "refuse:quota");
    }
    assert.equal(looks, 1, "one look for posts to evict, not one per post pushed");
    // The asker wants another channel now: the next post looks again, and makes room.
    interest.learn("asker", "10.0.0.3", ask(other.id));
    assert.equal(await push(await other.post("news")), "ack");
    assert.equal(looks, 2);
    assert.equal(store.posts.list(other.id).length, 1);
  } finally {
    store.close();
  }
});

Deno.test("InterestTable lets a peer that changes its tokens at every HELLO start few rounds of reconciliation", () => {
  let now = 1_000_000;
  const table = new InterestTable(() => [], () => now);
  let told = 0;
  for (let i = 0; i < 20; i++) {
    if (table.learn("flapper", "10.0.0.66", ask(channelId(100 + i)))) told++;
  }
  assert.equal(told, 3, "a burst of three, not one round per HELLO");
  assert.ok(table.peerWants("flapper", channelId(119)), "its interest is still taken");
  assert.ok(table.learn("honest", "10.0.0.9", ask(channelId(1))), "others' news is told at once");
  now += 10_000;
  assert.ok(table.learn("flapper", "10.0.0.66", ask(channelId(500))), "then one per 10 s");
  assert.ok(!table.learn("flapper", "10.0.0.66", ask(channelId(501))));
});

Deno.test({
  name: "MeshNode reports a post pushed by two peers at once exactly once",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const channel = await testChannel();
    const post = await channel.post("twice offered");
    const nodes: MeshNode[] = [];
    try {
      for (let i = 0; i < 3; i++) nodes.push(await memoryNode());
      const [a, b, follower] = nodes;
      await a.publish(post);
      await b.publish(post);
      const heard: (string | undefined)[] = [];
      follower.on("post", ({ from }) => heard.push(from));
      follower.follow(channel.id);
      await Promise.all([follower.dial(a.addresses[0]), follower.dial(b.addresses[0])]);
      await waitFor("the follower to hold the post", () => follower.posts(channel.id).length > 0);
      await Promise.all(nodes.map((node) => node.syncNow()));
      assert.equal(heard.length, 1, `one "post" event, not ${heard.length}`);
      assert.ok(heard[0] === a.peerId || heard[0] === b.peerId);
      assert.equal(follower.posts(channel.id).length, 1);
    } finally {
      await stopAll(nodes);
    }
  },
});

Deno.test({
  name: "MeshNode offers posts again to a relay that refused them and a follower that forgot them",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const channel = await testChannel();
    const nodes = await line(3); // follower – relay – holder
    const [follower, relay, holder] = nodes;
    try {
      await holder.publish(await channel.post("first"));
      follower.follow(channel.id);
      await waitFor("the first post to arrive", () => follower.posts(channel.id).length === 1);
      // The follower unfollows: the relay stops wanting the channel at once, but
      // the holder still believes, until the relay's next HELLO, that it does.
      follower.unfollow(channel.id);
      // (The holder, which follows the channel, asks the relay for it too.)
      await waitFor("the relay to forget the interest", () => relay.stats.interestTokens === 1);
      const second = await channel.post("second");
      await holder.publish(second);
      await waitFor("the relay to refuse it", () => relay.stats.postsRefused > 0);
      // The follower follows again: the post must still reach it through the relay.
      follower.follow(channel.id);
      await waitFor("the relay to want it again", () => relay.stats.interestTokens === 2);
      await holder.syncNow();
      // Both: the one the relay refused while it did not want it, and the one the
      // follower had taken before and forgot when it unfollowed.
      await waitFor("both posts to arrive", () => follower.posts(channel.id).length === 2);
      assert.ok(follower.post(await sha256Hex(second)));
    } finally {
      await stopAll(nodes);
    }
  },
});

Deno.test({
  name: "MeshNode pushes the mail a reconciliation finds before the posts it finds",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const channel = await testChannel();
    const pki = await sybilPki(1, 1);
    const nodes: MeshNode[] = [];
    try {
      const holder = await memoryNode();
      nodes.push(holder);
      for (let i = 0; i < 30; i++) await holder.publish(await channel.post(`news ${i}`));
      await holder.send(await pki.makeParcel(0, 100));
      const peer = await memoryNode();
      nodes.push(peer);
      // It holds posts of its own too, more than the holder: either side then
      // reconciles with coded symbols, which find the difference in any order.
      const own = await testChannel();
      for (let i = 0; i < 40; i++) await peer.publish(await own.post(`mine ${i}`));
      const order: string[] = [];
      peer.on("parcel:received", () => order.push("parcel"));
      peer.on("post", () => order.push("post"));
      peer.follow(channel.id);
      await peer.dial(holder.addresses[0]);
      await waitFor("everything to arrive", () => order.length === 31);
      assert.equal(order.indexOf("parcel"), 0, `mail first: ${order.join(",")}`);
    } finally {
      await stopAll(nodes);
    }
  },
});
