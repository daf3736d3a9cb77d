/**
 * Per-message CPU cost of sending and receiving a 1 KiB mail through Relaymail,
 * each beside plain relaynet-core doing the same cryptographic work in the same
 * run (the baseline). Run with `deno task bench`; Deno prints each case's time and
 * its ratio to the baseline of its group.
 */
import "../../app/_quiet.ts";
import { Buffer } from "node:buffer";
import {
  Certificate,
  CertificationPath,
  Parcel,
  ServiceMessage,
  SessionEnvelopedData,
  SessionKeyPair,
} from "@relaycorp/relaynet-core";
import { encodeMail, MessageType } from "../../app/core/protocol/messages.ts";
import { createParcelFixture } from "../../bindings/testing/fixtures.ts";
import { makeNode, pair, pendingBytes } from "../helpers.ts";

const BODY = "x".repeat(1024);
const RECEIVE_SAMPLES = 120;

// Relaymail: two paired nodes.
// Receipts are built in the background shortly after arrivals; keep that out of
// the timed loop (the receive case measures taking the parcel in).
const alice = await makeNode("Alice", { tunables: { followUpDelayMs: 3_600_000 } });
const bob = await makeNode("Bob", { tunables: { followUpDelayMs: 3_600_000 } });
await pair(alice, bob);
await bob.node.mailbox.send({ to: ["Alice"], body: "warm-up" }); // session keys settle
for (const bytes of await pendingBytes(bob.node)) {
  await alice.node.receiveParcel(bytes, { binding: "bench" });
}

// Parcels for Alice to receive: distinct, since a repeat would be refused as a replay.
const incoming: Uint8Array[] = [];
for (let i = 0; i < RECEIVE_SAMPLES; i++) {
  await bob.node.mailbox.send({ to: ["Alice"], subject: `Bench ${i}`, body: BODY });
}
incoming.push(...(await pendingBytes(bob.node)).slice(-RECEIVE_SAMPLES));

// Plain relaynet-core: the same kinds of keys and PKI objects, in memory.
const { recipientCertificate, pda, senderPrivateKey, recipientId } = await createParcelFixture();
const pdaPath = new CertificationPath(pda, [recipientCertificate]);
const recipientSession = await SessionKeyPair.generate();
const mailContent = encodeMail({
  messageId: crypto.randomUUID(),
  threadId: "t",
  inReplyTo: "",
  sentAt: new Date(),
  subject: "Bench",
  body: BODY,
  recipients: [],
  attachments: [],
});

async function plainParcel(): Promise<ArrayBuffer> {
  const message = new ServiceMessage(MessageType.MAIL, Buffer.from(mailContent));
  const { envelopedData } = await SessionEnvelopedData.encrypt(
    message.serialize(),
    recipientSession.sessionKey,
  );
  const parcel = new Parcel(
    { id: recipientId },
    pdaPath.leafCertificate,
    Buffer.from(envelopedData.serialize()),
    {
      ttl: 15_552_000,
      creationDate: new Date(Date.now() - 300_000),
      senderCaCertificateChain: [...pdaPath.certificateAuthorities],
    },
  );
  return await parcel.serialize(senderPrivateKey);
}

const plainIncoming: ArrayBuffer[] = [];
for (let i = 0; i < RECEIVE_SAMPLES; i++) plainIncoming.push(await plainParcel());

Deno.bench({
  name: "send: plain relaynet-core (encrypt, sign)",
  group: "send",
  baseline: true,
  n: 100,
  warmup: 5,
  async fn() {
    await plainParcel();
  },
});

Deno.bench({
  name: "send: Relaymail (compose, encrypt, sign, store)",
  group: "send",
  n: 100,
  warmup: 5,
  async fn() {
    await alice.node.mailbox.send({ to: ["Bob"], subject: "Bench", body: BODY });
  },
});

let plainIndex = 0;
Deno.bench({
  name: "receive: plain relaynet-core (parse, verify, validate, decrypt)",
  group: "receive",
  baseline: true,
  n: RECEIVE_SAMPLES - 10,
  warmup: 5,
  async fn() {
    const parcel = await Parcel.deserialize(plainIncoming[plainIndex++ % plainIncoming.length]);
    await parcel.validate([recipientCertificate as Certificate]);
    await parcel.unwrapPayload(recipientSession.privateKey);
  },
});

let index = 0;
Deno.bench({
  name: "receive: Relaymail (validate, replay check, decrypt, store)",
  group: "receive",
  n: RECEIVE_SAMPLES - 10,
  warmup: 5,
  async fn() {
    const outcome = await alice.node.receiveParcel(incoming[index++], { binding: "bench" });
    if (outcome.status !== "accepted") throw new Error(`Parcel ${index} was ${outcome.status}`);
  },
});

globalThis.addEventListener("unload", () => {
  alice.node.close();
  bob.node.close();
  for (const dir of [alice.dir, bob.dir]) Deno.removeSync(dir, { recursive: true });
});
