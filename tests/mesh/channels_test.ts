/**
 * Broadcast channels on the mesh (docs/mesh-protocol.md §2.6, §3.1): posts
 * reach the nodes that follow their channel through relays that do not, once
 * each; nodes nobody asked store nothing; expiry, unfollowing and restarts.
 * Whole meshes run in memory (`@libp2p/memory`).
 */
import assert from "node:assert/strict";
import { waitFor } from "../helpers.ts";
import {
  INTEREST_SECONDS,
  interestToken,
  MeshNode,
  ParcelRefusedError,
  type PostFacts,
  silentLogger,
} from "../../mesh/mod.ts";
import { InterestTable } from "../../mesh/interest.ts";
import { inMemory, line, memoryNode, stopAll, testChannel } from "./_channels.ts";

/** Records the `post` events of a node. */
function postsSeen(node: MeshNode): { facts: PostFacts; from?: string }[] {
  const seen: { facts: PostFacts; from?: string }[] = [];
  node.on("post", ({ facts, from }) => seen.push({ facts, from }));
  return seen;
}

Deno.test("MeshNode carries a post down a line of relays to the one follower, once", async () => {
  const channel = await testChannel();
  const nodes = await line(5);
  const [a, b, c, d, e] = nodes;
  try {
    const atE = postsSeen(e);
    const atRelays = [b, c, d].map(postsSeen);
    e.follow(channel.id);
    assert.deepEqual(e.following(), [channel.id]);
    const bytes = await channel.post("hello, line");
    const facts = await a.publish(bytes);
    assert.equal(facts.channelId, channel.id);

    await waitFor("the post to reach E", () => atE.length > 0);
    await Promise.all(nodes.map((n) => n.syncNow()));
    assert.equal(atE.length, 1, "the post event fired once at the follower");
    assert.equal(atE[0].facts.key, facts.key);
    assert.equal(atE[0].from, d.peerId, "it came from its neighbour");
    assert.deepEqual(e.post(facts.key), bytes, "the follower holds it intact");
    assert.deepEqual(e.posts().map((p) => p.key), [facts.key]);
    for (const [i, relay] of [b, c, d].entries()) {
      assert.equal(
        atRelays[i].length,
        0,
        "a relay reports no post of a channel it does not follow",
      );
      assert.deepEqual(relay.posts(channel.id).map((p) => p.key), [facts.key], "relays carry it");
      assert.deepEqual(relay.posts(), [], "but it is not among the relay's followed posts");
      assert.equal(relay.stats.postsCarried, 1);
    }
    assert.equal(e.stats.postsFollowed, 1);
    assert.equal(a.stats.postsFollowed, 1, "publishing follows the channel");
  } finally {
    await stopAll(nodes);
  }
});

Deno.test("MeshNode stores no post when it follows nothing and no neighbour asked", async () => {
  const channel = await testChannel();
  const nodes = await line(3);
  const [a, b, c] = nodes;
  try {
    await a.publish(await channel.post("nobody listens"));
    await Promise.all(nodes.map((n) => n.syncNow()));
    await Promise.all(nodes.map((n) => n.syncNow()));
    assert.equal(b.stats.postsCarried + b.stats.postsFollowed, 0);
    assert.equal(c.stats.postsCarried + c.stats.postsFollowed, 0);
    assert.equal(a.stats.postsSent, 0, "nothing was even offered");
  } finally {
    await stopAll(nodes);
  }
});

Deno.test("MeshNode purges expired posts everywhere, with the clock shifted", async () => {
  let offsetMs = 0;
  const now = () => new Date(Date.now() + offsetMs);
  const channel = await testChannel();
  const nodes = await line(3, { now });
  const [a, b, c] = nodes;
  try {
    c.follow(channel.id);
    const facts = await a.publish(await channel.post("short-lived", { ttlSeconds: 3600 }));
    await waitFor("the post to reach C", () => c.posts().length === 1);
    assert.equal(b.stats.postsCarried, 1);
    offsetMs = facts.expiresAt.getTime() - Date.now() + 1000;
    for (const node of nodes) node.store.purgeExpired();
    for (const node of nodes) {
      assert.equal(node.posts(channel.id).length, 0, "the expired post is gone");
      assert.equal(node.post(facts.key), undefined);
    }
  } finally {
    await stopAll(nodes);
  }
});

Deno.test("MeshNode.unfollow() forgets a channel's posts and stops new ones", async () => {
  const channel = await testChannel();
  const nodes = await line(2);
  const [a, b] = nodes;
  try {
    const atB = postsSeen(b);
    b.follow(channel.id);
    await a.publish(await channel.post("first"));
    await waitFor("the first post to reach B", () => atB.length === 1);
    b.unfollow(channel.id);
    assert.deepEqual(b.following(), []);
    assert.deepEqual(b.posts(channel.id), [], "its posts are forgotten");
    await b.syncNow(); // A hears that B no longer asks for the channel
    await a.publish(await channel.post("second"));
    await Promise.all(nodes.map((n) => n.syncNow()));
    assert.equal(atB.length, 1, "no post event after unfollowing");
    assert.equal(b.stats.postsCarried + b.stats.postsFollowed, 0);
  } finally {
    await stopAll(nodes);
  }
});

Deno.test("MeshNode keeps what it follows and its posts across a restart", async () => {
  const channel = await testChannel();
  const dir = await Deno.makeTempDir();
  const storePath = `${dir}/mesh.db`;
  const options = { storePath, mdns: false, createLibp2p: inMemory, logger: silentLogger };
  try {
    let node = await MeshNode.create({ ...options, listen: [`/memory/${crypto.randomUUID()}`] });
    node.follow(channel.id);
    const facts = await node.publish(await channel.post("kept"));
    await node.stop();
    node = await MeshNode.create({ ...options, listen: [`/memory/${crypto.randomUUID()}`] });
    try {
      assert.deepEqual(node.following(), [channel.id]);
      assert.deepEqual(node.posts().map((p) => p.key), [facts.key]);
      assert.equal(node.posts()[0].expiresAt.getTime(), facts.expiresAt.getTime());
    } finally {
      await node.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("MeshNode.follow() reports posts it carried already, and refuses a malformed id", async () => {
  const channel = await testChannel();
  const nodes = await line(3);
  const [a, b, c] = nodes;
  try {
    c.follow(channel.id);
    const facts = await a.publish(await channel.post("carried by B"));
    await waitFor("the post to reach C", () => c.posts().length === 1);
    const atB = postsSeen(b);
    b.follow(channel.id);
    assert.deepEqual(atB.map((p) => p.facts.key), [facts.key], "B's carried post is now its own");
    assert.equal(b.stats.postsCarried, 0);
    assert.throws(() => b.follow("not-a-channel"), RangeError);
    const late = await memoryNode();
    nodes.push(late);
    assert.deepEqual(late.posts(), []);
  } finally {
    await stopAll(nodes);
  }
});

Deno.test("InterestTable relays a peer's interest with what is left of its time, never back to it", () => {
  let now = 1_000_000;
  const own: string[] = [];
  const table = new InterestTable(() => own, () => now);
  const channel = "0" + "cd".repeat(32);
  const token = interestToken(channel);
  assert.equal(table.learn("f", "10.0.0.6", [{ token, seconds: 0xffffffff }]), true);
  assert.equal(table.learn("f", "10.0.0.6", [{ token, seconds: 600 }]), false, "nothing new");
  assert.ok(table.peerWants("f", channel));
  assert.ok(table.wants(channel) && !table.wants(channel, "f"), "not for f's own pushes");
  assert.deepEqual(table.advertise("f"), [], "split horizon");
  now += 100_500;
  assert.deepEqual(table.advertise("a"), [{ token, seconds: 499 }], "capped at 600, then waning");
  // Relayed back around a loop, it gains nothing.
  table.learn("a", "10.0.0.1", table.advertise("a"));
  now += 400_000;
  assert.deepEqual(table.advertise("b").map((t) => t.seconds), [99]);
  now += 100_000;
  assert.deepEqual(table.advertise("b"), [], "lapsed everywhere");
  own.push(channel);
  assert.deepEqual(table.advertise("f"), [{ token, seconds: INTEREST_SECONDS }], "own interest");
});

Deno.test("MeshNode.publish() refuses a tampered post and reports a post it holds once", async () => {
  const channel = await testChannel();
  const node = await memoryNode();
  try {
    const seen = postsSeen(node);
    const bytes = await channel.post("once");
    await node.publish(bytes);
    await node.publish(bytes);
    assert.equal(seen.length, 1);
    assert.equal(seen[0].from, undefined, "published here");
    const tampered = bytes.slice();
    tampered[tampered.length - 300] ^= 0xff;
    await assert.rejects(() => node.publish(tampered), ParcelRefusedError);
    assert.equal(node.posts().length, 1);
  } finally {
    await node.stop();
  }
});

Deno.test("MeshNode keeps at most its bound of a followed channel's posts, refusing the rest", async () => {
  const channel = await testChannel();
  const node = await memoryNode({ postQuota: { followedPosts: 3 } });
  try {
    node.follow(channel.id);
    const kept = [];
    for (let i = 0; i < 3; i++) {
      kept.push((await node.publish(await channel.post(`post ${i}`))).key);
    }
    const refused = await node.publish(await channel.post("one too many")).catch((e) => e);
    assert.ok(refused instanceof ParcelRefusedError, `refused, not ${refused}`);
    assert.equal(refused.code, "quota");
    // The refused post displaced none of those kept.
    assert.deepEqual(node.posts(channel.id).map((p) => p.key).sort(), kept.sort());
  } finally {
    await node.stop();
  }
});
