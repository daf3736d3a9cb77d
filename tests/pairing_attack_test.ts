/**
 * Who a pairing request comes from (docs/protocol.md §3.2). The requester's
 * identity rests on the connection parameters it carries, and their PDA is no
 * secret: every parcel the inviter sends a contact carries, in the clear, the PDA
 * that contact issued it. So a request must prove, with the requester's identity
 * key, that it comes from that key's holder; a stranger holding one invitation
 * cannot pass for a contact, replace its session key or write as it. A request
 * without a proof (an older acceptor) still pairs a new endpoint.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  CertificationPath,
  derSerializePrivateKey,
  derSerializePublicKey,
  generateRSAKeyPair,
  issueDeliveryAuthorization,
  issueEndpointCertificate,
  Parcel,
  PrivateEndpointConnParams,
  ServiceMessage,
  SessionEnvelopedData,
  SessionKeyPair,
} from "@relaycorp/relaynet-core";
import { exportParcels } from "../bindings/sneakernet/sneakernet.ts";
import { toArrayBuffer } from "../bindings/validation.ts";
import { signerFromPkcs8 } from "../mesh/mod.ts";
import { type DecodedInvitation, decodeInvitation } from "../app/core/protocol/invitation.ts";
import {
  encodeMail,
  encodePairing,
  MessageType,
  type PairingContent,
  pairingProofInput,
} from "../app/core/protocol/messages.ts";
import { carry, DAY, pair, pendingBytes, statuses, type TestNode, withNodes } from "./helpers.ts";

function inbox(node: TestNode): string[] {
  return node.node.mailbox.list("inbox").map((m) => m.subject);
}

/** Who a request claims to be: an identity key and a PDA it issued the inviter. */
interface Claim {
  readonly identityKey: CryptoKey;
  readonly pda: CertificationPath;
}

/** A mail from `from`'s hand, as DER. */
function mail(subject: string, recipient: string): Uint8Array {
  return encodeMail({
    messageId: crypto.randomUUID(),
    threadId: "",
    inReplyTo: "",
    sentAt: new Date(),
    subject,
    body: "",
    recipients: [recipient],
    attachments: [],
  });
}

/**
 * A pairing request for `invitation`, built by hand, claiming `claim`; `sign`
 * (given the octets a proof signs) makes its proof, if any, and `proofFor` says
 * which invitation the proof names (this one by default).
 */
async function handmadeRequest(
  invitation: DecodedInvitation,
  claim: Claim,
  options: {
    readonly mail?: Uint8Array[];
    readonly sign?: (input: Uint8Array) => Uint8Array;
    readonly proofFor?: string;
  } = {},
): Promise<{ bytes: Uint8Array; session: SessionKeyPair }> {
  const session = await SessionKeyPair.generate();
  const params = new PrivateEndpointConnParams(
    claim.identityKey,
    "",
    claim.pda,
    session.sessionKey,
  );
  const unsigned: PairingContent = {
    connectionParams: new Uint8Array(await params.serialize()),
    nameHint: "Bob",
    authorizations: [],
    mail: options.mail ?? [],
  };
  const proof = options.sign?.(pairingProofInput({
    inviterId: invitation.inviterId,
    invitationId: options.proofFor ?? invitation.invitationId,
    sessionKeyId: new Uint8Array(session.sessionKey.keyId),
    sessionPublicKey: new Uint8Array(await derSerializePublicKey(session.sessionKey.publicKey)),
    pairing: unsigned,
  }));
  const content = encodePairing({ ...unsigned, proof });
  const message = new ServiceMessage(MessageType.PAIRING_REQUEST, Buffer.from(content));
  const { envelopedData } = await SessionEnvelopedData.encrypt(
    message.serialize(),
    invitation.connectionParams.sessionKey,
  );
  const inviterAuth = invitation.connectionParams.deliveryAuth;
  const parcel = new Parcel(
    { id: invitation.inviterId },
    inviterAuth.leafCertificate,
    Buffer.from(envelopedData.serialize()),
    {
      creationDate: new Date(Date.now() - 60_000),
      ttl: 3600,
      senderCaCertificateChain: [...inviterAuth.certificateAuthorities],
    },
  );
  return {
    bytes: new Uint8Array(await parcel.serialize(invitation.invitationKey)),
    session,
  };
}

/** What anyone carrying one parcel Alice sent Bob learns: Bob's key and the PDA Bob gave her. */
async function observeBob(alice: TestNode): Promise<Claim> {
  await alice.node.mailbox.send({ to: ["Bob"], subject: "hi", body: "" });
  const [seen] = await pendingBytes(alice.node);
  const parcel = await Parcel.deserialize(toArrayBuffer(seen));
  return {
    identityKey: await parcel.senderCaCertificateChain[0].getPublicKey(),
    pda: new CertificationPath(parcel.senderCertificate, parcel.senderCaCertificateChain),
  };
}

/** A brand-new endpoint's claim, with a PDA it issued to the inviter; and its signer. */
async function newcomer(invitation: DecodedInvitation) {
  const keys = await generateRSAKeyPair();
  const end = new Date(Date.now() + 30 * DAY);
  const certificate = await issueEndpointCertificate({
    issuerPrivateKey: keys.privateKey,
    subjectPublicKey: keys.publicKey,
    validityEndDate: end,
  });
  const pda = await issueDeliveryAuthorization({
    issuerCertificate: certificate,
    issuerPrivateKey: keys.privateKey,
    subjectPublicKey: invitation.connectionParams.identityKey,
    validityEndDate: end,
  });
  const signer = signerFromPkcs8(new Uint8Array(await derSerializePrivateKey(keys.privateKey)));
  const claim: Claim = {
    identityKey: keys.publicKey,
    pda: new CertificationPath(pda, [certificate]),
  };
  return { claim, sign: signer.sign, id: signer.id };
}

async function invitationFrom(alice: TestNode, contactName: string) {
  const { text, id } = await alice.node.pairing.createInvitation({ contactName });
  return { id, decoded: await decodeInvitation(text, alice.node.ctx.now()) };
}

/** Ids of the session keys the parcels waiting to leave `node` are encrypted for. */
async function sessionKeyIdsOfPending(node: TestNode): Promise<string[]> {
  const ids = [];
  for (const bytes of await pendingBytes(node.node)) {
    const parcel = await Parcel.deserialize(toArrayBuffer(bytes));
    const envelope = SessionEnvelopedData.deserialize(
      toArrayBuffer(new Uint8Array(parcel.payloadSerialized)),
    );
    ids.push(Buffer.from(envelope.getRecipientKeyId()).toString("hex"));
  }
  return ids;
}

Deno.test("a stranger replaying a contact's PDA in a request without proof is refused, and the contact keeps its session key", async () => {
  await withNodes(["Alice", "Bob"], async (alice, bob) => {
    await pair(alice, bob);
    const bobClaim = await observeBob(alice);
    assert.deepEqual(statuses(await carry(alice.node, bob.node)), ["accepted"]);
    const { id, decoded } = await invitationFrom(alice, "Mallory");
    const { bytes, session } = await handmadeRequest(decoded, bobClaim, {
      mail: [mail("New bank details", alice.node.identity.id)],
    });

    const outcome = await alice.node.receiveParcel(bytes, { binding: "test" });
    assert.equal(outcome.status === "refused" && outcome.code, "unauthorized");
    assert.match(outcome.status === "refused" ? outcome.reason : "", /Bob.*no proof/);
    assert.deepEqual(inbox(alice), []);
    assert.equal(alice.node.pairing.getInvitation(id)?.state, "pending", "still unused");

    // Alice's next mail to Bob is for Bob's session key, not Mallory's, and reaches him.
    await alice.node.mailbox.send({ to: ["Bob"], subject: "For Bob only", body: "" });
    const mallorys = Buffer.from(session.sessionKey.keyId).toString("hex");
    const keyIds = await sessionKeyIdsOfPending(alice);
    assert.equal(keyIds.length, 1);
    assert.ok(!keyIds.includes(mallorys), "not encrypted for Mallory's key");
    assert.deepEqual(statuses(await carry(alice.node, bob.node)), ["accepted"]);
    assert.deepEqual(inbox(bob).sort(), ["For Bob only", "hi"]);
  });
});

Deno.test("a request whose proof was not made with the claimed identity key is refused", async () => {
  await withNodes(["Alice", "Bob"], async (alice, bob) => {
    await pair(alice, bob);
    const bobClaim = await observeBob(alice);
    const { id, decoded } = await invitationFrom(alice, "Mallory");
    // Mallory signs with her own key while claiming Bob's.
    const mallory = await newcomer(decoded);
    const { bytes } = await handmadeRequest(decoded, bobClaim, {
      mail: [mail("New bank details", alice.node.identity.id)],
      sign: mallory.sign,
    });
    const outcome = await alice.node.receiveParcel(bytes, { binding: "test" });
    assert.equal(outcome.status === "refused" && outcome.code, "unauthorized");
    assert.match(outcome.status === "refused" ? outcome.reason : "", /proof does not verify/);
    assert.deepEqual(inbox(alice), []);
    assert.equal(alice.node.pairing.getInvitation(id)?.state, "pending");
  });
});

Deno.test("a genuine proof made for one invitation is refused in a request for another", async () => {
  await withNodes(["Alice", "Bob"], async (alice, bob) => {
    const newbie = await invitationFrom(alice, "Newbie");
    const other = await invitationFrom(alice, "Other");
    const dave = await newcomer(newbie.decoded);
    const { bytes } = await handmadeRequest(newbie.decoded, dave.claim, {
      sign: dave.sign,
      proofFor: other.decoded.invitationId,
    });
    const outcome = await alice.node.receiveParcel(bytes, { binding: "test" });
    assert.equal(outcome.status === "refused" && outcome.code, "unauthorized");
    assert.deepEqual(alice.node.contacts.list(), []);

    // The same requester, with a proof for this invitation, pairs, and its mail is taken.
    const { bytes: good } = await handmadeRequest(newbie.decoded, dave.claim, {
      sign: dave.sign,
      mail: [mail("Hello from Dave", alice.node.identity.id)],
    });
    assert.deepEqual(statuses([await alice.node.receiveParcel(good, { binding: "test" })]), [
      "accepted",
    ]);
    assert.deepEqual(alice.node.contacts.list().map((c) => [c.name, c.state, c.id]), [
      ["Newbie", "active", dave.id],
    ]);
    assert.deepEqual(inbox(alice), ["Hello from Dave"]);
    void bob;
  });
});

Deno.test("an older acceptor's request without proof still pairs a new endpoint, without its mail", async () => {
  await withNodes(["Alice"], async (alice) => {
    const { id, decoded } = await invitationFrom(alice, "Dave");
    const dave = await newcomer(decoded);
    const { bytes } = await handmadeRequest(decoded, dave.claim, {
      mail: [mail("Unproven mail", alice.node.identity.id)],
    });
    assert.deepEqual(statuses([await alice.node.receiveParcel(bytes, { binding: "test" })]), [
      "accepted",
    ]);
    assert.deepEqual(alice.node.contacts.list().map((c) => [c.name, c.state, c.id]), [
      ["Dave", "active", dave.id],
    ]);
    assert.equal(alice.node.pairing.getInvitation(id)?.state, "used");
    assert.deepEqual(inbox(alice), [], "mail in a request without proof is not taken");
  });
});

Deno.test("Relaymail's requests carry a proof, built again with mail too, and pair with their mail", async () => {
  await withNodes(["Alice", "Bob"], async (alice, bob) => {
    const { text } = await alice.node.pairing.createInvitation({ contactName: "Bob" });
    await bob.node.pairing.acceptInvitation(text, { name: "Alice" });
    await bob.node.mailbox.send({ to: ["Alice"], subject: "First", body: "" });
    assert.deepEqual(statuses(await carry(bob.node, alice.node)), ["accepted"]);
    assert.deepEqual(inbox(alice), ["First"], "taken: the request proved who sent it");
  });
});

Deno.test("an active contact pairs again with a new invitation from the same inviter, overwriting nothing before the answer", async () => {
  await withNodes(["Alice", "Bob"], async (alice, bob) => {
    await pair(alice, bob);
    const row = () =>
      bob.node.ctx.db.get("SELECT state, pda_expires_at, internet_address FROM contacts");
    const before = row();
    // Alice may see Bob lapsed when Bob does not (his renewals lost on the way, §6.2).
    const { text } = await alice.node.pairing.createInvitation({ contactName: "Bob again" });
    const contact = await bob.node.pairing.acceptInvitation(text);
    assert.deepEqual([contact.name, contact.state], ["Alice", "active"]);
    assert.deepEqual(row(), before, "nothing overwritten before the answer");
    assert.deepEqual(statuses(await carry(bob.node, alice.node)), ["accepted"]);
    assert.deepEqual(alice.node.contacts.list().map((c) => [c.name, c.state]), [["Bob", "active"]]);
    await carry(alice.node, bob.node);
    assert.equal(bob.node.contacts.find("Alice").state, "active");
    await bob.node.mailbox.send({ to: ["Alice"], subject: "Still here", body: "" });
    await carry(bob.node, alice.node);
    assert.deepEqual(inbox(alice), ["Still here"]);
  });
});

Deno.test("a lost repair request does not block the next invitation, which takes over with the waiting mail", async () => {
  await withNodes(["Alice", "Bob"], async (alice, bob) => {
    await pair(alice, bob);
    for (const node of [alice, bob]) {
      node.clock.advance(900 * DAY);
      await node.node.maintain();
    }
    assert.equal(bob.node.contacts.find("Alice").state, "lapsed");
    const first = await alice.node.pairing.repairInvitation("Bob");
    await bob.node.pairing.acceptInvitation(first.text);
    await assert.rejects(
      bob.node.pairing.acceptInvitation(first.text),
      /already accepted this invitation from Alice.*ask them for a new invitation/,
    );
    await bob.node.mailbox.send({ to: ["Alice"], subject: "Riding", body: "" });
    // The stick carrying the request is lost; the invitation expires.
    const stick = await Deno.makeTempDir({ prefix: "relaymail-lost-stick-" });
    await exportParcels(bob.node, stick);
    await Deno.remove(stick, { recursive: true });
    assert.deepEqual(bob.node.outbox.list().filter((p) => p.state === "queued"), []);
    for (const node of [alice, bob]) node.clock.advance(8 * DAY);

    const second = await alice.node.pairing.repairInvitation("Bob");
    const contact = await bob.node.pairing.acceptInvitation(second.text);
    assert.deepEqual([contact.name, contact.state], ["Alice", "pairing"]);
    const queued = bob.node.outbox.list().filter((p) => p.state === "queued");
    assert.deepEqual(queued.map((p) => p.kind), ["pairing-request"], "one request: the new one");
    assert.deepEqual(statuses(await carry(bob.node, alice.node)), ["accepted"]);
    assert.deepEqual(inbox(alice), ["Riding"]);
    await carry(alice.node, bob.node);
    assert.equal(bob.node.contacts.find("Alice").state, "active");
    assert.equal(alice.node.contacts.find("Bob").state, "active");
  });
});
