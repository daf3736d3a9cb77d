/**
 * Crash safety of posts in the app (docs/broadcast.md §9): a fanned-out post is
 * stored with the parcel that brings it, and a post the mesh took while the app
 * could not (its "post" event missed) is taken when the app next joins the mesh.
 */
import assert from "node:assert/strict";
import { deliver, texts } from "./_channels.ts";
import { join } from "node:path";
import { parseParcel } from "../bindings/validation.ts";
import type { ChannelMesh } from "../app/core/channels.ts";
import { MAX_FOLLOWED_CHANNELS } from "../app/core/channels_store.ts";
import { ConflictError } from "../app/core/errors.ts";
import { Relaymail } from "../app/services/relaymail.ts";
import { carry, pair, statuses, withNodes } from "./helpers.ts";

/** A mesh that keeps what is published and hands it to no one. */
class HoldingMesh implements ChannelMesh {
  readonly held = new Map<string, { channelId: string; bytes: Uint8Array }>();
  follow(): void {}
  unfollow(): void {}
  async publish(bytes: Uint8Array): Promise<void> {
    const key = Array.from(
      new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array(bytes))),
      (b) => b.toString(16).padStart(2, "0"),
    ).join("");
    this.held.set(key, { channelId: (await parseParcel(bytes)).recipient.id, bytes });
  }
  posts(channelId: string): { key: string }[] {
    return [...this.held].filter(([, p]) => p.channelId === channelId).map(([key]) => ({ key }));
  }
  post(key: string): Uint8Array | undefined {
    return this.held.get(key)?.bytes;
  }
}

const PASSPHRASE = "a long backup passphrase";

Deno.test("channels review: a fanned-out post is stored with its parcel, not after it", async () => {
  await withNodes(["Alice", "Bob"], async (alice, bob) => {
    await pair(alice, bob);
    alice.node.channels.fanOutEnabled = () => true;
    const channel = await alice.node.channels.create("Fan");
    await alice.node.channels.addSubscriber(channel.id, "Bob");
    assert.deepEqual(statuses(await carry(alice.node, bob.node)), ["accepted"]);
    await alice.node.channels.post(channel.id, { text: "Kept" });
    // Bob's device dies once the parcel is taken: nothing after its commit runs.
    bob.node.channels.receivePost = () => Promise.reject(new Error("the process died"));
    await carry(alice.node, bob.node).catch(() => []);
    assert.deepEqual(texts(bob.node, channel.id), ["Kept"]);
  });
});

Deno.test("channels review: posts the mesh took while the app was down are taken on attach", async () => {
  await withNodes(["Alice", "Bob"], async (alice, bob) => {
    const channel = await alice.node.channels.create("News");
    const mesh = new HoldingMesh();
    await alice.node.channels.attach(mesh);
    await bob.node.channels.follow(channel.link!);
    await alice.node.channels.post(channel.id, { text: "While Bob's app was down" });
    // Bob's mesh node stored it and fired "post", which his app never took.
    await bob.node.channels.attach(mesh);
    assert.deepEqual(texts(bob.node, channel.id), ["While Bob's app was down"]);
    // Attaching again takes nothing twice.
    bob.node.channels.detach();
    await bob.node.channels.attach(mesh);
    assert.equal(bob.node.channels.read(channel.id).posts.length, 1);
  });
});

Deno.test("channels review: a restored owner still owns, posts to and renews their channel", async () => {
  await withNodes(["Alice", "Bob"], async (alice, bob) => {
    const channel = await alice.node.channels.create("Kept news");
    await bob.node.channels.follow(channel.link!);
    await alice.node.channels.attach(new HoldingMesh());
    await alice.node.channels.post(channel.id, { text: "Before the backup" });
    const out = await Deno.makeTempDir();
    const fresh = await Deno.makeTempDir();
    try {
      const { file } = await alice.node.backup(join(out, "alice.rmbackup"), {
        passphrase: PASSPHRASE,
      });
      const restored = await Relaymail.open(fresh, { passphrase: "the new device's passphrase" });
      try {
        await restored.restore(file, PASSPHRASE);
        const [mine] = restored.channels.list();
        assert.deepEqual([mine.id, mine.role, mine.canPost], [channel.id, "owner", true]);
        assert.deepEqual(texts(restored, channel.id), ["Before the backup"]);
        const mesh = new HoldingMesh();
        await restored.channels.attach(mesh);
        // Longer than the owner's certificate: renewing it takes the channel key.
        await restored.channels.post(channel.id, { text: "After the restore", ttlDays: 90 });
        // The new install's mesh node had none of them: both are published from it.
        assert.equal(mesh.held.size, 2);
        await bob.node.channels.attach(mesh);
        assert.deepEqual(texts(bob.node, channel.id), ["After the restore", "Before the backup"]);
        await restored.channels.maintain();
        assert.equal(restored.channels.link(channel.id).text, channel.link);
      } finally {
        restored.close();
      }
    } finally {
      await Deno.remove(out, { recursive: true });
      await Deno.remove(fresh, { recursive: true });
    }
  });
});

Deno.test("channels review: past 256 followed channels, following one more is refused", async () => {
  await withNodes(["Alice", "Bob"], async (alice, bob) => {
    const channel = await alice.node.channels.create("One too many");
    // Bob follows 256 channels already (rows as following a link would make them).
    for (let i = 0; i < MAX_FOLLOWED_CHANNELS; i++) {
      bob.node.ctx.db.run(
        `INSERT INTO channels (id, title, visibility, role, following, link, certificate_expires_at, created_at)
         VALUES (?, ?, 'public', 'follower', 1, x'00', 0, 0)`,
        "0" + i.toString(16).padStart(64, "0"),
        `Channel ${i}`,
      );
    }
    await assert.rejects(
      () => bob.node.channels.follow(channel.link!),
      (error: Error) => error instanceof ConflictError && /256/.test(error.message),
    );
    await assert.rejects(() => bob.node.channels.create("Mine too"), ConflictError);
    assert.equal(bob.node.channels.list().length, MAX_FOLLOWED_CHANNELS);
    // Unfollowing one makes room.
    await bob.node.channels.unfollow("0" + "0".repeat(64));
    assert.equal((await bob.node.channels.follow(channel.link!)).following, true);
  });
});

Deno.test("channels review: a fan-out cut short is done again whole, once per subscriber", async () => {
  await withNodes(["Alice", "Bob", "Carol"], async (alice, bob, carol) => {
    await pair(alice, bob);
    await pair(alice, carol);
    alice.node.channels.fanOutEnabled = () => true;
    const channel = await alice.node.channels.create("Fan");
    await alice.node.channels.addSubscriber(channel.id, "Bob");
    await alice.node.channels.addSubscriber(channel.id, "Carol");
    await deliver(alice, bob);
    await deliver(alice, carol);
    // Alice's device dies while making Carol's parcel, Bob's made already.
    const identity = alice.node.identity;
    const channelTo = identity.channel.bind(identity);
    identity.channel = (id: string) =>
      id === carol.node.identity.id ? Promise.reject(new Error("the process died")) : channelTo(id);
    await assert.rejects(() => alice.node.channels.post(channel.id, { text: "To both" }));
    identity.channel = channelTo;
    assert.equal((await alice.node.channels.maintain()).postsFannedOut, 1);
    assert.deepEqual(await deliver(alice, bob), ["accepted"]);
    assert.deepEqual(await deliver(alice, carol), ["accepted"]);
    assert.deepEqual(texts(bob.node, channel.id), ["To both"]);
    assert.deepEqual(texts(carol.node, channel.id), ["To both"]);
  });
});
