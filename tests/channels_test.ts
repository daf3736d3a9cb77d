/**
 * Broadcast channels in the messenger (docs/broadcast.md): creating one, its
 * link, following, posting and receiving through a mesh (here an in-process
 * stand-in that hands each published post to the nodes following its channel,
 * as the mesh's "post" event does), authors authorised by mail, forged and
 * expired posts refused, private channels and key rotation, the owner's
 * fan-out as parcels, expiry, and the bounds on what others can make us store.
 */
import assert from "node:assert/strict";
import { deliver, meshOf, texts } from "./_channels.ts";
import { ParcelRefusedError, toArrayBuffer } from "../bindings/validation.ts";
import {
  decodeChannelGrant,
  encodeChannelGrant,
  encodeFollowNotice,
} from "../app/core/channels_messages.ts";
import { sendToContact } from "../app/core/channels_people.ts";
import { MessageType } from "../app/core/protocol/messages.ts";
import { MAX_CHANNELS_PER_CONTACT } from "../app/core/channels_incoming.ts";
import { MAX_AUTHORS } from "../app/core/channels_people.ts";
import { MAX_STORED_POST_OCTETS } from "../app/core/channels_posts.ts";
import {
  channelLinkText,
  checkChannelLink,
  parseChannelLinkText,
} from "../app/core/channels_link.ts";
import { POST_TYPE } from "../app/core/channels_content.ts";
import { Buffer } from "node:buffer";
import { Certificate, ServiceMessage } from "@relaycorp/relaynet-core";
import { ConflictError, NotFoundError, UserInputError } from "../app/core/errors.ts";
import { base32Decode, base32Encode } from "../app/core/protocol/compact_der.ts";
import { authorizeAuthor, createChannelKey, makePost } from "../mesh/posts.ts";
import { Daemon } from "../app/services/daemon.ts";
import {
  carry,
  DAY,
  makeNode,
  pair,
  statuses,
  type TestNode,
  waitFor,
  withNodes,
} from "./helpers.ts";

Deno.test("channels: create, link round trip, a tampered link refused", async () => {
  await withNodes(["Alice"], async (alice) => {
    const created = await alice.node.channels.create("Town notices");
    assert.equal(created.role, "owner");
    assert.equal(created.visibility, "public");
    assert.equal(created.canPost, true);
    assert.match(created.link!, /^RELAYMAIL-CHANNEL:[A-Z2-7]+$/);
    const link = await parseChannelLinkText(created.link!.toLowerCase());
    assert.equal(link.channelId, created.id);
    assert.equal(link.title, "Town notices");
    // A changed title no longer matches the owner's signature.
    const bytes = base32Decode(created.link!.slice("RELAYMAIL-CHANNEL:".length));
    const titleAt = bytes.length - 2 - 256 - "Town notices".length;
    const tampered = new Uint8Array(bytes);
    tampered[titleAt] ^= 0x20;
    await assert.rejects(
      parseChannelLinkText("RELAYMAIL-CHANNEL:" + base32Encode(tampered)),
      (e) => e instanceof UserInputError && /not signed by the channel's key/.test(e.message),
    );
    await assert.rejects(parseChannelLinkText("hello"), UserInputError);
    assert.equal(alice.node.channels.link(created.id.slice(0, 8)).text, created.link);
    assert.equal(alice.node.channels.get("town NOTICES").id, created.id);
    assert.throws(() => alice.node.channels.get("nothing"), NotFoundError);
    await assert.rejects(alice.node.channels.create(""), UserInputError);
    await assert.rejects(alice.node.channels.create("x", "secret"), UserInputError);
  });
});

Deno.test("channels: a post reaches each follower once, through the mesh, and expires", async () => {
  await withNodes(["Alice", "Bob", "Carol"], async (alice, bob, carol) => {
    const hub = await meshOf(alice, bob, carol);
    const channel = await alice.node.channels.create("News");
    const followed = await bob.node.channels.follow(channel.link!);
    assert.equal(followed.role, "follower");
    await carol.node.channels.follow(channel.link!);
    const changes: unknown[] = [];
    bob.node.events.addEventListener(
      "channel-changed",
      (e) => changes.push((e as CustomEvent).detail),
    );
    const post = await alice.node.channels.post(channel.id, {
      text: "Hello",
      title: "Hi",
      ttlDays: 1,
    });
    assert.equal(post.authorName, "you");
    assert.deepEqual(texts(bob.node, channel.id), ["Hello"]);
    assert.deepEqual(texts(carol.node, channel.id), ["Hello"]);
    assert.deepEqual(changes, [{ channelId: channel.id, key: post.key }]);
    // The same post again (a second path) is stored once.
    assert.equal(await bob.node.channels.receivePost(hub[0].published[0]), null);
    assert.equal(bob.node.channels.get(channel.id).unread, 1);
    bob.node.channels.markRead(channel.id);
    assert.equal(bob.node.channels.get(channel.id).unread, 0);
    // Paging, newest first.
    await alice.node.channels.post(channel.id, { text: "Second" });
    await alice.node.channels.post(channel.id, { text: "Third" });
    const first = bob.node.channels.read(channel.id, { limit: 2 });
    assert.deepEqual(first.posts.map((p) => p.text), ["Third", "Second"]);
    const rest = bob.node.channels.read(channel.id, { limit: 2, before: first.next });
    assert.deepEqual(rest.posts.map((p) => p.text), ["Hello"]);
    assert.equal(rest.next, null);
    // Unfollowed: no more posts.
    await carol.node.channels.unfollow(channel.id);
    await alice.node.channels.post(channel.id, { text: "Fourth" });
    assert.equal(carol.node.channels.read(channel.id).posts.length, 3);
    // Expiry: a day later the first post is gone everywhere it was kept.
    bob.clock.advance(DAY + 3_600_000);
    const expired: unknown[] = [];
    bob.node.events.addEventListener(
      "channel-changed",
      (e) => expired.push((e as CustomEvent).detail),
    );
    await bob.node.maintain();
    assert.deepEqual(texts(bob.node, channel.id), ["Fourth", "Third", "Second"]);
    assert.equal(
      bob.node.ctx.db.get<{ n: number }>("SELECT count(*) AS n FROM channel_posts")!.n,
      3,
    );
    assert.deepEqual(expired, [{ channelId: channel.id }]);
  });
});

Deno.test("channels: own posts made without a mesh are published when it next runs", async () => {
  await withNodes(["Alice", "Bob"], async (alice, bob) => {
    const channel = await alice.node.channels.create("Later");
    await bob.node.channels.follow(channel.link!);
    await alice.node.channels.post(channel.id, { text: "Offline" });
    assert.deepEqual(texts(bob.node, channel.id), []);
    await meshOf(bob, alice);
    assert.deepEqual(texts(bob.node, channel.id), ["Offline"]);
  });
});

Deno.test("channels: an author authorised by mail posts; lapsed, it cannot; forged posts are refused", async () => {
  await withNodes(["Alice", "Bob", "Carol"], async (alice, bob, carol) => {
    await pair(alice, bob);
    const channel = await alice.node.channels.create("List");
    await meshOf(alice, bob, carol);
    await carol.node.channels.follow(channel.link!);
    await assert.rejects(bob.node.channels.post(channel.id, { text: "x" }), NotFoundError);
    const author = await alice.node.channels.addAuthor(channel.id, "Bob", 2);
    assert.equal(author.name, "Bob");
    assert.deepEqual(statuses(await carry(alice.node, bob.node)), ["accepted"]);
    const asBob = bob.node.channels.get(channel.id);
    assert.equal(asBob.role, "author");
    assert.equal(asBob.canPost, true);
    const post = await bob.node.channels.post(channel.id, { text: "From Bob" });
    assert.equal(post.authorId, bob.node.identity.id);
    assert.deepEqual(texts(carol.node, channel.id), ["From Bob"]);
    assert.equal(carol.node.channels.read(channel.id).posts[0].authorName, null);
    assert.equal(alice.node.channels.read(channel.id).posts[0].authorName, "Bob");
    // Removed: not renewed, so it lapses at its expiry.
    const listed = alice.node.channels.removeAuthor(channel.id, "Bob");
    assert.equal(listed.find((a) => a.id === bob.node.identity.id)!.renewed, false);
    assert.throws(() => alice.node.channels.removeAuthor(channel.id, "you"), UserInputError);
    bob.clock.advance(3 * DAY);
    await assert.rejects(
      bob.node.channels.post(channel.id, { text: "Too late" }),
      (e) => e instanceof ConflictError && /expired/.test(e.message),
    );
    // A post made under a lapsed certificate is refused by a reader.
    const key = await createChannelKey();
    const past = new Date(Date.now() - 10 * DAY);
    const { identityKeyPair } = await bob.node.identity.endpoint();
    const forgedChannel = await createChannelKey(past);
    const lapsed = await authorizeAuthor({
      channel: forgedChannel,
      authorPublicKey: identityKeyPair.publicKey,
      expiresAt: new Date(past.getTime() + DAY),
      now: past,
    });
    const old = await makePost({
      channelCertificate: forgedChannel.certificate,
      authorCertificate: lapsed,
      authorPrivateKey: identityKeyPair.privateKey,
      payload: new Uint8Array([1]),
      ttlSeconds: 3600,
      now: past,
    });
    await carol.node.channels.follow(
      channelLinkText(await linkFor(forgedChannel, "Forged")),
    );
    await assert.rejects(carol.node.channels.receivePost(old), ParcelRefusedError);
    // A tampered post, and a post of a channel not followed.
    const good =
      carol.node.ctx.db.get<{ bytes: Uint8Array }>("SELECT bytes FROM channel_posts")!.bytes;
    const tampered = new Uint8Array(good);
    tampered[tampered.length - 10] ^= 1;
    await assert.rejects(carol.node.channels.receivePost(tampered), ParcelRefusedError);
    const elsewhere = await makePost({
      channelCertificate: key.certificate,
      authorCertificate: await authorizeAuthor({
        channel: key,
        authorPublicKey: identityKeyPair.publicKey,
        expiresAt: new Date(Date.now() + DAY),
      }),
      authorPrivateKey: identityKeyPair.privateKey,
      payload: new Uint8Array([1]),
    });
    await assert.rejects(
      carol.node.channels.receivePost(elsewhere),
      (e) => e instanceof ParcelRefusedError && /not followed/.test(e.message),
    );
    assert.equal(carol.node.channels.read(channel.id).posts.length, 1);
  });
});

async function linkFor(key: Awaited<ReturnType<typeof createChannelKey>>, title: string) {
  const { makeChannelLink } = await import("../app/core/channels_link.ts");
  return await makeChannelLink(key.certificate, key.privateKey, title);
}

Deno.test("channels: a private channel's subscribers read it; removal rotates the key", async () => {
  await withNodes(["Alice", "Bob", "Carol", "Dave"], async (alice, bob, carol, dave) => {
    await pair(alice, bob);
    await pair(alice, carol);
    await meshOf(alice, bob, carol, dave);
    const channel = await alice.node.channels.create("Board", "private");
    assert.equal(channel.visibility, "private");
    await alice.node.channels.addSubscriber(channel.id, "Bob");
    const subscribers = await alice.node.channels.addSubscriber(channel.id, "Carol");
    assert.deepEqual(subscribers.map((s) => s.name), ["Bob", "Carol"]);
    await deliver(alice, bob);
    await deliver(alice, carol);
    assert.equal(bob.node.channels.get(channel.id).visibility, "private");
    assert.equal(bob.node.channels.get(channel.id).link, null);
    assert.throws(() => bob.node.channels.link(channel.id), ConflictError);
    // Dave has the link (a relay that follows): he keeps the posts but cannot read them.
    await dave.node.channels.follow(alice.node.channels.link(channel.id).text);
    await alice.node.channels.post(channel.id, { text: "Before" });
    assert.deepEqual(texts(bob.node, channel.id), ["Before"]);
    assert.deepEqual(texts(carol.node, channel.id), ["Before"]);
    const seen = dave.node.channels.read(channel.id).posts;
    assert.equal(seen.length, 1);
    assert.equal(seen[0].readable, false);
    assert.equal(seen[0].text, null);
    // Carol is removed: the key rotates, Bob gets the new one, Carol does not.
    await alice.node.channels.removeSubscriber(channel.id, "Carol");
    assert.equal(
      alice.node.ctx.db.get<{ n: number }>("SELECT count(*) AS n FROM channel_content_keys")!.n,
      2,
    );
    await deliver(alice, bob);
    assert.deepEqual(await deliver(alice, carol), []);
    await alice.node.channels.post(channel.id, { text: "After" });
    assert.deepEqual(texts(bob.node, channel.id), ["After", "Before"]);
    assert.deepEqual(texts(carol.node, channel.id), [null, "Before"]);
    await assert.rejects(
      alice.node.channels.removeSubscriber(channel.id, "Carol"),
      NotFoundError,
    );
  });
});

Deno.test("channels: the owner's fan-out parcel and the mesh copy are stored once", async () => {
  await withNodes(["Alice", "Bob"], async (alice, bob) => {
    await pair(alice, bob);
    alice.node.channels.fanOutEnabled = () => true;
    const channel = await alice.node.channels.create("Fan");
    await meshOf(alice, bob);
    await bob.node.channels.follow(channel.link!);
    // Bob's first post from Alice, a contact, tells her he follows.
    await alice.node.channels.post(channel.id, { text: "One" });
    assert.deepEqual(statuses(await carry(bob.node, alice.node)), ["accepted"]);
    assert.deepEqual(alice.node.channels.subscribers(channel.id).map((s) => [s.name, s.kind]), [[
      "Bob",
      "follower",
    ]]);
    // Told once, however many posts arrive.
    await alice.node.channels.post(channel.id, { text: "Two" });
    assert.deepEqual(await carry(bob.node, alice.node), []);
    // "Two" went both ways: through the mesh and as a parcel; Bob keeps one copy.
    assert.deepEqual(statuses(await carry(alice.node, bob.node)), ["accepted"]);
    assert.deepEqual(texts(bob.node, channel.id), ["Two", "One"]);
    // Offline from the mesh, the parcel alone brings the post.
    await bob.node.channels.attach({
      follow() {},
      unfollow() {},
      publish: () => Promise.resolve(),
    });
    const three = await alice.node.channels.post(channel.id, { text: "Three" });
    bob.node.channels.detach();
    assert.deepEqual(statuses(await carry(alice.node, bob.node)), ["accepted"]);
    assert.equal(bob.node.channels.read(channel.id).posts[0].key, three.key);
  });
});

Deno.test("channels: posts made before the gateway came are fanned out once it has", async () => {
  await withNodes(["Alice", "Bob"], async (alice, bob) => {
    await pair(alice, bob);
    alice.node.channels.fanOutEnabled = () => false;
    const channel = await alice.node.channels.create("Late gateway", "private");
    await alice.node.channels.addSubscriber(channel.id, "Bob");
    // The grant (ordinary mail) reaches Bob; the post, made with no gateway, stays home.
    assert.deepEqual(statuses(await carry(alice.node, bob.node)), ["accepted"]);
    await alice.node.channels.post(channel.id, { text: "Made offline" });
    assert.deepEqual(await carry(alice.node, bob.node), []);
    assert.equal((await alice.node.channels.maintain()).postsFannedOut, 0);
    // Registered now: the next maintenance sends it, once.
    alice.node.channels.fanOutEnabled = () => true;
    assert.equal((await alice.node.channels.maintain()).postsFannedOut, 1);
    assert.deepEqual(statuses(await carry(alice.node, bob.node)), ["accepted"]);
    assert.deepEqual(texts(bob.node, channel.id), ["Made offline"]);
    assert.equal((await alice.node.channels.maintain()).postsFannedOut, 0);
    assert.deepEqual(await carry(alice.node, bob.node), []);
  });
});

Deno.test("channels: bounds on what others can make the app store", async () => {
  await withNodes(["Alice", "Bob"], async (alice, bob) => {
    await pair(alice, bob);
    const channel = await alice.node.channels.create("Bounded");
    await meshOf(alice, bob);
    await bob.node.channels.follow(channel.link!);
    // Text and title sizes are refused when posting.
    await assert.rejects(
      alice.node.channels.post(channel.id, { text: "x".repeat(65_537) }),
      /at most 65536 UTF-8 octets/,
    );
    await assert.rejects(
      alice.node.channels.post(channel.id, { text: "x", title: "t".repeat(201) }),
      /at most 200 UTF-8 octets/,
    );
    await assert.rejects(
      alice.node.channels.post(channel.id, { text: "x", ttlDays: 181 }),
      UserInputError,
    );
    // A post larger than the app keeps is refused.
    const { identityKeyPair } = await alice.node.identity.endpoint();
    const key = await createChannelKey();
    const big = await makePost({
      channelCertificate: key.certificate,
      authorCertificate: await authorizeAuthor({
        channel: key,
        authorPublicKey: identityKeyPair.publicKey,
        expiresAt: new Date(Date.now() + DAY),
      }),
      authorPrivateKey: identityKeyPair.privateKey,
      payload: new Uint8Array(MAX_STORED_POST_OCTETS),
    });
    await assert.rejects(
      bob.node.channels.receivePost(big),
      (e) => e instanceof ParcelRefusedError && e.code === "too-large",
    );
    // A post whose text is past §4's limit is kept, unreadable.
    const own = alice.node.ctx.db.get<{ certificate: Uint8Array }>(
      "SELECT certificate FROM channel_authors WHERE channel_id = ? AND author_id = ?",
      channel.id,
      alice.node.identity.id,
    )!;
    const long = await makePost({
      channelCertificate: (await parseChannelLinkText(channel.link!)).certificate,
      authorCertificate: Certificate.deserialize(toArrayBuffer(own.certificate)),
      authorPrivateKey: identityKeyPair.privateKey,
      payload: new Uint8Array(
        new ServiceMessage(
          POST_TYPE,
          Buffer.from(JSON.stringify({ text: "x".repeat(65_537) })),
        ).serialize(),
      ),
    });
    const unreadable = await bob.node.channels.receivePost(long);
    assert.equal(unreadable!.readable, false);
    assert.equal(unreadable!.text, null);
    // A link past 16 384 octets is refused before it is parsed.
    await assert.rejects(checkChannelLink(new Uint8Array(16_385)), /more than 16384 octets/);
    // Authors per channel.
    for (let i = 0; i < MAX_AUTHORS; i++) {
      alice.node.ctx.db.run(
        "INSERT OR IGNORE INTO channel_authors (channel_id, author_id, certificate, expires_at) VALUES (?, ?, x'00', 0)",
        channel.id,
        `0filler${i}`,
      );
    }
    await assert.rejects(alice.node.channels.addAuthor(channel.id, "Bob"), /1000 authors already/);
    // Channels one contact can give: filled to the bound, the next grant is refused.
    for (let i = 0; i < MAX_CHANNELS_PER_CONTACT; i++) {
      bob.node.ctx.db.run(
        `INSERT INTO channels (id, title, visibility, role, link, certificate_expires_at, source_id, created_at)
         VALUES (?, 't', 'public', 'follower', x'00', 0, ?, 0)`,
        `0fake${i}`,
        alice.node.identity.id,
      );
    }
    const other = await alice.node.channels.create("One too many");
    await alice.node.channels.addSubscriber(other.id, "Bob");
    assert.deepEqual(statuses(await carry(alice.node, bob.node)), ["refused:bad-content"]);
    assert.throws(() => bob.node.channels.get(other.id), NotFoundError);
    // Content keys in one grant: 64 at most.
    const keys = (n: number) =>
      Array.from({ length: n }, (_, i) => ({
        id: i.toString(16).padStart(32, "0"),
        key: new Uint8Array(32),
        createdAt: new Date(),
      }));
    assert.equal(
      decodeChannelGrant(encodeChannelGrant({ link: new Uint8Array(1), keys: keys(64) })).keys
        .length,
      64,
    );
    assert.throws(
      () => decodeChannelGrant(encodeChannelGrant({ link: new Uint8Array(1), keys: keys(65) })),
      /keys/,
    );
    // Follow notices: one row per contact and channel, only for a channel owned here.
    const notice = (channelId: string) => encodeFollowNotice({ channelId, following: true });
    await deliver(bob, alice); // what Bob owed Alice already
    await deliver(alice, bob);
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(await notify(bob, alice, notice(channel.id)), ["accepted"]);
    }
    assert.deepEqual(await notify(alice, bob, notice(channel.id)), ["accepted"]);
    assert.deepEqual(await notify(bob, alice, notice("0" + "ab".repeat(32))), ["accepted"]);
    assert.deepEqual(alice.node.channels.subscribers(channel.id).map((s) => s.name), ["Bob"]);
    // Bob owns no channel: Alice's notice left no row (his own "notified" record of her is all).
    assert.deepEqual(
      bob.node.ctx.db.all<{ kind: string }>("SELECT kind FROM channel_subscribers").map((r) =>
        r.kind
      ),
      ["notified"],
    );
  });
});

Deno.test("channels: the post limit keeps the newest posts", async () => {
  const alice = await makeNode("Alice", { tunables: { channelPostLimit: 3 } });
  const bob = await makeNode("Bob", { tunables: { channelPostLimit: 3 } });
  try {
    const channel = await alice.node.channels.create("Few");
    await meshOf(alice, bob);
    await bob.node.channels.follow(channel.link!);
    for (let i = 0; i < 5; i++) {
      alice.clock.advance(1000);
      await alice.node.channels.post(channel.id, { text: `p${i}` });
    }
    assert.deepEqual(texts(bob.node, channel.id), ["p4", "p3", "p2"]);
  } finally {
    await alice.close();
    await bob.close();
  }
});

/** Sends a follow notice from `from` to `to` end to end and delivers it; the outcome. */
async function notify(from: TestNode, to: TestNode, content: Uint8Array): Promise<string[]> {
  const { ctx, identity, contacts, outbox } = from.node;
  const sent = await sendToContact(
    { ctx, identity, contacts, outbox } as Parameters<typeof sendToContact>[0],
    to.node.identity.id,
    MessageType.CHANNEL_FOLLOW,
    content,
  );
  assert.equal(sent, true);
  return await deliver(from, to);
}

Deno.test("channels: over the real mesh, a follower's daemon receives and stores each post once", async () => {
  await withNodes(["Alice", "Bob"], async (alice, bob) => {
    const options = { listen: ["/ip4/127.0.0.1/tcp/0"], mdns: false, log: () => {} };
    const channel = await alice.node.channels.create("Over the air");
    // Made while no mesh runs: published when Alice's daemon starts.
    await alice.node.channels.post(channel.id, { text: "Held" });
    await bob.node.channels.follow(channel.link!);
    const first = await Daemon.start(alice.node, options);
    try {
      const second = await Daemon.start(bob.node, { ...options, peers: first.mesh.addresses });
      try {
        assert.ok(second.mesh.following().includes(channel.id));
        await alice.node.channels.post(channel.id, { text: "Live" });
        await waitFor("both posts at Bob", () => texts(bob.node, channel.id).length === 2, 60_000);
        assert.deepEqual(texts(bob.node, channel.id).sort(), ["Held", "Live"]);
        assert.equal(
          bob.node.ctx.db.get<{ n: number }>("SELECT count(*) AS n FROM channel_posts")!.n,
          2,
        );
      } finally {
        await second.stop();
      }
    } finally {
      await first.stop();
    }
  });
});

Deno.test("channels: maintenance renews the owner's and authors' certificates and the channel's", async () => {
  await withNodes(["Alice", "Bob"], async (alice, bob) => {
    await pair(alice, bob);
    const channel = await alice.node.channels.create("Renewed");
    await alice.node.channels.addAuthor(channel.id, "Bob", 30);
    await carry(alice.node, bob.node);
    const before = bob.node.channels.get(channel.id).authorUntil!;
    const ownBefore = alice.node.channels.get(channel.id).authorUntil!;
    alice.clock.advance(25 * DAY);
    bob.clock.advance(25 * DAY);
    await alice.node.maintain();
    assert.ok(alice.node.channels.get(channel.id).authorUntil! > ownBefore);
    const renewal = await carry(alice.node, bob.node);
    assert.deepEqual(statuses(renewal), ["accepted"], JSON.stringify(renewal));
    assert.ok(bob.node.channels.get(channel.id).authorUntil! > before);
    assert.match(
      (await bob.node.channels.post(channel.id, { text: "Still here" })).key,
      /^[0-9a-f]{64}$/,
    );
    // 201 days on, the channel certificate (400 days) is renewed: a new link, the same id.
    const link = alice.node.channels.link(channel.id).text;
    alice.clock.advance(180 * DAY);
    await alice.node.maintain();
    const renewed = await parseChannelLinkText(alice.node.channels.link(channel.id).text);
    assert.notEqual(alice.node.channels.link(channel.id).text, link);
    assert.equal(renewed.channelId, channel.id);
    assert.ok(renewed.certificate.expiryDate.getTime() > alice.clock.now().getTime() + 390 * DAY);
    assert.equal((await alice.node.channels.post(channel.id, { text: "Later" })).authorName, "you");
  });
});
