/**
 * Channel posts as mesh/posts.ts makes and checks them (docs/broadcast.md §1–3):
 * what a valid post is, and that each way of forging one is refused with a code
 * naming what is wrong.
 */
import assert from "node:assert/strict";
import {
  generateRSAKeyPair,
  getRSAPublicKeyFromPrivate,
  issueEndpointCertificate,
  Parcel,
} from "@relaycorp/relaynet-core";
import {
  authorizeAuthor,
  CHANNEL_CERTIFICATE_DAYS,
  channelIdOf,
  createChannelKey,
  makePost,
  MAX_POST_TTL_SECONDS,
  needsRenewal,
  PostVerifier,
  readPost,
  renewChannelCertificate,
} from "../mesh/posts.ts";
import { ParcelRefusedError } from "../bindings/validation.ts";
import { DAY } from "./helpers.ts";

const text = (s: string) => new TextEncoder().encode(s);

async function setUp(authorDays = 30) {
  const channel = await createChannelKey();
  const author = await generateRSAKeyPair();
  const authorCertificate = await authorizeAuthor({
    channel,
    authorPublicKey: author.publicKey,
    expiresAt: new Date(Date.now() + authorDays * DAY),
  });
  const post = (payload = "hello", options: { ttlSeconds?: number; now?: Date } = {}) =>
    makePost({
      channelCertificate: channel.certificate,
      authorCertificate,
      authorPrivateKey: author.privateKey,
      payload: text(payload),
      ...options,
    });
  return { channel, author, authorCertificate, post };
}

async function refusal(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(() => null, (e) => e);
  assert.ok(error instanceof ParcelRefusedError, `expected a refusal, got ${error}`);
  return error.code;
}

Deno.test("a post verifies at a relay and reads back, and relaynet-core agrees", async () => {
  const { channel, post } = await setUp();
  const bytes = await post("hello, channel");
  const verifier = new PostVerifier();
  const facts = await verifier.verify(bytes, { channelId: channel.id });
  assert.equal(facts.channelId, channel.id);
  assert.equal(facts.key.length, 64);
  // Thirty days from now by default, counted from the (backdated) creation.
  const life = facts.expiresAt.getTime() - Date.now();
  assert.ok(life > 29.9 * DAY && life <= 30 * DAY, `lives ${life / DAY} days`);
  const read = await readPost(bytes, { verifier });
  assert.equal(new TextDecoder().decode(read.payload), "hello, channel");
  assert.equal(await read.channelCertificate.calculateSubjectId(), channel.id);
  const parcel = await Parcel.deserialize(bytes.buffer as ArrayBuffer);
  await parcel.validate([channel.certificate]);
});

Deno.test("a post of another channel is refused where a channel is expected", async () => {
  const { post } = await setUp();
  const other = await createChannelKey();
  assert.equal(
    await refusal(new PostVerifier().verify(await post(), { channelId: other.id })),
    "unauthorized",
  );
});

Deno.test("a post signed by a key the channel never authorised is refused", async () => {
  const { channel, authorCertificate } = await setUp();
  const mallory = await generateRSAKeyPair();
  // Mallory holds Alice's certificate but not her key.
  const forged = await makePost({
    channelCertificate: channel.certificate,
    authorCertificate,
    authorPrivateKey: mallory.privateKey,
    payload: text("forged"),
  });
  assert.equal(await refusal(new PostVerifier().verify(forged)), "bad-signature");
  // Mallory's own certificate, issued by a channel key she made with the same title: another id.
  const fake = await createChannelKey();
  const fakeCertificate = await authorizeAuthor({
    channel: fake,
    authorPublicKey: mallory.publicKey,
    expiresAt: new Date(Date.now() + DAY),
  });
  const impostor = await makePost({
    channelCertificate: channel.certificate,
    authorCertificate: fakeCertificate,
    authorPrivateKey: mallory.privateKey,
    payload: text("impostor"),
  }).catch((e) => e);
  assert.ok(impostor instanceof RangeError, "makePost refuses a certificate of another channel");
});

Deno.test("a tampered post is refused", async () => {
  const { post } = await setUp();
  const bytes = await post("the original words");
  const at = new TextDecoder("latin1").decode(bytes).indexOf("original");
  assert.ok(at > 0);
  const tampered = bytes.slice();
  tampered.set(text("falsified"), at);
  assert.equal(await refusal(new PostVerifier().verify(tampered)), "bad-signature");
});

Deno.test("a post is refused once its author's certificate expired, and never outlives it", async () => {
  const { post } = await setUp(2);
  const bytes = await post("short-lived author");
  const facts = await new PostVerifier().verify(bytes);
  // Asked for 30 days, given the certificate's 2.
  assert.ok(facts.expiresAt.getTime() <= Date.now() + 2 * DAY);
  const later = new Date(Date.now() + 2 * DAY + 60_000);
  const code = await refusal(new PostVerifier().verify(bytes, { now: later }));
  assert.ok(["expired", "unauthorized"].includes(code), code);
  await assert.rejects(post("too late", { now: later }), /expired/);
});

Deno.test("a post's lifetime is 60 s to 180 days", async () => {
  const { post } = await setUp(400);
  await assert.rejects(post("x", { ttlSeconds: MAX_POST_TTL_SECONDS + 1 }), /180 days/);
  await assert.rejects(post("x", { ttlSeconds: 10 }), /lifetime/);
  const longest = await new PostVerifier().verify(
    await post("x", { ttlSeconds: MAX_POST_TTL_SECONDS }),
  );
  assert.ok(
    longest.expiresAt.getTime() - longest.createdAt.getTime() <= MAX_POST_TTL_SECONDS * 1000,
  );
});

Deno.test("the channel key cannot author; the owner posts with another key", async () => {
  const channel = await createChannelKey();
  await assert.rejects(
    authorizeAuthor({
      channel,
      authorPublicKey: await getRSAPublicKeyFromPrivate(channel.privateKey),
      expiresAt: new Date(Date.now() + DAY),
    }),
    /channel key itself/,
  );
});

Deno.test("a renewed channel certificate keeps the id, and old posts still verify", async () => {
  const { channel, post } = await setUp();
  const before = await post("before renewal");
  assert.equal(needsRenewal(channel.certificate), false);
  assert.equal(
    needsRenewal(
      channel.certificate,
      new Date(Date.now() + (CHANNEL_CERTIFICATE_DAYS - 100) * DAY),
    ),
    true,
  );
  const renewed = await renewChannelCertificate(channel.privateKey);
  assert.equal(await channelIdOf(renewed), channel.id);
  assert.equal((await new PostVerifier().verify(before)).channelId, channel.id);
  const author = await generateRSAKeyPair();
  const after = await makePost({
    channelCertificate: renewed,
    authorCertificate: await authorizeAuthor({
      channel: { certificate: renewed, privateKey: channel.privateKey },
      authorPublicKey: author.publicKey,
      expiresAt: new Date(Date.now() + DAY),
    }),
    authorPrivateKey: author.privateKey,
    payload: text("after"),
  });
  assert.equal((await new PostVerifier().verify(after)).channelId, channel.id);
});

Deno.test("an author certificate is not a channel certificate", async () => {
  const { authorCertificate } = await setUp();
  await assert.rejects(channelIdOf(authorCertificate), /not self-signed/);
});

Deno.test("a certificate of the channel's key signed by another key is not the channel's", async () => {
  const channel = await createChannelKey();
  const mallory = await generateRSAKeyPair();
  // relaynet-core names the issuer after the subject key whoever signs, so only
  // the signature tells this certificate from the channel's own.
  const forged = await issueEndpointCertificate({
    issuerPrivateKey: mallory.privateKey,
    subjectPublicKey: await getRSAPublicKeyFromPrivate(channel.privateKey),
    validityStartDate: new Date(Date.now() - 60_000),
    validityEndDate: new Date(Date.now() + DAY),
  });
  assert.equal(await forged.getIssuerId(), channel.id);
  await assert.rejects(channelIdOf(forged), /not self-signed/);
  assert.equal(await channelIdOf(channel.certificate), channel.id);
});
