/**
 * The sneakernet binding: parcels carried on a directory (a USB stick, a shared
 * folder). Export writes every parcel waiting to leave a node into the directory;
 * import hands every parcel file found there to a node.
 *
 * - Files are named `<hex SHA-256>.parcel` and hold one serialised parcel each.
 * - Each file is written under a temporary name (`.<UUID>.tmp`), flushed to the
 *   medium, then renamed: a stick pulled out mid-export leaves at most a stray
 *   temporary file, never a half-written `.parcel`.
 * - A parcel counts as handed over once its file is on the medium.
 * - Export and import refuse a directory that does not exist (a stick not
 *   plugged in, a mistyped path): export never creates one.
 * - Import reads the regular files at the top of the directory whose names end in
 *   `.parcel` in any case and do not start with a dot; it reports every other entry
 *   as ignored, with why. It never changes the medium.
 * - Import is idempotent: the node recognises parcels it already holds.
 * - A corrupt or unreadable file is reported and skipped, never fatal.
 *
 * docs/protocol.md §9 specifies the medium for other implementations.
 *
 * @module
 */
import { join } from "node:path";
import type { OutgoingParcelsOptions, ParcelNode, RefusalCode } from "../binding.ts";
import { errorMessage, MAX_PARCEL_LENGTH } from "../validation.ts";

/** Extension of parcel files: export writes it in lower case, import takes any case. */
export const PARCEL_FILE_EXTENSION = ".parcel";

/** Name of the temporary file an export writes a parcel under before renaming it. */
const TEMPORARY_FILE = /^\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.tmp$/;

/** Name of this binding in handovers and the refusal log. */
export const SNEAKERNET = "sneakernet";

/** Progress of a long export or import. */
export interface SneakernetProgress {
  /** Parcels (on export) or files (on import) done so far. */
  readonly done: number;
  /** How many there are in all. */
  readonly total: number;
}

/** Options of {@linkcode exportParcels}. */
export interface ExportOptions extends OutgoingParcelsOptions {
  /** Called after each parcel. */
  readonly onProgress?: (progress: SneakernetProgress) => void;
}

/** What {@linkcode exportParcels} did. */
export interface ExportReport {
  /** Parcel files written. */
  readonly written: number;
  /** Parcels whose file was already in the directory. */
  readonly alreadyThere: number;
  /** Octets written. */
  readonly bytes: number;
}

/** Options of {@linkcode importParcels}. */
export interface ImportOptions {
  /** Called after each file. */
  readonly onProgress?: (progress: SneakernetProgress) => void;
}

/** Why {@linkcode importParcels} did not read a directory entry. */
export type IgnoredEntryCode =
  /** An export's temporary file (`.<UUID>.tmp`): unfinished, or being written now. */
  | "temporary"
  /** A subdirectory: import does not look inside. */
  | "directory"
  /** A symbolic link: import does not follow links. */
  | "symlink"
  /** Neither a regular file nor a directory (a device, pipe or socket). */
  | "not-a-file"
  /** A name starting with a dot, such as macOS's `._` companions of copied files. */
  | "hidden"
  /** A name that does not end in `.parcel` (in any case). */
  | "not-a-parcel-name";

/** A directory entry {@linkcode importParcels} did not read. */
export interface IgnoredEntry {
  /** Path of the entry (the directory joined with its name). */
  readonly file: string;
  /** Why, in a stable form. */
  readonly code: IgnoredEntryCode;
  /** Why, for people. */
  readonly reason: string;
}

/** What {@linkcode importParcels} did. */
export interface ImportReport {
  /** Parcels the node stored. */
  readonly accepted: number;
  /** Parcels the node already had. */
  readonly duplicates: number;
  /** Parcels addressed to someone this node does not serve; left on the medium. */
  readonly skipped: number;
  /** Parcels the node refused, with why. */
  readonly refused: readonly { file: string; code: RefusalCode; reason: string }[];
  /** Parcel files that could not be read at all (empty, larger than any parcel, I/O error). */
  readonly unreadable: readonly { file: string; error: string }[];
  /** Every other entry of the directory, not read, with why; sorted by name. */
  readonly ignored: readonly IgnoredEntry[];
}

/** Leftover temporary files older than this are removed by the next export. */
const STALE_TEMPORARY_MS = 60 * 60 * 1000;

/**
 * Writes every parcel waiting to leave `node` into `directory` and reports each
 * as handed over once its file is safely on the medium. The directory must
 * exist: a stick that is not plugged in, or a mistyped path, is refused with
 * `Deno.errors.NotFound` rather than created (and the parcels reported handed
 * over to a folder nobody will carry).
 */
export async function exportParcels(
  node: ParcelNode,
  directory: string,
  options: ExportOptions = {},
): Promise<ExportReport> {
  await removeStaleTemporaryFiles(directory).catch((error) => {
    throw error instanceof Deno.errors.NotFound ? missingDirectory(directory) : error;
  });
  const parcels = await node.outgoingParcels(options);
  let written = 0;
  let alreadyThere = 0;
  let bytes = 0;
  for (const [index, parcel] of parcels.entries()) {
    const path = join(directory, parcel.key + PARCEL_FILE_EXTENSION);
    if (await sizeOf(path) === parcel.size) {
      alreadyThere++;
    } else {
      const content = await parcel.read();
      if (content === null) continue; // delivered or expired meanwhile
      await writeFileAtomically(directory, path, content);
      written++;
      bytes += content.byteLength;
    }
    await node.parcelHandedOver(parcel.key, {
      binding: SNEAKERNET,
      hop: directory,
      toRecipient: false,
    });
    options.onProgress?.({ done: index + 1, total: parcels.length });
  }
  return { written, alreadyThere, bytes };
}

/**
 * Hands every parcel file in `directory` to `node`. Files stay where they are, so
 * the same medium can go on to other people. Rejects only if the node itself
 * fails (its storage), after which the import can simply be run again.
 */
export async function importParcels(
  node: ParcelNode,
  directory: string,
  options: ImportOptions = {},
): Promise<ImportReport> {
  const files: string[] = [];
  const ignoredNames: { name: string; code: IgnoredEntryCode }[] = [];
  try {
    for await (const entry of Deno.readDir(directory)) {
      const code = whyIgnored(entry);
      if (code === null) files.push(entry.name);
      else ignoredNames.push({ name: entry.name, code });
    }
  } catch (error) {
    throw error instanceof Deno.errors.NotFound ? missingDirectory(directory) : error;
  }
  files.sort();
  const ignored = ignoredNames
    .sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
    .map(({ name, code }) => ({ file: join(directory, name), code, reason: IGNORED[code] }));
  let accepted = 0, duplicates = 0, skipped = 0;
  const refused: { file: string; code: RefusalCode; reason: string }[] = [];
  const unreadable: { file: string; error: string }[] = [];
  for (const [index, name] of files.entries()) {
    const path = join(directory, name);
    const content = await readParcelFile(path);
    if (typeof content === "string") {
      unreadable.push({ file: path, error: content });
    } else {
      const outcome = await node.receiveParcel(content, { binding: SNEAKERNET, hop: path });
      switch (outcome.status) {
        case "accepted":
          accepted++;
          break;
        case "duplicate":
          duplicates++;
          break;
        case "skipped":
          skipped++;
          break;
        case "refused":
          refused.push({ file: path, code: outcome.code, reason: outcome.reason });
      }
    }
    options.onProgress?.({ done: index + 1, total: files.length });
  }
  await node.flush?.();
  return { accepted, duplicates, skipped, refused, unreadable, ignored };
}

/** The error of an export or import whose directory does not exist. */
function missingDirectory(directory: string): Deno.errors.NotFound {
  return new Deno.errors.NotFound(
    `No folder ${directory}: plug the stick in, or check the path`,
  );
}

const IGNORED: Record<IgnoredEntryCode, string> = {
  "temporary": "Temporary file of an export that is unfinished or still running",
  "directory": "Directory: import does not look inside subdirectories",
  "symlink": "Symbolic link: import does not follow links",
  "not-a-file": "Not a regular file",
  "hidden": "Hidden file (its name starts with a dot)",
  "not-a-parcel-name": `Name does not end in ${PARCEL_FILE_EXTENSION}`,
};

/** Why import leaves `entry` unread, or null if it is a parcel file to read. */
function whyIgnored(entry: Deno.DirEntry): IgnoredEntryCode | null {
  if (entry.isSymlink) return "symlink";
  if (entry.isDirectory) return "directory";
  if (!entry.isFile) return "not-a-file";
  if (TEMPORARY_FILE.test(entry.name)) return "temporary";
  if (entry.name.startsWith(".")) return "hidden";
  // FAT sticks, phones and some copy tools change the case of names; the name
  // carries no meaning (import never trusts it), so any case will do.
  if (!entry.name.toLowerCase().endsWith(PARCEL_FILE_EXTENSION)) return "not-a-parcel-name";
  return null;
}

/** The file's bytes, or why they cannot be a parcel. */
async function readParcelFile(path: string): Promise<Uint8Array | string> {
  try {
    const size = (await Deno.stat(path)).size;
    if (size === 0) return "empty file";
    if (size > MAX_PARCEL_LENGTH) {
      return `file has ${size} bytes, more than any parcel (${MAX_PARCEL_LENGTH})`;
    }
    return await Deno.readFile(path);
  } catch (error) {
    return errorMessage(error);
  }
}

async function writeFileAtomically(
  directory: string,
  path: string,
  content: Uint8Array,
): Promise<void> {
  const temporary = join(directory, `.${crypto.randomUUID()}.tmp`);
  try {
    const file = await Deno.open(temporary, { write: true, createNew: true });
    try {
      let offset = 0;
      while (offset < content.byteLength) offset += await file.write(content.subarray(offset));
      await file.syncData();
    } finally {
      file.close();
    }
    await Deno.rename(temporary, path);
  } catch (error) {
    await Deno.remove(temporary).catch(() => {});
    throw error;
  }
  await syncDirectory(directory);
}

/** Makes the rename durable; not every platform or filesystem allows it. */
async function syncDirectory(directory: string): Promise<void> {
  try {
    const handle = await Deno.open(directory, { read: true });
    try {
      await handle.sync();
    } finally {
      handle.close();
    }
  } catch {
    // FAT sticks and Windows cannot fsync a directory; the rename is still atomic.
  }
}

async function sizeOf(path: string): Promise<number | null> {
  try {
    return (await Deno.stat(path)).size;
  } catch {
    return null;
  }
}

async function removeStaleTemporaryFiles(directory: string): Promise<void> {
  const now = Date.now();
  for await (const entry of Deno.readDir(directory)) {
    // Only this binding's own temporary files: the directory may be a whole stick.
    if (!entry.isFile || !TEMPORARY_FILE.test(entry.name)) continue;
    const path = join(directory, entry.name);
    const info = await Deno.stat(path).catch(() => null);
    if (info?.mtime && now - info.mtime.getTime() > STALE_TEMPORARY_MS) {
      await Deno.remove(path).catch(() => {});
    }
  }
}
