/**
 * The DER vocabulary of Relaymail's service messages (app/core/protocol/der.ts):
 * every field kind survives encoding and decoding, the bytes are the DER a
 * reader of docs/protocol.md expects, damaged input is refused with a
 * {@linkcode MalformedStructureError} naming the structure and the field, and
 * BER that is not DER (long lengths, indefinite lengths, impossible dates) is
 * refused too.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  CertificationPath,
  generateRSAKeyPair,
  getIdFromIdentityKey,
  issueDeliveryAuthorization,
  issueEndpointCertificate,
  PrivateEndpointConnParams,
  SessionKeyPair,
} from "@relaycorp/relaynet-core";
import {
  decodeInvitation,
  encodeInvitation,
  InvalidInvitationError,
  INVITATION_PREFIX,
} from "../app/core/protocol/invitation.ts";
import {
  bytesField,
  encodeSequence,
  Fields,
  listField,
  MalformedStructureError,
  sequence,
  textField,
  timeField,
} from "../app/core/protocol/der.ts";

const hex = (bytes: Uint8Array) =>
  Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ");

/** Octets from hex, spaces allowed. */
const unhex = (text: string) =>
  new Uint8Array(text.replace(/\s+/g, "").match(/../g)?.map((b) => parseInt(b, 16)) ?? []);

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");

/** Asserts that `fn` throws a MalformedStructureError whose message matches `message`. */
function assertMalformed(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (error) => {
    assert.ok(error instanceof MalformedStructureError, `not a MalformedStructureError: ${error}`);
    assert.equal(error.name, "MalformedStructureError");
    assert.match(error.message, message);
    return true;
  });
}

const SAMPLE = encodeSequence([
  bytesField(0, new Uint8Array([1, 2])),
  textField(1, "hi"),
  listField(2, [textField(0, "a")]),
]);

Deno.test("encodeSequence() writes context-tagged fields as DER", () => {
  assert.equal(
    hex(SAMPLE),
    // SEQUENCE { [0] 01 02, [1] "hi", [2] constructed { [0] "a" } }
    "30 0d 80 02 01 02 81 02 68 69 a2 03 80 01 61",
  );
  assert.equal(hex(encodeSequence([])), "30 00");
});

Deno.test("bytesField() and Fields.bytes() round-trip any octets, empty included", () => {
  const all = new Uint8Array(256).map((_, i) => i);
  const fields = Fields.decode(
    "Blob",
    encodeSequence([bytesField(0, all), bytesField(1, new Uint8Array())]),
  );
  assert.deepEqual(fields.bytes(0, "all"), all);
  assert.deepEqual(fields.bytes(1, "empty"), new Uint8Array());
});

Deno.test("bytesField() copies its input: later changes do not reach the encoding", () => {
  const bytes = new Uint8Array([1, 2, 3]);
  const field = bytesField(0, bytes);
  bytes[0] = 9;
  assert.deepEqual(
    Fields.decode("Blob", encodeSequence([field])).bytes(0, "b"),
    new Uint8Array([1, 2, 3]),
  );
});

Deno.test("textField() and Fields.text() round-trip UTF-8, beyond the BMP included", () => {
  const texts = ["", "plain", "Grüße, 東京", "emoji 📬 and \u0000 NUL"];
  const fields = Fields.decode("Text", encodeSequence(texts.map((t, i) => textField(i, t))));
  texts.forEach((text, i) => assert.equal(fields.text(i, `t${i}`), text));
});

Deno.test("timeField() writes GeneralizedTime in UTC, fractions without trailing zeros", () => {
  const cases: [Date, string][] = [
    [new Date(Date.UTC(2026, 10, 26, 0, 58, 38, 120)), "20261126005838.12Z"],
    [new Date(Date.UTC(2026, 10, 26, 0, 58, 38, 5)), "20261126005838.005Z"],
    [new Date(Date.UTC(2026, 10, 26, 0, 58, 38, 999)), "20261126005838.999Z"],
    [new Date(Date.UTC(2026, 0, 1)), "20260101000000Z"],
  ];
  for (const [date, text] of cases) {
    const encoded = encodeSequence([timeField(0, date)]);
    assert.equal(Fields.decode("Time", encoded).text(0, "t"), text);
    assert.deepEqual(encoded, encodeSequence([textField(0, text)]));
  }
});

Deno.test("Fields.time() round-trips timeField() to the millisecond", () => {
  const dates = [
    new Date(Date.UTC(2026, 10, 26, 0, 58, 38, 120)),
    new Date(Date.UTC(1999, 11, 31, 23, 59, 59, 1)),
    new Date(Date.UTC(2100, 1, 28)),
  ];
  const fields = Fields.decode("Time", encodeSequence(dates.map((d, i) => timeField(i, d))));
  dates.forEach((date, i) => assert.equal(fields.time(i, `t${i}`).getTime(), date.getTime()));
});

Deno.test("Fields.time() reads one or two fraction digits as tenths and hundredths", () => {
  const fields = Fields.decode(
    "Time",
    encodeSequence([textField(0, "20260101000000.5Z"), textField(1, "20260101000000.25Z")]),
  );
  assert.equal(fields.time(0, "a").toISOString(), "2026-01-01T00:00:00.500Z");
  assert.equal(fields.time(1, "b").toISOString(), "2026-01-01T00:00:00.250Z");
});

Deno.test("Fields.time() refuses what is not GeneralizedTime in UTC, naming the text", () => {
  const bad = [
    "2026-01-01T00:00:00Z", // ISO 8601, not GeneralizedTime
    "20260101000000", // no Z: local time
    "20260101000000+0100", // an offset
    "20260101000000.1234Z", // more than milliseconds
    "20260101000000.Z", // a point without digits
    "202601010000Z", // no seconds
    "",
  ];
  for (const text of bad) {
    const fields = Fields.decode("Mail", encodeSequence([textField(3, text)]));
    assertMalformed(
      () => fields.time(3, "sentAt"),
      new RegExp(`^Mail field sentAt is not a GeneralizedTime: "${escape(text)}"$`),
    );
  }
  const long = Fields.decode("Mail", encodeSequence([textField(3, "2".repeat(33))]));
  assertMalformed(() => long.time(3, "sentAt"), /^Mail field sentAt exceeds 32 bytes: it has 33$/);
});

Deno.test("Fields.time() refuses a date that does not exist, naming the text and the part", () => {
  const bad: [string, string][] = [
    ["20261301000000Z", "month 13"], // once read as 2027-01-01
    ["20260001000000Z", "month 0"],
    ["20260100000000Z", "day 0 in a month of 31 days"],
    ["20260132000000Z", "day 32 in a month of 31 days"],
    ["20260431000000Z", "day 31 in a month of 30 days"],
    ["20260229000000Z", "day 29 in a month of 28 days"],
    ["21000229000000Z", "day 29 in a month of 28 days"], // not a leap year
    ["20260101240000Z", "hour 24"],
    ["20260101006000Z", "minute 60"],
    ["20261231235960Z", "second 60"], // a leap second: a Date cannot hold one
    ["99999999999999Z", "month 99"],
  ];
  for (const [text, part] of bad) {
    const fields = Fields.decode("Mail", encodeSequence([textField(3, text)]));
    assertMalformed(
      () => fields.time(3, "sentAt"),
      new RegExp(`^Mail field sentAt is not a valid date: "${text}" has ${part}$`),
    );
  }
  const leap = Fields.decode(
    "Time",
    encodeSequence([textField(0, "20240229235959Z"), textField(1, "20000229000000Z")]),
  );
  assert.equal(leap.time(0, "a").toISOString(), "2024-02-29T23:59:59.000Z");
  assert.equal(leap.time(1, "b").toISOString(), "2000-02-29T00:00:00.000Z");
});

Deno.test("Fields.time() refuses a fraction with trailing zeros: BER, not DER", () => {
  for (const text of ["20260101000000.0Z", "20260101000000.50Z", "20260101000000.120Z"]) {
    const fields = Fields.decode("Mail", encodeSequence([textField(3, text)]));
    assertMalformed(
      () => fields.time(3, "sentAt"),
      new RegExp(
        `^Mail field sentAt is not DER: "${escape(text)}" has a trailing zero in its fraction$`,
      ),
    );
  }
});

Deno.test("Fields.time() reads the years 0000 to 0099 as written, not as the 1900s", () => {
  const dates = ["0000-01-01T00:00:00.000Z", "0026-03-01T12:00:00.500Z", "0099-12-31T23:59:59.999Z"]
    .map((iso) => new Date(iso));
  const fields = Fields.decode("Time", encodeSequence(dates.map((d, i) => timeField(i, d))));
  assert.equal(fields.text(1, "t1"), "00260301120000.5Z");
  dates.forEach((date, i) =>
    assert.equal(fields.time(i, `t${i}`).toISOString(), date.toISOString())
  );
});

Deno.test("timeField() refuses with a RangeError a date GeneralizedTime cannot hold", () => {
  const bad: [Date, RegExp][] = [
    [new Date(NaN), /^Cannot write an invalid Date as a GeneralizedTime: its year must be/],
    [new Date("+010000-01-01T00:00:00Z"), /^Cannot write \+010000-01-01T00:00:00\.000Z as/],
    [new Date("-000001-12-31T00:00:00Z"), /^Cannot write -000001-12-31T00:00:00\.000Z as/],
  ];
  for (const [date, message] of bad) {
    assert.throws(() => timeField(0, date), (error) => {
      assert.ok(error instanceof RangeError);
      assert.match(error.message, message);
      assert.match(error.message, /its year must be 0000 to 9999$/);
      return true;
    });
  }
});

Deno.test("listField() and Fields.list() round-trip elements in order", () => {
  const fields = Fields.decode(
    "Listing",
    encodeSequence([
      listField(0, [bytesField(0, new Uint8Array([7])), bytesField(0, new Uint8Array([8]))]),
      listField(1, []),
    ]),
  );
  const items = fields.list(0, "items");
  assert.equal(items.length, 2);
  assert.deepEqual(
    items.map((item) => new Fields("Item", [item]).bytes(0, "item")),
    [new Uint8Array([7]), new Uint8Array([8])],
  );
  assert.deepEqual(fields.list(1, "empty"), []);
});

Deno.test("Fields.textList() round-trips a list of strings", () => {
  const names = ["alice", "bob", "", "zoë"];
  const fields = Fields.decode(
    "Mail",
    encodeSequence([listField(6, names.map((n) => textField(0, n)))]),
  );
  assert.deepEqual(fields.textList(6, "recipients"), names);
});

Deno.test("sequence() and Fields.sequenceList() round-trip nested structures", () => {
  const fields = Fields.decode(
    "Mail",
    encodeSequence([
      listField(7, [
        sequence([textField(0, "a.txt"), bytesField(1, new Uint8Array([1]))]),
        sequence([textField(0, "b.txt"), bytesField(1, new Uint8Array([2, 3]))]),
      ]),
    ]),
  );
  const nested = fields.sequenceList(7, "attachments");
  assert.deepEqual(nested.map((f) => f.structure), [
    "Mail.attachments[0]",
    "Mail.attachments[1]",
  ]);
  assert.deepEqual(nested.map((f) => f.text(0, "fileName")), ["a.txt", "b.txt"]);
  assert.deepEqual(nested.map((f) => f.bytes(1, "content")), [
    new Uint8Array([1]),
    new Uint8Array([2, 3]),
  ]);
});

Deno.test("new Fields() reads context-tagged items by tag and ignores universal ones", () => {
  const fields = new Fields("Loose", [
    textField(4, "four"),
    sequence([]), // universal: not a field
  ]);
  assert.equal(fields.structure, "Loose");
  assert.equal(fields.text(4, "four"), "four");
  assertMalformed(() => fields.bytes(16, "sequence"), /^Loose lacks field sequence \[16\]$/);
});

Deno.test("Fields.decode() refuses truncated DER", () => {
  for (let length = 0; length < SAMPLE.byteLength; length++) {
    assertMalformed(
      () => Fields.decode("Receipt", SAMPLE.slice(0, length)),
      /^Receipt is not a DER SEQUENCE$/,
    );
  }
});

Deno.test("Fields.decode() refuses a length that overruns the input", () => {
  const overlong = [
    [0x30, 0x05, 0x80, 0x01, 0x00], // the SEQUENCE claims 5 octets, 3 follow
    [0x30, 0x03, 0x80, 0x05, 0x00], // a field claims 5 octets, 1 follows
    [0x30, 0x84, 0xff, 0xff, 0xff, 0xff], // a 4 GiB SEQUENCE in 6 octets
  ];
  for (const bytes of overlong) {
    assertMalformed(
      () => Fields.decode("Receipt", new Uint8Array(bytes)),
      /^Receipt is not a DER SEQUENCE$/,
    );
  }
});

Deno.test("Fields.decode() refuses anything but a SEQUENCE at the top", () => {
  const wrong = [
    [0x31, 0x00], // SET
    [0x04, 0x00], // OCTET STRING
    [0xa0, 0x00], // context-specific [0], constructed
    [0x0c, 0x02, 0x68, 0x69], // UTF8String
  ];
  for (const bytes of wrong) {
    assertMalformed(
      () => Fields.decode("Pairing", new Uint8Array(bytes)),
      /^Pairing is not a DER SEQUENCE$/,
    );
  }
});

Deno.test("Fields.decode() refuses trailing bytes after the SEQUENCE", () => {
  for (const tail of [[0x00], [0x30, 0x00], [0xff, 0xff, 0xff]]) {
    assertMalformed(
      () => Fields.decode("Mail", new Uint8Array([...SAMPLE, ...tail])),
      /^Mail has trailing bytes after its SEQUENCE$/,
    );
  }
});

Deno.test("Fields.decode() takes long lengths and high tag numbers written in minimal form", () => {
  for (const size of [127, 128, 255, 256, 65_535, 65_536]) {
    const text = "x".repeat(size);
    const encoded = encodeSequence([textField(0, text)]);
    assert.equal(Fields.decode("Blob", encoded).text(0, "x"), text, `${size} octets`);
  }
  assert.equal(
    hex(encodeSequence([textField(0, "x".repeat(128))]).subarray(0, 7)),
    "30 81 83 80 81 80 78",
  );
  for (const tag of [30, 31, 127, 128, 16_383, 16_384]) {
    const encoded = encodeSequence([textField(tag, "t"), listField(tag + 1, [textField(0, "l")])]);
    const fields = Fields.decode("Tags", encoded);
    assert.equal(fields.text(tag, "t"), "t", `tag ${tag}`);
    assert.deepEqual(fields.textList(tag + 1, "l"), ["l"], `tag ${tag + 1}`);
  }
  assert.equal(hex(encodeSequence([textField(31, "")])), "30 03 9f 1f 00");
});

Deno.test("Fields.decode() refuses a length not in minimal form, naming where it is", () => {
  const cases: [string, string][] = [
    // Long form for a length under 128, at the top and at each depth.
    ["30 81 03 80 01 00", "the outer SEQUENCE"],
    ["30 04 80 81 01 00", "field [0]"],
    ["30 08 80 01 00 a2 81 02 80 00", "field [2]"],
    ["30 05 a7 03 80 81 00", "field [7] element 0"],
    ["30 07 a7 05 30 03 82 81 00", "field [7] element 0 field [2]"],
    ["30 04 04 81 01 00", "item 0"],
    // Leading zero octets, also before a length that needs the long form.
    ["30 82 00 03 80 01 00", "the outer SEQUENCE"],
    ["30 05 81 82 00 01 00", "field [1]"],
    [`30 81 84 80 82 00 80 ${"00 ".repeat(128)}`, "field [0]"],
    [`30 83 00 00 83 80 81 80 ${"00 ".repeat(128)}`, "the outer SEQUENCE"],
  ];
  for (const [bytes, where] of cases) {
    assertMalformed(
      () => Fields.decode("Mail", unhex(bytes)),
      new RegExp(`^Mail is not DER: the length of ${escape(where)} is not in minimal form$`),
    );
  }
});

Deno.test("Fields.decode() refuses the indefinite length at any depth", () => {
  const cases: [string, string][] = [
    ["30 80 80 01 00 00 00", "the outer SEQUENCE"],
    ["30 80 00 00", "the outer SEQUENCE"],
    ["30 06 a2 80 80 00 00 00", "field [2]"],
    ["30 09 a7 07 30 80 80 01 00 00 00", "field [7] element 0"],
  ];
  for (const [bytes, where] of cases) {
    assertMalformed(
      () => Fields.decode("Mail", unhex(bytes)),
      new RegExp(`^Mail is not DER: ${escape(where)} has an indefinite length$`),
    );
  }
});

Deno.test("Fields.decode() refuses a tag number not in minimal form", () => {
  const cases: [string, string][] = [
    ["30 04 9f 02 01 00", "field [2]"], // tag 2 needs no long form
    ["30 05 9f 80 1f 01 00", "field [31]"], // a leading zero group
    ["30 05 bf 1e 02 80 00", "field [30]"],
    ["30 06 a7 04 9f 00 01 61", "field [7] element 0"],
    ["3f 10 00", "the outer SEQUENCE"],
  ];
  for (const [bytes, where] of cases) {
    assertMalformed(
      () => Fields.decode("Mail", unhex(bytes)),
      new RegExp(`^Mail is not DER: the tag of ${escape(where)} is not in minimal form$`),
    );
  }
});

Deno.test("Fields.decode() refuses universal types in the wrong form and stray end-of-contents", () => {
  const cases: [string, RegExp][] = [
    ["10 00", /^Mail is not DER: the outer SEQUENCE is universal type 16 and must be constructed$/],
    [
      "30 04 a7 02 10 00",
      /^Mail is not DER: field \[7\] element 0 is universal type 16 and must be constructed$/,
    ],
    ["30 04 24 02 04 00", /^Mail is not DER: item 0 is universal type 4 and must be primitive$/],
    [
      "30 02 00 00",
      /^Mail is not DER: item 0 is an end-of-contents marker, which DER never writes$/,
    ],
    [
      "30 07 80 01 00 a1 02 00 00",
      /^Mail is not DER: field \[1\] element 0 is an end-of-contents marker, which DER never/,
    ],
  ];
  for (const [bytes, message] of cases) {
    assertMalformed(() => Fields.decode("Mail", unhex(bytes)), message);
  }
});

Deno.test("Fields refuses a missing field, naming it and its tag", () => {
  const fields = Fields.decode("Mail", SAMPLE);
  assertMalformed(() => fields.bytes(5, "body"), /^Mail lacks field body \[5\]$/);
  assertMalformed(() => fields.text(5, "body"), /^Mail lacks field body \[5\]$/);
  assertMalformed(() => fields.time(5, "sentAt"), /^Mail lacks field sentAt \[5\]$/);
  assertMalformed(() => fields.list(5, "to"), /^Mail lacks field to \[5\]$/);
  assertMalformed(() => fields.textList(5, "to"), /^Mail lacks field to \[5\]$/);
  assertMalformed(() => fields.sequenceList(5, "parts"), /^Mail lacks field parts \[5\]$/);
});

Deno.test("Fields refuses a field of the wrong form", () => {
  const fields = Fields.decode("Mail", SAMPLE);
  assertMalformed(() => fields.bytes(2, "subject"), /^Mail field subject \[2\] must be primitive$/);
  assertMalformed(() => fields.text(2, "subject"), /^Mail field subject \[2\] must be primitive$/);
  assertMalformed(() => fields.list(1, "to"), /^Mail field to \[1\] must be constructed$/);
  assertMalformed(
    () => fields.sequenceList(2, "attachments"),
    /^Mail field attachments\[0\] must be a SEQUENCE$/,
  );
});

Deno.test("Fields refuses text that is not UTF-8", () => {
  for (const bytes of [[0xff], [0xc3], [0xed, 0xa0, 0x80]]) {
    const fields = Fields.decode("Mail", encodeSequence([bytesField(0, new Uint8Array(bytes))]));
    assertMalformed(() => fields.text(0, "subject"), /^Mail field subject is not valid UTF-8$/);
  }
  const list = Fields.decode(
    "Mail",
    encodeSequence([listField(0, [textField(0, "ok"), bytesField(0, new Uint8Array([0xff]))])]),
  );
  assertMalformed(() => list.textList(0, "to"), /^Mail field to\[1\] is not valid UTF-8$/);
});

Deno.test("Fields enforces byte and item limits, naming the limit and the size", () => {
  const fields = Fields.decode(
    "Mail",
    encodeSequence([
      textField(0, "12345"),
      listField(1, [textField(0, "a"), textField(0, "bbb"), textField(0, "c")]),
    ]),
  );
  assert.equal(fields.text(0, "subject", 5), "12345");
  assertMalformed(
    () => fields.bytes(0, "subject", 4),
    /^Mail field subject exceeds 4 bytes: it has 5$/,
  );
  assertMalformed(
    () => fields.text(0, "subject", 4),
    /^Mail field subject exceeds 4 bytes: it has 5$/,
  );
  assert.equal(fields.list(1, "to", 3).length, 3);
  assertMalformed(() => fields.list(1, "to", 2), /^Mail field to exceeds 2 items: it has 3$/);
  assertMalformed(() => fields.textList(1, "to", 2), /^Mail field to exceeds 2 items: it has 3$/);
  assertMalformed(
    () => fields.sequenceList(1, "to", 2),
    /^Mail field to exceeds 2 items: it has 3$/,
  );
  assertMalformed(
    () => fields.textList(1, "to", 3, 2),
    /^Mail field to\[1\] exceeds 2 bytes: it has 3$/,
  );
});

Deno.test("MalformedStructureError keeps the cause it is given", () => {
  const cause = new Error("inner");
  const error = new MalformedStructureError("Mail is not a DER SEQUENCE", { cause });
  assert.equal(error.cause, cause);
  assert.ok(error instanceof Error);
});

/** A real invitation, as `relaymail invite` writes it: a PDA for a new key K, K, a name. */
async function realInvitation(now: Date, nameHint: string) {
  const inviter = await generateRSAKeyPair();
  const invitationKey = await generateRSAKeyPair();
  const start = new Date(now.getTime() - 3_600_000);
  const certificate = await issueEndpointCertificate({
    issuerPrivateKey: inviter.privateKey,
    subjectPublicKey: inviter.publicKey,
    validityStartDate: start,
    validityEndDate: new Date(now.getTime() + 90 * 86_400_000),
  });
  const pda = await issueDeliveryAuthorization({
    issuerCertificate: certificate,
    issuerPrivateKey: inviter.privateKey,
    subjectPublicKey: invitationKey.publicKey,
    validityStartDate: start,
    validityEndDate: new Date(now.getTime() + 7 * 86_400_000),
  });
  const text = await encodeInvitation({
    connectionParams: new PrivateEndpointConnParams(
      inviter.publicKey,
      "relaymail-mesh.invalid",
      new CertificationPath(pda, [certificate]),
      (await SessionKeyPair.generate()).sessionKey,
    ),
    invitationKey: invitationKey.privateKey,
    nameHint,
  }, 1); // version 1 is the DER one; version 2's compact layout is tested in invitation_size_test.ts
  return { text, inviterId: await getIdFromIdentityKey(inviter.publicKey) };
}

const invitationDer = (text: string) =>
  new Uint8Array(Buffer.from(text.slice(INVITATION_PREFIX.length), "base64url"));
const invitationText = (der: Uint8Array) =>
  INVITATION_PREFIX + Buffer.from(der).toString("base64url");

Deno.test("encodeInvitation() writes DER that decodeInvitation() and Fields.decode() read back", async () => {
  const now = new Date();
  const { text, inviterId } = await realInvitation(now, "Zoë 📬");
  const decoded = await decodeInvitation(text, now);
  assert.equal(decoded.nameHint, "Zoë 📬");
  assert.equal(decoded.inviterId, inviterId);
  assert.equal(decoded.connectionParams.internetGatewayAddress, "relaymail-mesh.invalid");

  // Canonical: the fields read back encode to the very same octets.
  const der = invitationDer(text);
  assert.equal(hex(der.subarray(0, 2)), "30 82", "a few KB: a two-octet length");
  const fields = Fields.decode("Invitation", der);
  const again = encodeSequence([
    bytesField(0, fields.bytes(0, "connectionParams")),
    bytesField(1, fields.bytes(1, "invitationKey")),
    textField(2, fields.text(2, "nameHint")),
  ]);
  assert.deepEqual(again, der);
  assert.equal(invitationText(again), text);
});

Deno.test("decodeInvitation() refuses a real invitation re-encoded as BER that is not DER", async () => {
  const now = new Date();
  const der = invitationDer((await realInvitation(now, "Alice")).text);
  const length = der.subarray(1, 4); // 82 hi lo
  const variants: [Uint8Array, string][] = [
    // The same SEQUENCE with its length in three octets instead of two.
    [
      new Uint8Array([0x30, 0x83, 0x00, ...length.subarray(1), ...der.subarray(4)]),
      "the length of the outer SEQUENCE is not in minimal form",
    ],
    // The same SEQUENCE with the indefinite length and end-of-contents.
    [
      new Uint8Array([0x30, 0x80, ...der.subarray(4), 0x00, 0x00]),
      "the outer SEQUENCE has an indefinite length",
    ],
  ];
  for (const [bytes, problem] of variants) {
    await assert.rejects(() => decodeInvitation(invitationText(bytes), now), (error) => {
      assert.ok(error instanceof InvalidInvitationError, `not an InvalidInvitationError: ${error}`);
      assert.equal(
        error.message,
        `Invitation is damaged or truncated: Invitation is not DER: ${problem}`,
      );
      assert.ok(error.cause instanceof MalformedStructureError);
      return true;
    });
  }
});

Deno.test("Fields.decode() refuses a field given twice, rather than guess which counts", () => {
  const twice = encodeSequence([textField(1, "first"), textField(1, "second")]);
  assertMalformed(() => Fields.decode("Mail", twice), /^Mail has field \[1\] twice$/);
});
