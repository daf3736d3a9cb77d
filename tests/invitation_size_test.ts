/**
 * Invitation text version 2 (docs/protocol.md §2): how small it is, that it reads
 * back to what version 1 holds, that the old text still works, that a damaged,
 * forged, expired, used or revoked one is refused with a reason, and that pairing
 * with it works end to end, in process and by USB stick with the CLI.
 *
 * The sizes are logged: `deno test -A tests/invitation_size_test.ts --filter sizes`.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import { checkPrimeSync } from "node:crypto";
import { deflateRawSync } from "node:zlib";
// @deno-types="@types/qrcode"
import QRCode from "qrcode";
import {
  Certificate,
  CertificationPath,
  derDeserializeRSAPrivateKey,
  derDeserializeRSAPublicKey,
  derSerializePrivateKey,
  derSerializePublicKey,
  generateRSAKeyPair,
  issueDeliveryAuthorization,
  issueEndpointCertificate,
  issueGatewayCertificate,
  PrivateEndpointConnParams,
  SessionKeyPair,
} from "@relaycorp/relaynet-core";
import {
  COMPACT_PREFIX,
  decodeInvitation,
  encodeInvitation,
  InvalidInvitationError,
  INVITATION_PREFIX,
  invitationKeyFromSeed,
  invitationQrCodes,
  type QrSegment,
  splitInvitation,
  withSeed,
} from "../app/core/protocol/invitation.ts";
import { base32Decode, base32Encode, concat, readDer } from "../app/core/protocol/compact_der.ts";
import { invitationText } from "../app/core/invitations.ts";
import { relaymail } from "./_cli.ts";
import { carry, DAY, statuses, withNodes } from "./helpers.ts";

/** The highest QR version a version 2 invitation may need at level M (121 modules a side). */
const MAX_QR_VERSION = 26;
/**
 * The most bytes a version 2 invitation may take, with RSA-2048 keys, a seeded K, no
 * gateway address and a short name: four 256-byte RSA values, the seed, the rest.
 */
const MAX_BYTES = 900;

/** The QR symbols that show `text` at `level`: their versions and module counts. */
function qrSymbols(text: string, level: "L" | "M") {
  return invitationQrCodes(text).map((segments) => {
    const code = QRCode.create([...segments], { errorCorrectionLevel: level });
    return { version: code.version, modules: code.modules.size };
  });
}

/** The version of the one QR code holding `segments` at level M. */
function qrVersion(segments: QrSegment[]): number {
  return QRCode.create(segments, { errorCorrectionLevel: "M" }).version;
}

/**
 * An inviter's invitation contents made with relaynet-core directly, as Relaymail
 * makes them; with `seed`, K is made from it.
 */
async function contents(gateway = "", seed?: Uint8Array, registered = false) {
  const identity = await generateRSAKeyPair();
  // Registered with a gateway, the identity certificate is the gateway's (§8).
  const gatewayKey = registered ? await generateRSAKeyPair() : null;
  const gatewayCertificate = gatewayKey
    ? await issueGatewayCertificate({
      issuerPrivateKey: gatewayKey.privateKey,
      subjectPublicKey: gatewayKey.publicKey,
      validityEndDate: new Date(Date.now() + 360 * DAY),
    })
    : null;
  const certificate = await issueEndpointCertificate({
    issuerPrivateKey: gatewayKey?.privateKey ?? identity.privateKey,
    issuerCertificate: gatewayCertificate ?? undefined,
    subjectPublicKey: identity.publicKey,
    validityEndDate: new Date(Date.now() + 180 * DAY),
  });
  const invitationKey = seed ? await seededPair(seed) : await generateRSAKeyPair();
  const pda = await issueDeliveryAuthorization({
    issuerCertificate: certificate,
    issuerPrivateKey: identity.privateKey,
    subjectPublicKey: invitationKey.publicKey,
    validityEndDate: new Date(Date.now() + 7 * DAY),
  });
  const session = await SessionKeyPair.generate();
  return {
    connectionParams: new PrivateEndpointConnParams(
      identity.publicKey,
      gateway,
      new CertificationPath(
        pda,
        gatewayCertificate ? [certificate, gatewayCertificate] : [
          certificate,
        ],
      ),
      session.sessionKey,
    ),
    invitationKey: invitationKey.privateKey,
    nameHint: "Alice Ünlü",
    ...seed ? { invitationKeySeed: seed } : {},
  };
}

async function seededPair(seed: Uint8Array) {
  const key = await invitationKeyFromSeed(seed);
  return {
    privateKey: await derDeserializeRSAPrivateKey(Buffer.from(key.pkcs8)),
    publicKey: await derDeserializeRSAPublicKey(Buffer.from(key.spki)),
  };
}

/** The bytes of a version 2 text, checksum included. */
function bytesOf(text: string): Uint8Array {
  return base32Decode(text.slice(COMPACT_PREFIX.length));
}

/** A version 2 text whose bytes `change` altered, with its checksum made right again. */
async function reencode(text: string, change: (body: Uint8Array) => void): Promise<string> {
  const body = bytesOf(text).slice(0, -4);
  change(body);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", body));
  return COMPACT_PREFIX + base32Encode(concat(body, digest.subarray(0, 4)));
}

Deno.test("invitation sizes: version 2 is one QR code of version <= 26 at level M, version 1 is several", async () => {
  await withNodes(["Alice"], async (alice) => {
    const compact = await alice.node.pairing.createInvitation({ contactName: "Bob" });
    const old = await alice.node.pairing.createInvitation({ contactName: "Bob", format: 1 });
    assert.ok(compact.text.startsWith(COMPACT_PREFIX));
    assert.ok(old.text.startsWith(INVITATION_PREFIX));

    const bytes = bytesOf(compact.text);
    assert.ok(bytes.length <= MAX_BYTES, `${bytes.length} bytes`);
    const [one, ...more] = qrSymbols(compact.text, "M");
    assert.equal(more.length, 0, "one QR code");
    assert.ok(one.version <= MAX_QR_VERSION, `QR version ${one.version}`);
    assert.ok(compact.text.length * 2.5 < old.text.length, "well under half the old text");
    const oldCodes = qrSymbols(old.text, "L");
    assert.ok(oldCodes.length >= 5, `${oldCodes.length} codes for version 1`);

    // Why base32 in alphanumeric mode: the same bytes as base64url in byte mode need a
    // bigger code. And why no deflate: the bytes are keys and signatures, which do not
    // compress.
    const base64 = COMPACT_PREFIX + Buffer.from(bytes).toString("base64url");
    const asBase64 = qrVersion([{ data: new TextEncoder().encode(base64), mode: "byte" }]);
    assert.ok(asBase64 >= one.version + 3, `base64 in byte mode: version ${asBase64}`);
    const deflated = deflateRawSync(bytes, { level: 9 }).length;
    assert.ok(deflated > bytes.length * 0.97, `deflate-raw: ${bytes.length} -> ${deflated}`);

    console.log(
      [
        `version 1: ${old.text.length} characters, ${
          Buffer.from(old.text.slice(INVITATION_PREFIX.length), "base64url").length
        } bytes; QR at L: ${oldCodes.map((c) => `v${c.version}/${c.modules}`).join(" ")}`,
        `version 2: ${compact.text.length} characters, ${bytes.length} bytes; ` +
        `QR at M: v${one.version}/${one.modules} modules; at L: ${
          qrSymbols(compact.text, "L").map((c) => `v${c.version}/${c.modules}`)
        }`,
        `same bytes as base64url in byte mode at M: v${asBase64}; deflate-raw: ${deflated} bytes`,
      ].join("\n"),
    );
  });
});

Deno.test("decodeInvitation() reads a version 2 text back to the very bytes version 1 carries", async () => {
  const invitation = await contents("gateway.example.com");
  const text = await encodeInvitation(invitation);
  assert.ok(text.startsWith(COMPACT_PREFIX));
  for (const form of [text, text.toLowerCase(), ` ${text.slice(0, 900)}\n  ${text.slice(900)} `]) {
    const decoded = await decodeInvitation(form, new Date());
    assert.deepEqual(
      Buffer.from(await decoded.connectionParams.serialize()),
      Buffer.from(await invitation.connectionParams.serialize()),
    );
    assert.deepEqual(
      Buffer.from(await derSerializePrivateKey(decoded.invitationKey)),
      Buffer.from(await derSerializePrivateKey(invitation.invitationKey)),
    );
    assert.equal(decoded.nameHint, "Alice Ünlü");
    assert.equal(decoded.connectionParams.internetGatewayAddress, "gateway.example.com");
  }
  const old = await decodeInvitation(await encodeInvitation(invitation, 1), new Date());
  assert.equal(old.invitationId, (await decodeInvitation(text, new Date())).invitationId);
});

Deno.test("encodeInvitation() carries a seeded K as its seed: 356 bytes less, and the same key back", async () => {
  const seed = crypto.getRandomValues(new Uint8Array(32));
  const seeded = await contents("", seed);
  const text = await encodeInvitation(seeded);
  const unseeded = await encodeInvitation({ ...seeded, invitationKeySeed: undefined });
  assert.equal(bytesOf(unseeded).length - bytesOf(text).length, 2 + 256 + 2 + 128 - 32);
  for (const form of [text, unseeded]) {
    const decoded = await decodeInvitation(form, new Date());
    assert.deepEqual(
      Buffer.from(await decoded.connectionParams.serialize()),
      Buffer.from(await seeded.connectionParams.serialize()),
    );
    assert.deepEqual(
      Buffer.from(await derSerializePrivateKey(decoded.invitationKey)),
      Buffer.from(await derSerializePrivateKey(seeded.invitationKey)),
    );
  }
  // A seed that does not make K is left out, not trusted.
  const wrong = await encodeInvitation({ ...seeded, invitationKeySeed: new Uint8Array(32) });
  assert.equal(bytesOf(wrong).length, bytesOf(unseeded).length);
  // A seed changed (with the checksum made right again) makes another key: refused.
  const seedAt = 1 + 258 + (1 + bytesOf(text)[259]) + 9 + 256; // [259]: the serial's length
  await assert.rejects(
    decodeInvitation(await reencode(text, (b) => b[seedAt + 5] ^= 1), new Date()),
    /damaged or forged: the signature of its authorisation does not verify/,
  );
});

Deno.test("encodeInvitation() carries a gateway's certificate path (layout 3): one QR code still", async () => {
  const seed = crypto.getRandomValues(new Uint8Array(32));
  const invitation = await contents("gateway.example.com", seed, true);
  const text = await encodeInvitation(invitation);
  assert.ok(text.startsWith(COMPACT_PREFIX));
  assert.equal(bytesOf(text)[0], 3, "layout 3");
  const decoded = await decodeInvitation(text, new Date());
  assert.deepEqual(
    Buffer.from(await decoded.connectionParams.serialize()),
    Buffer.from(await invitation.connectionParams.serialize()),
  );
  assert.equal(decoded.connectionParams.deliveryAuth.certificateAuthorities.length, 2);
  const [one, ...more] = qrSymbols(text, "M");
  assert.equal(more.length, 0);
  assert.ok(one.version <= 33, `QR version ${one.version}`);
  // Shown again: the seed blanked and put back gives the same text.
  const blanked = await withSeed(text, new Uint8Array(32));
  assert.ok(blanked !== null && blanked !== text);
  assert.equal(await withSeed(blanked!, seed), text);
  console.log(`layout 3: ${bytesOf(text).length} bytes, QR v${one.version}/${one.modules} at M`);
});

Deno.test("encodeInvitation() falls back to version 1 for a path version 2 does not describe", async () => {
  const invitation = await contents();
  const path = invitation.connectionParams.deliveryAuth;
  const longer = new CertificationPath(path.leafCertificate, [
    ...path.certificateAuthorities,
    ...path.certificateAuthorities,
    ...path.certificateAuthorities,
  ]);
  const params = invitation.connectionParams;
  const text = await encodeInvitation({
    ...invitation,
    connectionParams: new PrivateEndpointConnParams(
      params.identityKey,
      "",
      longer,
      params.sessionKey,
    ),
  });
  assert.ok(text.startsWith(INVITATION_PREFIX));
  assert.equal((await decodeInvitation(text, new Date())).nameHint, "Alice Ünlü");
});

Deno.test("decodeInvitation() refuses a damaged, cut, forged or expired version 2 text, saying why", async () => {
  const invitation = await contents();
  const text = await encodeInvitation(invitation);
  const now = new Date();
  const refused = (input: string, reason: RegExp, at = now) =>
    assert.rejects(decodeInvitation(input, at), (error: Error) => {
      assert.ok(error instanceof InvalidInvitationError, `${error}`);
      assert.match(error.message, reason);
      return true;
    });

  const i = COMPACT_PREFIX.length + 500;
  const typo = text.slice(0, i) + (text[i] === "A" ? "B" : "A") + text.slice(i + 1);
  await refused(typo, /damaged or truncated: its check digits do not match/);
  await refused(text.slice(0, -8), /check digits do not match/);
  await refused(text.slice(0, -1), /check digits do not match/);
  const body = text.length - COMPACT_PREFIX.length;
  const cut = [1, 2, 3, 4, 5, 6, 7].find((k) => [1, 3, 6].includes((body - k) % 8))!;
  await refused(text.slice(0, -cut), /cut short \(no base32 text has its length\)/);
  await refused(text.slice(0, -2) + "!!", /characters outside base32/);
  await refused(COMPACT_PREFIX + "AAAA", /far too short/);
  await refused(
    "relaymail-invite:3:ABC",
    /format version 3: this Relaymail reads versions 1 and 2/,
  );

  // A right checksum over wrong contents: the PDA's signature (after the layout byte, the
  // inviter's key, the certificate and K's modulus; serials take 8 or 9 bytes), K's
  // prime, the layout, a key's length.
  const signatureAt = 1 + 258 + (1 + 9 + 9 + 256) + 258 + (1 + 9 + 9) + 20;
  await refused(
    await reencode(text, (b) => b[signatureAt] ^= 1),
    /damaged or forged: the signature of its authorisation does not verify/,
  );
  // From the end: check (4), name hint (1 + 12), gateway (1), session key (33), its id (9).
  const primeAt = bytesOf(text).length - 4 - 13 - 1 - 33 - 9 - 128 + 64;
  await refused(
    await reencode(text, (b) => b[primeAt] ^= 1),
    /invitation key does not match its authorisation/,
  );
  await refused(await reencode(text, (b) => b[0] = 9), /layout 9 is unknown/);
  await refused(
    await reencode(text, (b) => b.set(Uint8Array.of(0, 128), 1)),
    /shorter than 2048 bits/,
  );

  await refused(text, /Invitation expired on/, new Date(now.getTime() + 8 * DAY));
});

Deno.test("decodeInvitation() settles every mutated version 2 text with an invitation or InvalidInvitationError", async () => {
  const text = await encodeInvitation(await contents());
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567a!- ";
  let seed = 12345;
  const random = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
  for (let round = 0; round < 150; round++) {
    let mutated = text;
    for (let k = 0, edits = 1 + random(4); k < edits; k++) {
      const at = random(mutated.length);
      const cut = random(3);
      mutated = mutated.slice(0, at) + (cut === 0 ? "" : alphabet[random(alphabet.length)]) +
        mutated.slice(at + (cut === 2 ? 0 : 1));
    }
    await decodeInvitation(mutated, new Date()).catch((error) => {
      assert.ok(error instanceof InvalidInvitationError, `${JSON.stringify(mutated)}: ${error}`);
    });
  }
});

Deno.test("pairing with a version 2 invitation, in process: single use, then revoked and expired ones refused", async () => {
  await withNodes(["Alice", "Bob", "Carol", "Dave"], async (alice, bob, carol, dave) => {
    const created = await alice.node.pairing.createInvitation({ contactName: "Bobby" });
    assert.ok(created.text.startsWith(COMPACT_PREFIX));
    // Shown again, it is the same text, until it is used.
    const shown = await invitationText(alice.node.ctx, alice.node.identity, created.id.slice(1, 9));
    assert.equal(shown.text, created.text);
    // What is kept to show it again holds no invitation key: a nonce, and a blank seed.
    const kept = alice.node.ctx.db.get<{ value: string }>(
      "SELECT value FROM meta WHERE key = ?",
      `invitation.text.${created.id}`,
    )!.value;
    assert.ok(!kept.includes(created.text.slice(COMPACT_PREFIX.length, -60)), kept.slice(0, 40));
    assert.match(kept, /^[A-Za-z0-9_-]{22} relaymail-invite:2:[A-Z2-7]+$/);

    await bob.node.pairing.acceptInvitation(created.text);
    await carol.node.pairing.acceptInvitation(created.text);
    assert.deepEqual(statuses(await carry(bob.node, alice.node)), ["accepted"]);
    assert.deepEqual(statuses(await carry(carol.node, alice.node)), ["refused:invitation-used"]);
    assert.deepEqual(statuses(await carry(alice.node, bob.node)), ["accepted"]);
    assert.equal(alice.node.contacts.find("Bobby").state, "active");
    assert.equal(bob.node.contacts.get(alice.node.identity.id)?.state, "active");
    await assert.rejects(
      invitationText(alice.node.ctx, alice.node.identity, created.id),
      /is used: make a new one/,
    );

    await bob.node.mailbox.send({ to: [alice.node.identity.id], subject: "Hi", body: "Hello" });
    assert.deepEqual(statuses(await carry(bob.node, alice.node)), ["accepted"]);
    await alice.node.mailbox.send({ to: [bob.node.identity.id], subject: "Re: Hi", body: "Hey" });
    assert.ok(statuses(await carry(alice.node, bob.node)).includes("accepted"));

    const revoked = await alice.node.pairing.createInvitation();
    alice.node.pairing.revokeInvitation(revoked.id.slice(1, 9));
    await assert.rejects(
      invitationText(alice.node.ctx, alice.node.identity, revoked.id),
      /is revoked/,
    );
    await dave.node.pairing.acceptInvitation(revoked.text);
    const outcomes = await carry(dave.node, alice.node);
    assert.deepEqual(statuses(outcomes), ["refused:unauthorized"]);
    assert.match(
      outcomes[0].status === "refused" ? outcomes[0].reason : "",
      /Invitation [0-9a-f]{12} was revoked/,
    );

    // A version 1 text holds K itself: it is kept whole, and shown again the same.
    const legacy = await alice.node.pairing.createInvitation({ format: 1 });
    assert.ok(legacy.text.startsWith(INVITATION_PREFIX));
    assert.equal(
      (await invitationText(alice.node.ctx, alice.node.identity, legacy.id)).text,
      legacy.text,
    );

    const late = await alice.node.pairing.createInvitation({ ttlMs: DAY });
    dave.clock.advance(2 * DAY);
    await assert.rejects(dave.node.pairing.acceptInvitation(late.text), /Invitation expired on/);
    alice.clock.advance(2 * DAY);
    assert.equal(alice.node.pairing.expireInvitations(), 1);
    await assert.rejects(
      invitationText(alice.node.ctx, alice.node.identity, late.id),
      /is expired/,
    );
  });
});

Deno.test("relaymail CLI: a version 2 invitation pairs by USB stick; show, list and revoke it", async () => {
  const root = await Deno.makeTempDir({ prefix: "relaymail-invite2-" });
  const [alice, bob, carol] = ["alice", "bob", "carol"].map((n) => join(root, n));
  const stick = join(root, "stick");
  await Deno.mkdir(stick);
  const json = async (dir: string, ...args: string[]) => {
    const run = await relaymail(dir, ["--json", ...args]);
    assert.equal(run.code, 0, `${args.join(" ")}: ${run.stderr}`);
    return JSON.parse(run.stdout);
  };
  try {
    for (const [dir, name] of [[alice, "Alice"], [bob, "Bob"], [carol, "Carol"]]) {
      await json(dir, "identity", "create", "--name", name);
    }
    const created = await json(alice, "invite", "--name", "Bob");
    assert.ok(created.text.startsWith(COMPACT_PREFIX), created.text.slice(0, 30));
    const short = created.id.slice(1, 13);
    assert.equal((await json(alice, "invite", "show", short)).text, created.text);
    const qr = await relaymail(alice, ["invitations", "show", short, "--qr"]);
    assert.equal(qr.code, 0, qr.stderr);
    assert.equal(qr.stdout.split("\n")[0], created.text);
    assert.match(qr.stdout, /[█▀▄]/, "a QR code drawn in the terminal");

    await json(bob, "accept", created.text, "--name", "Alice");
    await json(bob, "sneakernet", "export", stick);
    assert.equal((await json(alice, "sneakernet", "import", stick)).accepted, 1);
    await json(alice, "sneakernet", "export", stick);
    await json(bob, "sneakernet", "import", stick);
    const [bobAtAlice] = await json(alice, "contacts");
    assert.deepEqual([bobAtAlice.name, bobAtAlice.state], ["Bob", "active"]);
    const [aliceAtBob] = await json(bob, "contacts");
    assert.deepEqual([aliceAtBob.name, aliceAtBob.state], ["Alice", "active"]);
    const used = await relaymail(alice, ["invite", "show", short]);
    assert.equal(used.code, 1);
    assert.match(used.stderr, /is used: make a new one/);

    const forCarol = await json(alice, "invite", "--name", "Carol");
    const listed = await json(alice, "invitations");
    assert.deepEqual(
      listed.map((i: { contactName: string; state: string }) => [i.contactName, i.state]),
      [["Carol", "pending"], ["Bob", "used"]],
    );
    const revoked = await json(alice, "invite", "revoke", forCarol.id.slice(1, 13));
    assert.equal(revoked.state, "revoked");
    await json(carol, "accept", forCarol.text, "--name", "Alice");
    await json(carol, "sneakernet", "export", stick);
    const refused = await json(alice, "sneakernet", "import", stick);
    assert.equal(refused.accepted, 0);
    const again = await relaymail(alice, ["invite", "revoke", forCarol.id.slice(1, 13)]);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /is revoked, not pending/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

// --- A reader written from the specification alone (docs/_draft_invitation_section.md §2.1–2.4),
// sharing no code with app/core/protocol/, to show that the text says enough.

/** DER TLV, definite lengths. */
function tlv(tag: number, ...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const body = concatBytes(parts);
  const n = body.length;
  const len = n < 128 ? [n] : n < 256 ? [0x81, n] : [0x82, n >> 8, n & 255];
  return concatBytes([Uint8Array.of(tag, ...len), body]);
}

function concatBytes(parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  return new Uint8Array(parts.flatMap((p) => [...p]));
}

function unsigned(value: Uint8Array): Uint8Array {
  return value[0] & 0x80 ? concatBytes([Uint8Array.of(0), value]) : value;
}

const fromHex = (text: string) => new Uint8Array(Buffer.from(text, "hex"));

async function specReader(text: string) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  const chars = text.replace(/\s+/g, "").slice("relaymail-invite:2:".length).toUpperCase();
  let bits = "";
  for (const c of chars) bits += alphabet.indexOf(c).toString(2).padStart(5, "0");
  const all = Uint8Array.from(
    bits.slice(0, bits.length - bits.length % 8).match(/.{8}/g)!,
    (byte) => parseInt(byte, 2),
  );
  const body = all.slice(0, -4);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", body));
  assert.deepEqual(all.slice(-4), digest.slice(0, 4), "§2.1 check");
  let at = 0;
  const take = (n: number) => body.slice(at, at += n);
  const u8 = () => take(1)[0];
  const u16 = () => (u8() << 8) + u8();
  const u32 = () => new DataView(take(4).buffer).getUint32(0);
  const layout = u8();
  const inviterN = take(u16());
  const gatewayN = layout === 3 ? take(u16()) : null;
  const certificate = (issuerN: Uint8Array) => {
    const serial = take(u8());
    const [notBefore, notAfter, basic] = [u32(), u32(), u8()];
    return { serial, notBefore, notAfter, basic, signature: take(issuerN.length) };
  };
  const gatewayCert = gatewayN ? certificate(gatewayN) : null;
  const cert = certificate(gatewayN ?? inviterN);
  let keyN: Uint8Array;
  let seed: Uint8Array | null = null;
  if (layout === 2 || layout === 3) {
    seed = take(32);
    const prime = async (i: number) => {
      const label = new TextEncoder().encode("relaymail invitation key prime");
      const blocks = [];
      for (let b = 0; b < 4; b++) {
        const input = concatBytes([seed!, label, Uint8Array.of(i, b)]);
        blocks.push(new Uint8Array(await crypto.subtle.digest("SHA-256", input)));
      }
      const x = concatBytes(blocks);
      x[0] |= 0xc0;
      x[127] |= 1;
      let c = BigInt("0x" + Buffer.from(x).toString("hex"));
      while ((c - 1n) % 65537n === 0n || !checkPrimeSync(c)) c += 2n;
      return c;
    };
    const n = (await prime(1)) * (await prime(2));
    keyN = fromHex(n.toString(16).padStart(512, "0"));
  } else {
    keyN = take(u16());
  }
  const pda = certificate(inviterN);
  if (layout === 1) take(u16()); // the prime: not needed to rebuild the certificates
  const keyId = take(u8());
  const point = take(33);
  const gateway = new TextDecoder().decode(take(u8()));
  const nameHint = new TextDecoder().decode(take(u8()));
  assert.equal(at, body.length, "no trailing octets");

  const spki = (n: Uint8Array) =>
    tlv(
      0x30,
      fromHex("300d06092a864886f70d0101010500"),
      tlv(
        0x03,
        Uint8Array.of(0),
        tlv(0x30, tlv(0x02, unsigned(n)), tlv(0x02, fromHex("010001"))),
      ),
    );
  const sha = async (bytes: Uint8Array) =>
    new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array(bytes)));
  const name = (keyId: Uint8Array) => {
    const id = "0" + Buffer.from(keyId).toString("hex");
    const bmp = new Uint8Array([...id].flatMap((c) => [0, c.charCodeAt(0)]));
    return tlv(0x30, tlv(0x31, tlv(0x30, fromHex("0603550403"), tlv(0x1e, bmp))));
  };
  const time = (seconds: number) => {
    const iso = new Date(seconds * 1000).toISOString();
    const digits = iso.slice(0, 19).replace(/[-T:]/g, "") + "Z";
    const utc = Number(iso.slice(0, 4)) < 2050;
    return tlv(utc ? 0x17 : 0x18, new TextEncoder().encode(utc ? digits.slice(2) : digits));
  };
  const SIG = fromHex(
    "304106092a864886f70d01010a3034a00f300d06096086480165030402010500a11c301a06092a864886f70d010108300d06096086480165030402010500a203020120",
  );
  const build = async (
    c: {
      serial: Uint8Array;
      notBefore: number;
      notAfter: number;
      basic: number;
      signature: Uint8Array;
    },
    issuer: Uint8Array,
    subject: Uint8Array,
  ) => {
    const [issuerId, subjectId] = [await sha(issuer), await sha(subject)];
    const constraints = tlv(
      0x30,
      ...(c.basic & 0x80 ? [fromHex("0101ff")] : []),
      tlv(0x02, Uint8Array.of(c.basic & 0x7f)),
    );
    const tbs = tlv(
      0x30,
      fromHex("a003020102"),
      tlv(0x02, c.serial),
      SIG,
      name(issuerId),
      tlv(0x30, time(c.notBefore), time(c.notAfter)),
      name(subjectId),
      subject,
      tlv(
        0xa3,
        tlv(
          0x30,
          tlv(0x30, fromHex("0603551d13"), fromHex("0101ff"), tlv(0x04, constraints)),
          tlv(0x30, fromHex("0603551d23"), tlv(0x04, tlv(0x30, tlv(0x80, issuerId)))),
          tlv(0x30, fromHex("0603551d0e"), tlv(0x04, tlv(0x04, subjectId))),
        ),
      ),
    );
    return tlv(0x30, tbs, SIG, tlv(0x03, Uint8Array.of(0), c.signature));
  };
  const inviterSpki = spki(inviterN);
  const gatewaySpki = gatewayN ? spki(gatewayN) : null;
  return {
    identityCertificate: await build(cert, gatewaySpki ?? inviterSpki, inviterSpki),
    gatewayCertificate: gatewayCert && gatewaySpki
      ? await build(gatewayCert, gatewaySpki, gatewaySpki)
      : null,
    pda: await build(pda, inviterSpki, spki(keyN)),
    inviterSpki,
    keyId,
    point,
    gateway,
    nameHint,
  };
}

Deno.test("a reader written from the specification alone rebuilds what the inviter signed", async () => {
  const layouts = [
    [crypto.getRandomValues(new Uint8Array(32)), false, 2],
    [undefined, false, 1],
    [crypto.getRandomValues(new Uint8Array(32)), true, 3],
  ] as const;
  for (const [seed, registered, layout] of layouts) {
    const invitation = await contents("gw.example", seed, registered);
    const text = await encodeInvitation(invitation);
    assert.equal(bytesOf(text)[0], layout);
    const read = await specReader(text);
    const params = invitation.connectionParams;
    const path = params.deliveryAuth;
    assert.deepEqual(
      read.identityCertificate,
      new Uint8Array(path.certificateAuthorities[0].serialize()),
    );
    assert.deepEqual(read.pda, new Uint8Array(path.leafCertificate.serialize()));
    assert.deepEqual(
      read.gatewayCertificate,
      registered ? new Uint8Array(path.certificateAuthorities[1].serialize()) : null,
    );
    assert.deepEqual(
      read.inviterSpki,
      new Uint8Array(await derSerializePublicKey(params.identityKey)),
    );
    const session = new Uint8Array(await derSerializePublicKey(params.sessionKey.publicKey));
    assert.deepEqual(read.point.slice(1), session.slice(-64, -32), "x of the session key");
    assert.equal(read.point[0], 2 + (session[session.length - 1] & 1));
    assert.deepEqual(read.keyId, new Uint8Array(params.sessionKey.keyId));
    assert.deepEqual([read.gateway, read.nameHint], ["gw.example", "Alice Ünlü"]);
  }
});

// --- Certificates the inviter never signed (docs/protocol.md §2.7): every rebuilt or carried
// certificate's signature is checked with its issuer's key.

/** Where the fields of each certificate lie in a version 2 body (§2.2). */
function certificateOffsets(body: Uint8Array) {
  let at = 1;
  const long = () => {
    const length = (body[at] << 8) + body[at + 1];
    at += 2 + length;
    return length;
  };
  const layout = body[0];
  const inviterLength = long();
  const gatewayLength = layout === 3 ? long() : 0;
  const certificate = (signatureLength: number) => {
    const serial = at + 1 + body[at] - 1; // the serial's last octet
    at += 1 + body[at];
    const fields = { serial, notBefore: at + 3, notAfter: at + 7, basic: at + 8, signature: 0 };
    at += 9;
    fields.signature = at + 100;
    at += signatureLength;
    return fields;
  };
  const gateway = layout === 3 ? certificate(gatewayLength) : null;
  const identity = certificate(gatewayLength || inviterLength);
  return { identity, gateway };
}

/** A copy of a certificate's DER with one bit of `field` flipped (then not signed anew). */
function tamperedCertificate(
  certificate: Certificate,
  field: "serial" | "notBefore" | "notAfter" | "signature",
): Certificate {
  const bytes = new Uint8Array(certificate.serialize());
  const [tbs, , signature] = readDer(readDer(bytes)[0].content);
  const [, serial, , , validity] = readDer(tbs.content);
  const [notBefore, notAfter] = readDer(validity.content);
  const content = { serial, notBefore, notAfter, signature }[field].content;
  // A serial's or signature's last octet; a time's last seconds digit, before its Z ("0" and
  // "1", "8" and "9" swap: still a time).
  content[
    field === "notBefore" || field === "notAfter" ? content.length - 2 : content.length - 1
  ] ^= 1;
  return Certificate.deserialize(bytes.buffer);
}

Deno.test("decodeInvitation() refuses a version 2 text whose identity or gateway certificate was altered", async () => {
  const now = new Date();
  const cases = [
    ["layout 1", await contents("")],
    ["layout 2", await contents("", crypto.getRandomValues(new Uint8Array(32)))],
    ["layout 3", await contents("gw.example", crypto.getRandomValues(new Uint8Array(32)), true)],
  ] as const;
  for (const [label, invitation] of cases) {
    const text = await encodeInvitation(invitation);
    assert.equal(`layout ${bytesOf(text)[0]}`, label);
    // Untouched, it reads, and its certificates are those the inviter signed.
    const read = await decodeInvitation(text, now);
    assert.equal(
      read.connectionParams.deliveryAuth.certificateAuthorities.length,
      +(label === "layout 3") + 1,
    );
    const offsets = certificateOffsets(bytesOf(text).slice(0, -4));
    const certificates = [["identity", offsets.identity], ["gateway", offsets.gateway]] as const;
    for (const [which, fields] of certificates) {
      if (fields === null) continue;
      for (const [field, at] of Object.entries(fields)) {
        const altered = await reencode(text, (b) => b[at] ^= 1);
        await assert.rejects(decodeInvitation(altered, now), (error: Error) => {
          assert.ok(
            error instanceof InvalidInvitationError,
            `${label} ${which} ${field}: ${error}`,
          );
          assert.match(
            error.message,
            /damaged or forged: the signature of (the inviter's|the gateway's) certificate does not verify/,
            `${label} ${which} ${field}`,
          );
          return true;
        }, `${label}: the ${which} certificate's ${field} altered`);
      }
    }
  }
});

Deno.test("decodeInvitation() refuses a version 1 text whose identity or gateway certificate was altered", async () => {
  const now = new Date();
  for (const registered of [false, true]) {
    const invitation = await contents("", undefined, registered);
    const params = invitation.connectionParams;
    const [identity, gateway] = params.deliveryAuth.certificateAuthorities;
    assert.ok((await decodeInvitation(await encodeInvitation(invitation, 1), now)).inviterId);
    const fields = ["serial", "notBefore", "notAfter", "signature"] as const;
    const alterations = [
      ...fields.map((f) => [`identity ${f}`, [tamperedCertificate(identity, f), gateway]] as const),
      ...registered
        ? fields.map((f) => [`gateway ${f}`, [identity, tamperedCertificate(gateway, f)]] as const)
        : [],
    ];
    for (const [label, authorities] of alterations) {
      const text = await encodeInvitation({
        ...invitation,
        connectionParams: new PrivateEndpointConnParams(
          params.identityKey,
          params.internetGatewayAddress,
          new CertificationPath(params.deliveryAuth.leafCertificate, authorities.filter((c) => c)),
          params.sessionKey,
        ),
      }, 1);
      await assert.rejects(decodeInvitation(text, now), (error: Error) => {
        assert.ok(error instanceof InvalidInvitationError, `${label}: ${error}`);
        assert.match(error.message, /damaged or forged: the signature of/, label);
        return true;
      }, label);
    }
  }
});

/** A version 2 text whose body `change` rewrote, with its checksum made right again. */
async function rebody(text: string, change: (body: Uint8Array) => Uint8Array): Promise<string> {
  const body = new Uint8Array(change(bytesOf(text).slice(0, -4)));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", body));
  return COMPACT_PREFIX + base32Encode(concat(body, digest.subarray(0, 4)));
}

Deno.test("decodeInvitation() refuses version 2 fields §2.1 and §2.2 rule out, saying which", async () => {
  const seed = crypto.getRandomValues(new Uint8Array(32));
  const invitation = await contents("gw.example", seed);
  const now = new Date();
  const refused = (input: string, reason: RegExp) =>
    assert.rejects(decodeInvitation(input, now), (error: Error) => {
      assert.ok(error instanceof InvalidInvitationError, `${error}`);
      assert.match(error.message, reason);
      return true;
    });

  // §2.1: the unused low bits of the last character are zero. A name hint of 1 to 5
  // octets gives a length with some.
  for (let n = 1; n <= 5; n++) {
    const text = await encodeInvitation({ ...invitation, nameHint: "A".repeat(n) });
    const unused = (text.length - COMPACT_PREFIX.length) * 5 - bytesOf(text).length * 8;
    if (unused === 0) continue;
    const last = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".indexOf(text.at(-1)!);
    const set = text.slice(0, -1) + "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"[last | 1];
    await refused(set, /damaged or truncated: .*its unused bits are not zero/);
    assert.equal((await decodeInvitation(text, now)).nameHint, "A".repeat(n));
  }

  const text = await encodeInvitation(invitation);
  // §2.2 moduli: no leading zero octet, at least 2048 bits.
  await refused(await reencode(text, (b) => b[3] = 0), /starts with a zero octet/);
  await refused(await reencode(text, (b) => b[3] = 0x7f), /shorter than 2048 bits/);
  // §2.2 serials: 1 to 20 octets.
  await refused(
    await rebody(
      text,
      (b) => concat(b.subarray(0, 259), Uint8Array.of(0), b.subarray(260 + b[259])),
    ),
    /a serial number in it is empty/,
  );
  await refused(
    await rebody(
      text,
      (b) =>
        concat(b.subarray(0, 259), Uint8Array.of(21), new Uint8Array(21), b.subarray(260 + b[259])),
    ),
    /a field is 21 bytes, over 20/,
  );
  // §2.2 gatewayAddress: printable ASCII, no spaces. From the end: the check, the name
  // hint (1 + 12 octets), then "gw.example".
  const addressAt = bytesOf(text).length - 4 - 13 - 10;
  assert.equal(
    new TextDecoder().decode(bytesOf(text).subarray(addressAt, addressAt + 10)),
    "gw.example",
  );
  for (const octet of [0x20, 0x0a, 0xc3, 0x7f]) {
    await refused(
      await reencode(text, (b) => b[addressAt + 2] = octet),
      /its gateway address is not a domain name \(printable ASCII, no spaces\)/,
    );
  }
  // A writer leaves out no address a reader would refuse: version 1 carries it.
  const spaced = await contents("gw example", seed);
  assert.ok((await encodeInvitation(spaced)).startsWith(INVITATION_PREFIX));
});

Deno.test("decodeInvitation() matches the invitation and part prefixes in any letter case", async () => {
  const invitation = await contents("", crypto.getRandomValues(new Uint8Array(32)));
  const now = new Date();
  for (const format of [1, 2] as const) {
    const text = await encodeInvitation(invitation, format);
    const prefix = format === 1 ? INVITATION_PREFIX : COMPACT_PREFIX;
    const upper = prefix.toUpperCase() + text.slice(prefix.length);
    const expected = (await decodeInvitation(text, now)).invitationId;
    assert.equal((await decodeInvitation(upper, now)).invitationId, expected);
    // The parts are slices of the whole text, prefix included.
    const parts = splitInvitation(text, 400);
    assert.ok(parts.length > 1);
    assert.equal(
      parts.map((p) => p.replace(/^relaymail-invite-part:\d+\/\d+:/, "")).join(""),
      text,
    );
    const shouted = parts.reverse().map((p) =>
      p.replace(/^relaymail-invite-part:/, "RELAYMAIL-Invite-PART:")
    );
    assert.equal((await decodeInvitation(shouted.join("\n"), now)).invitationId, expected);
  }
});
