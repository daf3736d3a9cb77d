/**
 * The backup file (`.rmbackup`): a data directory's contents encrypted under a
 * passphrase the person types, with the same scrypt and AES-256-GCM sealing as
 * private keys at rest (`keys/sealing.ts`, format `RMS2`), in chunks so that a
 * backup of any size is written and read without holding it in memory.
 *
 * | Octets | Field                                                  |
 * | ------ | ------------------------------------------------------ |
 * | 8      | magic `RMBACKUP`                                       |
 * | 1      | format version (1)                                     |
 * | 1      | log2 of scrypt's N                                     |
 * | 1      | scrypt's r                                             |
 * | 1      | scrypt's p                                             |
 * | 16     | scrypt salt                                            |
 * | 16     | the file's random id                                   |
 * | …      | frames: a 4-octet big-endian length, then an `RMS2` chunk |
 *
 * The first chunk holds the manifest (JSON: {@linkcode BackupManifest}), the
 * others the payload (the database), in at most {@linkcode CHUNK_SIZE} octets
 * each. Chunk `i` is sealed with the label
 * `relaymail-backup:1:<header in hex>:<i>:<end|more>`, so the header is
 * authenticated, chunks cannot be reordered, dropped, or taken from another
 * backup, and a file cut after a whole chunk is caught: only the last chunk
 * says `end`. The header's scrypt cost is refused, before any derivation,
 * when it is dearer than `SCRYPT_PARAMS` (which every backup is made at): a
 * crafted file must not hold the process. A wrong passphrase and an altered
 * file both fail the first chunk's tag, and are told apart from nothing else:
 * "wrong passphrase, or the backup is damaged".
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { UserInputError } from "./errors.ts";
import {
  KeySealer,
  SCRYPT_PARAMS,
  type ScryptParams,
  WrongPassphraseError,
} from "./keys/sealing.ts";

/** The shortest passphrase a backup may be made under. */
export const MIN_BACKUP_PASSPHRASE = 10;
/** The most payload one chunk holds: 1 MiB. */
export const CHUNK_SIZE = 1024 * 1024;
/** The name a backup gets when only a directory is given: `relaymail-backup-2026-11-30.rmbackup`. */
export const BACKUP_EXTENSION = ".rmbackup";

const MAGIC = new TextEncoder().encode("RMBACKUP");
const VERSION = 1;
const SALT_LENGTH = 16;
const ID_LENGTH = 16;
const HEADER_LENGTH = MAGIC.length + 1 + 3 + SALT_LENGTH + ID_LENGTH;
/** What sealing adds to a chunk: RMS2 header (23), nonce (12), tag (16). */
const CHUNK_OVERHEAD = 23 + 12 + 16;
/** The most scrypt work (N × r × p) a backup may ask for: that of `SCRYPT_PARAMS`. */
const MAX_SCRYPT_WORK = 2 ** SCRYPT_PARAMS.log2N * SCRYPT_PARAMS.r * SCRYPT_PARAMS.p;
/** The most scrypt memory (128 × N × r octets) a backup may ask for: that of `SCRYPT_PARAMS`. */
const MAX_SCRYPT_MEMORY = 128 * 2 ** SCRYPT_PARAMS.log2N * SCRYPT_PARAMS.r;
/** The largest manifest accepted when reading. */
const MAX_MANIFEST = 64 * 1024;

/** What a backup says of itself, readable once its passphrase opened it. */
export interface BackupManifest {
  /** The format of the payload: 1, a SQLite database. */
  readonly format: 1;
  readonly createdAt: string;
  readonly identity: { readonly id: string; readonly name: string };
  readonly contacts: number;
  readonly messages: number;
  /** False for a backup made `--without-mail`. */
  readonly includesMail: boolean;
  /** The payload's size in octets. */
  readonly payloadBytes: number;
}

/** Raised when a backup cannot be opened: wrong passphrase, damage or not a backup at all. */
export class BackupUnreadableError extends UserInputError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "BackupUnreadableError";
  }
}

/** Refuses a passphrase too short to protect a backup that may travel. */
export function checkBackupPassphrase(passphrase: string): void {
  if ([...passphrase].length < MIN_BACKUP_PASSPHRASE) {
    throw new UserInputError(
      `A backup passphrase needs at least ${MIN_BACKUP_PASSPHRASE} characters, not ${
        [...passphrase].length
      }: the file may be copied anywhere, and only the passphrase protects it`,
    );
  }
}

/** Options of {@linkcode writeBackup}. */
export interface WriteBackupOptions {
  /** The scrypt cost (default: `SCRYPT_PARAMS`); only tests lower it. */
  readonly params?: ScryptParams;
  /** Told how many payload octets are written, of how many. */
  readonly onProgress?: (progress: { done: number; total: number }) => void;
}

/** Writes the backup of `payload` (a file) to `out`, sealed by `sealer`. */
export async function writeBackup(
  out: Deno.FsFile,
  sealer: KeySealer,
  manifest: BackupManifest,
  payload: string,
  options: WriteBackupOptions = {},
): Promise<void> {
  const header = new Uint8Array(HEADER_LENGTH);
  header.set(MAGIC, 0);
  header.set([VERSION, sealer.params.log2N, sealer.params.r, sealer.params.p], MAGIC.length);
  header.set(sealer.salt, MAGIC.length + 4);
  header.set(crypto.getRandomValues(new Uint8Array(ID_LENGTH)), MAGIC.length + 4 + SALT_LENGTH);
  await writeAll(out, header);
  const label = chunkLabel(header);
  const total = manifest.payloadBytes;
  await writeFrame(
    out,
    sealer.seal(new TextEncoder().encode(JSON.stringify(manifest)), label(0, total === 0)),
  );
  using file = await Deno.open(payload, { read: true });
  const buffer = new Uint8Array(CHUNK_SIZE);
  let done = 0;
  let index = 1;
  while (done < total) {
    const n = await readFull(file, buffer.subarray(0, Math.min(CHUNK_SIZE, total - done)));
    if (n === 0) throw new Error(`The payload ${payload} ended at ${done} of ${total} octets`);
    done += n;
    await writeFrame(out, sealer.seal(buffer.subarray(0, n), label(index++, done === total)));
    options.onProgress?.({ done, total });
  }
}

/** A backup being read: its manifest, and then its payload. */
export interface OpenedBackup {
  readonly manifest: BackupManifest;
  /** The sealer its passphrase gave (its key is derived: reuse it for keys sealed inside). */
  readonly sealer: KeySealer;
  /** Writes the payload to `to`, all of it authenticated, or throws. */
  payloadTo(
    to: Deno.FsFile,
    onProgress?: (progress: { done: number; total: number }) => void,
  ): Promise<void>;
}

/**
 * Opens the backup in `file` under `passphrase` and reads its manifest; throws
 * {@linkcode BackupUnreadableError} when it is not a backup, is damaged, or the
 * passphrase is wrong.
 */
export async function openBackup(
  file: Deno.FsFile,
  passphrase: string,
  name: string,
): Promise<OpenedBackup> {
  const unreadable = (why: string, cause?: unknown) =>
    new BackupUnreadableError(`Cannot restore from ${name}: ${why}; nothing was restored`, {
      cause,
    });
  const header = new Uint8Array(HEADER_LENGTH);
  const got = await readFull(file, header);
  if (got < MAGIC.length || !equal(header.subarray(0, MAGIC.length), MAGIC)) {
    throw unreadable("it is not a Relaymail backup (it does not start with RMBACKUP)");
  }
  if (got < HEADER_LENGTH) throw unreadable("the backup is damaged (its header is cut short)");
  const version = header[MAGIC.length];
  if (version !== VERSION) {
    throw unreadable(
      `it is in backup format ${version}, which this Relaymail does not read (it reads ${VERSION}): upgrade Relaymail`,
    );
  }
  const [log2N, r, p] = header.subarray(MAGIC.length + 1, MAGIC.length + 4);
  // Refused before any derivation: a crafted header must not hold the process for long.
  if (2 ** log2N * r * p > MAX_SCRYPT_WORK || 128 * 2 ** log2N * r > MAX_SCRYPT_MEMORY) {
    throw unreadable(
      `the backup is damaged or was crafted (its key derivation, scrypt N = 2^${log2N}, r = ${r}, p = ${p}, is dearer than any Relaymail makes)`,
    );
  }
  const salt = header.slice(MAGIC.length + 4, MAGIC.length + 4 + SALT_LENGTH);
  let sealer: KeySealer;
  try {
    sealer = KeySealer.fromPassphrase(passphrase, salt, { params: { log2N, r, p } });
  } catch (error) {
    if (passphrase === "") {
      throw new UserInputError("Give the backup's passphrase", { cause: error });
    }
    throw unreadable("the backup is damaged (its key derivation parameters are impossible)", error);
  }
  // Every chunk must be sealed under the header's parameters: one derivation, whatever the file says.
  const expected = new Uint8Array([...new TextEncoder().encode("RMS2"), log2N, r, p, ...salt]);
  const label = chunkLabel(header);
  let index = 0;
  let ended = false;
  const next = async (): Promise<Uint8Array> => {
    const length = new Uint8Array(4);
    const n = await readFull(file, length);
    if (n === 0 && !ended) throw unreadable("the backup is damaged (it is cut short)");
    if (n < 4) throw unreadable("the backup is damaged (it is cut short)");
    const size = new DataView(length.buffer).getUint32(0);
    if (size < CHUNK_OVERHEAD || size > CHUNK_SIZE + CHUNK_OVERHEAD) {
      throw unreadable("the backup is damaged (a chunk has an impossible length)");
    }
    const sealed = new Uint8Array(size);
    if (await readFull(file, sealed) < size) {
      throw unreadable("the backup is damaged (it is cut short)");
    }
    if (!equal(sealed.subarray(0, 23), expected)) {
      throw unreadable("wrong passphrase, or the backup is damaged");
    }
    for (const last of [false, true]) {
      try {
        const plain = sealer.open(sealed, label(index, last));
        index++;
        ended = last;
        return plain;
      } catch (error) {
        if (!(error instanceof WrongPassphraseError)) throw error;
      }
    }
    throw unreadable("wrong passphrase, or the backup is damaged");
  };
  let manifest: BackupManifest;
  try {
    const bytes = await next();
    if (bytes.length > MAX_MANIFEST) throw new Error("too long");
    manifest = JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    if (error instanceof BackupUnreadableError) throw error;
    throw unreadable("the backup is damaged (its manifest is not readable)", error);
  }
  if (manifest?.format !== 1) {
    throw unreadable(
      `it holds a payload of format ${manifest?.format}, which this Relaymail does not read: upgrade Relaymail`,
    );
  }
  // What it says is shown to the person and trusted for the payload's size.
  if (!wellFormed(manifest)) {
    throw unreadable("the backup is damaged (its manifest is not as Relaymail writes it)");
  }
  return {
    manifest,
    sealer,
    async payloadTo(to, onProgress) {
      let done = 0;
      while (!ended) {
        const chunk = await next();
        done += chunk.length;
        if (done > manifest.payloadBytes) {
          throw unreadable("the backup is damaged (it holds more than its manifest says)");
        }
        await writeAll(to, chunk);
        onProgress?.({ done, total: manifest.payloadBytes });
      }
      if (done !== manifest.payloadBytes) {
        throw unreadable("the backup is damaged (it holds less than its manifest says)");
      }
      if (await readFull(file, new Uint8Array(1)) !== 0) {
        throw unreadable("the backup is damaged (something follows its last chunk)");
      }
    },
  };
}

/** Whether `manifest` has every field of a {@linkcode BackupManifest}, each of its kind. */
function wellFormed(manifest: BackupManifest): boolean {
  const count = (n: unknown) => Number.isSafeInteger(n) && (n as number) >= 0;
  const { createdAt, identity, contacts, messages, includesMail, payloadBytes } = manifest;
  return typeof createdAt === "string" && !Number.isNaN(Date.parse(createdAt)) &&
    typeof identity?.id === "string" && typeof identity?.name === "string" &&
    count(contacts) && count(messages) && typeof includesMail === "boolean" &&
    count(payloadBytes);
}

/** The default file name of a backup made at `date`. */
export function backupFileName(date: Date): string {
  return `relaymail-backup-${date.toISOString().slice(0, 10)}${BACKUP_EXTENSION}`;
}

function chunkLabel(header: Uint8Array): (index: number, last: boolean) => string {
  const hex = Buffer.from(header).toString("hex");
  return (index, last) => `relaymail-backup:${VERSION}:${hex}:${index}:${last ? "end" : "more"}`;
}

async function writeFrame(out: Deno.FsFile, sealed: Uint8Array): Promise<void> {
  const frame = new Uint8Array(4 + sealed.length);
  new DataView(frame.buffer).setUint32(0, sealed.length);
  frame.set(sealed, 4);
  await writeAll(out, frame);
}

async function writeAll(out: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let offset = 0; offset < bytes.length;) {
    offset += await out.write(bytes.subarray(offset));
  }
}

/** Reads until `buffer` is full or the file ends; returns how much was read. */
async function readFull(file: Deno.FsFile, buffer: Uint8Array): Promise<number> {
  let offset = 0;
  while (offset < buffer.length) {
    const n = await file.read(buffer.subarray(offset));
    if (n === null) break;
    offset += n;
  }
  return offset;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((value, i) => value === b[i]);
}
