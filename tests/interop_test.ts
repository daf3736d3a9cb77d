/**
 * Interoperability test: a third-party app ("Carol's app") written only from
 * docs/protocol.md, with relaynet-core, asn1js and built-ins — no Relaymail code —
 * accepts a Relaymail invitation, pairs, sends mail with an attachment, and reads
 * Relaymail's pairing accept and delivery receipts.
 *
 * Alice is a real Relaymail data directory, driven only through app/relaymail.ts.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import * as asn1js from "asn1js";
import {
  Certificate,
  CertificationPath,
  derDeserializeRSAPrivateKey,
  EnvelopedData,
  generateRSAKeyPair,
  getIdFromIdentityKey,
  getRSAPublicKeyFromPrivate,
  issueDeliveryAuthorization,
  issueEndpointCertificate,
  Parcel,
  PrivateEndpointConnParams,
  ServiceMessage,
  SessionEnvelopedData,
  type SessionKey,
  SessionKeyPair,
} from "@relaycorp/relaynet-core";
import { Relaymail } from "../app/relaymail.ts";

// ---------------------------------------------------------------------------------------------
// Carol's own implementation of docs/protocol.md (written from the document, not from Relaymail)
// ---------------------------------------------------------------------------------------------

const INVITE_PREFIX = "relaymail-invite:1:";
const TYPE_PAIRING_REQUEST = "application/vnd.relaymail.pairing-request";
const TYPE_PAIRING_ACCEPT = "application/vnd.relaymail.pairing-accept";
const TYPE_MAIL = "application/vnd.relaymail.mail";
const TYPE_RECEIPT = "application/vnd.relaymail.receipt";
const MAX_TTL_SECONDS = 15_552_000;
const DAY_MS = 86_400_000;
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder("utf-8", { fatal: true });

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

// --- §1.1 DER building blocks ---

/** `[tag] IMPLICIT` primitive field with `content` as its octets. */
function implicitPrimitive(tag: number, content: Uint8Array): asn1js.Primitive {
  return new asn1js.Primitive({
    idBlock: { tagClass: 3, tagNumber: tag },
    valueHex: toArrayBuffer(content),
  });
}

/** `[tag] IMPLICIT` constructed field (a SEQUENCE OF). */
function implicitConstructed(tag: number, elements: asn1js.AsnType[]): asn1js.Constructed {
  return new asn1js.Constructed({
    idBlock: { tagClass: 3, tagNumber: tag },
    value: elements,
  });
}

function derSequence(fields: asn1js.AsnType[]): Uint8Array {
  return new Uint8Array(new asn1js.Sequence({ value: fields }).toBER(false));
}

/** §1.1 GeneralizedTime text: `YYYYMMDDHHMMSS[.fff]Z`, no trailing zeros in the fraction. */
function generalizedTime(date: Date): Uint8Array {
  const iso = date.toISOString(); // YYYY-MM-DDTHH:MM:SS.mmmZ
  const whole = iso.slice(0, 19).replace(/[-T:]/g, "");
  const fraction = iso.slice(20, 23).replace(/0+$/, "");
  return utf8.encode(whole + (fraction ? `.${fraction}` : "") + "Z");
}

function parseGeneralizedTime(content: Uint8Array): Date {
  const text = fromUtf8.decode(content);
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.(\d{0,2}[1-9]))?Z$/.exec(text);
  if (!m) throw new Error(`Bad GeneralizedTime ${JSON.stringify(text)}`);
  const ms = m[7] ? Number(m[7].padEnd(3, "0")) : 0;
  return new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6], ms));
}

interface Field {
  readonly primitive: Uint8Array | null;
  readonly elements: asn1js.AsnType[] | null;
}

/**
 * Decodes an outer SEQUENCE of context-tagged fields into tag → field, rejecting
 * trailing octets and ignoring nothing (callers ignore tags they do not know).
 */
function decodeFields(der: Uint8Array, name: string): Map<number, Field> {
  const parsed = asn1js.fromBER(toArrayBuffer(der));
  if (parsed.offset === -1) throw new Error(`${name}: not DER (${parsed.result.error})`);
  if (parsed.offset !== der.byteLength) throw new Error(`${name}: trailing octets`);
  const seq = parsed.result;
  if (!(seq instanceof asn1js.Sequence)) throw new Error(`${name}: not a SEQUENCE`);
  return fieldsOf(seq.valueBlock.value, name);
}

function fieldsOf(items: asn1js.AsnType[], name: string): Map<number, Field> {
  const fields = new Map<number, Field>();
  for (const item of items) {
    const block = item as asn1js.BaseBlock;
    if (block.idBlock.tagClass !== 3) throw new Error(`${name}: field is not context-tagged`);
    const tag = block.idBlock.tagNumber;
    if (block.idBlock.isConstructed) {
      fields.set(tag, {
        primitive: null,
        elements: (item as asn1js.Constructed).valueBlock.value,
      });
    } else {
      fields.set(tag, {
        primitive: new Uint8Array((item as asn1js.Primitive).valueBlock.valueHexView),
        elements: null,
      });
    }
  }
  return fields;
}

function octets(fields: Map<number, Field>, tag: number, name: string): Uint8Array {
  const value = fields.get(tag)?.primitive;
  if (!value) throw new Error(`${name}: field [${tag}] is missing or not primitive`);
  return value;
}

function text(fields: Map<number, Field>, tag: number, name: string): string {
  return fromUtf8.decode(octets(fields, tag, name));
}

function utf8StringList(fields: Map<number, Field>, tag: number, name: string): string[] {
  const elements = fields.get(tag)?.elements;
  if (!elements) throw new Error(`${name}: field [${tag}] is missing or not constructed`);
  return elements.map((e) => {
    const block = e as asn1js.Primitive;
    if (block.idBlock.tagClass !== 3 || block.idBlock.tagNumber !== 0) {
      throw new Error(`${name}: element of [${tag}] is not tagged [0]`);
    }
    return fromUtf8.decode(new Uint8Array(block.valueBlock.valueHexView));
  });
}

// --- §2 Invitation ---

interface ParsedInvitation {
  readonly params: PrivateEndpointConnParams;
  readonly inviterId: string;
  readonly invitationKey: CryptoKey;
  readonly nameHint: string;
  readonly expiresAt: Date;
}

async function parseInvitation(line: string, now: Date): Promise<ParsedInvitation> {
  const compact = line.replace(/\s+/g, "");
  if (!compact.startsWith(INVITE_PREFIX)) throw new Error("Not a Relaymail v1 invitation");
  const encoded = compact.slice(INVITE_PREFIX.length);
  if (!/^[A-Za-z0-9_-]+$/.test(encoded)) throw new Error("Invitation is not base64url");
  const der = new Uint8Array(Buffer.from(encoded, "base64url"));
  const fields = decodeFields(der, "Invitation");
  const params = await PrivateEndpointConnParams.deserialize(
    toArrayBuffer(octets(fields, 0, "Invitation")),
  );
  const invitationKey = await derDeserializeRSAPrivateKey(
    Buffer.from(octets(fields, 1, "Invitation")),
  );
  const nameHint = text(fields, 2, "Invitation");

  // The acceptor's checks (§2).
  const pda = params.deliveryAuth.leafCertificate;
  const kId = await getIdFromIdentityKey(await getRSAPublicKeyFromPrivate(invitationKey));
  if (await pda.calculateSubjectId() !== kId) throw new Error("PDA is not for the invitation key");
  const inviterId = await getIdFromIdentityKey(params.identityKey);
  const inviterCerts: Certificate[] = [];
  for (const ca of params.deliveryAuth.certificateAuthorities) {
    if (await ca.calculateSubjectId() === inviterId) inviterCerts.push(ca);
  }
  if (inviterCerts.length === 0) throw new Error("No inviter certificate in the path");
  await pda.getCertificationPath(params.deliveryAuth.certificateAuthorities, inviterCerts);
  if (pda.expiryDate <= now) throw new Error("Invitation expired");
  return { params, inviterId, invitationKey, nameHint, expiresAt: pda.expiryDate };
}

// --- §3 Pairing ---

function encodePairing(connectionParams: Uint8Array, nameHint: string): Uint8Array {
  return derSequence([
    implicitPrimitive(0, connectionParams),
    implicitPrimitive(1, utf8.encode(nameHint)),
  ]);
}

function decodePairing(der: Uint8Array): { connectionParams: Uint8Array; nameHint: string } {
  const fields = decodeFields(der, "Pairing");
  return { connectionParams: octets(fields, 0, "Pairing"), nameHint: text(fields, 1, "Pairing") };
}

// --- §4 Mail ---

interface CarolMail {
  messageId: string;
  threadId: string;
  inReplyTo: string;
  sentAt: Date;
  subject: string;
  body: string;
  recipients: string[];
  attachments: { fileName: string; mediaType: string; content: Uint8Array }[];
}

/** Fields a future version might add, to check that receivers ignore them (§1.1). */
interface Extensions {
  readonly mail?: asn1js.AsnType[];
  readonly attachment?: asn1js.AsnType[];
}

function encodeMail(mail: CarolMail, extensions: Extensions = {}): Uint8Array {
  return derSequence([
    implicitPrimitive(0, utf8.encode(mail.messageId)),
    implicitPrimitive(1, utf8.encode(mail.threadId)),
    implicitPrimitive(2, utf8.encode(mail.inReplyTo)),
    implicitPrimitive(3, generalizedTime(mail.sentAt)),
    implicitPrimitive(4, utf8.encode(mail.subject)),
    implicitPrimitive(5, utf8.encode(mail.body)),
    implicitConstructed(6, mail.recipients.map((id) => implicitPrimitive(0, utf8.encode(id)))),
    implicitConstructed(
      7,
      mail.attachments.map((a) =>
        new asn1js.Sequence({
          value: [
            implicitPrimitive(0, utf8.encode(a.fileName)),
            implicitPrimitive(1, utf8.encode(a.mediaType)),
            implicitPrimitive(2, a.content),
            ...(extensions.attachment ?? []),
          ],
        })
      ),
    ),
    ...(extensions.mail ?? []),
  ]);
}

// --- §5 Receipt ---

function decodeReceipt(der: Uint8Array): { messageIds: string[]; receivedAt: Date } {
  const fields = decodeFields(der, "Receipt");
  return {
    messageIds: utf8StringList(fields, 0, "Receipt"),
    receivedAt: parseGeneralizedTime(octets(fields, 1, "Receipt")),
  };
}

// --- Carol's endpoint ---

/** A parcel Carol opened: its service message and the id of her session key it used. */
interface Opened {
  readonly message: ServiceMessage;
  readonly keyId: string;
}

/** Carol: an RSA identity, a self-issued certificate and the session keys she handed out. */
class CarolApp {
  /** Session private keys Carol gave Alice (initial one and her parcels' ephemeral keys). */
  readonly sessionKeys = new Map<string, CryptoKey>();
  /** Alice's newest session key known to Carol, and the date it was learned at. */
  aliceSessionKey: SessionKey | null = null;
  aliceSessionKeyDate = new Date(0);
  /** Id of the session key Carol's latest parcel carried. */
  lastOwnKeyId = "";
  /** The PDA path Alice gave Carol. */
  aliceAuthorization: CertificationPath | null = null;

  private constructor(
    readonly id: string,
    readonly keyPair: CryptoKeyPair,
    readonly certificate: Certificate,
  ) {}

  static async create(): Promise<CarolApp> {
    const keyPair = await generateRSAKeyPair();
    const now = Date.now();
    const certificate = await issueEndpointCertificate({
      issuerPrivateKey: keyPair.privateKey,
      subjectPublicKey: keyPair.publicKey,
      validityStartDate: new Date(now - 3_600_000),
      validityEndDate: new Date(now + 180 * DAY_MS),
    });
    return new CarolApp(await getIdFromIdentityKey(keyPair.publicKey), keyPair, certificate);
  }

  /** §3.1: Carol's connection parameters for a peer whose identity key is `peerKey`. */
  async connectionParamsFor(peerKey: CryptoKey): Promise<Uint8Array> {
    const now = Date.now();
    const pda = await issueDeliveryAuthorization({
      issuerCertificate: this.certificate,
      issuerPrivateKey: this.keyPair.privateKey,
      subjectPublicKey: peerKey,
      validityStartDate: new Date(now - 3_600_000),
      validityEndDate: new Date(now + 180 * DAY_MS),
    });
    const session = await SessionKeyPair.generate();
    this.sessionKeys.set(session.sessionKey.keyId.toString("hex"), session.privateKey);
    const params = new PrivateEndpointConnParams(
      this.keyPair.publicKey,
      "",
      new CertificationPath(pda, [this.certificate]),
      session.sessionKey,
    );
    return new Uint8Array(await params.serialize());
  }

  /** §3.2: the pairing request answering `invitation`. */
  async makePairingRequest(invitation: ParsedInvitation): Promise<Uint8Array> {
    const ourParams = await this.connectionParamsFor(invitation.params.identityKey);
    const message = new ServiceMessage(
      TYPE_PAIRING_REQUEST,
      Buffer.from(encodePairing(ourParams, "Carol (third-party app)")),
    );
    const { envelopedData } = await SessionEnvelopedData.encrypt(
      message.serialize(),
      invitation.params.sessionKey,
    );
    const creationDate = new Date(Date.now() - 5 * 60_000);
    const ttl = Math.min(
      MAX_TTL_SECONDS,
      Math.floor((invitation.expiresAt.getTime() - creationDate.getTime()) / 1000),
    );
    const parcel = new Parcel(
      { id: invitation.inviterId },
      invitation.params.deliveryAuth.leafCertificate,
      Buffer.from(envelopedData.serialize()),
      {
        id: crypto.randomUUID(),
        creationDate,
        ttl,
        senderCaCertificateChain: [...invitation.params.deliveryAuth.certificateAuthorities],
      },
    );
    return new Uint8Array(await parcel.serialize(invitation.invitationKey));
  }

  /**
   * Validates and decrypts a parcel from `expectedSenderId` addressed to Carol
   * (RS-001/RS-003), remembering the sender's next session key.
   */
  async open(bytes: Uint8Array, expectedSenderId: string): Promise<Opened> {
    const parcel = await Parcel.deserialize(toArrayBuffer(bytes));
    assert.equal(parcel.recipient.id, this.id, "parcel is addressed to Carol");
    const path = await parcel.validate([this.certificate]);
    assert.equal(path.at(-1)?.getSerialNumberHex(), this.certificate.getSerialNumberHex());
    assert.equal(await parcel.senderCertificate.calculateSubjectId(), expectedSenderId);
    // §1.3: how Relaymail dates, identifies and addresses the parcels it sends.
    assert.ok(parcel.ttl > 0 && parcel.ttl <= MAX_TTL_SECONDS, "TTL within RAMF limits");
    assert.ok(
      Date.now() - parcel.creationDate.getTime() >= 4.5 * 60_000,
      `creationDate backdated by about 5 minutes (got ${parcel.creationDate.toISOString()})`,
    );
    assert.match(parcel.id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);
    assert.equal(parcel.recipient.internetAddress, undefined, "no Internet address");
    const envelope = EnvelopedData.deserialize(
      toArrayBuffer(new Uint8Array(parcel.payloadSerialized)),
    );
    assert.ok(
      envelope instanceof SessionEnvelopedData,
      "payload uses the channel session protocol",
    );
    const keyId = envelope.getRecipientKeyId().toString("hex");
    const privateKey = this.sessionKeys.get(keyId);
    assert.ok(privateKey, `encrypted with a session key Carol gave out (${keyId})`);
    const message = ServiceMessage.deserialize(await envelope.decrypt(privateKey));
    if (parcel.creationDate >= this.aliceSessionKeyDate) {
      this.aliceSessionKey = await envelope.getOriginatorKey();
      this.aliceSessionKeyDate = parcel.creationDate;
    }
    return { message, keyId };
  }

  /**
   * A few minutes in the past (§1.3), and at least one second after Carol's previous
   * parcel: RAMF dates have one-second precision and a peer adopts the session key a
   * parcel carries only if that parcel is newer than the one that gave its current key.
   */
  nextCreationDate(): Date {
    const date = Math.max(Date.now() - 3 * 60_000, this.lastCreationDate + 1000);
    this.lastCreationDate = Math.floor(date / 1000) * 1000;
    return new Date(this.lastCreationDate);
  }
  private lastCreationDate = 0;

  /** §3.3: takes Alice's answer; checks and keeps her connection parameters. */
  async takePairingAccept(message: ServiceMessage, inviterId: string): Promise<string> {
    assert.equal(message.type, TYPE_PAIRING_ACCEPT);
    const pairing = decodePairing(new Uint8Array(message.content));
    const params = await PrivateEndpointConnParams.deserialize(
      toArrayBuffer(pairing.connectionParams),
    );
    assert.equal(await getIdFromIdentityKey(params.identityKey), inviterId, "inviter's own key");
    const pda = params.deliveryAuth.leafCertificate;
    assert.equal(await pda.calculateSubjectId(), this.id, "the PDA is issued to Carol's key");
    const inviterCerts: Certificate[] = [];
    for (const ca of params.deliveryAuth.certificateAuthorities) {
      if (await ca.calculateSubjectId() === inviterId) inviterCerts.push(ca);
    }
    assert.ok(inviterCerts.length > 0, "the path holds the inviter's certificate");
    await pda.getCertificationPath(params.deliveryAuth.certificateAuthorities, inviterCerts);
    assert.ok(pda.expiryDate.getTime() > Date.now(), "the PDA is valid");
    this.aliceAuthorization = params.deliveryAuth;
    if (!this.aliceSessionKey) {
      this.aliceSessionKey = params.sessionKey;
    }
    return pairing.nameHint;
  }

  /** §4: one mail parcel for `recipientId`, via an ordinary channel parcel. */
  async makeMailParcel(recipientId: string, content: Uint8Array): Promise<Uint8Array> {
    assert.ok(this.aliceAuthorization && this.aliceSessionKey, "paired with Alice");
    const message = new ServiceMessage(TYPE_MAIL, Buffer.from(content));
    const { envelopedData, dhKeyId, dhPrivateKey } = await SessionEnvelopedData.encrypt(
      message.serialize(),
      this.aliceSessionKey,
    );
    // Carol's next session key travels in this parcel: keep its private half.
    this.lastOwnKeyId = Buffer.from(dhKeyId).toString("hex");
    this.sessionKeys.set(this.lastOwnKeyId, dhPrivateKey);
    const parcel = new Parcel(
      { id: recipientId },
      this.aliceAuthorization.leafCertificate,
      Buffer.from(envelopedData.serialize()),
      {
        id: crypto.randomUUID(),
        creationDate: this.nextCreationDate(),
        ttl: MAX_TTL_SECONDS,
        senderCaCertificateChain: [...this.aliceAuthorization.certificateAuthorities],
      },
    );
    return new Uint8Array(await parcel.serialize(this.keyPair.privateKey));
  }
}

/** Every parcel waiting in Alice's outbox for Carol, opened by Carol. */
async function collectFor(
  alice: Relaymail,
  carol: CarolApp,
  aliceId: string,
): Promise<(Opened & { key: string })[]> {
  const opened = [];
  for (const outgoing of await alice.outgoingParcels()) {
    if (outgoing.recipientId !== carol.id) continue;
    const bytes = await outgoing.read();
    assert.ok(bytes, "a listed parcel can be read");
    assert.equal(bytes.byteLength, outgoing.size);
    opened.push({ key: outgoing.key, ...await carol.open(bytes, aliceId) });
  }
  return opened;
}

// ---------------------------------------------------------------------------------------------

Deno.test("a third-party app built from docs/protocol.md pairs with Relaymail and delivers mail", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "relaymail-interop-" });
  const alice = await Relaymail.open(dir);
  try {
    await alice.identity.create("Alice");
    const aliceId = alice.identity.id;
    const carol = await CarolApp.create();
    let invitation!: ParsedInvitation;

    await t.step("Carol parses and checks Alice's invitation line (§2)", async () => {
      const created = await alice.pairing.createInvitation({ contactName: "Carol" });
      assert.match(created.text, /^relaymail-invite:1:[A-Za-z0-9_-]+$/);
      // Mail clients fold long lines: readers must strip whitespace (§2).
      const folded = created.text.replace(/(.{76})/g, "$1\r\n ");
      invitation = await parseInvitation(folded, new Date());
      assert.equal(invitation.inviterId, aliceId);
      assert.equal(invitation.nameHint, "Alice");
      assert.equal(invitation.params.internetGatewayAddress, "");
      assert.equal(invitation.params.deliveryAuth.certificateAuthorities.length, 1);
      assert.equal(invitation.expiresAt.getTime(), created.expiresAt.getTime());
      assert.ok(invitation.expiresAt.getTime() > Date.now() + 6 * DAY_MS, "default 7 days");
    });

    let pairingAccept!: Opened & { key: string };
    await t.step(
      "Alice accepts Carol's pairing request and adds her as a contact (§3.2)",
      async () => {
        const request = await carol.makePairingRequest(invitation);
        const outcome = await alice.receiveParcel(request, { binding: "test" });
        await alice.flush(); // as a binding does after a batch: owed parcels are built
        assert.deepEqual(outcome, { status: "accepted" });

        const contacts = alice.contacts.list();
        assert.equal(contacts.length, 1);
        assert.equal(contacts[0].id, carol.id);
        assert.equal(contacts[0].name, "Carol");
        assert.equal(contacts[0].nameHint, "Carol (third-party app)");
        assert.equal(contacts[0].state, "active");
        // §1.2: the first 32 hex digits of the id after its leading "0", in groups of four.
        assert.equal(contacts[0].fingerprint, carol.id.slice(1, 33).match(/.{4}/g)!.join(" "));

        // The invitation is good for one pairing request only.
        const again = await alice.receiveParcel(await carol.makePairingRequest(invitation), {
          binding: "test",
        });
        assert.equal(again.status, "refused");
        assert.equal(again.status === "refused" && again.code, "invitation-used");

        const forCarol = await collectFor(alice, carol, aliceId);
        assert.equal(forCarol.length, 1, "exactly one parcel (the pairing accept) for Carol");
        pairingAccept = forCarol[0];
      },
    );

    await t.step(
      "Carol reads Alice's pairing accept and her connection parameters (§3.3)",
      async () => {
        const nameHint = await carol.takePairingAccept(pairingAccept.message, aliceId);
        assert.equal(nameHint, "Alice");
        await alice.parcelHandedOver(pairingAccept.key, { binding: "test", toRecipient: true });
        assert.equal((await collectFor(alice, carol, aliceId)).length, 0);
      },
    );

    const attachment = new Uint8Array(4096).map((_, i) => (i * 7 + 3) % 256);
    const sentAt = new Date(Date.now() - 1234);
    const mail: CarolMail = {
      messageId: crypto.randomUUID(),
      threadId: "",
      inReplyTo: "",
      sentAt,
      subject: "Hello from another implementation — ünïcödé ✓",
      body: "Hi Alice,\n\nthis came from an app that only read docs/protocol.md.\n\n— Carol",
      recipients: [aliceId],
      attachments: [{
        fileName: "report.bin",
        mediaType: "application/octet-stream",
        content: attachment,
      }],
    };
    mail.threadId = mail.messageId;
    let mailParcel!: Uint8Array;

    await t.step("Alice takes Carol's mail into her inbox (§4)", async () => {
      mailParcel = await carol.makeMailParcel(aliceId, encodeMail(mail));
      const outcome = await alice.receiveParcel(mailParcel, { binding: "test" });
      await alice.flush(); // as a binding does after a batch: owed parcels are built
      assert.deepEqual(outcome, { status: "accepted" });

      const inbox = alice.mailbox.list("inbox");
      assert.equal(inbox.length, 1);
      const summary = inbox[0];
      assert.equal(summary.id, mail.messageId);
      assert.equal(summary.threadId, mail.messageId);
      assert.equal(summary.from.id, carol.id);
      assert.equal(summary.from.name, "Carol");
      assert.equal(summary.from.isMe, false);
      assert.deepEqual(summary.to.map((p) => p.id), [aliceId]);
      assert.equal(summary.sentAt.getTime(), sentAt.getTime());
      assert.deepEqual(summary.attachments, [
        { fileName: "report.bin", mediaType: "application/octet-stream", size: attachment.length },
      ]);

      const detail = alice.mailbox.read(mail.messageId);
      assert.equal(detail.subject, mail.subject);
      assert.equal(detail.body, mail.body);
      const attachments = alice.mailbox.attachments(mail.messageId);
      assert.equal(attachments.length, 1);
      assert.equal(attachments[0].fileName, "report.bin");
      assert.equal(attachments[0].mediaType, "application/octet-stream");
      assert.deepEqual(new Uint8Array(attachments[0].content), attachment);
    });

    await t.step("Alice's receipt reaches Carol and names her message (§5)", async () => {
      const forCarol = await collectFor(alice, carol, aliceId);
      const receipts = forCarol.filter((p) => p.message.type === TYPE_RECEIPT);
      assert.equal(receipts.length, 1, "one receipt for Carol");
      const receipt = decodeReceipt(new Uint8Array(receipts[0].message.content));
      assert.deepEqual(receipt.messageIds, [mail.messageId]);
      assert.ok(Math.abs(receipt.receivedAt.getTime() - Date.now()) < DAY_MS);
      assert.equal(
        receipts[0].keyId,
        carol.lastOwnKeyId,
        "encrypted for the newest session key Carol sent: the one her mail parcel carried (§7)",
      );
      await alice.parcelHandedOver(receipts[0].key, { binding: "test", toRecipient: true });
    });

    await t.step(
      "the same mail parcel again is a duplicate, stored once, receipted again (§1.3, §4, §5)",
      async () => {
        const outcome = await alice.receiveParcel(mailParcel, { binding: "test" });
        await alice.flush(); // as a binding does after a batch: owed parcels are built
        assert.deepEqual(outcome, { status: "duplicate" });
        const inbox = alice.mailbox.list("inbox");
        assert.equal(inbox.length, 1);
        assert.equal(inbox[0].id, mail.messageId);
        assert.equal(alice.mailbox.attachments(mail.messageId).length, 1);

        // "and again whenever the same mail parcel arrives a second time" (§5).
        const receipts = (await collectFor(alice, carol, aliceId))
          .filter((p) => p.message.type === TYPE_RECEIPT);
        assert.equal(receipts.length, 1, "a fresh receipt for the repeated parcel");
        assert.deepEqual(
          decodeReceipt(new Uint8Array(receipts[0].message.content)).messageIds,
          [mail.messageId],
        );
        await alice.parcelHandedOver(receipts[0].key, { binding: "test", toRecipient: true });
      },
    );

    await t.step(
      "Alice ignores Mail and Attachment fields with unknown tags (§1.1) in a reply (§4)",
      async () => {
        const reply: CarolMail = {
          messageId: crypto.randomUUID(),
          threadId: mail.messageId,
          inReplyTo: mail.messageId,
          sentAt: new Date(Math.floor(Date.now() / 1000) * 1000), // no fraction this time
          subject: "Re: future fields",
          body: "This Mail carries fields [8] and, in its attachment, [3] from a later version.",
          recipients: [aliceId],
          attachments: [{
            fileName: "note.txt",
            mediaType: "text/plain",
            content: utf8.encode("hi"),
          }],
        };
        const content = encodeMail(reply, {
          mail: [
            implicitPrimitive(8, utf8.encode("some future field")),
            implicitConstructed(9, [implicitPrimitive(0, utf8.encode("x"))]),
          ],
          attachment: [implicitPrimitive(3, utf8.encode("a future attachment field"))],
        });
        const outcome = await alice.receiveParcel(await carol.makeMailParcel(aliceId, content), {
          binding: "test",
        });
        await alice.flush(); // as a binding does after a batch: owed parcels are built
        assert.deepEqual(outcome, { status: "accepted" });
        const detail = alice.mailbox.read(reply.messageId);
        assert.equal(detail.from.id, carol.id);
        assert.equal(detail.threadId, mail.messageId);
        assert.equal(detail.inReplyTo, mail.messageId);
        assert.equal(detail.sentAt.getTime(), reply.sentAt.getTime());
        assert.equal(detail.subject, reply.subject);
        assert.equal(detail.body, reply.body);
        const attachments = alice.mailbox.attachments(reply.messageId);
        assert.equal(attachments.length, 1);
        assert.equal(attachments[0].fileName, "note.txt");
        assert.equal(attachments[0].mediaType, "text/plain");
        assert.deepEqual(new Uint8Array(attachments[0].content), utf8.encode("hi"));
        assert.equal(alice.mailbox.list("inbox").length, 2);

        const receipts = (await collectFor(alice, carol, aliceId))
          .filter((p) => p.message.type === TYPE_RECEIPT);
        assert.equal(receipts.length, 1);
        assert.deepEqual(
          decodeReceipt(new Uint8Array(receipts[0].message.content)).messageIds,
          [reply.messageId],
        );
        // The session keys ratchet: the receipt uses the key Carol's reply parcel carried.
        assert.equal(receipts[0].keyId, carol.lastOwnKeyId);
      },
    );
  } finally {
    alice.close();
    await Deno.remove(dir, { recursive: true });
  }
});
