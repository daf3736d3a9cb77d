/**
 * A raw libp2p peer that speaks the mesh protocol (docs/mesh-protocol.md) frame by
 * frame, honestly or not: what the attacker program (tests/fixtures/mesh_attacker.ts)
 * and the attack tests' honest senders are made of. It builds every frame with
 * mesh/wire.ts and every proof and claim with mesh/proofs.ts, so that it lies only
 * where a test makes it lie.
 *
 * @module
 */
import { generateKeyPairSync, randomFillSync } from "node:crypto";
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import type { Connection, Stream } from "@libp2p/interface";
import { ping } from "@libp2p/ping";
import { tcp } from "@libp2p/tcp";
import { type LengthPrefixedStream, lpStream } from "@libp2p/utils";
import { multiaddr } from "@multiformats/multiaddr";
import { createLibp2p, type Libp2p } from "libp2p";
import { sha256Hex, toHex } from "../../bindings/validation.ts";
import {
  announcementTag,
  type EndpointSigner,
  type HostingClaim,
  openClaim,
  sealClaim,
  signerFromPkcs8,
} from "../../mesh/proofs.ts";
import { Decoder, decodeSymbols } from "../../mesh/riblt.ts";
import { ITEM_LENGTH } from "../../mesh/store.ts";
import {
  type Announcement,
  decodeSync,
  decodeTransfer,
  encodeSync,
  encodeTransfer,
  MAX_FRAME_LENGTH,
  MAX_SYNC_FRAME_LENGTH,
  NONCE_LENGTH,
  PROTOCOL_VERSION,
  type ProvenTombstone,
  SYNC_PROTOCOL,
  type SyncMessage,
  TRANSFER_PROTOCOL,
  type TransferMessage,
} from "../../mesh/wire.ts";

/**
 * A libp2p node as `MeshNode` builds its own (TCP, Noise, Yamux, and libp2p's ping,
 * which the victim's keep-alive expects answered, unless `ping` is false), that
 * never listens nor discovers.
 */
export async function rawPeer(
  options: { localAddress?: string; streamWindow?: number; ping?: boolean } = {},
): Promise<Libp2p> {
  // `dialOpts` go to `net.connect`: a loopback source address other than 127.0.0.1
  // makes the peer another "host" for the victim's per-host limits.
  const dialOpts = options.localAddress ? { localAddress: options.localAddress } : undefined;
  // A fixed receive window (Yamux's smallest is 256 KiB) keeps it from growing
  // while streams open: a peer that stops reading then stops its senders soonest.
  const window = options.streamWindow;
  const streamOptions = window
    ? { initialStreamWindowSize: window, maxStreamWindowSize: window }
    : undefined;
  return await createLibp2p({
    transports: [tcp({ dialOpts: dialOpts as Record<string, unknown> })],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux({ streamOptions })],
    services: (options.ping === false ? {} : { ping: ping() }) as Record<string, never>,
    peerDiscovery: [],
  });
}

/** Dials `address` (a multiaddr with /p2p/) within `timeoutMs`. */
export async function dial(peer: Libp2p, address: string, timeoutMs = 10_000): Promise<Connection> {
  return await withTimeout(timeoutMs, (signal) => peer.dial(multiaddr(address), { signal }));
}

/** `length` random octets (WebCrypto gives at most 64 KiB a call). */
export function randomBytes(length: number): Uint8Array {
  return randomFillSync(new Uint8Array(length));
}

/** Runs `fn` with a signal aborted after `ms`, clearing the timer afterwards. */
export async function withTimeout<T>(
  ms: number,
  fn: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new Error(`Timed out after ${ms} ms`)),
    ms,
  );
  try {
    return await fn(controller.signal);
  } finally {
    clearTimeout(timer);
  }
}

/** Length-prefixed frames over a stream. */
export class Framed {
  readonly #lp: LengthPrefixedStream<Stream>;

  constructor(readonly stream: Stream, maxFrame: number) {
    this.#lp = lpStream(stream, { maxDataLength: maxFrame, maxBufferSize: maxFrame * 2 + 64 });
  }

  /** The next frame, or null once the other side closed its end. */
  async read(timeoutMs = 30_000): Promise<Uint8Array | null> {
    try {
      return await withTimeout(
        timeoutMs,
        async (signal) => (await this.#lp.read({ signal })).slice(),
      );
    } catch (error) {
      if ((error as Error)?.name === "UnexpectedEOFError") return null;
      throw error;
    }
  }

  async write(frame: Uint8Array): Promise<void> {
    await this.#lp.write(frame);
  }
}

/** Opens a stream of `protocol` on `connection`. */
export async function openStream(connection: Connection, protocol: string): Promise<Stream> {
  return await withTimeout(10_000, (signal) => connection.newStream(protocol, { signal }));
}

// Identities and claims

/** A fresh RSA identity of the attacker's own (any key will do for a false proof or claim). */
export function ownSigner(): EndpointSigner {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  return signerFromPkcs8(new Uint8Array(privateKey.export({ format: "der", type: "pkcs8" })));
}

/** Announcements (§5.3) of `claim` under `endpointId`, sealed under each HELLO's nonce. */
export function announcer(
  claim: HostingClaim | null,
  endpointId: string,
): (nonce: Uint8Array) => Announcement[] {
  if (!claim) return () => [];
  return (nonce) => [{
    tag: announcementTag(endpointId, nonce),
    sealed: sealClaim(claim, endpointId, nonce),
  }];
}

/**
 * Reads the hosting claim that the node at `address` announces for `endpointId`
 * in its HELLO: what an eavesdropping peer that knows the id can replay.
 */
export async function captureClaim(
  peer: Libp2p,
  address: string,
  endpointId: string,
): Promise<HostingClaim> {
  const connection = await dial(peer, address);
  const stream = await openStream(connection, SYNC_PROTOCOL);
  const framed = new Framed(stream, MAX_SYNC_FRAME_LENGTH);
  await framed.write(hello(0, () => []));
  const reply = decodeSync(await expectFrame(framed));
  stream.abort(new Error("Got what it came for"));
  await connection.close().catch(() => {});
  if (reply.type !== "hello") throw new Error(`Expected HELLO, got ${reply.type}`);
  const sealed = reply.announcements.find((a) =>
    toHex(a.tag) === toHex(announcementTag(endpointId, reply.nonce))
  );
  const claim = sealed && openClaim(sealed.sealed, endpointId, reply.nonce);
  if (!claim) throw new Error(`The node at ${address} announces no claim for ${endpointId}`);
  return claim;
}

// Reconciliation

function hello(itemCount: number, announce: (nonce: Uint8Array) => Announcement[]): Uint8Array {
  const nonce = crypto.getRandomValues(new Uint8Array(NONCE_LENGTH));
  return encodeSync({
    type: "hello",
    version: PROTOCOL_VERSION,
    salt: crypto.getRandomValues(new Uint32Array(1))[0],
    itemCount,
    nonce,
    announcements: announce(nonce),
  });
}

async function expectFrame(framed: Framed, timeoutMs = 30_000): Promise<Uint8Array> {
  const frame = await framed.read(timeoutMs);
  if (frame === null) throw new Error("The other side closed the stream early");
  return frame;
}

/** What one reconciliation the attacker started came to. */
export interface InitiatedSync {
  /** The other side's ERROR, if it sent one instead of going on. */
  readonly error?: string;
  readonly hello?: Extract<SyncMessage, { type: "hello" }>;
  readonly diff?: Extract<SyncMessage, { type: "diff" }>;
  readonly proofs?: ProvenTombstone[];
}

/** How the attacker plays one reconciliation it starts. */
export interface SyncPlan {
  /** Items the attacker lists (kind, key, expiry; 37 octets each, back to back). */
  readonly items?: Uint8Array;
  /** The item count its HELLO claims (default: the items listed). */
  readonly itemCount?: number;
  readonly announce?: (nonce: Uint8Array) => Announcement[];
  /** The PROOFS it sends once it saw the DIFF (default none). */
  readonly proofs?: (diff: Extract<SyncMessage, { type: "diff" }>) => ProvenTombstone[];
}

/** Runs one reconciliation as initiator over a new stream of `connection`, with lists only. */
export async function initiateSync(
  connection: Connection,
  plan: SyncPlan = {},
): Promise<InitiatedSync> {
  const items = plan.items ?? new Uint8Array(0);
  const stream = await openStream(connection, SYNC_PROTOCOL);
  const framed = new Framed(stream, MAX_SYNC_FRAME_LENGTH);
  try {
    await framed.write(
      hello(plan.itemCount ?? items.length / ITEM_LENGTH, plan.announce ?? (() => [])),
    );
    const reply = decodeSync(await expectFrame(framed));
    if (reply.type === "error") return { error: reply.message };
    if (reply.type !== "hello") throw new Error(`Expected HELLO, got ${reply.type}`);
    await framed.write(encodeSync({ type: "items", items }));
    const diff = decodeSync(await expectFrame(framed));
    if (diff.type === "error") return { error: diff.message, hello: reply };
    if (diff.type !== "diff") throw new Error(`Expected DIFF, got ${diff.type}`);
    await framed.write(encodeSync({ type: "proofs", proofs: plan.proofs?.(diff) ?? [] }));
    const proofs = decodeSync(await expectFrame(framed));
    if (proofs.type === "error") return { error: proofs.message, hello: reply, diff };
    if (proofs.type !== "proofs") throw new Error(`Expected PROOFS, got ${proofs.type}`);
    await stream.close().catch(() => {});
    return { hello: reply, diff, proofs: proofs.proofs };
  } catch (error) {
    stream.abort(error as Error);
    throw error;
  }
}

/**
 * Answers a reconciliation the victim started, as a node holding nothing (so
 * that the victim offers it everything it holds), with `announce`'s announcements.
 */
export async function answerSync(
  stream: Stream,
  announce: (nonce: Uint8Array) => Announcement[] = () => [],
): Promise<void> {
  const framed = new Framed(stream, MAX_SYNC_FRAME_LENGTH);
  try {
    const first = decodeSync(await expectFrame(framed));
    if (first.type !== "hello") throw new Error(`Expected HELLO, got ${first.type}`);
    const nonce = crypto.getRandomValues(new Uint8Array(NONCE_LENGTH));
    await framed.write(encodeSync({
      type: "hello",
      version: PROTOCOL_VERSION,
      salt: first.salt,
      itemCount: 0,
      nonce,
      announcements: announce(nonce),
    }));
    let theirs: Uint8Array;
    const next = decodeSync(await expectFrame(framed));
    if (next.type === "items") {
      theirs = next.items;
    } else {
      const decoder = new Decoder([], ITEM_LENGTH, first.salt);
      let message: SyncMessage = next;
      for (;;) {
        if (message.type !== "symbols") throw new Error(`Expected SYMBOLS, got ${message.type}`);
        if (decoder.add(decodeSymbols(message.symbols, ITEM_LENGTH))) break;
        await framed.write(encodeSync({ type: "more" }));
        message = decodeSync(await expectFrame(framed));
      }
      const remote = decoder.difference().remoteOnly;
      theirs = new Uint8Array(remote.length * ITEM_LENGTH);
      remote.forEach((item, i) => theirs.set(item, i * ITEM_LENGTH));
    }
    await framed.write(encodeSync({
      type: "diff",
      truncated: false,
      initiatorOnly: theirs,
      responderOnly: new Uint8Array(0),
    }));
    await expectFrame(framed);
    await framed.write(encodeSync({ type: "proofs", proofs: [] }));
    await stream.close().catch(() => {});
  } catch (error) {
    stream.abort(error as Error);
  }
}

// Transfers

/** A parcel to push, with its key (the SHA-256 the frame names). */
export interface Outgoing {
  readonly key: string;
  readonly bytes: Uint8Array;
  readonly copies?: number;
}

/** Keys parcels by their SHA-256. */
export async function outgoing(parcels: readonly Uint8Array[]): Promise<Outgoing[]> {
  return await Promise.all(parcels.map(async (bytes) => ({ key: await sha256Hex(bytes), bytes })));
}

/** One answer to a pushed parcel, `at` ms after the push began. */
export interface Answer {
  readonly key: string;
  /** `ack:<status>` or `refuse:<code>`. */
  readonly code: string;
  readonly transient?: boolean;
  /** A refusal's reason. */
  readonly reason?: string;
  readonly at: number;
}

/** What one transfer stream came to. */
export interface PushOutcome {
  readonly answers: Answer[];
  /** The receiver's ERROR, or how the stream failed. */
  readonly error?: string;
}

/** A short code for a transfer answer: `ack:0`, `refuse:quota`… */
export function codeOf(message: TransferMessage): string {
  return message.type === "ack"
    ? `ack:${message.status}`
    : message.type === "refuse"
    ? `refuse:${message.code}`
    : message.type;
}

/**
 * Pushes `parcels` over one new transfer stream, keeping at most `window` of them
 * unanswered, and collects the answers (times measured from `since`).
 */
export async function push(
  connection: Connection,
  parcels: readonly Outgoing[],
  options: { window?: number; since?: number } = {},
): Promise<PushOutcome> {
  const window = options.window ?? 5;
  const since = options.since ?? performance.now();
  const answers: Answer[] = [];
  let stream: Stream;
  try {
    stream = await openStream(connection, TRANSFER_PROTOCOL);
  } catch (error) {
    return { answers, error: `open: ${(error as Error).message}` };
  }
  const framed = new Framed(stream, MAX_FRAME_LENGTH);
  let sent = 0;
  try {
    while (answers.length < parcels.length) {
      while (sent < parcels.length && sent - answers.length < window) {
        const { key, bytes, copies } = parcels[sent++];
        await framed.write(encodeTransfer({ type: "parcel", key, copies: copies ?? 4, bytes }));
      }
      const frame = await framed.read();
      if (frame === null) return { answers, error: "closed with parcels unanswered" };
      const message = decodeTransfer(frame);
      if (message.type === "progress") continue;
      if (message.type === "error") {
        stream.abort(new Error(message.message));
        return { answers, error: message.message };
      }
      if (message.type !== "ack" && message.type !== "refuse") {
        throw new Error(`Unexpected ${message.type}`);
      }
      answers.push({
        key: message.key,
        code: codeOf(message),
        transient: message.type === "refuse" ? message.transient : undefined,
        reason: message.type === "refuse" ? message.reason : undefined,
        at: performance.now() - since,
      });
    }
    await stream.close().catch(() => {});
    return { answers };
  } catch (error) {
    stream.abort(error as Error);
    return { answers, error: (error as Error)?.message ?? String(error) };
  }
}

/** Unsigned varint, as libp2p's length prefixes. */
export function varint(n: number): Uint8Array {
  const out = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return new Uint8Array(out);
}

/** Splits length-prefixed frames off `bytes`; a partial frame at the end is left out. */
export function splitFrames(bytes: Uint8Array): { frames: Uint8Array[]; rest: number } {
  const frames = [];
  let offset = 0;
  while (offset < bytes.length) {
    const prefix = readVarint(bytes, offset);
    if (!prefix || prefix.end + prefix.value > bytes.length) break;
    frames.push(bytes.subarray(prefix.end, prefix.end + prefix.value));
    offset = prefix.end + prefix.value;
  }
  return { frames, rest: bytes.length - offset };
}

/** The varint at `offset` and where it ends, or null if `bytes` ends first. */
function readVarint(bytes: Uint8Array, offset: number): { value: number; end: number } | null {
  let value = 0;
  for (let at = offset, shift = 0; at < bytes.length; at++, shift += 7) {
    value += (bytes[at] & 0x7f) * 2 ** shift;
    if (bytes[at] < 0x80) return { value, end: at + 1 };
  }
  return null;
}
