/**
 * Where a runtime's control API is, and how its clients find it without being
 * led elsewhere. The socket's path is derived from the data directory's
 * absolute path, never read from a file: `control.sock` in the data directory,
 * or, when that path is too long for a socket address, a socket named after a
 * digest of it in a private directory of this user's (`$XDG_RUNTIME_DIR`, or
 * `relaymail-<uid>` in the temporary directory, 0700 and checked to be theirs).
 * `control.json` holds the token, and the pid of the runtime that published it,
 * which must be the writer lock's holder.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { isAbsolute, join } from "node:path";
import { ForeignFileError, refuseForeignFile, replaceFile } from "../../bindings/durable.ts";
import { LOCK_FILE } from "./lock.ts";

/** Name of the file that holds the control API's token, inside the data directory. */
export const CONTROL_FILE = "control.json";

/** Name of the control API's Unix socket, inside the data directory. */
export const CONTROL_SOCKET = "control.sock";

/** What {@linkcode CONTROL_FILE} holds. */
export interface ControlAddress {
  /** The runtime that serves it. */
  readonly pid: number;
  /** The port on 127.0.0.1, where there are no Unix sockets (Windows). */
  readonly port?: number;
  readonly token: string;
}

/** Longest Unix socket path, in octets, that fits in `sockaddr_un` everywhere (104 on macOS). */
const MAX_SOCKET_PATH = 100;

/**
 * The control socket's path for the data directory at the absolute path
 * `dataDir`, or null where the API is served on 127.0.0.1 instead (Windows).
 */
export async function controlSocketPath(dataDir: string): Promise<string | null> {
  if (Deno.build.os === "windows") return null;
  if (!isAbsolute(dataDir)) throw new TypeError(`The data directory ${dataDir} is not absolute`);
  const inside = join(dataDir, CONTROL_SOCKET);
  if (Buffer.byteLength(inside) <= MAX_SOCKET_PATH) return inside;
  const digest = createHash("sha256").update(dataDir).digest("hex").slice(0, 24);
  const socket = join(await privateRuntimeDir(), `relaymail-${digest}.sock`);
  if (Buffer.byteLength(socket) > MAX_SOCKET_PATH) {
    throw new RangeError(`No short enough place for the control socket of ${dataDir}`);
  }
  return socket;
}

/** A directory only this user can use: `$XDG_RUNTIME_DIR`, or one of our own in the temporary directory. */
async function privateRuntimeDir(): Promise<string> {
  const given = Deno.env.get("XDG_RUNTIME_DIR");
  const dir = given && isAbsolute(given) ? given : join(tmpdir(), `relaymail-${Deno.uid()}`);
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const info = await Deno.lstat(dir);
  const me = Deno.uid();
  if (!info.isDirectory || (me !== null && info.uid !== me) || (info.mode! & 0o077) !== 0) {
    throw new ForeignFileError(dir, "not a private directory of this user's");
  }
  return dir;
}

/** Publishes `address` in `dataDir`, readable by its owner only, all at once. */
export async function publishAddress(dataDir: string, address: ControlAddress): Promise<void> {
  const path = join(dataDir, CONTROL_FILE);
  refuseForeignFile(path);
  await replaceFile(path, JSON.stringify(address));
}

/**
 * The control address published in `dataDir`, or null when there is none, or
 * when the runtime that published it no longer holds the writer lock (it was
 * killed, say): its socket or port may since belong to anyone.
 */
export async function readControlAddress(dataDir: string): Promise<ControlAddress | null> {
  const path = join(dataDir, CONTROL_FILE);
  let address: ControlAddress;
  try {
    refuseForeignFile(path);
    address = JSON.parse(await Deno.readTextFile(path));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof SyntaxError) return null;
    throw error;
  }
  if (typeof address?.token !== "string" || !Number.isInteger(address.pid)) return null;
  if (Deno.build.os === "windows") return address; // its lock file names no pid
  const holder = Number((await Deno.readTextFile(join(dataDir, LOCK_FILE)).catch(() => "")).trim());
  return holder === address.pid ? address : null;
}
