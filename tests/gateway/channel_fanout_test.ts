/**
 * The owner's fan-out through a real PoWeb gateway (docs/broadcast.md §8): Alice
 * and Bob are contacts, each runs a daemon registered with the same gateway, and
 * no mesh path joins them. A private channel's grant reaches Bob as mail through
 * the gateway, and Alice's post follows as a parcel. A public channel's follower
 * tells Alice he follows, through the gateway, and her next post fans out to him.
 * When the mesh joins them later, its copies are the same posts: stored once.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { makeGatewayIdentity, PoWebServer } from "../../bindings/gateway/poweb_server.ts";
import { GatewayStore } from "../../bindings/gateway/store.ts";
import { validateParcel } from "../../bindings/validation.ts";
import { Daemon } from "../../app/services/daemon.ts";
import type { Relaymail } from "../../app/services/relaymail.ts";
import { makeNode, pair, type TestNode, waitFor } from "../helpers.ts";

/**
 * A PoWeb gateway on loopback, as tests/fixtures/poweb_gateway.ts runs one: what
 * it is delivered is validated, then queued for its recipient if registered here.
 */
async function startGateway(dir: string): Promise<{ url: string; stop(): Promise<void> }> {
  const store = GatewayStore.open(join(dir, "gateway.sqlite"));
  const server: PoWebServer = new PoWebServer({
    identity: await makeGatewayIdentity(),
    store,
    port: 0,
    accept: async (bytes) => {
      const parcel = await validateParcel(bytes);
      if (store.isRegistered(parcel.recipientId)) {
        await server.enqueue(bytes, parcel.recipientId, parcel.expiresAt);
      }
    },
  });
  await server.start();
  return {
    url: server.url,
    async stop() {
      await server.stop();
      store.close();
    },
  };
}

/** A person whose daemon has no mesh peer and falls back to the gateway at `url`. */
interface Person {
  readonly name: string;
  readonly test: TestNode;
  readonly node: Relaymail;
  readonly daemon: Daemon;
  readonly logs: string[];
}

async function startPerson(name: string, test: TestNode, url: string): Promise<Person> {
  const logs: string[] = [];
  const daemon = await Daemon.start(test.node, {
    listen: ["/ip4/127.0.0.1/tcp/0"],
    mdns: false,
    gatewayUrl: url,
    log: (line) => logs.push(line),
  });
  await waitFor(
    `${name} registered with the gateway`,
    () => logs.some((l) => l.startsWith("registered with gateway")),
  );
  return { name, test, node: test.node, daemon, logs };
}

/** Keys of the parcels `from` has queued for `to`. */
function queuedFor(from: Person, to: Person): Set<string> {
  return new Set(
    from.node.outbox.list().filter((p) => p.recipientId === to.node.identity.id).map((p) => p.key),
  );
}

/** The one parcel for `to` that `action` made `from` queue. */
async function parcelMadeBy(from: Person, to: Person, action: () => Promise<unknown>) {
  const before = queuedFor(from, to);
  await action();
  const made = [...queuedFor(from, to)].filter((key) => !before.has(key));
  assert.equal(made.length, 1, `one parcel from ${from.name} to ${to.name}, not ${made.length}`);
  return made[0];
}

/**
 * Waits for `to` to collect parcel `key` from the gateway and accept it, and checks
 * that it went nowhere but to the gateway (no mesh path).
 */
async function collectedThroughGateway(from: Person, to: Person, key: string): Promise<void> {
  const line = `parcel ${key.slice(0, 12)} collected from the gateway: accepted`;
  await waitFor(`${to.name} collecting ${key.slice(0, 12)}`, () => to.logs.includes(line));
  const bindings = from.node.outbox.handovers(key).map((h) => h.binding);
  assert.ok(bindings.length > 0, `${from.name} handed ${key.slice(0, 12)} over`);
  assert.deepEqual(new Set(bindings), new Set(["gateway"]), "to the gateway only");
}

const texts = (person: Person, channel: string) =>
  person.node.channels.read(channel).posts.map((p) => p.text);

const stored = (person: Person, key: string) =>
  person.node.ctx.db.get<{ n: number }>(
    "SELECT count(*) AS n FROM channel_posts WHERE key = ?",
    key,
  )!.n;

Deno.test("gateway: a channel's posts fan out through a PoWeb gateway to a subscriber and a follower with no mesh path, once", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "relaymail-fanout-gateway-" });
  const gateway = await startGateway(dir);
  const aliceNode = await makeNode("Alice");
  const bobNode = await makeNode("Bob");
  const running: Daemon[] = [];
  try {
    await pair(aliceNode, bobNode);
    const alice = await startPerson("Alice", aliceNode, gateway.url);
    running.push(alice.daemon);
    const bob = await startPerson("Bob", bobNode, gateway.url);
    running.push(bob.daemon);
    assert.equal(alice.node.channels.fanOutEnabled(), true, "registered, Alice fans out");
    const noMesh = () => {
      assert.equal(alice.daemon.mesh.peers().length, 0);
      assert.equal(bob.daemon.mesh.peers().length, 0);
    };

    const board = await alice.node.channels.create("Board", "private");
    let boardPost = "";

    await t.step(
      "the private channel's grant reaches Bob as mail through the gateway",
      async () => {
        const grant = await parcelMadeBy(
          alice,
          bob,
          () => alice.node.channels.addSubscriber(board.id, "Bob"),
        );
        await collectedThroughGateway(alice, bob, grant);
        const channel = bob.node.channels.get(board.id);
        assert.equal(channel.visibility, "private");
        assert.equal(channel.title, "Board");
        assert.ok(bob.daemon.mesh.following().includes(board.id), "Bob's mesh follows it");
      },
    );

    await t.step("Alice's post reaches Bob only as a fanned-out parcel, readable", async () => {
      let key = "";
      const parcel = await parcelMadeBy(alice, bob, async () => {
        key = (await alice.node.channels.post(board.id, { text: "By the gateway" })).key;
      });
      boardPost = key;
      await collectedThroughGateway(alice, bob, parcel);
      await waitFor("the post at Bob", () => texts(bob, board.id).length === 1);
      const [post] = bob.node.channels.read(board.id).posts;
      assert.equal(post.key, key);
      assert.equal(post.readable, true, "decrypted with the key the grant brought");
      assert.equal(post.text, "By the gateway");
      assert.equal(post.authorId, alice.node.identity.id);
      assert.equal(stored(bob, key), 1);
      noMesh();
      assert.deepEqual(bob.daemon.mesh.posts(board.id), [], "the mesh brought nothing");
    });

    const news = await alice.node.channels.create("News");
    const newsPosts: string[] = [];

    await t.step(
      "a follower by link tells Alice once he has her post; the notice goes through the gateway",
      async () => {
        const first = await alice.node.channels.post(news.id, { text: "First" });
        newsPosts.push(first.key);
        await bob.node.channels.follow(news.link!);
        assert.deepEqual(alice.node.channels.subscribers(news.id), [], "a link names no follower");
        // A link does not name its owner: Bob tells the author of the first post he
        // gets, here handed to his app as his daemon hands it what a mesh brings (a
        // mesh he met once, say); with no mesh at all he would never tell her.
        const bytes = alice.daemon.mesh.post(first.key);
        assert.ok(bytes, "Alice's mesh node holds her post");
        const notice = await parcelMadeBy(bob, alice, async () => {
          assert.equal((await bob.node.channels.receivePost(bytes))?.key, first.key);
        });
        await collectedThroughGateway(bob, alice, notice);
        await waitFor(
          "Bob among the followers Alice fans out to",
          () => alice.node.channels.subscribers(news.id).length === 1,
        );
        assert.deepEqual(
          alice.node.channels.subscribers(news.id).map((s) => [s.name, s.kind]),
          [["Bob", "follower"]],
        );
      },
    );

    await t.step("Alice's next post fans out to the follower through the gateway", async () => {
      let key = "";
      const parcel = await parcelMadeBy(alice, bob, async () => {
        key = (await alice.node.channels.post(news.id, { text: "Second" })).key;
      });
      newsPosts.push(key);
      await collectedThroughGateway(alice, bob, parcel);
      await waitFor("the second post at Bob", () => texts(bob, news.id).length === 2);
      assert.deepEqual(texts(bob, news.id), ["Second", "First"]);
      assert.equal(stored(bob, key), 1);
      noMesh();
      assert.deepEqual(bob.daemon.mesh.posts(news.id), [], "the mesh brought nothing");
    });

    await t.step(
      "the mesh joins them later: its copies are the same posts, stored once",
      async () => {
        const fromMesh = new Map<string, Uint8Array>();
        bob.daemon.mesh.on("post", ({ facts, bytes }) => {
          fromMesh.set(facts.key, bytes);
        });
        await bob.daemon.mesh.dial(alice.daemon.mesh.addresses[0]);
        const wanted = [boardPost, ...newsPosts];
        await waitFor(
          "Alice's posts on Bob's mesh node",
          () => wanted.every((key) => fromMesh.has(key)),
          60_000,
        );
        for (const key of wanted) {
          // What the daemon does with a post the mesh brings: not new, so nothing changes.
          assert.equal(await bob.node.channels.receivePost(fromMesh.get(key)!), null);
          assert.equal(stored(bob, key), 1);
        }
        assert.deepEqual(texts(bob, board.id), ["By the gateway"]);
        assert.deepEqual(texts(bob, news.id), ["Second", "First"]);
      },
    );
  } finally {
    for (const daemon of running.reverse()) await daemon.stop();
    await aliceNode.close();
    await bobNode.close();
    await gateway.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
