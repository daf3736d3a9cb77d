/**
 * `Content-Disposition` of a download (RFC 6266), for any file name: an en dash,
 * CJK, an emoji, quotes, `;`, `=` or `\` included.
 *
 * HTTP header values are bytes, and Deno refuses any character outside
 * Latin-1, so the name travels twice: `filename*` carries it in UTF-8,
 * percent-encoded (RFC 8187, which RFC 6266 §4.3 cites as RFC 5987), and
 * `filename` an ASCII stand-in for the rare client that ignores `filename*`
 * (RFC 6266 §4.3 asks for both, `filename` first).
 *
 * @module
 */
import { safeFileName } from "../core/eml.ts";

/** Options of {@linkcode contentDisposition}. */
export interface ContentDispositionOptions {
  /** The name to give when nothing usable is left of the file's (default "download"). */
  readonly fallback?: string;
}

/**
 * Path separators (RFC 6266 §4.3: a name must not choose a directory), control
 * characters, and the bidirectional controls that could show `exe.pdf` for a
 * `.exe` name. Everything else is the sender's name exactly; the browser makes
 * it fit the disk.
 */
const NEVER_IN_NAMES = /[\\/\p{Cc}\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu;

/**
 * The `Content-Disposition` header that makes a browser save the response as
 * `fileName`.
 *
 * @example An attachment with an en dash and an emoji in its name
 * ```ts
 * import { contentDisposition } from "./content_disposition.ts";
 *
 * const header = contentDisposition("Plan – 🎉.pdf");
 * if (
 *   header !== `attachment; filename="Plan _ _.pdf"; filename*=UTF-8''Plan%20%E2%80%93%20%F0%9F%8E%89.pdf`
 * ) throw new Error(header);
 * ```
 */
export function contentDisposition(
  fileName: string,
  options: ContentDispositionOptions = {},
): string {
  const fallback = options.fallback ?? "download";
  // A lone surrogate (JSON allows one) has no UTF-8: it becomes U+FFFD.
  let name = fileName.toWellFormed().replace(NEVER_IN_NAMES, "_").trim();
  if (/^\.*$/.test(name)) name = fallback; // "", "." and ".." name no file
  const ascii = asciiName(name, fallback);
  return ascii === name
    ? `attachment; filename="${ascii}"`
    : `attachment; filename="${ascii}"; filename*=UTF-8''${encodeExtValue(name)}`;
}

/**
 * `name` in printable ASCII, safe on every filesystem, for `filename`'s quoted
 * string: no `"` or `\` (quoted-string escapes, RFC 9110 §5.6.4), and no `%`,
 * which some clients decode (RFC 6266 appendix D).
 */
function asciiName(name: string, fallback: string): string {
  const safe = safeFileName(name, fallback).replace(/[^\x20-\x7e]+/gu, "_").replace(/%/g, "_");
  const dot = safe.lastIndexOf(".");
  const stem = dot > 0 ? safe.slice(0, dot) : safe;
  // Nothing readable left (a name all in CJK, say): a word beats "_.pdf".
  return /[A-Za-z0-9]/.test(stem) ? safe : fallback + (dot > 0 ? safe.slice(dot) : "");
}

/** `text` as RFC 8187 §3.2.1 `value-chars`: attr-chars as they are, every other byte as %XX. */
function encodeExtValue(text: string): string {
  // encodeURIComponent leaves ' ( ) * as they are, but they are no attr-chars.
  return encodeURIComponent(text).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}
