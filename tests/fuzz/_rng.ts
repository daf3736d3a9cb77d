/**
 * A small seeded generator and the mutators the fuzz targets share. Everything a
 * case does is drawn from one {@linkcode Rng}, so a case is replayed from its seed
 * alone: never call `Math.random()` or `crypto.getRandomValues()` in a target.
 *
 * @module
 */

/** sfc32 (Chris Doty-Humphrey's small fast chaotic generator): 128 bits of state. */
export class Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  constructor(readonly seed: number) {
    this.#a = 0x9e3779b9;
    this.#b = 0x243f6a88;
    this.#c = 0xb7e15162;
    this.#d = seed >>> 0;
    for (let i = 0; i < 15; i++) this.u32(); // let the seed spread through the state
  }

  /** A uniform unsigned 32-bit integer. */
  u32(): number {
    const t = (((this.#a + this.#b) >>> 0) + this.#d) >>> 0;
    this.#d = (this.#d + 1) >>> 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) >>> 0;
    this.#c = ((this.#c << 21) | (this.#c >>> 11)) >>> 0;
    this.#c = (this.#c + t) >>> 0;
    return t;
  }

  /** A uniform float in [0, 1). */
  float(): number {
    return this.u32() / 4294967296;
  }

  /** A uniform integer in [0, n); `n` at most 2^32. */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }

  /** A uniform integer in [min, max]. */
  range(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }

  /** A length in [0, max], small ones much likelier (log-uniform, then uniform below it). */
  size(max: number): number {
    if (max <= 0) return 0;
    const bound = Math.floor(Math.exp(this.float() * Math.log(max + 1)));
    return this.int(Math.min(bound, max) + 1);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.float() < p;
  }

  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  /** `n` uniform random octets. */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 4) {
      const v = this.u32();
      out[i] = v;
      if (i + 1 < n) out[i + 1] = v >>> 8;
      if (i + 2 < n) out[i + 2] = v >>> 16;
      if (i + 3 < n) out[i + 3] = v >>> 24;
    }
    return out;
  }

  /** A string of `n` characters drawn from `alphabet` (code points, so astral ones stay whole). */
  text(n: number, alphabet: readonly string[]): string {
    let out = "";
    for (let i = 0; i < n; i++) out += this.pick(alphabet);
    return out;
  }

  /** A derived generator, for a part of a case that must not shift the rest. */
  fork(): Rng {
    return new Rng(this.u32());
  }
}

/** A 32-bit seed for case `index` of target `name` under base seed `seed`. */
export function caseSeed(seed: number, name: string, index: number): number {
  let h = (seed ^ 0x811c9dc5) >>> 0;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  h = Math.imul(h ^ index, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** Characters that make text interesting: ASCII, controls, multi-octet and astral ones. */
export const TEXT_ALPHABET: readonly string[] = [
  ..."abcdefxyz0189 -_:/.",
  "\n",
  "\t",
  "\0",
  "é",
  "€",
  "中",
  "\u{1f600}",
  "\u{10ffff}",
];

/** Octet values that sit on boundaries. */
const INTERESTING_OCTETS = [0x00, 0x01, 0x02, 0x7f, 0x80, 0x81, 0x82, 0x83, 0x84, 0xfe, 0xff];

/** Length values that sit on boundaries of a field of `width` octets, around `length`. */
function interestingLengths(width: number, length: number): number[] {
  const max = 2 ** (8 * width) - 1;
  return [0, 1, length - 1, length, length + 1, 2 * length, max, max - 1, 2 ** (8 * width - 1)]
    .map((v) => Math.max(0, Math.min(max, v)));
}

function writeUint(bytes: Uint8Array, offset: number, width: number, value: number): void {
  for (let i = width - 1; i >= 0; i--) {
    bytes[offset + i] = value % 256;
    value = Math.floor(value / 256);
  }
}

/** Options of {@linkcode mutate}. */
export interface MutateOptions {
  /** Most octets an extension or insertion adds (default 64). */
  readonly maxGrowth?: number;
  /** Most mutations stacked in one case (default 4). */
  readonly maxMutations?: number;
  /** Other valid inputs to splice from (default none). */
  readonly donors?: readonly Uint8Array[];
}

/**
 * A mutated copy of `input`: one to a few stacked bit flips, octet changes,
 * truncations, extensions, insertions, deletions, duplicated ranges, splices and
 * 8/16/32-bit length-field tampering at random offsets.
 */
export function mutate(rng: Rng, input: Uint8Array, options: MutateOptions = {}): Uint8Array {
  const maxGrowth = options.maxGrowth ?? 64;
  let bytes: Uint8Array = input.slice();
  const count = 1 + rng.int(options.maxMutations ?? 4);
  for (let m = 0; m < count; m++) bytes = mutateOnce(rng, bytes, maxGrowth, options.donors ?? []);
  return bytes;
}

function mutateOnce(
  rng: Rng,
  bytes: Uint8Array,
  maxGrowth: number,
  donors: readonly Uint8Array[],
): Uint8Array {
  const at = () => rng.int(bytes.length);
  switch (rng.int(bytes.length === 0 ? 2 : 11)) {
    case 0: // extend with random octets
      return concat(bytes, rng.bytes(1 + rng.int(maxGrowth)));
    case 1: // extend with a run of one octet
      return concat(
        bytes,
        new Uint8Array(1 + rng.int(maxGrowth)).fill(rng.pick(INTERESTING_OCTETS)),
      );
    case 2: { // flip one bit
      const out = bytes.slice();
      out[at()] ^= 1 << rng.int(8);
      return out;
    }
    case 3: { // set one octet
      const out = bytes.slice();
      out[at()] = rng.chance(0.5) ? rng.pick(INTERESTING_OCTETS) : rng.int(256);
      return out;
    }
    case 4: // truncate
      return bytes.slice(0, rng.int(bytes.length));
    case 5: { // insert random octets
      const offset = rng.int(bytes.length + 1);
      return concat(
        bytes.subarray(0, offset),
        rng.bytes(1 + rng.int(maxGrowth)),
        bytes.subarray(offset),
      );
    }
    case 6: { // delete a range
      const offset = at();
      const end = Math.min(bytes.length, offset + 1 + rng.size(bytes.length - offset));
      return concat(bytes.subarray(0, offset), bytes.subarray(end));
    }
    case 7: { // duplicate a range in place
      const offset = at();
      const end = Math.min(bytes.length, offset + 1 + rng.size(Math.min(maxGrowth, bytes.length)));
      return concat(bytes.subarray(0, end), bytes.subarray(offset, end), bytes.subarray(end));
    }
    case 8: // tamper with what may be a length field of 1, 2 or 4 octets
    case 9: {
      const width = rng.pick([1, 2, 4]);
      if (bytes.length < width) return bytes;
      const offset = rng.int(bytes.length - width + 1);
      const out = bytes.slice();
      writeUint(out, offset, width, rng.pick(interestingLengths(width, bytes.length - offset)));
      return out;
    }
    default: { // splice a piece of another valid input over this one
      if (donors.length === 0) return rng.chance(0.5) ? bytes.slice().reverse() : bytes;
      const donor = rng.pick(donors);
      const from = rng.int(donor.length + 1);
      const piece = donor.subarray(from, from + 1 + rng.size(donor.length - from));
      const offset = rng.int(bytes.length + 1);
      return concat(bytes.subarray(0, offset), piece, bytes.subarray(offset + piece.length));
    }
  }
}

/** Where a DER TLV lies: its tag octet, its length octets, its content. */
export interface DerNode {
  readonly tagAt: number;
  readonly lengthAt: number;
  readonly start: number;
  readonly end: number;
}

/**
 * Every TLV reachable from `offset` by a lenient walk (definite lengths of at most
 * four octets; a constructed node's children are walked while they fit).
 */
export function derNodes(bytes: Uint8Array, offset = 0, limit = bytes.length): DerNode[] {
  const nodes: DerNode[] = [];
  const walk = (from: number, to: number, depth: number) => {
    let at = from;
    while (at + 2 <= to && depth < 32 && nodes.length < 4096) {
      const tag = bytes[at];
      if ((tag & 0x1f) === 0x1f) return;
      let length = bytes[at + 1];
      let start = at + 2;
      if (length & 0x80) {
        const octets = length & 0x7f;
        if (octets === 0 || octets > 4 || start + octets > to) return;
        length = 0;
        for (let i = 0; i < octets; i++) length = length * 256 + bytes[start + i];
        start += octets;
      }
      const end = start + length;
      if (end > to) return;
      nodes.push({ tagAt: at, lengthAt: at + 1, start, end });
      if (tag & 0x20) walk(start, end, depth + 1);
      at = end;
    }
  };
  walk(offset, limit, 0);
  return nodes;
}

/**
 * A copy of a DER structure with one TLV tampered with: its length made one
 * shorter or longer, zero, indefinite, huge or needlessly long-form; its tag
 * changed; its content cut or grown (lengths left stale); or the node dropped or
 * repeated. Falls back to {@linkcode mutate} when no TLV is found.
 */
export function mutateDer(rng: Rng, input: Uint8Array, nodes = derNodes(input)): Uint8Array {
  if (nodes.length === 0) return mutate(rng, input);
  const node = rng.pick(nodes);
  const contentLength = node.end - node.start;
  const head = input.subarray(0, node.lengthAt);
  const tail = input.subarray(node.end);
  const content = input.subarray(node.start, node.end);
  const withLength = (lengthOctets: number[]) =>
    concat(head, new Uint8Array(lengthOctets), content, tail);
  switch (rng.int(9)) {
    case 0: // a length one off, in the same form
    case 1: {
      const out = input.slice();
      const last = node.start - 1;
      out[last] = (out[last] + (rng.chance(0.5) ? 1 : 255)) & 0xff;
      return out;
    }
    case 2: // an impossible or unusual length form
      return withLength(rng.pick([
        [0x80], // indefinite
        [0x00],
        [0x84, 0xff, 0xff, 0xff, 0xff],
        [0x85, 0, 0, 0, 0, contentLength & 0xff],
        [0x81, contentLength & 0xff], // long form, maybe needless or wrong
        [0x82, (contentLength >> 8) & 0xff, contentLength & 0xff],
        [0x83, 0, (contentLength >> 8) & 0xff, contentLength & 0xff],
      ]));
    case 3: { // another tag (constructed bit, class, number)
      const out = input.slice();
      out[node.tagAt] = rng.pick([
        out[node.tagAt] ^ 0x20,
        out[node.tagAt] ^ 0x80,
        out[node.tagAt] ^ 0x01,
        0x1f,
        rng.int(256),
      ]);
      return out;
    }
    case 4: // content cut short, lengths left as they were
      return concat(input.subarray(0, node.start + rng.int(contentLength + 1)), tail);
    case 5: // content grown, lengths left as they were
      return concat(input.subarray(0, node.end), rng.bytes(1 + rng.int(16)), tail);
    case 6: // node dropped
      return concat(input.subarray(0, node.tagAt), tail);
    case 7: // node repeated
      return concat(input.subarray(0, node.end), input.subarray(node.tagAt, node.end), tail);
    default: // one bit of its content
      return mutate(rng, input, { maxMutations: 1 });
  }
}

/** Options of {@linkcode mutateText}. */
export interface MutateTextOptions {
  /** Characters to insert; default {@linkcode TEXT_ALPHABET}. */
  readonly alphabet?: readonly string[];
  /** Pieces worth splicing in whole, such as prefixes and separators. */
  readonly tokens?: readonly string[];
  /** Most mutations stacked in one case (default 3). */
  readonly maxMutations?: number;
}

/** A mutated copy of a string: characters changed, inserted, deleted, tokens spliced. */
export function mutateText(rng: Rng, input: string, options: MutateTextOptions = {}): string {
  const alphabet = options.alphabet ?? TEXT_ALPHABET;
  const tokens = options.tokens ?? [];
  let text = input;
  const count = 1 + rng.int(options.maxMutations ?? 3);
  for (let m = 0; m < count; m++) {
    const at = rng.int(text.length + 1);
    switch (rng.int(tokens.length ? 7 : 5)) {
      case 0:
        text = text.slice(0, at) + rng.text(1 + rng.int(4), alphabet) + text.slice(at + 1);
        break;
      case 1:
        text = text.slice(0, at) + rng.text(1 + rng.int(8), alphabet) + text.slice(at);
        break;
      case 2:
        text = text.slice(0, at) + text.slice(at + 1 + rng.size(text.length - at));
        break;
      case 3:
        text = text.slice(0, rng.int(text.length + 1));
        break;
      case 4: // a UTF-16 unit alone: lone surrogates and such
        text = text.slice(0, at) + String.fromCharCode(rng.int(65536)) + text.slice(at);
        break;
      default:
        text = text.slice(0, at) + rng.pick(tokens) + text.slice(at);
    }
  }
  return text;
}

/** The octets of several arrays, one after the other. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Lower-case hex of some octets. */
export function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Octets of a hex string. */
export function unhex(text: string): Uint8Array {
  return new Uint8Array((text.match(/../g) ?? []).map((pair) => parseInt(pair, 16)));
}
