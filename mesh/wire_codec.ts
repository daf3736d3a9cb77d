/**
 * The primitives of the mesh protocol's frames (docs/mesh-protocol.md §1):
 * big-endian integers, `text`, `key`, `block` and raw octets, written and read
 * with bounds checked. wire.ts builds the messages from them.
 *
 * @module
 */
import { fromHex, toHex } from "../bindings/validation.ts";

/** Raised on a frame that does not decode. */
export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}

/** Builds a frame. */
export class Writer {
  readonly #parts: Uint8Array[] = [];
  #length = 0;

  u8(value: number): this {
    return this.bytes(new Uint8Array([value]));
  }

  u16(value: number): this {
    const b = new Uint8Array(2);
    new DataView(b.buffer).setUint16(0, value);
    return this.bytes(b);
  }

  u32(value: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, value >>> 0);
    return this.bytes(b);
  }

  text(value: string): this {
    const encoded = new TextEncoder().encode(value);
    return this.u16(encoded.length).bytes(encoded);
  }

  /** A 32-byte key given as hex. */
  key(hex: string): this {
    return this.bytes(fromHex(hex));
  }

  /** Bytes prefixed with their length (uint32). */
  block(value: Uint8Array): this {
    return this.u32(value.length).bytes(value);
  }

  bytes(value: Uint8Array): this {
    this.#parts.push(value);
    this.#length += value.length;
    return this;
  }

  done(): Uint8Array {
    const out = new Uint8Array(this.#length);
    let offset = 0;
    for (const part of this.#parts) {
      out.set(part, offset);
      offset += part.length;
    }
    return out;
  }
}

/** Reads a frame, throwing {@linkcode ProtocolError} past its end. */
export class Reader {
  #offset = 0;
  readonly #view: DataView;

  constructor(readonly frame: Uint8Array) {
    this.#view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  }

  #need(n: number): void {
    if (this.#offset + n > this.frame.length) throw new ProtocolError("Frame is truncated");
  }

  u8(): number {
    this.#need(1);
    return this.frame[this.#offset++];
  }

  u16(): number {
    this.#need(2);
    const v = this.#view.getUint16(this.#offset);
    this.#offset += 2;
    return v;
  }

  u32(): number {
    this.#need(4);
    const v = this.#view.getUint32(this.#offset);
    this.#offset += 4;
    return v;
  }

  text(maxLength: number): string {
    const length = this.u16();
    if (length > maxLength) throw new ProtocolError(`Text field exceeds ${maxLength} bytes`);
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(this.bytes(length));
    } catch (error) {
      if (error instanceof ProtocolError) throw error;
      throw new ProtocolError("Text field is not valid UTF-8");
    }
  }

  key(): string {
    return toHex(this.bytes(32));
  }

  block(maxLength: number): Uint8Array {
    const length = this.u32();
    if (length > maxLength) throw new ProtocolError(`Block exceeds ${maxLength} bytes`);
    return this.bytes(length);
  }

  bytes(n: number): Uint8Array {
    this.#need(n);
    const b = this.frame.subarray(this.#offset, this.#offset + n);
    this.#offset += n;
    return b;
  }

  rest(): Uint8Array {
    const b = this.frame.subarray(this.#offset);
    this.#offset = this.frame.length;
    return b;
  }

  end(): void {
    if (this.#offset !== this.frame.length) throw new ProtocolError("Frame has trailing bytes");
  }
}
