/**
 * `relaymail channel …` from the command line: every command as text and as
 * `--json`, alone and through a running daemon, and the mistakes a person makes
 * (an unknown channel, a bad number, posting where one may not).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DaemonProcess, fails, json, ok } from "./_cli.ts";
import { carry, makeNode, pair, waitFor } from "./helpers.ts";

/** Alice's and Bob's data directories, paired. */
async function people(root: string): Promise<{ alice: string; bob: string }> {
  const alice = await makeNode("Alice", { dir: join(root, "alice") });
  const bob = await makeNode("Bob", { dir: join(root, "bob") });
  await pair(alice, bob);
  alice.node.close();
  bob.node.close();
  return { alice: alice.dir, bob: bob.dir };
}

/** Every channel command on Alice's directory (with or without her daemon), and Bob's follow. */
async function exercise(alice: string, bob: string): Promise<void> {
  // create, as text and JSON
  assert.match(
    await ok(alice, ["channel", "create", "Town notices"]),
    /^Created public channel "Town notices" \(0[0-9a-f]{64}\)\nIts link, for anyone to follow: RELAYMAIL-CHANNEL:[A-Z2-7]+$/m,
  );
  const board = await json(alice, ["channel", "create", "Board", "--private"]);
  assert.equal(board.visibility, "private");
  assert.equal(board.role, "owner");
  assert.equal(board.canPost, true);

  // list
  const listed = await json(alice, ["channel", "list"]);
  assert.deepEqual(listed.channels.map((c: { title: string }) => c.title), [
    "Board",
    "Town notices",
  ]);
  const town = listed.channels[1];
  assert.match(await ok(alice, ["channel", "list"]), /^CHANNEL\s+TITLE\s+KIND\s+ROLE/m);
  assert.match(await ok(alice, ["channel", "list"]), /Town notices\s+public\s+owner\s+0\s+0/);

  // link, by title, by id prefix, with a QR code
  const link = await json(alice, ["channel", "link", "town notices"]);
  assert.equal(link.text, town.link);
  assert.match(link.qrSvg, /^<svg/);
  assert.equal((await ok(alice, ["channel", "link", town.id.slice(0, 10)])).trim(), town.link);
  assert.ok((await ok(alice, ["channel", "link", town.id, "--qr"])).split("\n").length > 20);

  // post, as text and JSON
  assert.match(
    await ok(alice, ["channel", "post", "Town notices", "Market on Sunday", "--title", "Market"]),
    /^Posted [0-9a-f]{8} in 0[0-9a-f]{12}; it expires everywhere on \d{4}-\d\d-\d\d \d\d:\d\d UTC$/m,
  );
  const post = await json(alice, ["channel", "post", town.id, "Road closed", "--days", "2"]);
  assert.equal(post.text, "Road closed");
  assert.equal(post.authorName, "you");
  const lives = Date.parse(post.expiresAt) - Date.parse(post.createdAt);
  assert.ok(lives > 1.9 * 86_400_000 && lives <= 2 * 86_400_000 + 600_000, `lives ${lives} ms`);
  await json(alice, ["channel", "post", "Board", "Members only"]);

  // read, paged
  const page = await json(alice, ["channel", "read", "Town notices", "--limit", "1"]);
  assert.deepEqual(page.posts.map((p: { text: string }) => p.text), ["Road closed"]);
  assert.ok(page.next);
  const rest = await json(alice, ["channel", "read", "Town notices", "--before", page.next]);
  assert.deepEqual(rest.posts.map((p: { title: string }) => p.title), ["Market"]);
  assert.equal(rest.next, null);
  const text = await ok(alice, ["channel", "read", "Town notices", "--limit", "1"]);
  assert.match(
    text,
    /^ {2}[0-9a-f]{8} {2}\S+ \S+ {2}you {2}\(expires \S+ \S+\)\n {2}Road closed$/m,
  );
  assert.match(text, /More: relaymail channel read Town notices --before \d+\.\d+/);

  // mark-read
  assert.match(
    await ok(alice, ["channel", "mark-read", "Board"]),
    /^Marked the posts of 0[0-9a-f]{12} read$/m,
  );
  assert.deepEqual(await json(alice, ["channel", "mark-read", "Board"]), { channel: board.id });

  // authors
  const authors = await json(alice, ["channel", "authors", "Town notices"]);
  assert.equal(authors.authors.length, 1);
  assert.equal(authors.authors[0].owner, true);
  assert.match(await ok(alice, ["channel", "authors", "Town notices"]), /you \(owner\)/);
  const added = await json(alice, [
    "channel",
    "authors",
    "add",
    "Town notices",
    "Bob",
    "--days",
    "7",
  ]);
  assert.equal(added.name, "Bob");
  assert.match(
    await ok(alice, ["channel", "authors", "add", "Board", "Bob"]),
    /^Bob may post until .* UTC \(renewed while they stay an author\); their certificate is on its way$/m,
  );
  assert.match(
    await ok(alice, ["channel", "authors", "remove", "Board", "Bob"]),
    /Bob is no longer renewed: a certificate cannot be revoked, so theirs lapses on /,
  );
  const removed = await json(alice, ["channel", "authors", "remove", "Town notices", "bob"]);
  assert.equal(removed.authors.find((a: { name: string }) => a.name === "Bob").renewed, false);

  // subscribers
  assert.match(await ok(alice, ["channel", "subscribers", "Board"]), /^No subscribers$/m);
  assert.match(
    await ok(alice, ["channel", "subscribers", "Board", "add", "Bob"]),
    /Bob\s+subscriber/,
  );
  assert.deepEqual(
    (await json(alice, ["channel", "subscribers", "Board"])).subscribers.map((
      s: { name: string },
    ) => s.name),
    ["Bob"],
  );
  assert.deepEqual(
    await json(alice, ["channel", "subscribers", "Board", "remove", "Bob"]),
    { subscribers: [] },
  );
  await json(alice, ["channel", "subscribers", "Town notices", "add", "Bob"]);

  // follow and unfollow, on Bob's side, by link
  assert.match(
    await ok(bob, ["channel", "follow", town.link]),
    /^Following "Town notices" \(0[0-9a-f]{64}\): its posts arrive over the mesh$/m,
  );
  const followed = await json(bob, ["channel", "follow", town.link.toLowerCase()]);
  assert.equal(followed.role, "follower");
  assert.equal(followed.following, true);
  assert.match(
    await ok(bob, ["channel", "unfollow", town.id]),
    /^No longer following 0[0-9a-f]{12}$/m,
  );
  assert.deepEqual(await json(bob, ["channel", "unfollow", "Town notices"]), { channel: town.id });
  assert.equal((await json(bob, ["channel", "list"])).channels[0].following, false);
}

/** The mistakes: each names what was wrong, with the exit code of its kind. */
async function mistakes(alice: string, bob: string): Promise<void> {
  await fails(
    alice,
    ["channel", "read", "Nowhere"],
    1,
    /No channel with the id or title "Nowhere"/,
  );
  await fails(alice, ["channel", "post", "Board", "x", "--days", "181"], 1, /1 to 180/);
  await fails(
    alice,
    ["channel", "post", "Board", "x", "--days", "two"],
    1,
    /--days takes a whole number/,
  );
  await fails(alice, ["channel", "create", "x", "--bogus"], 2, /unknown option/);
  await fails(alice, ["channel", "unfollow", "Board"], 1, /your own channel/);
  await fails(
    alice,
    ["channel", "subscribers", "Board", "invite", "Bob"],
    1,
    /"invite" is not add or remove/,
  );
  await fails(alice, ["channel", "authors", "add", "Board", "Nobody"], 1, /No contact named/);
  await fails(
    alice,
    ["channel", "follow", "RELAYMAIL-CHANNEL:AAAA"],
    1,
    /The channel link is not valid/,
  );
  await fails(bob, ["channel", "post", "Town notices", "Hi"], 1, /you are not one of its authors/);
  await fails(bob, ["channel", "authors", "add", "Town notices", "Alice"], 1, /Only the owner/);
}

Deno.test("relaymail channel commands, as text and --json", async () => {
  const root = await Deno.makeTempDir({ prefix: "relaymail-cli-channels-" });
  try {
    const { alice, bob } = await people(root);
    await exercise(alice, bob);
    await mistakes(alice, bob);
    // Bob's author certificate and the channel grants went by mail: carried, Bob may post.
    const a = await makeNode("Alice", { dir: alice });
    const b = await makeNode("Bob", { dir: bob });
    await carry(a.node, b.node);
    a.node.close();
    b.node.close();
    const asBob = (await json(bob, ["channel", "list"])).channels;
    assert.equal(asBob.find((c: { title: string }) => c.title === "Town notices").role, "author");
    // His certificate is for 7 days: a post asked for the default 30 lives 7, and he is told.
    assert.match(
      await ok(bob, ["channel", "post", "Town notices", "From Bob"]),
      /^Posted [0-9a-f]{8} in .*; it expires everywhere on .* UTC, sooner than 30 days: your author certificate ends then$/m,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("relaymail channel commands through a running daemon", async () => {
  const root = await Deno.makeTempDir({ prefix: "relaymail-cli-channels-daemon-" });
  let daemon: DaemonProcess | undefined;
  try {
    const { alice, bob } = await people(root);
    daemon = new DaemonProcess(alice);
    await daemon.waitForLog(/mesh node \S+ listening on /);
    await waitFor("control.json", () => Deno.stat(join(alice, "control.json")).then(() => true));
    await exercise(alice, bob);
    await mistakes(alice, bob);
    const { code } = await daemon.stop();
    daemon = undefined;
    assert.equal(code, 0);
    // What the daemon did is on disk: the directory opened alone agrees.
    const channels = (await json(alice, ["channel", "list"])).channels;
    assert.deepEqual(channels.map((c: { posts: number }) => c.posts), [1, 2]);
  } finally {
    await daemon?.stop();
    await Deno.remove(root, { recursive: true });
  }
});
