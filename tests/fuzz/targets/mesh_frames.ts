/**
 * Fuzz targets for the mesh frames a peer sends: `decodeSync` and
 * `decodeTransfer` (mesh/wire.ts) and `decodeItem` (mesh/store.ts).
 *
 * The properties never name a message type: valid messages come from the
 * generators below, encoded by the module's own `encodeSync`/`encodeTransfer`,
 * and the error check holds for whatever the decoder returns. When wire.ts gains
 * a message type or a field, extend {@linkcode SYNC_MESSAGES} or
 * {@linkcode TRANSFER_MESSAGES} (the only place that knows the types); a test in
 * mesh_frames_test.ts fails while a type byte of `Type` has no generator.
 *
 * @module
 */
import { isDeepStrictEqual } from "node:util";
import type { RefusalCode } from "../../../bindings/binding.ts";
import {
  decodeProof,
  encodeProof,
  MAX_PUBLIC_KEY_LENGTH,
  MAX_SIGNATURE_LENGTH,
  TAG_LENGTH,
} from "../../../mesh/proofs.ts";
import { decodeItem, encodeItem, type Item, ITEM_LENGTH } from "../../../mesh/store.ts";
import {
  AckStatus,
  decodeSync,
  decodeTransfer,
  encodeSync,
  encodeTransfer,
  INTEREST_TOKEN_LENGTH,
  MAX_ENDPOINTS,
  MAX_INTEREST_TOKENS,
  MAX_PROOF_LENGTH,
  MAX_PROOFS_PER_MESSAGE,
  MAX_SEALED_CLAIM_LENGTH,
  NONCE_LENGTH,
  PROTOCOL_VERSION,
  ProtocolError,
  type SyncMessage,
  type TransferMessage,
} from "../../../mesh/wire.ts";
import { expectOnly, type Target } from "../_harness.ts";
import { hex, mutate, type Rng, TEXT_ALPHABET } from "../_rng.ts";

/** The errors a frame decoder may throw on bad input. */
export const FRAME_ERRORS = [ProtocolError, RangeError] as const;

/** Refusal codes of bindings/binding.ts, as REFUSE carries them (the type checks the list). */
const REFUSAL_CODES: readonly RefusalCode[] = [
  "too-large",
  "malformed",
  "bad-signature",
  "expired",
  "future-dated",
  "unauthorized",
  "blocked",
  "duplicate",
  "invitation-used",
  "invitation-expired",
  "undecryptable",
  "bad-content",
  "quota",
  "rate-limited",
];

/**
 * Longest ERROR or REFUSE text the encoders write whole, in octets of UTF-8: they
 * clip a longer one at a character boundary (mesh/wire.ts; the decoders take up
 * to 1 000).
 */
export const MAX_TEXT_OCTETS = 500;

/** Well-formed text of at most `maxChars` UTF-16 units and `maxOctets` octets of UTF-8. */
export function validText(rng: Rng, maxChars: number, maxOctets: number): string {
  const parts: string[] = [];
  let units = 0;
  let octets = 0;
  for (let n = rng.size(maxChars); n > 0; n--) {
    const i = rng.int(TEXT_ALPHABET.length);
    const char = TEXT_ALPHABET[i];
    if (octets + OCTETS[i] > maxOctets || units + char.length > maxChars) break;
    parts.push(char);
    units += char.length;
    octets += OCTETS[i];
  }
  return parts.join("");
}

/** UTF-8 octets of each character of {@linkcode TEXT_ALPHABET}. */
const OCTETS = TEXT_ALPHABET.map((c) => new TextEncoder().encode(c).length);

const key = (rng: Rng) => hex(rng.bytes(32));
const u32 = (rng: Rng) => rng.chance(0.2) ? rng.pick([0, 1, 0x7fffffff, 0xffffffff]) : rng.u32();
/** Whole seconds within uint32, as the wire carries dates. */
const seconds = (rng: Rng) => new Date(u32(rng) * 1000);

/** An encoded delivery proof: usually as mesh/proofs.ts writes one, else any octets. */
function proofBytes(rng: Rng, minLength: number): Uint8Array {
  if (rng.chance(0.7)) {
    return encodeProof({
      key: key(rng),
      publicKey: rng.bytes(rng.size(MAX_PUBLIC_KEY_LENGTH)),
      signature: rng.bytes(rng.size(MAX_SIGNATURE_LENGTH)),
    });
  }
  return rng.bytes(minLength + rng.size(MAX_PROOF_LENGTH - minLength));
}

/**
 * One generator per sync message type: a valid message, within every limit the
 * decoder enforces (a HELLO of this protocol version) and what the encoder keeps
 * whole (ERROR text of at most {@linkcode MAX_TEXT_OCTETS}).
 */
export const SYNC_MESSAGES: Record<string, (rng: Rng) => SyncMessage> = {
  hello: (rng) => ({
    type: "hello",
    version: PROTOCOL_VERSION,
    salt: u32(rng),
    itemCount: u32(rng),
    nonce: rng.bytes(NONCE_LENGTH),
    announcements: Array.from({ length: rng.size(rng.chance(0.05) ? MAX_ENDPOINTS : 6) }, () => ({
      tag: rng.bytes(TAG_LENGTH),
      sealed: rng.bytes(rng.size(rng.chance(0.1) ? MAX_SEALED_CLAIM_LENGTH : 300)),
    })),
    // Version 3's interest tokens; none is the same frame as an empty list.
    ...(rng.chance(0.5) ? {} : {
      interest: Array.from(
        { length: 1 + rng.int(rng.chance(0.05) ? MAX_INTEREST_TOKENS : 6) },
        () => ({ token: rng.bytes(INTEREST_TOKEN_LENGTH), seconds: u32(rng) }),
      ),
    }),
  }),
  symbols: (rng) => ({ type: "symbols", start: u32(rng), symbols: rng.bytes(49 * rng.size(40)) }),
  items: (rng) => ({ type: "items", items: rng.bytes(ITEM_LENGTH * rng.size(40)) }),
  more: () => ({ type: "more" }),
  diff: (rng) => ({
    type: "diff",
    truncated: rng.chance(0.5),
    initiatorOnly: rng.bytes(ITEM_LENGTH * rng.size(20)),
    responderOnly: rng.bytes(ITEM_LENGTH * rng.size(20)),
  }),
  proofs: (rng) => ({
    type: "proofs",
    proofs: Array.from({ length: rng.size(rng.chance(0.02) ? MAX_PROOFS_PER_MESSAGE : 5) }, () => ({
      expiresAt: seconds(rng),
      proof: proofBytes(rng, 0),
    })),
  }),
  error: (rng) => ({ type: "error", message: validText(rng, MAX_TEXT_OCTETS, MAX_TEXT_OCTETS) }),
};

/** One generator per transfer message type, as {@linkcode SYNC_MESSAGES}. */
export const TRANSFER_MESSAGES: Record<string, (rng: Rng) => TransferMessage> = {
  parcel: (rng) => ({
    type: "parcel",
    key: key(rng),
    copies: rng.int(65536),
    bytes: rng.bytes(rng.size(4096)),
  }),
  post: (rng) => ({ type: "post", key: key(rng), bytes: rng.bytes(rng.size(4096)) }),
  ack: (rng) => {
    const status = rng.pick(Object.values(AckStatus));
    // An empty proof is the same frame as none: a valid ACK has one or none.
    return rng.chance(0.5)
      ? { type: "ack", key: key(rng), status, proof: proofBytes(rng, 1) }
      : { type: "ack", key: key(rng), status };
  },
  refuse: (rng) => ({
    type: "refuse",
    key: key(rng),
    code: rng.pick(REFUSAL_CODES),
    transient: rng.chance(0.5),
    reason: validText(rng, MAX_TEXT_OCTETS, MAX_TEXT_OCTETS),
  }),
  progress: (rng) => ({ type: "progress", received: u32(rng) }),
  error: (rng) => ({ type: "error", message: validText(rng, MAX_TEXT_OCTETS, MAX_TEXT_OCTETS) }),
};

/** A valid sync message of a random type. */
export function syncMessage(rng: Rng): SyncMessage {
  return rng.pick(Object.values(SYNC_MESSAGES))(rng);
}

/** A valid transfer message of a random type. */
export function transferMessage(rng: Rng): TransferMessage {
  return rng.pick(Object.values(TRANSFER_MESSAGES))(rng);
}

/** A valid item (whole seconds, within uint32). */
export function item(rng: Rng): Item {
  return {
    kind: rng.pick([0, 1, 2] as const),
    key: key(rng),
    expiresAt: seconds(rng),
  };
}

/** Random octets, a valid frame, or a mutated valid frame. */
function frameInput(rng: Rng, valid: (rng: Rng) => Uint8Array): Uint8Array {
  const roll = rng.float();
  if (roll < 0.15) return rng.bytes(rng.size(600));
  if (roll < 0.25) return valid(rng);
  const donors = [valid(rng), valid(rng)];
  return mutate(rng, valid(rng), { donors, maxGrowth: 80 });
}

/**
 * The decoders return, or throw ProtocolError or RangeError, on any octets; what
 * they return the encoder takes back.
 */
function checkFrame<M>(
  frame: Uint8Array,
  decode: (frame: Uint8Array) => M,
  encode: (message: M) => Uint8Array,
): void {
  const outcome = expectOnly(() => decode(frame), FRAME_ERRORS);
  if (outcome.ok) encode(outcome.value);
}

/** Checks decode(encode(m)) deep-equals m. */
function checkRoundTrip<M>(
  message: M,
  encode: (message: M) => Uint8Array,
  decode: (frame: Uint8Array) => M,
): void {
  const decoded = decode(encode(message));
  if (!isDeepStrictEqual(normalise(decoded), normalise(message))) {
    throw new Error(`Round trip changed the message: got ${show(decoded)}`);
  }
}

/** Octets as plain Uint8Arrays (the decoder returns views into the frame). */
function normalise(value: unknown): unknown {
  if (value instanceof Uint8Array) return new Uint8Array(value);
  if (Array.isArray(value)) return value.map(normalise);
  if (value && typeof value === "object" && !(value instanceof Date)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalise(v)]));
  }
  return value;
}

/** A message as JSON with octets in hex. */
export function show(value: unknown): string {
  return JSON.stringify(value, (_key, v) => v instanceof Uint8Array ? `hex:${hex(v)}` : v);
}

/** Characters of two to four UTF-8 octets. */
const WIDE_ALPHABET = ["é", "€", "中", "\u{1f600}", "\u{10ffff}"];

/** A message whose texts are anything a caller may hand the encoder. */
function anyTextMessage(rng: Rng): SyncMessage | TransferMessage {
  const alphabet = rng.pick([TEXT_ALPHABET, WIDE_ALPHABET]);
  const text = () => rng.text(rng.chance(0.5) ? rng.range(200, 700) : rng.size(60), alphabet);
  return rng.pick<() => SyncMessage | TransferMessage>([
    () => ({ type: "error", message: text() }),
    () => ({ ...TRANSFER_MESSAGES.refuse(rng), reason: text() }),
  ])();
}

/** Octets of `text` in UTF-8. */
const utf8Length = (text: string) => new TextEncoder().encode(text).length;

/**
 * Throws unless `received` is `sent` as the encoders must write it: whole if it
 * fits in {@linkcode MAX_TEXT_OCTETS}, else its longest prefix of whole characters
 * that fits.
 */
export function checkClipped(sent: string, received: string): void {
  const got = JSON.stringify(received);
  if (utf8Length(sent) <= MAX_TEXT_OCTETS) {
    if (received !== sent) throw new Error(`A text that fits came back changed: ${got}`);
    return;
  }
  if (!sent.startsWith(received)) {
    throw new Error(`The clipped text is not a prefix of the original: ${got}`);
  }
  const octets = utf8Length(received);
  if (octets > MAX_TEXT_OCTETS) {
    throw new Error(`The clipped text has ${octets} octets, over ${MAX_TEXT_OCTETS}: ${got}`);
  }
  const next = String.fromCodePoint(sent.codePointAt(received.length)!);
  if (octets + utf8Length(next) <= MAX_TEXT_OCTETS) {
    throw new Error(`The text was clipped short, at ${octets} octets: ${got}`);
  }
}

/** The text of an ERROR or REFUSE. */
const textOf = (message: SyncMessage | TransferMessage) =>
  message.type === "refuse" ? message.reason : message.type === "error" ? message.message : "";

const module = import.meta.url;

export const targets: Target[] = [
  {
    name: "wire-sync-decode",
    module,
    property: "decodeSync() returns or throws ProtocolError/RangeError on any octets",
    cases: 10_000,
    generate: (rng) => frameInput(rng, (r) => encodeSync(syncMessage(r))),
    check: (frame: Uint8Array) => checkFrame(frame, decodeSync, encodeSync),
    show: hex,
  },
  {
    name: "wire-transfer-decode",
    module,
    property: "decodeTransfer() returns or throws ProtocolError/RangeError on any octets",
    cases: 10_000,
    generate: (rng) => frameInput(rng, (r) => encodeTransfer(transferMessage(r))),
    check: (frame: Uint8Array) => checkFrame(frame, decodeTransfer, encodeTransfer),
    show: hex,
  },
  {
    name: "wire-sync-roundtrip",
    module,
    property: "decodeSync(encodeSync(m)) deep-equals m",
    cases: 10_000,
    generate: syncMessage,
    check: (message: SyncMessage) => checkRoundTrip(message, encodeSync, decodeSync),
    show,
  },
  {
    name: "wire-transfer-roundtrip",
    module,
    property: "decodeTransfer(encodeTransfer(m)) deep-equals m",
    cases: 10_000,
    generate: transferMessage,
    check: (message: TransferMessage) => checkRoundTrip(message, encodeTransfer, decodeTransfer),
    show,
  },
  {
    name: "wire-encoder-output-decodes",
    module,
    property:
      "whatever text encodeSync()/encodeTransfer() are given, their frame decodes to it, clipped to 500 octets",
    cases: 10_000,
    generate: anyTextMessage,
    check: (message: SyncMessage | TransferMessage) => {
      if (message.type === "refuse") {
        return checkClipped(message.reason, textOf(decodeTransfer(encodeTransfer(message))));
      }
      const error = message as { type: "error"; message: string };
      for (
        const received of [decodeSync(encodeSync(error)), decodeTransfer(encodeTransfer(error))]
      ) {
        checkClipped(error.message, textOf(received));
      }
    },
    show,
  },
  {
    name: "proof-decode",
    module,
    property: "decodeProof() returns or throws RangeError on any octets; proofs round-trip",
    cases: 10_000,
    generate: (rng) => frameInput(rng, (r) => proofBytes(r, 0)),
    check: (input: Uint8Array) => {
      const outcome = expectOnly(() => decodeProof(input), [RangeError]);
      if (outcome.ok && !isDeepStrictEqual(encodeProof(outcome.value), input)) {
        throw new Error("Decoded proof re-encodes differently");
      }
    },
    show: hex,
  },
  {
    name: "store-item-decode",
    module,
    property: "decodeItem() returns or throws RangeError on any octets; items round-trip",
    cases: 10_000,
    generate: (rng) => rng.chance(0.3) ? item(rng) : frameInput(rng, (r) => encodeItem(item(r))),
    check: (input: Item | Uint8Array) => {
      if (!(input instanceof Uint8Array)) return checkRoundTrip(input, encodeItem, decodeItem);
      const outcome = expectOnly(() => decodeItem(input), [RangeError]);
      if (outcome.ok && !isDeepStrictEqual(encodeItem(outcome.value), input)) {
        throw new Error("Decoded item re-encodes differently");
      }
    },
    show: (input) => input instanceof Uint8Array ? hex(input) : show(input),
  },
];
