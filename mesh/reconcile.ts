/**
 * One reconciliation on a sync stream (docs/mesh-protocol.md §2.3), both sides:
 * HELLO, then ITEMS or rounds of coded symbols, DIFF, and PROOFS each way. What
 * to reconcile and what to do with the difference are the caller's
 * (sync.ts); this module only speaks the exchange.
 *
 * @module
 */
import type { Channel } from "./channel.ts";
import { Decoder, Encoder } from "./riblt.ts";
import { ITEM_LENGTH, ItemKind } from "./store.ts";
import {
  type Announcement,
  decodeSync,
  encodeSync,
  type InterestToken,
  MAX_SYNC_FRAME_LENGTH,
  NONCE_LENGTH,
  PROTOCOL_VERSION,
  ProtocolError,
  type ProvenTombstone,
  type SyncMessage,
} from "./wire.ts";
import {
  FIRST_SYMBOL_BATCH,
  MAX_DIFF_ITEMS,
  MAX_ITEMS,
  MAX_SYMBOLS,
  MAX_SYMBOLS_PER_FRAME,
} from "./types.ts";

/** A HELLO message. */
export type Hello = Extract<SyncMessage, { type: "hello" }>;

/** What one side brings to an exchange. */
export interface ExchangeSide {
  /**
   * The encoded items this side offers (at most {@linkcode MAX_ITEMS}), read once
   * the peer's HELLO is in: the posts among them are those of the channels the
   * peer asked for (§2.6).
   */
  items(): Uint8Array[];
  /** At least as many items as {@linkcode items} will list, for the initiator's HELLO. */
  itemCount(): number;
  /** The interest tokens of this side's HELLO. */
  interest(): InterestToken[];
  /** The announcements of the endpoints this side hosts, sealed under its `nonce`. */
  announcements(nonce: Uint8Array): Announcement[];
  /** The peer's HELLO arrived (its announcements and interest are to be kept). */
  hello(hello: Hello): void;
  /** The proofs of the tombstones among `items`, as many as fit one frame. */
  proofsFor(items: readonly Uint8Array[]): ProvenTombstone[];
}

/** What an exchange found. */
export interface ExchangeResult {
  /** Items the peer listed that this side lacks (on the initiator: the responder's tombstones). */
  readonly theirOnly: Uint8Array[];
  /** Items this side has that the peer lacks. */
  readonly ourOnly: Uint8Array[];
  /** The proofs the peer sent for its tombstones. */
  readonly proofs: readonly ProvenTombstone[];
  /** The DIFF left items for another round. */
  readonly truncated: boolean;
}

/** Runs an exchange as initiator; `fullList` forces ITEMS (for benchmarks). */
export async function initiateExchange(
  channel: Channel,
  side: ExchangeSide,
  fullList: boolean,
): Promise<ExchangeResult> {
  const salt = crypto.getRandomValues(new Uint32Array(1))[0];
  const nonce = crypto.getRandomValues(new Uint8Array(NONCE_LENGTH));
  await channel.write(encodeSync({
    type: "hello",
    version: PROTOCOL_VERSION,
    salt,
    itemCount: Math.min(side.itemCount(), MAX_ITEMS),
    nonce,
    announcements: side.announcements(nonce),
    interest: side.interest(),
  }));
  const hello = expectSync(await channel.expect(), "hello");
  if (hello.version !== PROTOCOL_VERSION) {
    throw new ProtocolError(`Peer speaks version ${hello.version}`);
  }
  side.hello(hello);
  const items = side.items();

  let diff: Extract<SyncMessage, { type: "diff" }>;
  const listAll = fullList || preferFullList(items.length, hello.itemCount);
  if (listAll && items.length * ITEM_LENGTH + 1 <= MAX_SYNC_FRAME_LENGTH) {
    await channel.write(encodeSync({ type: "items", items: concat(items) }));
    diff = expectSync(await channel.expect(), "diff");
  } else {
    const encoder = new Encoder(items, ITEM_LENGTH, salt);
    let batch = FIRST_SYMBOL_BATCH;
    for (;;) {
      const start = encoder.nextIndex;
      const symbols = encoder.produceEncoded(batch);
      await channel.write(encodeSync({ type: "symbols", start, symbols }));
      const reply = decodeSync(await channel.expect());
      if (reply.type === "diff") {
        diff = reply;
        break;
      }
      if (reply.type === "error") throw new ProtocolError(`Peer says: ${reply.message}`);
      if (reply.type !== "more") {
        throw new ProtocolError(`Expected MORE or DIFF, got ${reply.type}`);
      }
      batch = Math.min(batch * 2, MAX_SYMBOLS_PER_FRAME);
    }
  }
  const ourOnly = splitItems(diff.initiatorOnly);
  const theirOnly = splitItems(diff.responderOnly);
  // Proofs of the tombstones each side lacks: ours first, then theirs.
  await channel.write(encodeSync({ type: "proofs", proofs: side.proofsFor(ourOnly) }));
  const proofs = expectSync(await channel.expect(), "proofs");
  return { theirOnly, ourOnly, proofs: proofs.proofs, truncated: diff.truncated };
}

/** Answers an exchange, from the initiator's HELLO on. */
export async function answerExchange(
  channel: Channel,
  side: ExchangeSide,
): Promise<ExchangeResult> {
  const hello = expectSync(await channel.expect(), "hello");
  if (hello.version !== PROTOCOL_VERSION) {
    throw new ProtocolError(
      `Peer speaks version ${hello.version}; this node speaks version ${PROTOCOL_VERSION}`,
    );
  }
  if (hello.itemCount > MAX_ITEMS) {
    throw new ProtocolError(`HELLO claims ${hello.itemCount} items, over ${MAX_ITEMS}`);
  }
  side.hello(hello);
  const items = side.items();
  const nonce = crypto.getRandomValues(new Uint8Array(NONCE_LENGTH));
  await channel.write(encodeSync({
    type: "hello",
    version: PROTOCOL_VERSION,
    salt: hello.salt,
    itemCount: items.length,
    nonce,
    announcements: side.announcements(nonce),
    interest: side.interest(),
  }));
  let theirs: Uint8Array[];
  let ours: Uint8Array[];
  const first = decodeSync(await channel.expect());
  if (first.type === "items") {
    const listed = splitItems(first.items);
    if (listed.length > MAX_ITEMS) {
      throw new ProtocolError(`ITEMS lists ${listed.length} items, over ${MAX_ITEMS}`);
    }
    [theirs, ours] = setDifference(listed, items);
  } else {
    // Both sides hold at most MAX_ITEMS, so a difference needs at most about
    // 1.5 × 2 × MAX_ITEMS coded symbols: a peer sending more is flooding.
    const limit = Math.min(MAX_SYMBOLS, Math.ceil(3 * (items.length + hello.itemCount)) + 256);
    // The decoder holds 49 octets a symbol, at most `limit` of them; it throws
    // RangeError (answered with ERROR) past the limit or on inconsistent symbols.
    const decoder = new Decoder(items, ITEM_LENGTH, hello.salt, { maxSymbols: limit });
    let message: SyncMessage = first;
    for (;;) {
      if (message.type !== "symbols") {
        throw new ProtocolError(`Expected SYMBOLS, got ${message.type}`);
      }
      if (message.start !== decoder.received) {
        throw new ProtocolError("Coded symbols out of order");
      }
      if (message.symbols.length > MAX_SYMBOLS_PER_FRAME * (ITEM_LENGTH + 12)) {
        throw new ProtocolError(`SYMBOLS carries over ${MAX_SYMBOLS_PER_FRAME} coded symbols`);
      }
      if (decoder.addEncoded(message.symbols)) break;
      await channel.write(encodeSync({ type: "more" }));
      message = decodeSync(await channel.expect());
    }
    const difference = decoder.difference();
    theirs = difference.remoteOnly;
    ours = difference.localOnly;
  }
  // The initiator needs only our tombstones (to drop its copies): the parcels
  // we hold and it lacks are ours to push. Not listing them keeps a peer from
  // learning everything this node holds with one empty ITEMS.
  const ourTombstones = ours.filter((item) => item[0] === ItemKind.DELIVERED);
  const truncated = theirs.length > MAX_DIFF_ITEMS || ourTombstones.length > MAX_DIFF_ITEMS;
  theirs = theirs.slice(0, MAX_DIFF_ITEMS);
  await channel.write(
    encodeSync({
      type: "diff",
      initiatorOnly: concat(theirs),
      responderOnly: concat(ourTombstones.slice(0, MAX_DIFF_ITEMS)),
      truncated,
    }),
  );
  const proofs = expectSync(await channel.expect(), "proofs");
  await channel.write(encodeSync({ type: "proofs", proofs: side.proofsFor(ours) }));
  return { theirOnly: theirs, ourOnly: ours, proofs: proofs.proofs, truncated };
}

function expectSync<T extends SyncMessage["type"]>(
  frame: Uint8Array,
  type: T,
): Extract<SyncMessage, { type: T }> {
  const message = decodeSync(frame);
  if (message.type === "error") throw new ProtocolError(`Peer says: ${message.message}`);
  if (message.type !== type) {
    throw new ProtocolError(`Expected ${type.toUpperCase()}, got ${message.type}`);
  }
  return message as Extract<SyncMessage, { type: T }>;
}

/**
 * Whether sending every item beats coded symbols: the size difference is a lower
 * bound on the set difference, and each differing item costs about 1.5 coded
 * symbols of 49 octets against 37 octets per listed item.
 */
function preferFullList(ours: number, theirs: number): boolean {
  return ours <= 16 || Math.abs(ours - theirs) * 1.5 * (ITEM_LENGTH + 12) > ours * ITEM_LENGTH;
}

function concat(items: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(items.length * ITEM_LENGTH);
  items.forEach((item, i) => out.set(item, i * ITEM_LENGTH));
  return out;
}

function splitItems(bytes: Uint8Array): Uint8Array[] {
  if (bytes.length % ITEM_LENGTH !== 0) {
    throw new ProtocolError("Item list is not a whole number of items");
  }
  const items = [];
  for (let offset = 0; offset < bytes.length; offset += ITEM_LENGTH) {
    items.push(bytes.slice(offset, offset + ITEM_LENGTH));
  }
  return items;
}

function setDifference(theirs: Uint8Array[], ours: Uint8Array[]): [Uint8Array[], Uint8Array[]] {
  const key = (item: Uint8Array) => String.fromCharCode(...item);
  const theirKeys = new Set(theirs.map(key));
  const ourKeys = new Set(ours.map(key));
  return [theirs.filter((i) => !ourKeys.has(key(i))), ours.filter((i) => !theirKeys.has(key(i)))];
}
