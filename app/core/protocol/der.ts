/**
 * The small DER vocabulary Relaymail's service messages use: a SEQUENCE whose
 * fields carry IMPLICIT context-specific tags [0], [1], … in order, as Relaynet's
 * own structures do. Strings are UTF-8, times are GeneralizedTime in UTC with
 * optional milliseconds (`YYYYMMDDHHMMSS[.fff]Z`), lists are constructed fields holding elements
 * tagged [0].
 *
 * @module
 */
import * as asn1js from "asn1js";

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
    valueHex: bytes.slice().buffer as ArrayBuffer,
  });
}

/** An implicitly tagged UTF8String. */
export function textField(tag: number, text: string): Field {
  return bytesField(tag, new TextEncoder().encode(text));
}

/** An implicitly tagged GeneralizedTime, to the millisecond (DER: no trailing zeros). */
export function timeField(tag: number, date: Date): Field {
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
      if (item.idBlock.tagClass === CONTEXT) this.#byTag.set(item.idBlock.tagNumber, item);
    }
  }

  /** Decodes `bytes` as a SEQUENCE named `structure` (for error messages). */
  static decode(structure: string, bytes: Uint8Array): Fields {
    let parsed: ReturnType<typeof asn1js.fromBER>;
    try {
      parsed = asn1js.fromBER(bytes.slice().buffer as ArrayBuffer);
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
    return new Fields(structure, parsed.result.valueBlock.value);
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

  /** The time in field `tag`. */
  time(tag: number, name: string): Date {
    const text = this.text(tag, name, 32);
    const match = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.(\d{1,3}))?Z$/.exec(text);
    const date = match
      ? new Date(Date.UTC(
        +match[1],
        +match[2] - 1,
        +match[3],
        +match[4],
        +match[5],
        +match[6],
        +(match[7] ?? "0").padEnd(3, "0"),
      ))
      : new Date(NaN);
    if (isNaN(date.getTime())) {
      throw new MalformedStructureError(`${this.structure} field ${name} is not a GeneralizedTime`);
    }
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
