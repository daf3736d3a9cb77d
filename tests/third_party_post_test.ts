/**
 * A third party's reader and writer of channel posts (tests/fixtures/third_party_post.ts,
 * written from docs/broadcast.md alone with relaynet-core) against Relaymail's own
 * (mesh/posts.ts): each accepts what the other writes, and both refuse the same forgeries.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  type Certificate,
  generateRSAKeyPair,
  getIdFromIdentityKey,
  getRSAPublicKeyFromPrivate,
  issueDeliveryAuthorization,
  issueEndpointCertificate,
  Parcel,
  ServiceMessage,
} from "@relaycorp/relaynet-core";
import {
  channelLinkText,
  makeChannelLink,
  parseChannelLinkText,
} from "../app/core/channels_link.ts";
import { encodePostPayload, newContentKey, openPostPayload } from "../app/core/channels_content.ts";
import { fromHex } from "../bindings/validation.ts";
import {
  authorizeAuthor,
  type ChannelKey,
  createChannelKey,
  makePost,
  PostVerifier,
  readPost,
} from "../mesh/posts.ts";
import {
  authorize,
  createChannel,
  PostRefused,
  readChannelLink,
  readContent,
  sealContent,
  verifyPost,
  writeChannelLink,
  writePost,
} from "./fixtures/third_party_post.ts";

const DAY = 86_400_000;

/** Relaymail's public post content (§4), made with relaynet-core. */
function publicPayload(body: { text: string; title?: string }): Uint8Array {
  const message = new ServiceMessage(
    "application/vnd.relaymail.channel-post+json",
    Buffer.from(JSON.stringify(body)),
  );
  return new Uint8Array(message.serialize());
}

interface Author {
  readonly id: string;
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
}

async function newAuthor(): Promise<Author> {
  const keys = await generateRSAKeyPair();
  return { ...keys, id: await getIdFromIdentityKey(keys.publicKey) };
}

/** A channel of Relaymail's, its owner authorised as an author for 30 days. */
async function relaymailChannel(): Promise<
  { channel: ChannelKey; author: Author; certificate: Certificate }
> {
  const channel = await createChannelKey();
  const author = await newAuthor();
  const certificate = await authorizeAuthor({
    channel,
    authorPublicKey: author.publicKey,
    expiresAt: new Date(Date.now() + 30 * DAY),
  });
  return { channel, author, certificate };
}

/** Asserts both the third party and Relaymail refuse `bytes`; returns the third party's refusal. */
async function bothRefuse(
  bytes: Uint8Array,
  options: { now?: Date; following?: string } = {},
): Promise<PostRefused> {
  await assert.rejects(
    new PostVerifier().verify(bytes, { now: options.now, channelId: options.following }),
    "Relaymail's PostVerifier accepted it",
  );
  try {
    await verifyPost(bytes, options);
  } catch (error) {
    assert.ok(error instanceof PostRefused, `not a refusal: ${error}`);
    return error;
  }
  throw new assert.AssertionError({ message: "The third party accepted it" });
}

Deno.test("third party: verifies and reads a post made by Relaymail", async () => {
  const { channel, author, certificate } = await relaymailChannel();
  const bytes = await makePost({
    channelCertificate: channel.certificate,
    authorCertificate: certificate,
    authorPrivateKey: author.privateKey,
    payload: publicPayload({ text: "Hello, followers", title: "First" }),
    ttlSeconds: 7 * 86_400,
  });
  const ours = await new PostVerifier().verify(bytes);
  const theirs = await verifyPost(bytes, { following: channel.id });
  assert.deepEqual(
    {
      key: theirs.key,
      channelId: theirs.channelId,
      authorId: theirs.authorId,
      id: theirs.id,
      createdAt: theirs.createdAt,
      expiresAt: theirs.expiresAt,
    },
    ours,
  );
  assert.equal(theirs.channelId, channel.id);
  assert.equal(theirs.authorId, author.id);
  assert.deepEqual(await readContent(theirs.payload, channel.id), {
    kind: "public",
    text: "Hello, followers",
    title: "First",
  });
  // It expires 7 days (plus the 5-minute backdate) after it was dated.
  assert.equal(theirs.expiresAt.getTime() - theirs.createdAt.getTime(), 7 * DAY + 5 * 60_000);
});

Deno.test("third party: a post it writes is accepted by Relaymail's verifier", async () => {
  const channel = await createChannel();
  const author = await newAuthor();
  const certificate = await authorize(channel, author.publicKey, new Date(Date.now() + 10 * DAY));
  const bytes = await writePost({
    channelCertificate: channel.certificate,
    authorCertificate: certificate,
    authorPrivateKey: author.privateKey,
    text: "Written by Dave's own program",
  });
  const verifier = new PostVerifier();
  const facts = await verifier.verify(bytes, { channelId: channel.id });
  assert.equal(facts.channelId, channel.id);
  assert.equal(facts.authorId, author.id);
  assert.equal(facts.key, (await verifyPost(bytes)).key);
  // Capped by the author certificate: 10 days, not the default 30.
  assert.ok(facts.expiresAt.getTime() <= certificate.expiryDate.getTime());
  const read = await readPost(bytes, { verifier });
  assert.deepEqual(await readContent(read.payload, channel.id), {
    kind: "public",
    text: "Written by Dave's own program",
  });
  // Checked again: the verifier's cache changes nothing.
  assert.deepEqual(await verifier.verify(bytes), facts);
});

Deno.test("third party: refuses a post signed by a key the channel did not authorise", async () => {
  const { channel, certificate } = await relaymailChannel();
  const mallory = await newAuthor();
  // Mallory signs with her own key under the owner's author certificate…
  const stolen = new Parcel(
    { id: channel.id },
    certificate,
    Buffer.from(publicPayload({ text: "x" })),
    {
      creationDate: new Date(Date.now() - 60_000),
      ttl: 86_400,
      senderCaCertificateChain: [channel.certificate],
    },
  );
  const signedByMallory = new Uint8Array(await stolen.serialize(mallory.privateKey));
  assert.equal((await bothRefuse(signedByMallory)).step, 2);
  // …or issues herself an author certificate with her own key, carrying the real channel's.
  const fakeChannel = await createChannelKey();
  const selfIssued = await issueDeliveryAuthorization({
    issuerCertificate: fakeChannel.certificate,
    issuerPrivateKey: fakeChannel.privateKey,
    subjectPublicKey: mallory.publicKey,
    validityStartDate: new Date(Date.now() - 3_600_000),
    validityEndDate: new Date(Date.now() + DAY),
  });
  const forged = new Parcel(
    { id: channel.id },
    selfIssued,
    Buffer.from(publicPayload({ text: "x" })),
    {
      creationDate: new Date(Date.now() - 60_000),
      ttl: 86_400,
      senderCaCertificateChain: [channel.certificate, fakeChannel.certificate],
    },
  );
  const refusal = await bothRefuse(new Uint8Array(await forged.serialize(mallory.privateKey)));
  assert.equal(refusal.step, 3);
  assert.match(refusal.message, /not issued by the channel/);
  // Without the real channel's certificate, the post carries none for its channel.
  const bare = new Parcel(
    { id: channel.id },
    selfIssued,
    Buffer.from(publicPayload({ text: "x" })),
    {
      creationDate: new Date(Date.now() - 60_000),
      ttl: 86_400,
      senderCaCertificateChain: [fakeChannel.certificate],
    },
  );
  const none = await bothRefuse(new Uint8Array(await bare.serialize(mallory.privateKey)));
  assert.equal(none.step, 3);
  assert.match(none.message, /carries no certificate of channel/);
});

Deno.test("third party: refuses a post whose author certificate expired", async () => {
  const now = Date.now();
  const channel = await createChannelKey(new Date(now - 4 * DAY));
  const author = await newAuthor();
  // Authorised from 3 days ago until yesterday; the post, 2 days old, claims 30 days of life.
  const lapsed = await issueDeliveryAuthorization({
    issuerCertificate: channel.certificate,
    issuerPrivateKey: channel.privateKey,
    subjectPublicKey: author.publicKey,
    validityStartDate: new Date(now - 3 * DAY),
    validityEndDate: new Date(now - DAY),
  });
  const post = new Parcel(
    { id: channel.id },
    lapsed,
    Buffer.from(publicPayload({ text: "late" })),
    {
      creationDate: new Date(now - 2 * DAY),
      ttl: 30 * 86_400,
      senderCaCertificateChain: [channel.certificate],
    },
  );
  const bytes = new Uint8Array(await post.serialize(author.privateKey));
  const refusal = await bothRefuse(bytes);
  assert.equal(refusal.step, 3);
  assert.match(refusal.message, /author certificate is valid .* not at/);
  // The same post was acceptable while the certificate lasted.
  const then = new Date(now - 1.5 * DAY);
  assert.equal((await new PostVerifier().verify(bytes, { now: then })).authorId, author.id);
});

Deno.test("third party: refuses a tampered post", async () => {
  const { channel, author, certificate } = await relaymailChannel();
  const bytes = await makePost({
    channelCertificate: channel.certificate,
    authorCertificate: certificate,
    authorPrivateKey: author.privateKey,
    payload: publicPayload({ text: "Pay 10 to Alice" }),
  });
  const at = Buffer.from(bytes).indexOf("10 to Alice");
  assert.ok(at > 0);
  const tampered = bytes.slice();
  tampered[at] = "9".charCodeAt(0);
  assert.equal((await bothRefuse(tampered)).step, 2);
  // Cut short, or another type of RAMF message: step 1.
  assert.ok([1, 2].includes((await bothRefuse(bytes.subarray(0, bytes.length - 10))).step));
  const cargo = bytes.slice();
  cargo[5] = 0x43; // "Awala" 0x43: a cargo
  assert.equal((await bothRefuse(cargo)).step, 1);
});

Deno.test("third party: refuses a post of another channel, and one past its expiry", async () => {
  const { channel, author, certificate } = await relaymailChannel();
  const other = await createChannelKey();
  const bytes = await makePost({
    channelCertificate: channel.certificate,
    authorCertificate: certificate,
    authorPrivateKey: author.privateKey,
    payload: publicPayload({ text: "For channel one" }),
    ttlSeconds: 86_400,
  });
  const refusal = await bothRefuse(bytes, { following: other.id });
  assert.equal(refusal.step, 6);
  assert.match(refusal.message, new RegExp(`belongs to channel ${channel.id}, not ${other.id}`));
  // Both accept it for its own channel, and both refuse it two days on.
  await verifyPost(bytes, { following: channel.id });
  await new PostVerifier().verify(bytes, { channelId: channel.id });
  assert.equal((await bothRefuse(bytes, { now: new Date(Date.now() + 2 * DAY) })).step, 4);
});

Deno.test("third party: reads a private post with the content key, not without", async () => {
  const { channel, author, certificate } = await relaymailChannel();
  const keyId = crypto.getRandomValues(new Uint8Array(16));
  const contentKey = crypto.getRandomValues(new Uint8Array(32));
  const bytes = await makePost({
    channelCertificate: channel.certificate,
    authorCertificate: certificate,
    authorPrivateKey: author.privateKey,
    payload: await sealContent(channel.id, keyId, contentKey, { text: "Members only" }),
  });
  const { payload } = await verifyPost(bytes);
  const keys = new Map([[Buffer.from(keyId).toString("hex"), contentKey]]);
  assert.deepEqual(await readContent(payload, channel.id, keys), {
    kind: "public",
    text: "Members only",
  });
  assert.equal((await readContent(payload, channel.id)).kind, "unreadable");
  // Sealed for another channel: the additional data differs, so it does not decrypt.
  assert.deepEqual(await readContent(payload, (await createChannelKey()).id, keys), {
    kind: "unreadable",
    reason: "sealed post does not decrypt",
  });
});

Deno.test("third party: reads a channel link and checks its title's signature", async () => {
  const channel = await createChannelKey();
  const text = await writeChannelLink(channel, "Village notices");
  assert.match(text, /^RELAYMAIL-CHANNEL:[A-Z2-7]+$/);
  const link = await readChannelLink(text);
  assert.equal(link.channelId, channel.id);
  assert.equal(link.title, "Village notices");
  assert.deepEqual(
    new Uint8Array(link.certificate.serialize()),
    new Uint8Array(channel.certificate.serialize()),
  );

  // A title signed by another key is refused.
  const mallory = await createChannelKey();
  const spliced = await writeChannelLink(
    { certificate: channel.certificate, privateKey: mallory.privateKey },
    "Village notices (official)",
  );
  await assert.rejects(readChannelLink(spliced), /title's signature does not verify/);
  // A certificate for the channel's key signed by another key is not self-signed.
  const notSelfSigned = await issueEndpointCertificate({
    issuerPrivateKey: mallory.privateKey,
    subjectPublicKey: await getRSAPublicKeyFromPrivate(channel.privateKey),
    validityStartDate: new Date(Date.now() - 3_600_000),
    validityEndDate: new Date(Date.now() + DAY),
  });
  const impostor = await writeChannelLink(
    { certificate: notSelfSigned, privateKey: channel.privateKey },
    "Village notices",
  );
  await assert.rejects(readChannelLink(impostor), /not self-signed/);
  // Damaged text.
  await assert.rejects(readChannelLink(text.slice(0, -9)), /cut short|after the signature/);
  await assert.rejects(readChannelLink(text.replace("RELAYMAIL", "RELAYNET")), /prefix/);
});

Deno.test("third party: reads what Relaymail's app writes, and the app reads its own", async () => {
  const channel = await createChannelKey();
  // §5: the app's link, read by the third party; the third party's, read by the app.
  const appLink = channelLinkText(
    await makeChannelLink(channel.certificate, channel.privateKey, "Parish news"),
  );
  const read = await readChannelLink(appLink);
  assert.deepEqual([read.channelId, read.title], [channel.id, "Parish news"]);
  const daveLink = await parseChannelLinkText(await writeChannelLink(channel, "Parish news"));
  assert.deepEqual([daveLink.channelId, daveLink.title], [channel.id, "Parish news"]);

  // §4: the app's public and sealed payloads, read by the third party, and the reverse.
  const key = newContentKey();
  const keys = new Map([[key.id, key.key]]);
  const open = await encodePostPayload({ text: "Open", title: "T" });
  assert.deepEqual(await readContent(open, channel.id), {
    kind: "public",
    text: "Open",
    title: "T",
  });
  const sealed = await encodePostPayload({ text: "Closed", title: null }, {
    channelId: channel.id,
    key,
  });
  assert.deepEqual(await readContent(sealed, channel.id, keys), { kind: "public", text: "Closed" });
  const daveSealed = await sealContent(channel.id, fromHex(key.id), key.key, { text: "Dave's" });
  assert.deepEqual(
    (await openPostPayload(daveSealed, channel.id, (id) => keys.get(id))).content,
    { text: "Dave's", title: null },
  );
});
