/**
 * Broadcast channels under attack (docs/broadcast.md §6–9): what a malicious
 * contact, a malicious channel owner or author, a stranger on the mesh and odd
 * input can make this device believe, show or store. Each test names the attack
 * and asserts what the app does about it.
 */
import assert from "node:assert/strict";
import { deliver, meshOf, TestMesh } from "./_channels.ts";
import { Certificate } from "@relaycorp/relaynet-core";
import { ParcelRefusedError, toArrayBuffer } from "../bindings/validation.ts";
import { terminalSafe } from "../app/cli/commands/channel.ts";
import { newContentKey } from "../app/core/channels_content.ts";
import {
  CHANNEL_LINK_PREFIX,
  channelLinkText,
  parseChannelLinkText,
  signWithChannelKey,
} from "../app/core/channels_link.ts";
import {
  encodeChannelGrant,
  encodeFollowNotice,
  GRANT_SIGNATURE_LABEL,
  grantSignedInput,
} from "../app/core/channels_messages.ts";
import { storePost } from "../app/core/channels_posts.ts";
import { sendToContact, signedGrant } from "../app/core/channels_people.ts";
import { channelRow } from "../app/core/channels_store.ts";
import { UserInputError } from "../app/core/errors.ts";
import { MessageType } from "../app/core/protocol/messages.ts";
import type { Relaymail } from "../app/services/relaymail.ts";
import { authorizeAuthor, createChannelKey, makePost, PostVerifier } from "../mesh/posts.ts";
import { DAY, pair, type TestNode, withNodes } from "./helpers.ts";
import { startWeb } from "./web/_web.ts";

/** Sends service message `type` from `from` to `to` end to end and delivers it. */
async function send(
  from: TestNode,
  to: TestNode,
  type: string,
  content: Uint8Array,
): Promise<string[]> {
  const { ctx, identity, contacts, outbox } = from.node;
  const deps = { ctx, identity, contacts, outbox } as Parameters<typeof sendToContact>[0];
  assert.equal(await sendToContact(deps, to.node.identity.id, type, content), true);
  return await deliver(from, to);
}

/** The people-side dependencies of `node`, as the app's own modules get them. */
function depsOf(node: Relaymail): Parameters<typeof signedGrant>[0] {
  const { ctx, identity, contacts, outbox } = node;
  return { ctx, identity, contacts, outbox } as Parameters<typeof signedGrant>[0];
}

const texts = (node: Relaymail, channel: string) =>
  node.channels.read(channel).posts.map((p) => p.text);

Deno.test("attack: a contact who does not own a channel cannot give its keys nor claim it", async () => {
  await withNodes(["Alice", "Bob", "Mallory"], async (alice, bob, mallory) => {
    await pair(alice, bob);
    await pair(mallory, bob);
    await meshOf(alice, bob, mallory);
    const channel = await alice.node.channels.create("News");
    await bob.node.channels.follow(channel.link!);
    // Mallory has the public link too: she sends Bob "its keys", keys of her own.
    const link = (await parseChannelLinkText(channel.link!)).bytes;
    const mine = newContentKey();
    const forged = encodeChannelGrant({
      link,
      keys: [{ id: mine.id, key: mine.key, createdAt: new Date() }],
    });
    assert.deepEqual(await send(mallory, bob, MessageType.CHANNEL_KEYS, forged), [
      "refused:unauthorized",
    ]);
    // Signed by a key that is not the channel's: refused as well.
    const hers = await createChannelKey();
    const grant = { link, keys: [{ id: mine.id, key: mine.key, createdAt: new Date() }] };
    const signature = await signWithChannelKey(
      hers.privateKey,
      GRANT_SIGNATURE_LABEL,
      grantSignedInput(grant, bob.node.identity.id),
    );
    assert.deepEqual(
      await send(
        mallory,
        bob,
        MessageType.CHANNEL_KEYS,
        encodeChannelGrant({ ...grant, signature }),
      ),
      ["refused:unauthorized"],
    );
    const row = channelRow(bob.node.ctx, channel.id)!;
    assert.equal(row.visibility, "public");
    assert.equal(row.source_id, null);
    assert.equal(
      bob.node.ctx.db.get<{ n: number }>("SELECT count(*) AS n FROM channel_content_keys")!.n,
      0,
    );
    // The real owner is not shut out: Alice makes Bob an author, and he posts in the clear.
    await alice.node.channels.addAuthor(channel.id, "Bob");
    assert.deepEqual(await deliver(alice, bob), ["accepted"]);
    assert.equal(bob.node.channels.get(channel.id).role, "author");
    const post = await bob.node.channels.post(channel.id, { text: "from Bob" });
    assert.equal(post.readable, true);
    assert.deepEqual(texts(alice.node, channel.id), ["from Bob"]);
  });
});

Deno.test("attack: a subscriber cannot pass its grant on to another contact", async () => {
  await withNodes(["Alice", "Bob", "Carol"], async (alice, bob, carol) => {
    await pair(alice, carol);
    await pair(carol, bob);
    const channel = await alice.node.channels.create("Board", "private");
    // The grant Alice signs for Carol, forwarded by Carol to Bob, names Carol.
    const forCarol = await signedGrant(
      depsOf(alice.node),
      channelRow(alice.node.ctx, channel.id)!,
      carol.node.identity.id,
    );
    assert.deepEqual(await send(carol, bob, MessageType.CHANNEL_KEYS, forCarol), [
      "refused:unauthorized",
    ]);
    assert.equal(channelRow(bob.node.ctx, channel.id), undefined);
    // Sent by Alice to Carol, it is taken.
    await alice.node.channels.addSubscriber(channel.id, "Carol");
    assert.deepEqual(await deliver(alice, carol), ["accepted"]);
    assert.equal(carol.node.channels.get(channel.id).visibility, "private");
  });
});

Deno.test("attack: a removed subscriber cannot come back as a follower of a private channel", async () => {
  await withNodes(["Alice", "Bob"], async (alice, bob) => {
    await pair(alice, bob);
    alice.node.channels.fanOutEnabled = () => true;
    const channel = await alice.node.channels.create("Board", "private");
    await alice.node.channels.addSubscriber(channel.id, "Bob");
    await deliver(alice, bob);
    await alice.node.channels.removeSubscriber(channel.id, "Bob");
    await deliver(alice, bob);
    const notice = encodeFollowNotice({ channelId: channel.id, following: true });
    assert.deepEqual(await send(bob, alice, MessageType.CHANNEL_FOLLOW, notice), ["accepted"]);
    assert.deepEqual(alice.node.channels.subscribers(channel.id), []);
    // So Alice's posts are not fanned out to him.
    await alice.node.channels.post(channel.id, { text: "after" });
    assert.deepEqual(await deliver(alice, bob), []);
  });
});

Deno.test("attack: a channel unfollowed takes no more fanned-out posts", async () => {
  await withNodes(["Alice", "Bob"], async (alice, bob) => {
    await pair(alice, bob);
    alice.node.channels.fanOutEnabled = () => true;
    const channel = await alice.node.channels.create("Letters");
    await alice.node.channels.addSubscriber(channel.id, "Bob");
    await deliver(alice, bob);
    await alice.node.channels.post(channel.id, { text: "one" });
    assert.deepEqual(await deliver(alice, bob), ["accepted"]);
    assert.deepEqual(texts(bob.node, channel.id), ["one"]);
    await bob.node.channels.unfollow(channel.id);
    await alice.node.channels.post(channel.id, { text: "two" });
    assert.deepEqual(await deliver(alice, bob), ["refused:unauthorized"]);
    assert.deepEqual(texts(bob.node, channel.id), ["one"]);
    // The mesh, which keeps what it follows, is told when it next runs.
    const mesh = new TestMesh([], bob.node);
    mesh.follow(channel.id);
    await bob.node.channels.attach(mesh);
    assert.equal(mesh.followed.has(channel.id), false);
    // Following again (by the link): posts come again.
    await bob.node.channels.follow(channel.link!);
    assert.equal(mesh.followed.has(channel.id), true);
    await alice.node.channels.post(channel.id, { text: "three" });
    assert.deepEqual(await deliver(alice, bob), ["accepted"]);
    assert.deepEqual(texts(bob.node, channel.id), ["three", "one"]);
  });
});

/** A link to `key`'s channel with `title`, signed as §5 says, whatever the title holds. */
async function rawLink(
  key: Awaited<ReturnType<typeof createChannelKey>>,
  title: string,
): Promise<string> {
  const titleOctets = new TextEncoder().encode(title);
  const signature = await signWithChannelKey(
    key.privateKey,
    "relaymail/channel-title/1",
    titleOctets,
  );
  const parts = [new Uint8Array(key.certificate.serialize()), titleOctets, signature];
  const out = new Uint8Array(1 + parts.reduce((n, p) => n + 2 + p.length, 0));
  out[0] = 1;
  let offset = 1;
  for (const part of parts) {
    new DataView(out.buffer).setUint16(offset, part.length);
    out.set(part, offset + 2);
    offset += 2 + part.length;
  }
  return channelLinkText(out);
}

Deno.test("attack: channel titles with control or text-direction characters are refused", async () => {
  await withNodes(["Alice"], async (alice) => {
    const key = await createChannelKey();
    // Signed properly, so only the title's content is at fault.
    const fine = await parseChannelLinkText(await rawLink(key, "Plain news"));
    assert.equal(fine.title, "Plain news");
    for (
      const title of ["News\u001b]0;owned\u0007", "Bank\u202Egnp.exe", "two\nlines", "a\u0085b"]
    ) {
      await assert.rejects(
        parseChannelLinkText(await rawLink(key, title)),
        (e) =>
          e instanceof UserInputError && /control or text-direction characters/.test(e.message),
        JSON.stringify(title),
      );
      await assert.rejects(alice.node.channels.create(title), UserInputError);
    }
    // Scripts written right to left, and emoji joined by zero-width joiners, are titles.
    const hebrew = await alice.node.channels.create("חדשות 👩‍👩‍👧");
    assert.equal(hebrew.title, "חדשות 👩‍👩‍👧");
  });
});

Deno.test("attack: the terminal shows post text without obeying what it holds", () => {
  assert.equal(
    terminalSafe("a\u001b]0;pwned\u0007b \u202Eevil\r\nline two\tend\u009b"),
    "a\ufffd]0;pwned\ufffdb \ufffdevil\nline two\tend\ufffd",
  );
  assert.equal(terminalSafe("title\nwith a line", "none"), "title\ufffdwith a line");
});

Deno.test("attack: odd link text: case, spaces and line breaks are no matter; garbage is named", async () => {
  await withNodes(["Alice", "Bob"], async (alice, bob) => {
    const channel = await alice.node.channels.create("Odd");
    const body = channel.link!.slice(CHANNEL_LINK_PREFIX.length);
    const pasted = `  relaymail-channel:\n${body.toLowerCase().replace(/(.{60})/g, "$1\r\n ")}\n\t`;
    assert.equal((await bob.node.channels.follow(pasted)).id, channel.id);
    await assert.rejects(
      parseChannelLinkText(channel.link! + "AAAA"),
      (e) => e instanceof UserInputError && /not valid/.test(e.message),
    );
    await assert.rejects(
      parseChannelLinkText(channel.link! + "!"),
      (e) => e instanceof UserInputError && /base32/.test(e.message),
    );
    await assert.rejects(
      parseChannelLinkText(channel.link!.slice(0, 40) + "\u200b" + channel.link!.slice(40)),
      (e) => e instanceof UserInputError && /base32/.test(e.message),
    );
    await assert.rejects(
      parseChannelLinkText(channel.link!.slice(0, -8)),
      (e) => e instanceof UserInputError && /not valid/.test(e.message),
    );
  });
});

Deno.test("attack: a stranger's channel with the same title is never taken for yours", async () => {
  await withNodes(["Alice", "Bob"], async (alice, bob) => {
    const own = await bob.node.channels.create("Town news");
    const copy = await alice.node.channels.create("TOWN NEWS");
    // Titled like one of Bob's channel ids: the id still names Bob's channel.
    const tricky = await alice.node.channels.create(own.id.slice(0, 12));
    await bob.node.channels.follow(copy.link!);
    await bob.node.channels.follow(tricky.link!);
    await assert.rejects(
      bob.node.channels.post("town news", { text: "to whom?" }),
      (e) =>
        e instanceof UserInputError && e.message.includes(own.id.slice(0, 13)) &&
        e.message.includes(copy.id.slice(0, 13)),
    );
    assert.equal(bob.node.channels.get(own.id).id, own.id);
    assert.throws(() => bob.node.channels.get(own.id.slice(0, 12)), UserInputError);
    // Alice's channel lists with its own id beside the title it claims.
    const listed = bob.node.channels.list().filter((c) => c.title.toLowerCase() === "town news");
    assert.deepEqual(
      listed.map((c) => [c.id, c.role]).sort(),
      [
        [copy.id, "follower"],
        [own.id, "owner"],
      ].sort(),
    );
  });
});

Deno.test("attack: a post is shown only under the channel whose key verified it, by whoever signed it", async () => {
  await withNodes(["Alice", "Bob", "Carol", "Mallory"], async (alice, bob, carol, mallory) => {
    await pair(bob, carol);
    await pair(mallory, bob);
    await meshOf(alice, bob, carol);
    const channel = await alice.node.channels.create("Real");
    await bob.node.channels.follow(channel.link!);
    const real = await parseChannelLinkText(channel.link!);
    // Mallory's own channel issues an author certificate for her key.
    const hers = await createChannelKey();
    const { identityKeyPair: mk } = await mallory.node.identity.endpoint();
    const herCertificate = await authorizeAuthor({
      channel: hers,
      authorPublicKey: mk.publicKey,
      expiresAt: new Date(Date.now() + DAY),
    });
    // Her post in her channel: Bob does not follow it.
    const own = await makePost({
      channelCertificate: hers.certificate,
      authorCertificate: herCertificate,
      authorPrivateKey: mk.privateKey,
      payload: new Uint8Array(1),
    });
    await assert.rejects(
      bob.node.channels.receivePost(own),
      (e) => e instanceof ParcelRefusedError && e.code === "unauthorized",
    );
    // Addressed to Alice's channel with Alice's certificate, but authorised by hers.
    const forged = await makePost({
      channelCertificate: real.certificate,
      authorCertificate: herCertificate,
      authorPrivateKey: mk.privateKey,
      payload: new Uint8Array(1),
    }).catch(() => null);
    if (forged) await assert.rejects(bob.node.channels.receivePost(forged), ParcelRefusedError);
    // As a fanned-out parcel from a contact: refused the same way.
    assert.deepEqual(await send(mallory, bob, MessageType.CHANNEL_POST, own), [
      "refused:unauthorized",
    ]);
    // A malicious owner authorises Carol's public key; without her private key the
    // post cannot be made to pass for hers.
    const carolKey = await bob.node.ctx.keys.publicKeyStore.retrieveIdentityKey(
      carol.node.identity.id,
    );
    const posing = await makePost({
      channelCertificate: hers.certificate,
      authorCertificate: await authorizeAuthor({
        channel: hers,
        authorPublicKey: carolKey!,
        expiresAt: new Date(Date.now() + DAY),
      }),
      authorPrivateKey: mk.privateKey,
      payload: new Uint8Array(1),
    }).catch(() => null);
    await bob.node.channels.follow(await rawLink(hers, "Mallory's"));
    if (posing) await assert.rejects(bob.node.channels.receivePost(posing), ParcelRefusedError);
    assert.deepEqual(bob.node.channels.read(hers.id).posts, []);
    // Carol, a real author of Alice's channel and Bob's contact, shows under her name;
    // Alice, a stranger to Bob, under none.
    await pair(alice, carol);
    await alice.node.channels.addAuthor(channel.id, "Carol");
    await deliver(alice, carol);
    await carol.node.channels.post(channel.id, { text: "by Carol" });
    await alice.node.channels.post(channel.id, { text: "by Alice" });
    const shown = bob.node.channels.read(channel.id).posts.map((p) => [p.text, p.authorName]);
    assert.deepEqual(shown, [["by Alice", null], ["by Carol", "Carol"]]);
  });
});

Deno.test("attack: a removed subscriber reads nothing new; the new key reaches the authors too", async () => {
  await withNodes(["Alice", "Bob", "Carol", "Dave"], async (alice, bob, carol, dave) => {
    await pair(alice, bob);
    await pair(alice, carol);
    await pair(alice, dave);
    await meshOf(alice, bob, carol, dave);
    const channel = await alice.node.channels.create("Inner", "private");
    await alice.node.channels.addSubscriber(channel.id, "Bob");
    await alice.node.channels.addSubscriber(channel.id, "Dave");
    await alice.node.channels.addAuthor(channel.id, "Carol");
    for (const n of [bob, carol, dave]) await deliver(alice, n);
    await carol.node.channels.post(channel.id, { text: "before" });
    assert.deepEqual(texts(dave.node, channel.id), ["before"]);
    await alice.node.channels.removeSubscriber(channel.id, "Dave");
    assert.deepEqual(await deliver(alice, carol), ["accepted"]);
    assert.deepEqual(await deliver(alice, bob), ["accepted"]);
    assert.deepEqual(await deliver(alice, dave), []);
    // Carol, an author, seals under the new key: Bob and Alice read it, Dave cannot.
    await carol.node.channels.post(channel.id, { text: "after" });
    assert.deepEqual(texts(bob.node, channel.id), ["after", "before"]);
    assert.deepEqual(texts(alice.node, channel.id), ["after", "before"]);
    assert.deepEqual(texts(dave.node, channel.id), [null, "before"]);
  });
});

Deno.test("attack: expired posts leave every table, and are refused when they come back", async () => {
  await withNodes(["Alice", "Bob"], async (alice, bob) => {
    await meshOf(alice, bob);
    const channel = await alice.node.channels.create("Short");
    await bob.node.channels.follow(channel.link!);
    const post = await alice.node.channels.post(channel.id, { text: "soon gone", ttlDays: 1 });
    const bytes = bob.node.ctx.db.get<{ bytes: Uint8Array }>(
      "SELECT bytes FROM channel_posts WHERE key = ?",
      post.key,
    )!.bytes;
    for (const n of [alice, bob]) {
      n.clock.advance(DAY + 3_600_000);
      await n.node.channels.maintain();
      // No table keeps the post, its key or its text.
      const tables = n.node.ctx.db.all<{ name: string }>(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'channel%'",
      );
      for (const { name } of tables) {
        const columns = n.node.ctx.db.all<{ name: string }>(`PRAGMA table_info(${name})`);
        for (const { name: column } of columns) {
          const hit = n.node.ctx.db.get(
            `SELECT 1 FROM ${name} WHERE CAST(${column} AS TEXT) IN (?, ?)`,
            post.key,
            "soon gone",
          );
          assert.equal(hit, undefined, `${name}.${column} still holds the post`);
        }
      }
      assert.equal(n.node.channels.get(channel.id).posts, 0);
    }
    await assert.rejects(
      bob.node.channels.receivePost(bytes),
      (e) => e instanceof ParcelRefusedError && e.code === "expired",
    );
  });
});

Deno.test("attack: a contact's author grant for another key, or from another channel, is refused", async () => {
  await withNodes(["Alice", "Bob", "Mallory"], async (alice, bob, mallory) => {
    await pair(alice, bob);
    await pair(mallory, bob);
    const channel = await alice.node.channels.create("Guarded");
    await bob.node.channels.follow(channel.link!);
    // Mallory's own channel certificate for Bob's key, with Alice's link: not Alice's channel's.
    const hers = await createChannelKey();
    const bobKey = await mallory.node.ctx.keys.publicKeyStore.retrieveIdentityKey(
      bob.node.identity.id,
    );
    const certificate = new Uint8Array(
      (await authorizeAuthor({
        channel: hers,
        authorPublicKey: bobKey!,
        expiresAt: new Date(Date.now() + DAY),
      })).serialize(),
    );
    const link = (await parseChannelLinkText(channel.link!)).bytes;
    assert.deepEqual(
      await send(
        mallory,
        bob,
        MessageType.CHANNEL_AUTHOR,
        encodeChannelGrant({ link, keys: [], certificate }),
      ),
      ["refused:unauthorized"],
    );
    assert.equal(bob.node.channels.get(channel.id).role, "follower");
    assert.equal(bob.node.channels.get(channel.id).canPost, false);
    // Bob's real certificate, from Alice, certifies his key.
    await alice.node.channels.addAuthor(channel.id, "Bob");
    assert.deepEqual(await deliver(alice, bob), ["accepted"]);
    const held = bob.node.ctx.db.get<{ certificate: Uint8Array }>(
      "SELECT certificate FROM channel_authors WHERE channel_id = ?",
      channel.id,
    )!;
    assert.equal(
      await Certificate.deserialize(toArrayBuffer(held.certificate)).calculateSubjectId(),
      bob.node.identity.id,
    );
  });
});

Deno.test("attack: a channel's posts are bounded in octets too; one dated earliest displaces none", async () => {
  await withNodes(["Alice", "Bob"], async (alice, bob) => {
    const channel = await alice.node.channels.create("Heavy");
    await bob.node.channels.follow(channel.link!);
    const { ctx, identity, contacts } = bob.node;
    const deps = {
      ctx,
      identity,
      contacts,
      verifier: new PostVerifier(),
      postLimit: 5_000,
      octetLimit: 70_000,
    };
    // Alice's own certificate lets us write posts of any size and date in her channel.
    const own = alice.node.ctx.db.get<{ certificate: Uint8Array }>(
      "SELECT certificate FROM channel_authors WHERE channel_id = ?",
      channel.id,
    )!;
    const { identityKeyPair } = await alice.node.identity.endpoint();
    const link = await parseChannelLinkText(channel.link!);
    const post = (now: Date, octets: number) =>
      makePost({
        channelCertificate: link.certificate,
        authorCertificate: Certificate.deserialize(toArrayBuffer(own.certificate)),
        authorPrivateKey: identityKeyPair.privateKey,
        payload: new Uint8Array(octets),
        now,
      });
    const start = bob.clock.now().getTime();
    const stored = [];
    for (let i = 1; i <= 4; i++) {
      const made = await storePost(deps, await post(new Date(start - (5 - i) * 60_000), 30_000));
      stored.push(made!.key);
    }
    // Two posts of 30 000 octets (and their chains) fit in 70 000: the newest two stay.
    const kept = () =>
      bob.node.ctx.db.all<{ key: string }>(
        "SELECT key FROM channel_posts ORDER BY created_at DESC",
      ).map((r) => r.key);
    assert.deepEqual(kept(), [stored[3], stored[2]]);
    // One dated before them is not kept, displaces nothing and is no news.
    const changes: unknown[] = [];
    bob.node.events.addEventListener("channel-changed", (e) => changes.push(e));
    assert.equal(await storePost(deps, await post(new Date(start - 10 * 60_000), 30_000)), null);
    assert.deepEqual(kept(), [stored[3], stored[2]]);
    assert.deepEqual(changes, []);
  });
});

Deno.test("attack: another origin cannot drive /api/channels (CSRF), nor can a request without the secret", async () => {
  await withNodes(["Alice"], async (alice) => {
    const { web, base, bearer } = await startWeb(alice.node, { log: () => {} });
    try {
      const post = (path: string, body: unknown, headers: Record<string, string>) =>
        fetch(`${base}${path}`, {
          method: "POST",
          headers: { "content-type": "application/json", ...headers },
          body: JSON.stringify(body),
        });
      const attempts: [string, unknown][] = [
        ["/api/channels", { title: "Planted" }],
        ["/api/channels/follow", { link: "RELAYMAIL-CHANNEL:AAAA" }],
      ];
      for (const [path, body] of attempts) {
        for (
          const [headers, status] of [
            [{ origin: "http://evil.example", ...bearer() }, 403],
            [{ "sec-fetch-site": "cross-site", ...bearer() }, 403],
            [{ origin: base }, 401],
          ] as const
        ) {
          const response = await post(path, body, headers);
          assert.equal(response.status, status, `${path} ${JSON.stringify(headers)}`);
          await response.body?.cancel();
        }
      }
      assert.deepEqual(alice.node.channels.list(), []);
      const made = await post("/api/channels", { title: "Mine" }, { origin: base, ...bearer() });
      assert.equal(made.status, 200);
      assert.equal((await made.json()).title, "Mine");
    } finally {
      await web.stop();
    }
  });
});

Deno.test("attack: the web takes a post as long as §4 allows, names one longer, and keeps absurd bodies out", async () => {
  await withNodes(["Alice"], async (alice) => {
    const { web, base, bearer } = await startWeb(alice.node, { log: () => {} });
    try {
      const channel = await alice.node.channels.create("Long");
      const post = (text: string) =>
        fetch(`${base}/api/channels/${channel.id}/posts`, {
          method: "POST",
          headers: { "content-type": "application/json", origin: base, ...bearer() },
          body: JSON.stringify({ text }),
        });
      // 65 536 octets, half of them line breaks: the JSON takes far more than 64 KiB.
      const full = await post("a\n".repeat(32_768));
      assert.equal(full.status, 200, await full.clone().text());
      assert.equal((await full.json()).text.length, 65_536);
      const over = await post("a".repeat(65_537));
      assert.equal(over.status, 400);
      assert.match((await over.json()).error, /65536 UTF-8 octets/);
      const absurd = await post("\u0001".repeat(70_000));
      assert.equal(absurd.status, 413);
      await absurd.body?.cancel();
      assert.equal(alice.node.channels.get(channel.id).posts, 1);
    } finally {
      await web.stop();
    }
  });
});
