/**
 * Broadcast channels on a real LAN: six hosts (network namespaces, tests/lab/netns.ts),
 * each running a mesh node in a process of its own (tests/fixtures/channel_node.ts),
 * in a line and in a star. On each:
 *
 * - one post reaches every follower exactly once (one "post" event each);
 * - nodes that don't follow carry posts to the followers beyond them, and hold no more
 *   than their post quota when an author floods the channel;
 * - a forged post (a key the channel did not authorise, an expired author certificate,
 *   a tampered post) is refused by the first hop, and no node ever holds it;
 * - with every clock shifted past the posts' expiry, every node purges them.
 *
 * Needs root; CI runs as root (without it, the tests fail under CI=true).
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import { generateRSAKeyPair, issueDeliveryAuthorization, Parcel } from "@relaycorp/relaynet-core";
import { authorizeAuthor, type ChannelKey, createChannelKey, makePost } from "../../mesh/posts.ts";
import type { ChannelNodeState } from "../fixtures/channel_node.ts";
import { type Host, type Lab, type LabProcess, labTest, waitFor } from "./netns.ts";

const NODE = join(import.meta.dirname!, "..", "fixtures", "channel_node.ts");
const PORT = 4100;
const DAY = 86_400_000;
/** Posts a non-following node may hold (small, so that a flood overruns it). */
const QUOTA = 5;
/** Posts the flooding author sends: well past any relay's quota. */
const FLOOD = 3 * QUOTA;
const TIMEOUT_MS = 20_000;

/** A node process in a lab host, and its control socket. */
class LabNode {
  peerId = "";
  constructor(
    readonly name: string,
    readonly host: Host,
    readonly process: LabProcess,
    readonly socket: string,
    readonly channelId: string,
  ) {}

  /** Sends one request and returns the answer; throws the node's error. */
  async call(cmd: string, args: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const connection = await Deno.connect({ transport: "unix", path: this.socket });
    try {
      await connection.write(new TextEncoder().encode(JSON.stringify({ cmd, ...args }) + "\n"));
      let text = "";
      for await (const chunk of connection.readable.pipeThrough(new TextDecoderStream())) {
        text += chunk;
        if (text.includes("\n")) break;
      }
      const reply = JSON.parse(text);
      if (!reply.ok) throw new Error(`${this.name} ${cmd}: ${reply.error}`);
      return reply;
    } finally {
      try {
        connection.close();
      } catch { /* closed by the loop */ }
    }
  }

  /** Its state, with the posts it holds of the lab's channel. */
  async state(): Promise<ChannelNodeState> {
    return (await this.call("state", { channelId: this.channelId })).state as ChannelNodeState;
  }

  async holds(): Promise<Set<string>> {
    return new Set((await this.state()).posts.map((p) => p.key));
  }

  /** Its multiaddr as seen from a neighbour that reaches it at `address`. */
  addressAt(address: string): string {
    return `/ip4/${address}/tcp/${PORT}/p2p/${this.peerId}`;
  }
}

async function startNode(
  lab: Lab,
  host: Host,
  channelId: string,
  following: boolean,
): Promise<LabNode> {
  const socket = join(lab.dir, `${host.name}.sock`);
  const options = {
    socket,
    storePath: join(lab.dir, `${host.name}.sqlite`),
    listen: [`/ip4/0.0.0.0/tcp/${PORT}`],
    // Followers hold their channels' posts whatever the quota; the others, this many.
    // One channel may fill the whole quota here (by default, a quarter of it).
    postQuota: following ? undefined : { posts: QUOTA, shares: { channel: 1, peer: 1, host: 1 } },
    syncIntervalMs: 2_000,
    purgeIntervalMs: 500,
  };
  const process = host.spawn("node", Deno.execPath(), [
    "run",
    "-A",
    NODE,
    JSON.stringify(options),
  ]);
  const node = new LabNode(host.name, host, process, socket, channelId);
  await waitFor(`${host.name}'s node process`, async () => {
    if (process.exited) throw new Error(`${host.name}'s node exited:\n${await process.log()}`);
    node.peerId = String((await node.call("info")).peerId);
    return true;
  });
  return node;
}

/** The channel, its author, and the posts and forgeries the tests send. */
interface Material {
  readonly channel: ChannelKey;
  post(text: string): Promise<Uint8Array>;
  readonly forgeries: Record<string, Uint8Array>;
}

async function material(): Promise<Material> {
  const now = Date.now();
  const channel = await createChannelKey();
  const author = await generateRSAKeyPair();
  const authorCertificate = await authorizeAuthor({
    channel,
    authorPublicKey: author.publicKey,
    expiresAt: new Date(now + 30 * DAY),
  });
  const post = (text: string) =>
    makePost({
      channelCertificate: channel.certificate,
      authorCertificate,
      authorPrivateKey: author.privateKey,
      payload: new TextEncoder().encode(JSON.stringify({ text })),
      ttlSeconds: 86_400,
    });
  const payload = Buffer.from(JSON.stringify({ text: "forged" }));

  // A key the channel never authorised: Mallory's, under an author certificate issued by
  // a channel of her own, with the real channel's certificate carried too.
  const mallory = await generateRSAKeyPair();
  const fake = await createChannelKey();
  const selfIssued = await issueDeliveryAuthorization({
    issuerCertificate: fake.certificate,
    issuerPrivateKey: fake.privateKey,
    subjectPublicKey: mallory.publicKey,
    validityStartDate: new Date(now - 3_600_000),
    validityEndDate: new Date(now + DAY),
  });
  const wrongKey = new Parcel({ id: channel.id }, selfIssued, payload, {
    creationDate: new Date(now - 60_000),
    ttl: 86_400,
    senderCaCertificateChain: [channel.certificate, fake.certificate],
  });
  // An author authorised until yesterday, whose post claims 30 days of life.
  const lapsed = await issueDeliveryAuthorization({
    issuerCertificate: channel.certificate,
    issuerPrivateKey: channel.privateKey,
    subjectPublicKey: author.publicKey,
    validityStartDate: new Date(now - 3 * DAY),
    validityEndDate: new Date(now - DAY),
  });
  const expired = new Parcel({ id: channel.id }, lapsed, payload, {
    creationDate: new Date(now - 2 * DAY),
    ttl: 30 * 86_400,
    senderCaCertificateChain: [channel.certificate],
  });
  // A valid post, one octet of its text changed.
  const tampered = await post("Meeting at 10");
  tampered[Buffer.from(tampered).indexOf("10")] = "9".charCodeAt(0);
  return {
    channel,
    post,
    forgeries: {
      "wrong key": new Uint8Array(await wrongKey.serialize(mallory.privateKey)),
      "expired author certificate": new Uint8Array(await expired.serialize(author.privateKey)),
      "tampered": tampered,
    },
  };
}

async function keyOf(bytes: Uint8Array): Promise<string> {
  return Buffer.from(await crypto.subtle.digest("SHA-256", bytes.slice())).toString("hex");
}

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64");

/** Waits until no node's posts change for two seconds. */
async function settle(nodes: LabNode[]): Promise<void> {
  let last = "";
  let since = Date.now();
  await waitFor("the mesh to settle", async () => {
    const now = JSON.stringify(
      await Promise.all(nodes.map(async (n) => [...await n.holds()].sort())),
    );
    if (now !== last) [last, since] = [now, Date.now()];
    return Date.now() - since >= 2_000;
  }, TIMEOUT_MS);
}

interface Topology {
  readonly nodes: LabNode[];
  /** Publishes, floods and forges. */
  readonly poster: LabNode;
  /** The poster's only neighbour, and its address there. */
  readonly firstHop: { node: LabNode; address: string };
  readonly followers: LabNode[];
  /** Non-followers that serve followers: they must carry. */
  readonly carriers: LabNode[];
  /** Non-followers that serve nobody: posts never reach them. */
  readonly bystanders: LabNode[];
}

/** Six hosts n1 — n2 — … — n6; n1 posts; n4 and n6 follow; n2, n3 and n5 carry. */
async function line(lab: Lab, channelId: string): Promise<Topology> {
  const names = ["n1", "n2", "n3", "n4", "n5", "n6"];
  const followed = new Set(["n4", "n6"]);
  const hosts = await Promise.all(names.map((n) => lab.host(n)));
  const links = [];
  for (let i = 0; i + 1 < hosts.length; i++) links.push(await lab.link(hosts[i], hosts[i + 1]));
  const nodes = await Promise.all(
    hosts.map((h) => startNode(lab, h, channelId, followed.has(h.name))),
  );
  for (const node of nodes) if (followed.has(node.name)) await node.call("follow", { channelId });
  // Each node dials the one before it.
  for (let i = 0; i + 1 < nodes.length; i++) {
    await nodes[i + 1].call("dial", { address: nodes[i].addressAt(links[i].aAddress) });
  }
  const by = (n: string) => nodes.find((node) => node.name === n)!;
  return {
    nodes,
    poster: by("n1"),
    firstHop: { node: by("n2"), address: by("n2").addressAt(links[0].bAddress) },
    followers: [by("n4"), by("n6")],
    carriers: [by("n2"), by("n3"), by("n5")],
    bystanders: [],
  };
}

/** A hub and five leaves; leaf l1 posts; l2, l3 and l4 follow; the hub carries; l5 does not follow. */
async function star(lab: Lab, channelId: string): Promise<Topology> {
  const hub = await lab.host("hub");
  const leaves = await Promise.all(["l1", "l2", "l3", "l4", "l5"].map((n) => lab.host(n)));
  const followed = new Set(["l2", "l3", "l4"]);
  const links = [];
  for (const leaf of leaves) links.push(await lab.link(hub, leaf));
  const hubNode = await startNode(lab, hub, channelId, false);
  const leafNodes = await Promise.all(
    leaves.map((h) => startNode(lab, h, channelId, followed.has(h.name))),
  );
  for (const node of leafNodes) {
    if (followed.has(node.name)) await node.call("follow", { channelId });
  }
  for (const [i, leaf] of leafNodes.entries()) {
    await leaf.call("dial", { address: hubNode.addressAt(links[i].aAddress) });
  }
  return {
    nodes: [hubNode, ...leafNodes],
    poster: leafNodes[0],
    firstHop: { node: hubNode, address: hubNode.addressAt(links[0].aAddress) },
    followers: leafNodes.slice(1, 4),
    carriers: [hubNode],
    bystanders: [leafNodes[4]],
  };
}

async function channelsOnTheMesh(
  lab: Lab,
  build: (lab: Lab, channelId: string) => Promise<Topology>,
): Promise<void> {
  const m = await material();
  const t = await build(lab, m.channel.id);
  const { nodes, poster, followers, carriers, bystanders } = t;

  // One post reaches every follower exactly once, carried by the nodes between.
  const first = await m.post("Hello, followers");
  const firstKey = await keyOf(first);
  await poster.call("publish", { post: b64(first) });
  await waitFor("the post at every follower", async () => {
    for (const f of followers) if (!(await f.holds()).has(firstKey)) return false;
    return true;
  }, TIMEOUT_MS);
  await settle(nodes);
  for (const f of followers) {
    assert.equal((await f.state()).postEvents[firstKey], 1, `${f.name}: "post" events`);
  }
  for (const c of carriers) assert.ok((await c.holds()).has(firstKey), `${c.name} carries it`);
  for (const b of bystanders) {
    assert.equal((await b.holds()).size, 0, `${b.name} follows nobody's way, yet holds posts`);
  }

  // Forgeries stop at the first hop.
  const before = (await t.firstHop.node.state()).refusals.length;
  const forged: string[] = [];
  for (const [what, bytes] of Object.entries(m.forgeries)) {
    const key = await keyOf(bytes);
    forged.push(key);
    const { reply } = await poster.call("push", { address: t.firstHop.address, post: b64(bytes) });
    assert.equal((reply as { type: string }).type, "refuse", `${what}: ${JSON.stringify(reply)}`);
    assert.equal((reply as { transient: boolean }).transient, false, `${what}: refused for now`);
  }
  const refusals = (await t.firstHop.node.state()).refusals.slice(before);
  for (const [i, what] of Object.keys(m.forgeries).entries()) {
    assert.ok(
      refusals.some((r) => JSON.stringify(r.detail).includes(forged[i])),
      `${t.firstHop.node.name} reported no refusal of the ${what} post: ${
        JSON.stringify(refusals)
      }`,
    );
  }

  // An author floods the channel: the nodes that don't follow stay within their quota.
  for (let i = 0; i < FLOOD; i++) {
    await poster.call("publish", { post: b64(await m.post(`Flood ${i}`)) });
  }
  await waitFor("some of the flood at every follower", async () => {
    for (const f of followers) if ((await f.holds()).size < 2) return false;
    return true;
  }, TIMEOUT_MS);
  await settle(nodes);
  for (const c of carriers) {
    const held = (await c.holds()).size;
    assert.ok(held >= 1 && held <= QUOTA, `${c.name} holds ${held} posts (quota ${QUOTA})`);
  }
  // The first hop was offered all 1 + FLOOD posts: it filled its quota, and refused the rest.
  const hop = await t.firstHop.node.state();
  assert.equal(hop.posts.length, QUOTA, `${t.firstHop.node.name} holds ${hop.posts.length}`);
  assert.ok(
    hop.refusals.some((r) => r.detail.code === "quota"),
    `${t.firstHop.node.name} refused nothing for its quota`,
  );
  for (const node of nodes) {
    const state = await node.state();
    for (const key of forged) {
      assert.ok(!state.posts.some((p) => p.key === key), `${node.name} holds a forged post`);
      assert.equal(state.postEvents[key], undefined, `${node.name} saw a forged post`);
    }
    for (const [key, count] of Object.entries(state.postEvents)) {
      assert.equal(count, 1, `${node.name} saw post ${key} ${count} times`);
    }
  }
  for (const b of bystanders) assert.equal((await b.holds()).size, 0, `${b.name} holds posts`);

  // Two days on, every post has expired: every node purges them.
  const held = await Promise.all(nodes.map(async (n) => (await n.holds()).size));
  assert.ok(held.filter((n) => n > 0).length >= followers.length + carriers.length);
  for (const node of nodes) await node.call("clock", { offsetMs: 2 * DAY });
  await waitFor("every post purged", async () => {
    for (const node of nodes) if ((await node.holds()).size > 0) return false;
    return true;
  }, TIMEOUT_MS);
}

labTest("channels: a line of six hosts", (lab) => channelsOnTheMesh(lab, line));

labTest("channels: a star of six hosts", (lab) => channelsOnTheMesh(lab, star));
