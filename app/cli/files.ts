/**
 * The CLI's own files: what it reads to hand to the messenger (attachments, a
 * body, an invitation) and writes from what the messenger hands back (saved
 * attachments, exports). Operations never touch the caller's files; the command
 * does, in the caller's directory. What the file system says of a path the
 * person gave is theirs to fix: it exits 1, not as our bug.
 *
 * @module
 */
import { basename, join } from "node:path";
import mime from "mime";
import { numberedFileName } from "../core/eml.ts";
import { ConflictError, NotFoundError, UserInputError } from "../core/errors.ts";
import type { AttachmentInput } from "../core/mailbox.ts";

/** How far {@linkcode writeNewFile} numbers a name before giving up. */
const MAX_NUMBERED_COPIES = 999;

/** The file at `path` as an attachment: its name, media type and content. */
export async function readAttachment(path: string): Promise<AttachmentInput> {
  return {
    fileName: basename(path),
    mediaType: mime.getType(path) ?? "application/octet-stream",
    content: await onPersonsPath(() => Deno.readFile(path)),
  };
}

/** The text of the file at `path`. */
export function readText(path: string): Promise<string> {
  return onPersonsPath(() => Deno.readTextFile(path));
}

/** Writes `content` to `path`, replacing what is there. */
export function writeFile(
  path: string,
  content: Uint8Array | string,
  options: Deno.WriteFileOptions = {},
): Promise<void> {
  return onPersonsPath(() =>
    typeof content === "string"
      ? Deno.writeTextFile(path, content, options)
      : Deno.writeFile(path, content, options)
  );
}

/** Creates the directory `path` and those above it, if missing. */
export function makeDirectory(path: string): Promise<void> {
  return onPersonsPath(() => Deno.mkdir(path, { recursive: true }));
}

/**
 * Writes `content` to a new file `name` in `directory`, or `name (1)`, `name (2)`…
 * when taken; returns its path. Never overwrites, nor follows a link planted there.
 */
export async function writeNewFile(
  directory: string,
  name: string,
  content: Uint8Array,
): Promise<string> {
  for (let n = 0; n <= MAX_NUMBERED_COPIES; n++) {
    const path = join(directory, n === 0 ? name : numberedFileName(name, n));
    try {
      await Deno.writeFile(path, content, { createNew: true });
      return path;
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw personsFault(error);
    }
  }
  throw new ConflictError(
    `Cannot save "${name}" in ${directory}: it and ${MAX_NUMBERED_COPIES} numbered copies exist`,
  );
}

/** Runs `fn` on a path the person gave; the file system's refusals become theirs. */
async function onPersonsPath<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw personsFault(error);
  }
}

/** `error`, raised on a path the person gave, as their fault when the file system refused it. */
function personsFault(error: unknown): unknown {
  if (error instanceof Deno.errors.NotFound) {
    return new NotFoundError(error.message, { cause: error });
  }
  if (
    error instanceof Deno.errors.PermissionDenied || error instanceof Deno.errors.AlreadyExists ||
    error instanceof Deno.errors.IsADirectory || error instanceof Deno.errors.NotADirectory
  ) return new UserInputError(error.message, { cause: error });
  return error;
}
