/**
 * Reading a composed message's form so that every file keeps its exact name.
 *
 * Deno's `Request.formData()` splits `Content-Disposition` at every `;` and `=`,
 * even inside quotes: `a=b;c.txt` arrives as `"a`. Here the parts are framed by
 * `@remix-run/multipart-parser`, and each part's `Content-Disposition` is read
 * by the rule browsers write it by (and curl, and Deno's own `FormData`): the
 * HTML standard's multipart/form-data encoding algorithm, where a name is UTF-8
 * between double quotes with only LF, CR and `"` escaped, as `%0A`, `%0D` and
 * `%22`. A backslash stays a backslash: decoding RFC 2045 quoted-pairs, as mail
 * parsers do, would eat it. (A name holding a literal `%22` comes back as `"`:
 * the browser's encoding cannot tell the two apart.)
 *
 * @module
 */
import {
  MaxFileSizeExceededError,
  MaxPartsExceededError,
  MaxTotalSizeExceededError,
  MultipartParseError,
  parseMultipartRequest,
} from "@remix-run/multipart-parser";
import { HttpError } from "./errors.ts";

/** A file of a form, as its sender named it. */
export interface UploadedFile {
  /** The name exactly as the sender's file was named ("" when the browser gave none). */
  readonly name: string;
  /** Its `Content-Type`, when the sender gave one. */
  readonly mediaType: string | undefined;
  readonly content: Uint8Array;
}

/** A submitted form: its text fields in order, and its files. */
export interface UploadedForm {
  /** Each text field's values, in the order sent. */
  readonly fields: ReadonlyMap<string, readonly string[]>;
  readonly files: readonly UploadedFile[];
}

/** Limits of {@linkcode readForm}; beyond any of them the answer is a 413. */
export interface ReadFormOptions {
  /** Bytes in one part. */
  readonly maxFileSize: number;
  /** Bytes in all parts together. */
  readonly maxTotalSize: number;
  /** Number of parts (default 1000). */
  readonly maxParts?: number;
  /** The name of the file fields (default "attachments"); other parts are text. */
  readonly fileField?: string;
}

/**
 * Reads a `multipart/form-data` (or `application/x-www-form-urlencoded`) body;
 * a 400 if it is damaged, a 413 if it is over a limit, a 415 if it is neither.
 */
export async function readForm(request: Request, options: ReadFormOptions): Promise<UploadedForm> {
  const type = request.headers.get("content-type") ?? "";
  const fields = new Map<string, string[]>();
  const add = (name: string, value: string) => fields.set(name, [...fields.get(name) ?? [], value]);
  if (/^application\/x-www-form-urlencoded\b/i.test(type)) {
    for (const [name, value] of new URLSearchParams(await request.text())) add(name, value);
    return { fields, files: [] };
  }
  if (!/^multipart\/form-data\b/i.test(type)) {
    throw new HttpError(415, "Send the message as multipart/form-data, as a form with files is");
  }
  const fileField = options.fileField ?? "attachments";
  const files: UploadedFile[] = [];
  try {
    for await (
      const part of parseMultipartRequest(request, {
        maxFileSize: options.maxFileSize,
        maxTotalSize: options.maxTotalSize,
        maxParts: options.maxParts ?? 1000,
      })
    ) {
      const disposition = formDataDisposition(part.headers["content-disposition"] ?? "");
      if (disposition.name === undefined) continue; // not a form field
      if (disposition.name === fileField && disposition.filename !== undefined) {
        files.push({
          name: disposition.filename,
          mediaType: part.headers["content-type"]?.trim() || undefined,
          content: part.bytes,
        });
      } else {
        add(disposition.name, part.text);
      }
    }
  } catch (error) {
    if (
      error instanceof MaxFileSizeExceededError || error instanceof MaxTotalSizeExceededError ||
      error instanceof MaxPartsExceededError
    ) {
      throw new HttpError(413, `The message is too large: ${error.message}`, { cause: error });
    }
    if (error instanceof MultipartParseError) {
      throw new HttpError(400, `The message's form is damaged: ${error.message}`, {
        cause: error,
      });
    }
    if (error instanceof TypeError && /decode|encoded/i.test(error.message)) {
      throw new HttpError(400, "The message's form must be in UTF-8", { cause: error });
    }
    throw error;
  }
  return { fields, files };
}

/**
 * The `name` and `filename` of a part's `Content-Disposition`, decoded the way
 * the HTML standard's multipart/form-data encoding algorithm encodes them.
 *
 * @example A name that Deno's own parser cuts short
 * ```ts
 * import { formDataDisposition } from "./multipart.ts";
 *
 * const { filename } = formDataDisposition(
 *   'form-data; name="attachments"; filename="a=b; %22c%22 \\ – 日本.txt"',
 * );
 * if (filename !== 'a=b; "c" \\ – 日本.txt') throw new Error(filename);
 * ```
 */
export function formDataDisposition(header: string): { name?: string; filename?: string } {
  const found: { name?: string; filename?: string } = {};
  // After the type: `; key=value` pairs, a value quoted (no escapes inside) or a bare token.
  const parameter = /\s*;\s*([^\s=;]+)\s*=\s*(?:"([^"]*)"|([^;]*))/y;
  parameter.lastIndex = header.indexOf(";") === -1 ? header.length : header.indexOf(";");
  for (let match; (match = parameter.exec(header)) !== null;) {
    const key = match[1].toLowerCase();
    const value = decodeFormName(match[2] ?? match[3].trim());
    if ((key === "name" || key === "filename") && found[key] === undefined) found[key] = value;
  }
  return found;
}

/** Undoes the HTML standard's escapes of LF, CR and `"` in form names. */
function decodeFormName(text: string): string {
  return text.replace(
    /%(0A|0D|22)/gi,
    (_, hex: string) => String.fromCharCode(parseInt(hex, 16)),
  );
}
