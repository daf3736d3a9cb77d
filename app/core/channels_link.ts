/**
 * Channel links (docs/broadcast.md §5): the channel certificate and its title,
 * signed by the channel key, as octets and as `RELAYMAIL-CHANNEL:` base32 text.
 * A link is checked whole before anything in it is believed.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { constants, createPrivateKey, createPublicKey, sign, verify } from "node:crypto";
import {
  type Certificate,
  derSerializePrivateKey,
  derSerializePublicKey,
} from "@relaycorp/relaynet-core";
import { channelCertificateFromDer, channelIdOf } from "../../mesh/posts.ts";
import { UserInputError } from "./errors.ts";
import { base32Decode, base32Encode } from "./protocol/compact_der.ts";

/** What a channel link's text starts with. */
export const CHANNEL_LINK_PREFIX = "RELAYMAIL-CHANNEL:";
/** Most octets of a channel title (§5). */
export const MAX_TITLE_OCTETS = 200;
/** Most octets a link may take: a certificate, a title and a signature fit well within. */
const MAX_LINK_OCTETS = 16_384;
const LINK_VERSION = 1;
const TITLE_LABEL = "relaymail/channel-title/1";

/** A link, checked. */
export interface ChannelLink {
  readonly channelId: string;
  readonly title: string;
  readonly certificate: Certificate;
  /** The link's octets, as checked. */
  readonly bytes: Uint8Array;
}

/** The octets the channel key signs for `data` under `label`: label ‖ 0 ‖ data. */
function labelled(labelText: string, data: Uint8Array): Uint8Array {
  const label = new TextEncoder().encode(labelText);
  const input = new Uint8Array(label.length + 1 + data.length);
  input.set(label);
  input.set(data, label.length + 1);
  return input;
}

/** The octets the channel key signs for `title` (§5). */
function titleInput(title: Uint8Array): Uint8Array {
  return labelled(TITLE_LABEL, title);
}

const PSS = { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 } as const;

/** Signs label ‖ 0 ‖ `data` with a channel's private key (RSA-PSS, SHA-256, as the title). */
export async function signWithChannelKey(
  privateKey: CryptoKey,
  label: string,
  data: Uint8Array,
): Promise<Uint8Array> {
  const key = createPrivateKey({
    key: Buffer.from(await derSerializePrivateKey(privateKey)),
    format: "der",
    type: "pkcs8",
  });
  return new Uint8Array(sign("sha256", labelled(label, data), { key, ...PSS }));
}

/** Whether `signature` is the channel key's over label ‖ 0 ‖ `data` ({@linkcode signWithChannelKey}). */
export async function signedByChannel(
  certificate: Certificate,
  label: string,
  data: Uint8Array,
  signature: Uint8Array,
): Promise<boolean> {
  try {
    const key = createPublicKey({
      key: Buffer.from(await derSerializePublicKey(await certificate.getPublicKey())),
      format: "der",
      type: "spki",
    });
    return verify("sha256", labelled(label, data), { key, ...PSS }, signature);
  } catch {
    return false;
  }
}

/**
 * What a title may not hold (§5): control characters (C0, DEL, C1: a terminal
 * would obey them), line and paragraph separators, and the bidirectional
 * embeddings, overrides and isolates that would show it in another order.
 */
// deno-lint-ignore no-control-regex
const FORBIDDEN_IN_TITLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/u;

/** Why `title` is not a channel title, or null when it is one. */
function titleProblem(title: string, octets: number): string | null {
  if (octets === 0 || octets > MAX_TITLE_OCTETS) {
    return `a channel title takes 1 to ${MAX_TITLE_OCTETS} UTF-8 octets, not ${octets}`;
  }
  const bad = FORBIDDEN_IN_TITLE.exec(title);
  if (bad) {
    const code = bad[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0");
    return `a channel title cannot hold control or text-direction characters (U+${code})`;
  }
  return null;
}

/** Checks a channel title: 1 to 200 UTF-8 octets once trimmed, no control characters. */
export function checkTitle(title: string): string {
  const trimmed = title.trim();
  const problem = titleProblem(trimmed, new TextEncoder().encode(trimmed).length);
  if (problem) throw new UserInputError(problem.charAt(0).toUpperCase() + problem.slice(1));
  return trimmed;
}

/** Makes a channel's link: its certificate and title, the title signed by the channel key. */
export async function makeChannelLink(
  certificate: Certificate,
  privateKey: CryptoKey,
  title: string,
): Promise<Uint8Array> {
  const titleOctets = new TextEncoder().encode(checkTitle(title));
  const key = createPrivateKey({
    key: Buffer.from(await derSerializePrivateKey(privateKey)),
    format: "der",
    type: "pkcs8",
  });
  const signature = sign("sha256", titleInput(titleOctets), { key, ...PSS });
  const parts = [new Uint8Array(certificate.serialize()), titleOctets, new Uint8Array(signature)];
  const out = new Uint8Array(1 + parts.reduce((n, p) => n + 2 + p.length, 0));
  out[0] = LINK_VERSION;
  let offset = 1;
  for (const part of parts) {
    new DataView(out.buffer).setUint16(offset, part.length);
    out.set(part, offset + 2);
    offset += 2 + part.length;
  }
  return out;
}

/** The text form of a link's octets. */
export function channelLinkText(bytes: Uint8Array): string {
  return CHANNEL_LINK_PREFIX + base32Encode(bytes);
}

/** Reads and checks a link's text (whitespace and case are no matter). */
export async function parseChannelLinkText(text: string): Promise<ChannelLink> {
  const compact = text.replace(/\s+/g, "").toUpperCase();
  if (!compact.startsWith(CHANNEL_LINK_PREFIX)) {
    throw new UserInputError(`A channel link starts with ${CHANNEL_LINK_PREFIX}`);
  }
  const body = compact.slice(CHANNEL_LINK_PREFIX.length);
  if (!/^[A-Z2-7]+$/.test(body) || body.length > Math.ceil(MAX_LINK_OCTETS * 8 / 5)) {
    throw new UserInputError("The channel link is not valid base32 text, or is too long");
  }
  let bytes: Uint8Array;
  try {
    bytes = base32Decode(body);
  } catch (error) {
    throw new UserInputError("The channel link is not valid base32 text", { cause: error });
  }
  return await checkChannelLink(bytes);
}

/** Checks a link's octets: a self-signed channel certificate and the title signed by its key. */
export async function checkChannelLink(bytes: Uint8Array): Promise<ChannelLink> {
  const fail = (why: string, cause?: unknown): never => {
    throw new UserInputError(`The channel link is not valid: ${why}`, { cause });
  };
  if (bytes.length > MAX_LINK_OCTETS) fail(`it takes more than ${MAX_LINK_OCTETS} octets`);
  if (bytes[0] !== LINK_VERSION) fail(`version ${bytes[0]} is unknown (1 is)`);
  const parts: Uint8Array[] = [];
  let offset = 1;
  for (let i = 0; i < 3; i++) {
    if (offset + 2 > bytes.length) fail("it is cut short");
    const n = new DataView(bytes.buffer, bytes.byteOffset).getUint16(offset);
    if (offset + 2 + n > bytes.length) fail("it is cut short");
    parts.push(bytes.subarray(offset + 2, offset + 2 + n));
    offset += 2 + n;
  }
  if (offset !== bytes.length) fail("it has octets after its signature");
  const [der, titleOctets, signature] = parts;
  let certificate: Certificate;
  let channelId: string;
  try {
    certificate = channelCertificateFromDer(der);
    channelId = await channelIdOf(certificate);
  } catch (error) {
    return fail("its certificate is not a channel's", error);
  }
  let title = "";
  try {
    title = new TextDecoder("utf-8", { fatal: true }).decode(titleOctets);
  } catch (error) {
    fail("its title is not UTF-8", error);
  }
  const problem = titleProblem(title, titleOctets.length);
  if (problem) fail(problem);
  let valid = false;
  try {
    const key = createPublicKey({
      key: Buffer.from(await derSerializePublicKey(await certificate.getPublicKey())),
      format: "der",
      type: "spki",
    });
    valid = verify("sha256", titleInput(titleOctets), { key, ...PSS }, signature);
  } catch {
    valid = false;
  }
  if (!valid) fail("its title is not signed by the channel's key");
  return { channelId, title, certificate, bytes: new Uint8Array(bytes) };
}
