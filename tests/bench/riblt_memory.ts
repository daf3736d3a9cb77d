/**
 * Memory and time of rateless IBLT reconciliation (`mesh/riblt.ts`), as a plain
 * script (not `deno bench`):
 *
 * - garbage: what a responder's decoder holds after 250 000 random coded
 *   symbols (the most a responder accepts, docs/mesh-protocol.md §2.3), against
 *   the octets those symbols took on the wire;
 * - local set: what a decoder holds for 100 000 local items before any symbol;
 * - reconciliation: time to encode and to decode a 100 000-item set with 1 000
 *   differences (500 each way).
 *
 * Run with `deno run -A --v8-flags=--expose-gc tests/bench/riblt_memory.ts`;
 * without `--expose-gc` the memory figures include garbage not yet collected.
 * An optional argument names another copy of the module to measure (say an
 * older one saved elsewhere), for before and after figures from two runs.
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

type Riblt = typeof import("../../mesh/riblt.ts");
type Decoder = InstanceType<Riblt["Decoder"]>;
type Encoder = InstanceType<Riblt["Encoder"]>;

const ITEM_LENGTH = 37;
const SYMBOL_LENGTH = ITEM_LENGTH + 12;
/** Responders give up beyond this many coded symbols (docs/mesh-protocol.md §2.3). */
const MAX_SYMBOLS = 250_000;
const MIB = 1024 * 1024;

const path = Deno.args[0];
const riblt: Riblt = await import(
  path ? pathToFileURL(resolve(path)).href : new URL("../../mesh/riblt.ts", import.meta.url).href
);

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) console.warn("Run with --v8-flags=--expose-gc for figures without uncollected garbage");

/** Bytes held by the JavaScript heap and by array buffers outside it. */
function held(): number {
  gc?.();
  gc?.();
  const usage = Deno.memoryUsage();
  return usage.heapUsed + usage.external;
}

function randomItems(count: number): Uint8Array[] {
  return Array.from({ length: count }, () => crypto.getRandomValues(new Uint8Array(ITEM_LENGTH)));
}

function randomBytes(length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let offset = 0; offset < length; offset += 65_536) {
    crypto.getRandomValues(bytes.subarray(offset, Math.min(length, offset + 65_536)));
  }
  return bytes;
}

/** Frame sizes as an initiator sends them (docs/mesh-protocol.md §2.3): 16, then doubling to 8192. */
function* frames(total: number): Generator<number> {
  let batch = 16;
  for (let sent = 0; sent < total; sent += batch, batch = Math.min(batch * 2, 8192)) {
    yield Math.min(batch, total - sent);
  }
}

function newDecoder(items: Uint8Array[], salt: number): Decoder {
  // As the node should build it; an older copy of the module ignores the options.
  return new riblt.Decoder(items, ITEM_LENGTH, salt, { maxSymbols: MAX_SYMBOLS });
}

/** Feeds wire bytes to a decoder the way the node does, with the newest method the module has. */
function feed(decoder: Decoder, bytes: Uint8Array): boolean {
  return typeof decoder.addEncoded === "function"
    ? decoder.addEncoded(bytes)
    : decoder.add(riblt.decodeSymbols(bytes, ITEM_LENGTH));
}

function produce(encoder: Encoder, count: number): Uint8Array {
  return typeof encoder.produceEncoded === "function"
    ? encoder.produceEncoded(count)
    : riblt.encodeSymbols(encoder.produce(count), ITEM_LENGTH);
}

const mib = (bytes: number) => (bytes / MIB).toFixed(1);
const reported = (decoder: Decoder) =>
  typeof decoder.memoryBytes === "number" ? `, memoryBytes ${mib(decoder.memoryBytes)} MiB` : "";

function garbage(): void {
  const before = held();
  const decoder = newDecoder([], 1);
  let wire = 0;
  for (const count of frames(MAX_SYMBOLS)) {
    const bytes = randomBytes(count * SYMBOL_LENGTH);
    wire += bytes.length;
    feed(decoder, bytes);
  }
  const used = held() - before;
  console.log(
    `riblt decoder: ${decoder.received} symbols, ${mib(wire)} MiB on the wire, ` +
      `${mib(used)} MiB held (${(used / wire).toFixed(2)}×)${reported(decoder)}`,
  );
}

function localSet(): void {
  const items = randomItems(100_000);
  const before = held();
  const decoder = newDecoder(items, 1);
  const used = held() - before;
  console.log(
    `riblt decoder: ${items.length} local items, ${mib(used)} MiB held ` +
      `(${Math.round(used / items.length)} bytes per item, beyond the caller's own items)` +
      reported(decoder),
  );
}

function reconciliation(): void {
  const shared = randomItems(99_500);
  const a = [...shared, ...randomItems(500)];
  const b = [...shared, ...randomItems(500)];
  const runs: { encode: number; decode: number; symbols: number }[] = [];
  for (let run = 0; run < 5; run++) {
    const salt = 1000 + run;
    let encode = 0, decode = 0;
    let start = performance.now();
    const encoder = new riblt.Encoder(a, ITEM_LENGTH, salt);
    encode += performance.now() - start;
    start = performance.now();
    const decoder = newDecoder(b, salt);
    decode += performance.now() - start;
    for (const count of frames(MAX_SYMBOLS)) {
      start = performance.now();
      const bytes = produce(encoder, count);
      encode += performance.now() - start;
      start = performance.now();
      const done = feed(decoder, bytes);
      decode += performance.now() - start;
      if (done) break;
    }
    const { remoteOnly, localOnly } = decoder.difference();
    if (remoteOnly.length !== 500 || localOnly.length !== 500) {
      throw new Error(`Decoded ${remoteOnly.length} + ${localOnly.length} items, not 500 + 500`);
    }
    runs.push({ encode, decode, symbols: decoder.received });
  }
  const median = (values: number[]) => values.sort((x, y) => x - y)[values.length >> 1];
  console.log(
    `riblt reconciliation: ${a.length} items, 1000 differences, ${runs[0].symbols} symbols: ` +
      `encode ${median(runs.map((r) => r.encode)).toFixed(1)} ms, ` +
      `decode ${median(runs.map((r) => r.decode)).toFixed(1)} ms (median of ${runs.length})`,
  );
}

garbage();
localSet();
reconciliation();
