/**
 * The small DER vocabulary Relaymail's service messages use: a SEQUENCE whose
 * fields carry IMPLICIT context-specific tags [0], [1], … in order, as Relaynet's
 * own structures do. Strings are UTF-8, times are GeneralizedTime in UTC with
 * optional milliseconds (`YYYYMMDDHHMMSS[.fff]Z`), lists are constructed fields holding elements
 * tagged [0]. Decoding takes DER only (docs/protocol.md §1.1), not the wider BER.
 *
 * @module
 */
import * as asn1js from "asn1js";

/** asn1js's numbers for the tag classes: the two high bits of a tag's first octet, plus one. */
const UNIVERSAL = 1;
const CONTEXT = 3;

/** Raised when a structure cannot be decoded; the message names the structure and field. */
export class MalformedStructureError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "MalformedStructureError";
  }
}

/** A field of a structure, encoded. */
export type Field = asn1js.BaseBlock;

/** An implicitly tagged OCTET STRING (or any primitive) holding `bytes`. */
export function bytesField(tag: number, bytes: Uint8Array): Field {
  return new asn1js.Primitive({
    idBlock: { tagClass: CONTEXT, tagNumber: tag },
    valueHex: new Uint8Array(bytes).buffer as ArrayBuffer,
  });
}

/** An implicitly tagged UTF8String. */
export function textField(tag: number, text: string): Field {
  return bytesField(tag, new TextEncoder().encode(text));
}

/**
 * An implicitly tagged GeneralizedTime, to the millisecond (DER: no trailing zeros).
 * Throws a RangeError for a date outside the years 0000 to 9999, which it cannot hold.
 */
export function timeField(tag: number, date: Date): Field {
  const year = date.getUTCFullYear();
  if (!(year >= 0 && year <= 9999)) {
    const shown = isNaN(year) ? "an invalid Date" : date.toISOString();
    throw new RangeError(
      `Cannot write ${shown} as a GeneralizedTime: its year must be 0000 to 9999`,
    );
  }
  const iso = date.toISOString(); // 2026-11-26T00:58:38.120Z
  const fraction = iso.slice(20, 23).replace(/0+$/, "");
  const text = iso.slice(0, 19).replace(/[-:T]/g, "") + (fraction ? `.${fraction}` : "") + "Z";
  return textField(tag, text);
}

/** An implicitly tagged constructed field holding `items` in order. */
export function listField(tag: number, items: readonly Field[]): Field {
  return new asn1js.Constructed({
    idBlock: { tagClass: CONTEXT, tagNumber: tag },
    value: [...items],
  });
}

/** A (universal) SEQUENCE of fields, as an element of a list. */
export function sequence(fields: readonly Field[]): Field {
  return new asn1js.Sequence({ value: [...fields] });
}

/** A SEQUENCE of fields, DER-encoded. */
export function encodeSequence(fields: readonly Field[]): Uint8Array {
  return new Uint8Array(sequence(fields).toBER(false));
}

/** The fields of a decoded SEQUENCE, read by tag. */
export class Fields {
  readonly #byTag = new Map<number, asn1js.BaseBlock>();

  constructor(readonly structure: string, items: readonly asn1js.BaseBlock[]) {
    for (const item of items) {
      if (item.idBlock.tagClass !== CONTEXT) continue;
      const tag = item.idBlock.tagNumber;
      // Which of two copies counts would be the reader's guess: refuse both.
      if (this.#byTag.has(tag)) {
        throw new MalformedStructureError(`${structure} has field [${tag}] twice`);
      }
      this.#byTag.set(tag, item);
    }
  }

  /** Decodes `bytes` as a SEQUENCE named `structure` (for error messages). */
  static decode(structure: string, bytes: Uint8Array): Fields {
    let parsed: ReturnType<typeof asn1js.fromBER>;
    try {
      parsed = asn1js.fromBER(new Uint8Array(bytes).buffer as ArrayBuffer);
    } catch (error) {
      // asn1js throws on some damaged input instead of reporting it.
      throw new MalformedStructureError(`${structure} is not a DER SEQUENCE`, { cause: error });
    }
    if (parsed.offset === -1 || !(parsed.result instanceof asn1js.Sequence)) {
      throw new MalformedStructureError(`${structure} is not a DER SEQUENCE`);
    }
    if (parsed.offset !== bytes.byteLength) {
      throw new MalformedStructureError(`${structure} has trailing bytes after its SEQUENCE`);
    }
    checkDer(structure, bytes);
    return new Fields(structure, parsed.result.valueBlock.value);
  }

  /** Whether field `tag` is present (for fields a later version added). */
  has(tag: number): boolean {
    return this.#byTag.has(tag);
  }

  #field(tag: number, name: string): asn1js.BaseBlock {
    const item = this.#byTag.get(tag);
    if (!item) throw new MalformedStructureError(`${this.structure} lacks field ${name} [${tag}]`);
    return item;
  }

  /** The bytes of primitive field `tag`. */
  bytes(tag: number, name: string, maxLength = Infinity): Uint8Array {
    const item = this.#field(tag, name);
    if (item.idBlock.isConstructed) {
      throw new MalformedStructureError(
        `${this.structure} field ${name} [${tag}] must be primitive`,
      );
    }
    const bytes = new Uint8Array((item as asn1js.Primitive).valueBlock.valueHexView);
    if (bytes.byteLength > maxLength) {
      throw new MalformedStructureError(
        `${this.structure} field ${name} exceeds ${maxLength} bytes: it has ${bytes.byteLength}`,
      );
    }
    return bytes;
  }

  /** The UTF-8 text of field `tag`. */
  text(tag: number, name: string, maxLength = Infinity): string {
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(this.bytes(tag, name, maxLength));
    } catch (error) {
      if (error instanceof MalformedStructureError) throw error;
      throw new MalformedStructureError(`${this.structure} field ${name} is not valid UTF-8`);
    }
  }

  /** The time in field `tag`: a DER GeneralizedTime in UTC that names a real instant. */
  time(tag: number, name: string): Date {
    const text = this.text(tag, name, 32);
    const field = `${this.structure} field ${name}`;
    const match = GENERALIZED_TIME.exec(text);
    if (!match) {
      throw new MalformedStructureError(
        `${field} is not a GeneralizedTime: ${JSON.stringify(text)}`,
      );
    }
    const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number);
    const fraction = match[7] ?? "";
    if (fraction.endsWith("0")) {
      throw new MalformedStructureError(
        `${field} is not DER: ${JSON.stringify(text)} has a trailing zero in its fraction`,
      );
    }
    // Date.UTC would roll month 13 into next year and read years 0–99 as 1900–1999.
    const days = daysInMonth(year, month);
    const wrong = month < 1 || month > 12
      ? `month ${month}`
      : day < 1 || day > days
      ? `day ${day} in a month of ${days} days`
      : hour > 23
      ? `hour ${hour}`
      : minute > 59
      ? `minute ${minute}`
      : second > 59 // a leap second: a Date cannot hold one
      ? `second ${second}`
      : undefined;
    if (wrong) {
      throw new MalformedStructureError(
        `${field} is not a valid date: ${JSON.stringify(text)} has ${wrong}`,
      );
    }
    const date = new Date(0);
    date.setUTCFullYear(year, month - 1, day);
    date.setUTCHours(hour, minute, second, Number(fraction.padEnd(3, "0")));
    return date;
  }

  /** The elements of constructed field `tag`, at most `maxItems`. */
  list(tag: number, name: string, maxItems = Infinity): asn1js.BaseBlock[] {
    const item = this.#field(tag, name);
    if (!item.idBlock.isConstructed) {
      throw new MalformedStructureError(
        `${this.structure} field ${name} [${tag}] must be constructed`,
      );
    }
    const items = (item as asn1js.Constructed).valueBlock.value;
    if (items.length > maxItems) {
      throw new MalformedStructureError(
        `${this.structure} field ${name} exceeds ${maxItems} items: it has ${items.length}`,
      );
    }
    return items;
  }

  /** The elements of list field `tag` read as UTF-8 strings. */
  textList(tag: number, name: string, maxItems = Infinity, maxLength = Infinity): string[] {
    return this.list(tag, name, maxItems).map((item, index) =>
      new Fields(this.structure, [item]).text(
        item.idBlock.tagNumber,
        `${name}[${index}]`,
        maxLength,
      )
    );
  }

  /** The elements of list field `tag` read as nested SEQUENCEs. */
  sequenceList(tag: number, name: string, maxItems = Infinity): Fields[] {
    return this.list(tag, name, maxItems).map((item, index) => {
      if (!(item instanceof asn1js.Sequence)) {
        throw new MalformedStructureError(
          `${this.structure} field ${name}[${index}] must be a SEQUENCE`,
        );
      }
      return new Fields(`${this.structure}.${name}[${index}]`, item.valueBlock.value);
    });
  }
}

/** `YYYYMMDDHHMMSS[.f{1,3}]Z` (docs/protocol.md §1.1); DER and range are checked apart. */
const GENERALIZED_TIME = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.(\d{1,3}))?Z$/;

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/** Universal types whose encoding is constructed (X.690 §8.9, §8.11, §8.18, §8.19, §8.23). */
const CONSTRUCTED_UNIVERSAL = new Set([8, 11, 16, 17, 29]);

/** Where an element sits, kept as links so deep nesting costs nothing until an error names it. */
interface Place {
  readonly parent: Place | null;
  readonly segment: string;
  /** Whether it is a universal SEQUENCE, whose context-tagged children are fields. */
  readonly sequence: boolean;
}

function describe(place: Place): string {
  if (place.parent === null) return "the outer SEQUENCE";
  const segments: string[] = [];
  for (let at: Place | null = place; at?.parent; at = at.parent) segments.unshift(at.segment);
  return segments.join(" ");
}

/**
 * Refuses what BER allows and DER does not (X.690 §10.1, §10.2): a length or tag
 * number written in more octets than it needs, the indefinite length, an
 * end-of-contents marker, and a universal type in the wrong form. asn1js reads BER
 * and takes them all; we refuse them so that a message has one encoding, and so we
 * read what another implementation of docs/protocol.md reads. `bytes` has already
 * parsed as BER, so running out of input here is only a safeguard.
 */
function checkDer(structure: string, bytes: Uint8Array): void {
  const notDer = (problem: string) =>
    new MalformedStructureError(`${structure} is not DER: ${problem}`);
  const truncated = () => new MalformedStructureError(`${structure} is not a DER SEQUENCE`);
  const octet = (at: number, end: number): number => {
    if (at >= end) throw truncated();
    return bytes[at];
  };

  // Depth first, in the order of the encoding, without recursion: nesting may be deep.
  const stack: { pos: number; end: number; place: Place | null; index: number }[] = [
    { pos: 0, end: bytes.byteLength, place: null, index: 0 },
  ];
  while (stack.length > 0) {
    const frame = stack.at(-1)!;
    if (frame.pos >= frame.end) {
      stack.pop();
      continue;
    }
    let at = frame.pos;
    const first = octet(at++, frame.end);
    const tagClass = (first >> 6) + 1;
    const constructed = (first & 0x20) !== 0;
    let tagNumber = first & 0x1f;
    let minimalTag = true;
    if (tagNumber === 0x1f) {
      let next = octet(at++, frame.end);
      minimalTag = next !== 0x80; // a leading zero group
      tagNumber = next & 0x7f;
      while (next & 0x80) {
        next = octet(at++, frame.end);
        tagNumber = tagNumber * 128 + (next & 0x7f);
      }
      if (tagNumber < 0x1f) minimalTag = false;
    }
    const parent = frame.place;
    const place: Place = parent === null ? { parent: null, segment: "", sequence: true } : {
      parent,
      segment: parent.sequence
        ? tagClass === CONTEXT ? `field [${tagNumber}]` : `item ${frame.index}`
        : `element ${frame.index}`,
      sequence: tagClass === UNIVERSAL && tagNumber === 16,
    };
    frame.index++;
    if (!minimalTag) throw notDer(`the tag of ${describe(place)} is not in minimal form`);

    const lengthOctet = octet(at++, frame.end);
    let length = lengthOctet;
    if (lengthOctet === 0x80) throw notDer(`${describe(place)} has an indefinite length`);
    if (lengthOctet > 0x80) {
      const count = lengthOctet & 0x7f;
      if (count > 6) throw truncated(); // more than the 2^48 octets anyone sends
      length = 0;
      for (let i = 0; i < count; i++) length = length * 256 + octet(at++, frame.end);
      if (octet(at - count, frame.end) === 0 || length < 0x80) {
        throw notDer(`the length of ${describe(place)} is not in minimal form`);
      }
    }
    if (length > frame.end - at) throw truncated();
    frame.pos = at + length;

    if (tagClass === UNIVERSAL && tagNumber === 0) {
      throw notDer(`${describe(place)} is an end-of-contents marker, which DER never writes`);
    }
    if (tagClass === UNIVERSAL && tagNumber < 0x1f) {
      const must = CONSTRUCTED_UNIVERSAL.has(tagNumber);
      if (must !== constructed) {
        const form = must ? "constructed" : "primitive";
        throw notDer(`${describe(place)} is universal type ${tagNumber} and must be ${form}`);
      }
    }
    if (constructed) stack.push({ pos: at, end: at + length, place, index: 0 });
  }
}
