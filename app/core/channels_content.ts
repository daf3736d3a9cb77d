/**
 * What a Relaymail post says (docs/broadcast.md §4): a service message holding
 * `{"text", "title"}` as JSON, in the clear for a public channel, sealed with
 * AES-256-GCM under a channel content key for a private one.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { ServiceMessage } from "@relaycorp/relaynet-core";
import { toHex } from "../../bindings/validation.ts";

/** Type of a public post's service message. */
export const POST_TYPE = "application/vnd.relaymail.channel-post+json";
/** Type of a private post's service message. */
export const SEALED_POST_TYPE = "application/vnd.relaymail.channel-post-sealed";
/** Most UTF-8 octets of a post's text (§4). */
export const MAX_TEXT_OCTETS = 65_536;
/** Most UTF-8 octets of a post's title (§4). */
export const MAX_POST_TITLE_OCTETS = 200;
/** Octets of a content key id (§4). */
export const KEY_ID_OCTETS = 16;
const NONCE_OCTETS = 12;
const AAD_LABEL = "relaymail/channel-post/1";

/** What a post says, read. */
export interface PostContent {
  readonly text: string;
  readonly title: string | null;
}

/** A channel content key. */
export interface ContentKey {
  /** 16 octets, hex. */
  readonly id: string;
  /** 32 octets. */
  readonly key: Uint8Array;
}

/** What reading a payload gave: the content, or why not, and the key a sealed one needs. */
export interface OpenedPayload {
  readonly content: PostContent | null;
  /** A sealed post's content key id (hex), else null. */
  readonly keyId: string | null;
}

const octets = (text: string) => new TextEncoder().encode(text).length;

/** Checks a post's text and title against §4's limits, naming the one exceeded. */
export function checkPostContent(content: PostContent): void {
  if (octets(content.text) > MAX_TEXT_OCTETS) {
    throw new RangeError(
      `A post's text takes at most ${MAX_TEXT_OCTETS} UTF-8 octets, not ${octets(content.text)}`,
    );
  }
  if (content.title !== null && octets(content.title) > MAX_POST_TITLE_OCTETS) {
    throw new RangeError(
      `A post's title takes at most ${MAX_POST_TITLE_OCTETS} UTF-8 octets, not ${
        octets(content.title)
      }`,
    );
  }
}

/** A new random content key. */
export function newContentKey(): ContentKey {
  return {
    id: toHex(crypto.getRandomValues(new Uint8Array(KEY_ID_OCTETS))),
    key: crypto.getRandomValues(new Uint8Array(32)),
  };
}

function publicMessage(content: PostContent): Uint8Array {
  const json = JSON.stringify(
    content.title === null ? { text: content.text } : { text: content.text, title: content.title },
  );
  return new Uint8Array(
    new ServiceMessage(POST_TYPE, Buffer.from(new TextEncoder().encode(json))).serialize(),
  );
}

function additionalData(channelId: string): Uint8Array {
  return new TextEncoder().encode(`${AAD_LABEL}\0${channelId}`);
}

async function aesKey(key: Uint8Array): Promise<CryptoKey> {
  return await crypto.subtle.importKey("raw", key as BufferSource, "AES-GCM", false, [
    "encrypt",
    "decrypt",
  ]);
}

/** A post's payload: public, or sealed under `key` for private channel `channelId`. */
export async function encodePostPayload(
  content: PostContent,
  seal?: { readonly channelId: string; readonly key: ContentKey },
): Promise<Uint8Array> {
  checkPostContent(content);
  const message = publicMessage(content);
  if (!seal) return message;
  const nonce = crypto.getRandomValues(new Uint8Array(NONCE_OCTETS));
  const ciphertext = new Uint8Array(
    await crypto.subtle.encrypt(
      {
        name: "AES-GCM",
        iv: nonce,
        additionalData: additionalData(seal.channelId) as BufferSource,
      },
      await aesKey(seal.key.key),
      message as BufferSource,
    ),
  );
  const body = new Uint8Array(KEY_ID_OCTETS + NONCE_OCTETS + ciphertext.length);
  body.set(Buffer.from(seal.key.id, "hex"));
  body.set(nonce, KEY_ID_OCTETS);
  body.set(ciphertext, KEY_ID_OCTETS + NONCE_OCTETS);
  return new Uint8Array(
    new ServiceMessage(SEALED_POST_TYPE, Buffer.from(body)).serialize(),
  );
}

/** Reads a public post's service message, or null when it is not one Relaymail reads. */
function readPublic(message: ServiceMessage): PostContent | null {
  if (message.type !== POST_TYPE) return null;
  try {
    const json = JSON.parse(
      new TextDecoder("utf-8", { fatal: true }).decode(new Uint8Array(message.content)),
    );
    if (typeof json?.text !== "string") return null;
    const title = typeof json.title === "string" ? json.title : null;
    const content = { text: json.text, title };
    checkPostContent(content);
    return content;
  } catch {
    return null;
  }
}

/**
 * Reads a post's payload with whichever of `keys` it names (by id, hex): a
 * payload Relaymail cannot read (an unknown type, a key it lacks, a text past
 * the limits) gives null content, never an error.
 */
export async function openPostPayload(
  payload: Uint8Array,
  channelId: string,
  keys: (keyId: string) => Uint8Array | undefined,
): Promise<OpenedPayload> {
  let message: ServiceMessage;
  try {
    message = ServiceMessage.deserialize(
      payload.buffer.slice(
        payload.byteOffset,
        payload.byteOffset + payload.byteLength,
      ) as ArrayBuffer,
    );
  } catch {
    return { content: null, keyId: null };
  }
  if (message.type !== SEALED_POST_TYPE) return { content: readPublic(message), keyId: null };
  const body = new Uint8Array(message.content);
  if (body.length < KEY_ID_OCTETS + NONCE_OCTETS + 16) return { content: null, keyId: null };
  const keyId = toHex(body.subarray(0, KEY_ID_OCTETS));
  const key = keys(keyId);
  if (!key) return { content: null, keyId };
  try {
    const plain = await crypto.subtle.decrypt(
      {
        name: "AES-GCM",
        iv: body.subarray(KEY_ID_OCTETS, KEY_ID_OCTETS + NONCE_OCTETS) as BufferSource,
        additionalData: additionalData(channelId) as BufferSource,
      },
      await aesKey(key),
      body.subarray(KEY_ID_OCTETS + NONCE_OCTETS) as BufferSource,
    );
    return { content: readPublic(ServiceMessage.deserialize(plain)), keyId };
  } catch {
    return { content: null, keyId };
  }
}
