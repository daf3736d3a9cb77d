/**
 * The mesh protocol's frames (mesh/wire.ts, docs/mesh-protocol.md): every
 * message type round-trips, and truncated, padded, unknown and oversized frames
 * are refused with a ProtocolError that says what is wrong. (Random frames are
 * the fuzz targets' job: tests/fuzz/mesh_frames_test.ts.)
 */
import assert from "node:assert/strict";
import type { RefusalCode } from "../../bindings/binding.ts";
import { MAX_PARCEL_LENGTH } from "../../bindings/validation.ts";
import { TAG_LENGTH } from "../../mesh/proofs.ts";
import { decodeSymbols, Encoder } from "../../mesh/riblt.ts";
import { ITEM_LENGTH } from "../../mesh/store.ts";
import { MAX_DIFF_ITEMS, MAX_ITEMS, MAX_SYMBOLS_PER_FRAME } from "../../mesh/types.ts";
import {
  AckStatus,
  decodeSync,
  decodeTransfer,
  encodeParcelFrame,
  encodeSync,
  encodeTransfer,
  MAX_ENDPOINTS,
  MAX_FRAME_LENGTH,
  MAX_INTEREST_TOKENS,
  MAX_PROOF_LENGTH,
  MAX_PROOFS_PER_MESSAGE,
  MAX_SEALED_CLAIM_LENGTH,
  MAX_SYNC_FRAME_LENGTH,
  NONCE_LENGTH,
  PROTOCOL_VERSION,
  ProtocolError,
  SYNC_PROTOCOL,
  type SyncMessage,
  TRANSFER_PROTOCOL,
  type TransferMessage,
  Type,
} from "../../mesh/wire.ts";
import { interestToken } from "../../mesh/interest.ts";

const KEY = "ab".repeat(32);
/** Whole seconds: the wire carries expiries in seconds. */
const EXPIRY = new Date(Date.UTC(2030, 0, 1));

const bytes = (length: number, fill = 0) => new Uint8Array(length).fill(fill);
const u16 = (n: number) => [n >> 8, n & 0xff];
const u32 = (n: number) => [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];

/** A frame from numbers and byte arrays, in order. */
function frame(...parts: (number | readonly number[] | Uint8Array)[]): Uint8Array {
  const out: number[] = [];
  for (const part of parts) {
    if (typeof part === "number") out.push(part);
    else out.push(...part);
  }
  return Uint8Array.from(out);
}

/** Asserts that `fn` throws a ProtocolError whose message is (or matches) `message`. */
function refuses(fn: () => unknown, message: string | RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ProtocolError, `expected a ProtocolError, got ${error}`);
    assert.equal(error.name, "ProtocolError");
    if (typeof message === "string") assert.equal(error.message, message);
    else assert.match(error.message, message);
    return true;
  });
}

function hello(overrides: Partial<Extract<SyncMessage, { type: "hello" }>> = {}): SyncMessage {
  return {
    type: "hello",
    version: PROTOCOL_VERSION,
    salt: 0xdeadbeef,
    itemCount: 1234,
    nonce: Uint8Array.from({ length: NONCE_LENGTH }, (_, i) => i),
    announcements: [
      { tag: bytes(TAG_LENGTH, 1), sealed: Uint8Array.from([1, 2, 3]) },
      { tag: bytes(TAG_LENGTH, 2), sealed: new Uint8Array(0) },
    ],
    ...overrides,
  };
}

/** One of each sync message, with the type byte that leads its frame. */
const SYNC_MESSAGES: [number, SyncMessage][] = [
  [Type.HELLO, hello()],
  [Type.HELLO, hello({ interest: [{ token: bytes(16, 9), seconds: 600 }] })],
  [Type.SYMBOLS, { type: "symbols", start: 16, symbols: bytes(2 * (ITEM_LENGTH + 12), 3) }],
  [Type.ITEMS, { type: "items", items: bytes(3 * ITEM_LENGTH, 4) }],
  [Type.MORE, { type: "more" }],
  [Type.DIFF, {
    type: "diff",
    initiatorOnly: bytes(ITEM_LENGTH, 5),
    responderOnly: bytes(2 * ITEM_LENGTH, 6),
    truncated: true,
  }],
  [Type.DIFF, {
    type: "diff",
    initiatorOnly: new Uint8Array(0),
    responderOnly: new Uint8Array(0),
    truncated: false,
  }],
  [Type.PROOFS, {
    type: "proofs",
    proofs: [{ expiresAt: EXPIRY, proof: bytes(100, 7) }, {
      expiresAt: new Date(0),
      proof: bytes(1, 8),
    }],
  }],
  [Type.ERROR, { type: "error", message: "Reconciliation failed: ünïcode is fine" }],
];

/** One of each transfer message, with the type byte that leads its frame. */
const TRANSFER_MESSAGES: [number, TransferMessage][] = [
  [Type.PARCEL, { type: "parcel", key: KEY, copies: 3, bytes: bytes(500, 9) }],
  [Type.POST, { type: "post", key: KEY, bytes: bytes(300, 4) }],
  [Type.ACK, { type: "ack", key: KEY, status: AckStatus.STORED }],
  [Type.ACK, { type: "ack", key: KEY, status: AckStatus.ALREADY_HELD }],
  [Type.ACK, { type: "ack", key: KEY, status: AckStatus.DELIVERED, proof: bytes(64, 1) }],
  [Type.ACK, { type: "ack", key: KEY, status: AckStatus.ALREADY_DELIVERED, proof: bytes(3, 2) }],
  [Type.REFUSE, {
    type: "refuse",
    key: KEY,
    code: "quota",
    transient: true,
    reason: "Cannot store the parcel as the quota is full",
  }],
  [Type.REFUSE, { type: "refuse", key: KEY, code: "malformed", transient: false, reason: "" }],
  [Type.PROGRESS, { type: "progress", received: 0xfffffffe }],
  [Type.ERROR, { type: "error", message: "Stream reset" }],
];

/** Messages whose last field runs to the end of the frame: a cut there is still a frame. */
const OPEN_ENDED = new Set<string>(["symbols", "items", "parcel", "post"]);

Deno.test("encodeSync() and decodeSync() round-trip every sync message type", () => {
  for (const [type, message] of SYNC_MESSAGES) {
    const encoded = encodeSync(message);
    assert.equal(encoded[0], type, `${message.type} leads with its type byte`);
    assert.deepEqual(decodeSync(encoded), message);
  }
  assert.deepEqual(encodeSync({ type: "more" }), Uint8Array.from([Type.MORE]));
});

Deno.test("encodeTransfer() and decodeTransfer() round-trip every transfer message type", () => {
  for (const [type, message] of TRANSFER_MESSAGES) {
    const encoded = encodeTransfer(message);
    assert.equal(encoded[0], type, `${message.type} leads with its type byte`);
    assert.deepEqual(decodeTransfer(encoded), message);
  }
});

Deno.test("encodeParcelFrame() writes the PARCEL frame encodeTransfer() does, in two buffers", () => {
  const parcel = bytes(1000, 5);
  const list = encodeParcelFrame(KEY, 7, parcel);
  const parts = [...list];
  assert.equal(parts.length, 2);
  assert.equal(parts[1], parcel, "the parcel is not copied");
  assert.deepEqual(
    list.subarray(),
    encodeTransfer({ type: "parcel", key: KEY, copies: 7, bytes: parcel }),
  );
  assert.equal(list.byteLength, 1 + 32 + 2 + parcel.length);
});

Deno.test("decodeSync() and decodeTransfer() refuse every truncated frame: 'Frame is truncated'", () => {
  type Case = readonly [(frame: Uint8Array) => unknown, SyncMessage | TransferMessage, Uint8Array];
  const cases: Case[] = [
    ...SYNC_MESSAGES.map(([, m]) => [decodeSync, m, encodeSync(m)] as const),
    ...TRANSFER_MESSAGES.map(([, m]) => [decodeTransfer, m, encodeTransfer(m)] as const),
  ];
  for (const [decode, message, encoded] of cases) {
    // Open-ended messages are whole once their fixed fields are.
    const fixed = { symbols: 5, items: 1, parcel: 35 }[message.type as string];
    const cuts = OPEN_ENDED.has(message.type) ? fixed! : encoded.length;
    for (let length = 0; length < cuts; length++) {
      refuses(() => decode(encoded.subarray(0, length)), "Frame is truncated");
    }
  }
});

Deno.test("decodeSync() and decodeTransfer() refuse a frame with trailing bytes", () => {
  for (const [, message] of SYNC_MESSAGES) {
    if (OPEN_ENDED.has(message.type)) continue;
    refuses(() => decodeSync(frame(encodeSync(message), 0)), "Frame has trailing bytes");
  }
  for (const [, message] of TRANSFER_MESSAGES) {
    if (OPEN_ENDED.has(message.type)) continue;
    refuses(() => decodeTransfer(frame(encodeTransfer(message), 0)), "Frame has trailing bytes");
  }
});

Deno.test("decodeSync() and decodeTransfer() refuse an unknown message type, naming it", () => {
  const sync = new Set<number>([
    Type.HELLO,
    Type.SYMBOLS,
    Type.ITEMS,
    Type.MORE,
    Type.DIFF,
    Type.PROOFS,
    Type.ERROR,
  ]);
  const transfer = new Set<number>([
    Type.PARCEL,
    Type.ACK,
    Type.REFUSE,
    Type.PROGRESS,
    Type.POST,
    Type.ERROR,
  ]);
  for (let type = 0; type < 256; type++) {
    const unknownFrame = frame(type, bytes(40));
    if (!sync.has(type)) {
      refuses(() => decodeSync(unknownFrame), `Unknown sync message type 0x${type.toString(16)}`);
    }
    if (!transfer.has(type)) {
      refuses(
        () => decodeTransfer(unknownFrame),
        `Unknown transfer message type 0x${type.toString(16)}`,
      );
    }
  }
  // A message of the other stream is unknown here.
  refuses(() => decodeSync(encodeTransfer(TRANSFER_MESSAGES[0][1])), /type 0x10$/);
  refuses(() => decodeTransfer(encodeSync(hello())), /type 0x1$/);
});

Deno.test("decodeSync() takes at most MAX_ENDPOINTS announcements in a HELLO", () => {
  const announcements = (count: number) =>
    Array.from({ length: count }, (_, i) => ({ tag: bytes(TAG_LENGTH, i), sealed: bytes(2, i) }));
  const most = decodeSync(encodeSync(hello({ announcements: announcements(MAX_ENDPOINTS) })));
  assert.equal(most.type === "hello" && most.announcements.length, MAX_ENDPOINTS);
  refuses(
    () => decodeSync(encodeSync(hello({ announcements: announcements(MAX_ENDPOINTS + 1) }))),
    `HELLO announces ${MAX_ENDPOINTS + 1} endpoints, over ${MAX_ENDPOINTS}`,
  );
});

Deno.test("decodeSync() takes a sealed claim of at most MAX_SEALED_CLAIM_LENGTH octets", () => {
  const claim = (length: number) => [{ tag: bytes(TAG_LENGTH, 1), sealed: bytes(length, 2) }];
  const most = hello({ announcements: claim(MAX_SEALED_CLAIM_LENGTH) });
  assert.deepEqual(decodeSync(encodeSync(most)), most);
  refuses(
    () => decodeSync(encodeSync(hello({ announcements: claim(MAX_SEALED_CLAIM_LENGTH + 1) }))),
    `Sealed claim of ${MAX_SEALED_CLAIM_LENGTH + 1} octets exceeds ${MAX_SEALED_CLAIM_LENGTH}`,
  );
});

Deno.test("encodeSync() refuses a HELLO nonce that is not NONCE_LENGTH octets", () => {
  for (const length of [0, NONCE_LENGTH - 1, NONCE_LENGTH + 1]) {
    assert.throws(() => encodeSync(hello({ nonce: bytes(length) })), {
      name: "RangeError",
      message: "A nonce is 16 octets",
    });
  }
});

Deno.test("decodeSync() reads a HELLO of another protocol version as its version alone", () => {
  // Another version may lay HELLO out otherwise: the caller refuses it by version.
  const other = decodeSync(frame(Type.HELLO, PROTOCOL_VERSION + 1, 0xff, 0xff, 0xff));
  assert.equal(other.type, "hello");
  assert.equal(other.type === "hello" && other.version, PROTOCOL_VERSION + 1);
  assert.deepEqual(other.type === "hello" && other.announcements, []);
});

Deno.test("decodeSync() takes at most MAX_PROOFS_PER_MESSAGE proofs of at most MAX_PROOF_LENGTH octets", () => {
  refuses(
    () => decodeSync(frame(Type.PROOFS, u16(MAX_PROOFS_PER_MESSAGE + 1))),
    `PROOFS carries ${MAX_PROOFS_PER_MESSAGE + 1} proofs, over ${MAX_PROOFS_PER_MESSAGE}`,
  );
  const longest: SyncMessage = {
    type: "proofs",
    proofs: [{ expiresAt: EXPIRY, proof: bytes(MAX_PROOF_LENGTH, 1) }],
  };
  assert.deepEqual(decodeSync(encodeSync(longest)), longest);
  refuses(
    () =>
      decodeSync(
        encodeSync({
          type: "proofs",
          proofs: [{ expiresAt: EXPIRY, proof: bytes(MAX_PROOF_LENGTH + 1) }],
        }),
      ),
    `Proof of ${MAX_PROOF_LENGTH + 1} octets exceeds ${MAX_PROOF_LENGTH}`,
  );
});

Deno.test("decodeSync() refuses DIFF flags it does not know and a block over MAX_SYNC_FRAME_LENGTH", () => {
  refuses(() => decodeSync(frame(Type.DIFF, 2, u32(0), u32(0))), "Unknown DIFF flags 0x2");
  refuses(() => decodeSync(frame(Type.DIFF, 0x80, u32(0), u32(0))), "Unknown DIFF flags 0x80");
  // The length alone is refused: nothing of that size is read or awaited.
  refuses(
    () => decodeSync(frame(Type.DIFF, 0, u32(MAX_SYNC_FRAME_LENGTH + 1))),
    `Block exceeds ${MAX_SYNC_FRAME_LENGTH} bytes`,
  );
  refuses(
    () => decodeSync(frame(Type.DIFF, 0, u32(0), u32(0xffffffff))),
    `Block exceeds ${MAX_SYNC_FRAME_LENGTH} bytes`,
  );
});

Deno.test("decodeTransfer() takes a parcel of MAX_PARCEL_LENGTH octets in a frame within MAX_FRAME_LENGTH, not one more", () => {
  const largest = encodeTransfer({
    type: "parcel",
    key: KEY,
    copies: 1,
    bytes: bytes(MAX_PARCEL_LENGTH),
  });
  assert.ok(largest.length <= MAX_FRAME_LENGTH, `${largest.length} > ${MAX_FRAME_LENGTH}`);
  const decoded = decodeTransfer(largest);
  assert.equal(decoded.type === "parcel" && decoded.bytes.length, MAX_PARCEL_LENGTH);
  refuses(
    () =>
      decodeTransfer(
        encodeTransfer({
          type: "parcel",
          key: KEY,
          copies: 1,
          bytes: bytes(MAX_PARCEL_LENGTH + 1),
        }),
      ),
    "Parcel frame exceeds the parcel limit",
  );
});

Deno.test("decodeTransfer() refuses an unknown ACK status and an ACK proof over MAX_PROOF_LENGTH", () => {
  refuses(
    () => decodeTransfer(frame(Type.ACK, bytes(32), AckStatus.ALREADY_DELIVERED + 1, u16(0))),
    `Unknown acknowledgement status ${AckStatus.ALREADY_DELIVERED + 1}`,
  );
  refuses(
    () =>
      decodeTransfer(frame(Type.ACK, bytes(32), AckStatus.DELIVERED, u16(MAX_PROOF_LENGTH + 1))),
    `Proof of ${MAX_PROOF_LENGTH + 1} octets exceeds ${MAX_PROOF_LENGTH}`,
  );
  const longest: TransferMessage = {
    type: "ack",
    key: KEY,
    status: AckStatus.DELIVERED,
    proof: bytes(MAX_PROOF_LENGTH, 3),
  };
  assert.deepEqual(decodeTransfer(encodeTransfer(longest)), longest);
});

Deno.test("decoders take ERROR and REFUSE texts up to their limits, in UTF-8 only", () => {
  const text = (length: number) => frame(u16(length), bytes(length, 0x61));
  assert.deepEqual(decodeSync(frame(Type.ERROR, text(1000))), {
    type: "error",
    message: "a".repeat(1000),
  });
  refuses(() => decodeSync(frame(Type.ERROR, text(1001))), "Text field exceeds 1000 bytes");
  refuses(() => decodeTransfer(frame(Type.ERROR, text(1001))), "Text field exceeds 1000 bytes");
  refuses(
    () =>
      decodeTransfer(
        encodeTransfer({
          type: "refuse",
          key: KEY,
          code: "x".repeat(41) as RefusalCode,
          transient: false,
          reason: "",
        }),
      ),
    "Text field exceeds 40 bytes",
  );
  refuses(() => decodeSync(frame(Type.ERROR, u16(2), 0xc3, 0x28)), "Text field is not valid UTF-8");
});

Deno.test("encodeSync() and encodeTransfer() clip texts to 500 octets, at a character boundary", () => {
  const long = "é".repeat(400); // 800 octets
  const sync = decodeSync(encodeSync({ type: "error", message: long }));
  assert.equal(sync.type === "error" && sync.message, "é".repeat(250));
  const refusal = decodeTransfer(
    encodeTransfer({
      type: "refuse",
      key: KEY,
      code: "quota",
      transient: true,
      reason: `x${long}`,
    }),
  );
  // 1 + 249 × 2 octets: a 250th "é" would make 501.
  assert.equal(refusal.type === "refuse" && refusal.reason, `x${"é".repeat(249)}`);
});

Deno.test("The sync frame limit holds the largest SYMBOLS, ITEMS and DIFF a node sends", () => {
  const items = Array.from({ length: 64 }, (_, i) => bytes(ITEM_LENGTH, i));
  const symbols = new Encoder(items, ITEM_LENGTH, 42).produceEncoded(MAX_SYMBOLS_PER_FRAME);
  const symbolsFrame = encodeSync({ type: "symbols", start: 0, symbols });
  assert.ok(symbolsFrame.length <= MAX_SYNC_FRAME_LENGTH, `SYMBOLS of ${symbolsFrame.length}`);
  const decoded = decodeSync(symbolsFrame);
  assert.equal(decoded.type, "symbols");
  assert.equal(
    decoded.type === "symbols" && decodeSymbols(decoded.symbols, ITEM_LENGTH).length,
    MAX_SYMBOLS_PER_FRAME,
  );

  const itemsFrame = encodeSync({ type: "items", items: bytes(MAX_ITEMS * ITEM_LENGTH) });
  assert.ok(itemsFrame.length <= MAX_SYNC_FRAME_LENGTH, `ITEMS of ${itemsFrame.length}`);

  const diff = bytes(MAX_DIFF_ITEMS * ITEM_LENGTH);
  const diffFrame = encodeSync({
    type: "diff",
    initiatorOnly: diff,
    responderOnly: diff,
    truncated: true,
  });
  assert.ok(diffFrame.length <= MAX_SYNC_FRAME_LENGTH, `DIFF of ${diffFrame.length}`);
  assert.deepEqual(decodeSync(diffFrame), {
    type: "diff",
    initiatorOnly: diff,
    responderOnly: diff,
    truncated: true,
  });
});

Deno.test("encodeSync() lays out a version-3 HELLO's interest tokens after its announcements", () => {
  const token = Uint8Array.from({ length: 16 }, (_, i) => 0xa0 + i);
  const encoded = encodeSync({
    type: "hello",
    version: 3,
    salt: 0x01020304,
    itemCount: 7,
    nonce: new Uint8Array(NONCE_LENGTH),
    announcements: [],
    interest: [{ token, seconds: 600 }],
  });
  assert.deepEqual(
    encoded,
    frame(
      Type.HELLO,
      3,
      u32(0x01020304),
      u32(7),
      new Uint8Array(16),
      u16(0),
      u16(1),
      token,
      u32(600),
    ),
  );
  refuses(
    () =>
      decodeSync(
        frame(
          Type.HELLO,
          3,
          u32(0),
          u32(0),
          new Uint8Array(16),
          u16(0),
          u16(MAX_INTEREST_TOKENS + 1),
        ),
      ),
    `HELLO carries ${MAX_INTEREST_TOKENS + 1} interest tokens, over ${MAX_INTEREST_TOKENS}`,
  );
});

Deno.test("interestToken() is the first 16 octets of SHA-256 of the domain, a zero and the id", async () => {
  const channelId = "0" + "ab".repeat(32);
  const input = new TextEncoder().encode(`relaymail/channel-interest/3\0${channelId}`);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", input));
  assert.deepEqual(interestToken(channelId), digest.subarray(0, 16));
  assert.equal(PROTOCOL_VERSION, 3);
  assert.equal(SYNC_PROTOCOL, "/relaymail/mesh/sync/3.0.0");
  assert.equal(TRANSFER_PROTOCOL, "/relaymail/mesh/parcels/3.0.0");
});
