/**
 * Fuzz targets for Relaymail's service messages (app/core/protocol/messages.ts) and the
 * DER readers under them (app/core/protocol/der.ts): a parcel's plaintext is whatever
 * its sender wrote, so decoding it must end in a message or a
 * `MalformedStructureError`.
 *
 * @module
 */
import { isDeepStrictEqual } from "node:util";
import {
  bytesField,
  encodeSequence,
  type Field,
  Fields,
  listField,
  MalformedStructureError,
  sequence,
  textField,
  timeField,
} from "../../../app/core/protocol/der.ts";
import {
  decodeMail,
  decodePairing,
  decodeReceipt,
  encodeMail,
  encodePairing,
  encodeReceipt,
  MAIL_LIMITS,
  type MailContent,
  MAX_PROOF_LENGTH,
  PAIRING_LIMITS,
  type PairingContent,
  type ReceiptContent,
} from "../../../app/core/protocol/messages.ts";
import { expectOnly, type Target } from "../_harness.ts";
import { derNodes, hex, mutate, mutateDer, type Rng, TEXT_ALPHABET } from "../_rng.ts";
import { validText } from "./mesh_frames.ts";

const ERRORS = [MalformedStructureError] as const;

/** A date DER can carry: years 1970 to 9999, to the millisecond. */
function date(rng: Rng): Date {
  return new Date(
    rng.chance(0.1) ? rng.pick([0, 1, 999, 253402300799999]) : rng.int(253402300800000),
  );
}

const id = (rng: Rng) => validText(rng, MAIL_LIMITS.idLength, MAIL_LIMITS.idLength);

/** A valid mail, within {@linkcode MAIL_LIMITS}. */
export function mail(rng: Rng): MailContent {
  const messageId = id(rng) || "m";
  return {
    messageId,
    threadId: id(rng) || messageId,
    inReplyTo: id(rng),
    sentAt: date(rng),
    subject: validText(rng, MAIL_LIMITS.subjectLength, MAIL_LIMITS.subjectLength * 4),
    body: validText(rng, 3000, 12_000),
    recipients: Array.from(
      { length: rng.size(MAIL_LIMITS.recipients) },
      () => validText(rng, 130, 130),
    ),
    attachments: Array.from(
      { length: rng.size(rng.chance(0.05) ? MAIL_LIMITS.attachments : 4) },
      () => ({
        fileName: validText(rng, MAIL_LIMITS.fileNameLength, MAIL_LIMITS.fileNameLength * 4),
        mediaType: validText(rng, MAIL_LIMITS.mediaTypeLength, MAIL_LIMITS.mediaTypeLength),
        content: rng.bytes(rng.size(2000)),
      }),
    ),
  };
}

/** A valid pairing request or accept. */
export function pairing(rng: Rng): PairingContent {
  return {
    connectionParams: rng.bytes(rng.size(16_384)),
    nameHint: validText(rng, 200, 200),
    // Written even when empty, so it always reads back as a list.
    authorizations: Array.from(
      { length: rng.size(rng.chance(0.05) ? PAIRING_LIMITS.authorizations : 3) },
      () => rng.bytes(1 + rng.size(PAIRING_LIMITS.authorizationLength - 1)),
    ),
    // Left out when empty, and read back as empty (docs/protocol.md §3.4).
    mail: Array.from({ length: rng.size(3) }, () => rng.bytes(1 + rng.size(4000))),
    // Left out when absent (an older acceptor, or an accept), and read back as absent.
    proof: rng.chance(0.5) ? rng.bytes(1 + rng.size(MAX_PROOF_LENGTH - 1)) : undefined,
  };
}

/** A valid receipt. */
export function receipt(rng: Rng): ReceiptContent {
  return {
    messageIds: Array.from({ length: rng.size(rng.chance(0.02) ? 10_000 : 20) }, () => id(rng)),
    receivedAt: date(rng),
  };
}

interface Kind<M> {
  readonly generate: (rng: Rng) => M;
  readonly encode: (message: M) => Uint8Array;
  readonly decode: (bytes: Uint8Array) => M;
}

/** Every service message content type: extend here when messages.ts gains one. */
// deno-lint-ignore no-explicit-any
export const KINDS: Record<string, Kind<any>> = {
  mail: { generate: mail, encode: encodeMail, decode: decodeMail },
  pairing: { generate: pairing, encode: encodePairing, decode: decodePairing },
  receipt: { generate: receipt, encode: encodeReceipt, decode: decodeReceipt },
};

interface DecodeCase {
  readonly kind: string;
  readonly bytes: Uint8Array;
}

/** Random octets, a valid message of any kind (read as any kind), or a mutant of one. */
function decodeCase(rng: Rng): DecodeCase {
  const kind = rng.pick(Object.keys(KINDS));
  const valid = () => {
    const other = KINDS[rng.chance(0.8) ? kind : rng.pick(Object.keys(KINDS))];
    return other.encode(other.generate(rng));
  };
  const roll = rng.float();
  let bytes: Uint8Array;
  if (roll < 0.1) bytes = rng.bytes(rng.size(300));
  else if (roll < 0.2) bytes = valid();
  else if (roll < 0.6) {
    bytes = valid();
    for (let m = 1 + rng.int(3); m > 0; m--) bytes = mutateDer(rng, bytes, derNodes(bytes));
  } else bytes = mutate(rng, valid(), { donors: [valid()], maxGrowth: 64 });
  return { kind, bytes };
}

/**
 * Any structure of context-tagged fields, primitive or constructed, nested, with
 * text, times, octets and sequences: what der.ts readers may be pointed at.
 */
function anyField(rng: Rng, tag: number, depth: number): Field {
  switch (rng.int(depth > 2 ? 4 : 7)) {
    case 0:
      return textField(tag, rng.text(rng.size(40), TEXT_ALPHABET));
    case 1:
      return rng.chance(0.5) ? timeField(tag, date(rng)) : textField(
        tag,
        rng.pick([
          "20261129194318Z",
          "20261129194318.5Z",
          "20261129194318.123Z",
          "20261129194318.1234Z",
          "20261329194318Z",
          "99999999999999Z",
          "2026112919431Z",
          "",
        ]),
      );
    case 2:
      return bytesField(tag, rng.bytes(rng.size(40)));
    case 3: // not valid UTF-8
      return bytesField(tag, new Uint8Array([0xff, 0xfe, 0xc3]).subarray(0, 1 + rng.int(3)));
    case 4:
      return listField(
        tag,
        Array.from(
          { length: rng.size(5) },
          (_, i) => anyField(rng, rng.chance(0.8) ? 0 : i, depth + 1),
        ),
      );
    case 5:
      return listField(
        tag,
        Array.from(
          { length: rng.size(4) },
          () =>
            sequence(Array.from({ length: rng.size(4) }, (_, i) => anyField(rng, i, depth + 1))),
        ),
      );
    default:
      return sequence(Array.from({ length: rng.size(4) }, (_, i) => anyField(rng, i, depth + 1)));
  }
}

interface FieldsCase {
  readonly bytes: Uint8Array;
  /** Reader calls: method, tag, and limits. */
  readonly reads: { method: string; tag: number; max: number; maxLength: number }[];
}

function fieldsCase(rng: Rng): FieldsCase {
  let bytes = encodeSequence(
    Array.from(
      { length: rng.size(8) },
      (_, i) => anyField(rng, rng.chance(0.9) ? i : rng.int(40), 0),
    ),
  );
  if (rng.chance(0.5)) bytes = rng.chance(0.5) ? mutateDer(rng, bytes) : mutate(rng, bytes);
  const methods = ["bytes", "text", "time", "list", "textList", "sequenceList"];
  return {
    bytes,
    reads: Array.from({ length: 1 + rng.int(6) }, () => ({
      method: rng.pick(methods),
      tag: rng.int(9),
      max: rng.pick([0, 1, 3, 100, Infinity]),
      maxLength: rng.pick([0, 5, 64, Infinity]),
    })),
  };
}

/** Calls every reader asked for; nested sequences get read too. */
function readFields(fields: Fields, reads: FieldsCase["reads"]): void {
  for (const read of reads) {
    expectOnly(() => {
      switch (read.method) {
        case "bytes":
          return fields.bytes(read.tag, "f", read.maxLength);
        case "text":
          return fields.text(read.tag, "f", read.maxLength);
        case "time":
          return fields.time(read.tag, "f");
        case "list":
          return fields.list(read.tag, "f", read.max);
        case "textList":
          return fields.textList(read.tag, "f", read.max, read.maxLength);
        default:
          for (const nested of fields.sequenceList(read.tag, "f", read.max)) {
            readFields(nested, reads.filter((r) => r !== read));
          }
      }
    }, ERRORS);
  }
}

const module = import.meta.url;

export const targets: Target[] = [
  {
    name: "service-message-decode",
    module,
    property:
      "decodeMail/decodePairing/decodeReceipt return or throw MalformedStructureError on any octets",
    cases: 10_000,
    generate: decodeCase,
    check: (input: DecodeCase) => {
      const kind = KINDS[input.kind];
      const outcome = expectOnly(() => kind.decode(input.bytes), ERRORS);
      // What decodes is a message its encoder takes back.
      if (outcome.ok) kind.encode(outcome.value);
    },
    show: (input: DecodeCase) => `${input.kind}: ${hex(input.bytes)}`,
  },
  {
    name: "service-message-roundtrip",
    module,
    property: "decode(encode(m)) deep-equals m for every valid service message",
    cases: 10_000,
    generate: (rng) => {
      const kind = rng.pick(Object.keys(KINDS));
      return { kind, message: KINDS[kind].generate(rng) };
    },
    check: (input: { kind: string; message: unknown }) => {
      const kind = KINDS[input.kind];
      const decoded = kind.decode(kind.encode(input.message));
      if (!isDeepStrictEqual(decoded, input.message)) {
        throw new Error(
          `Round trip changed the ${input.kind}: ${JSON.stringify(decoded).slice(0, 500)}`,
        );
      }
    },
    show: (input: { kind: string; message: unknown }) =>
      JSON.stringify(input, (_k, v) => v instanceof Uint8Array ? `hex:${hex(v)}` : v),
  },
  {
    name: "der-fields",
    module,
    property: "Fields.decode() and every Fields reader throw only MalformedStructureError",
    cases: 10_000,
    generate: fieldsCase,
    check: (input: FieldsCase) => {
      const fields = expectOnly(() => Fields.decode("Fuzz", input.bytes), ERRORS);
      if (fields.ok) readFields(fields.value, input.reads);
    },
    show: (input: FieldsCase) => `${JSON.stringify(input.reads)}: ${hex(input.bytes)}`,
  },
];
