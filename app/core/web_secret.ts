/**
 * The web app's secret: created on first use and kept in the data directory's
 * database, it is what the address `relaymail start` prints carries. Both the
 * web app and the CLI's `web rotate-secret` (through the runtime) use it.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { SqliteDatabase } from "../../bindings/durable.ts";

const SECRET_KEY = "web.secret";

/**
 * The install's secret, created on first use and kept in the data directory's
 * database. The address the app prints carries it.
 */
export function webSecret(db: SqliteDatabase): string {
  const row = db.get<{ value: string }>("SELECT value FROM meta WHERE key = ?", SECRET_KEY);
  if (row) return row.value;
  const secret = newSecret();
  db.run("INSERT INTO meta (key, value) VALUES (?, ?)", SECRET_KEY, secret);
  return secret;
}

/**
 * Replaces the install's secret and returns the new one. The old printed
 * address stops working, and every session opened with the old secret ends,
 * in this process or in a running `relaymail start`.
 *
 * @example
 * ```ts ignore
 * const secret = rotateWebSecret(node.ctx.db);
 * console.log(webAppUrl(new Settings(node.ctx.db).get("web.port"), secret));
 * ```
 */
export function rotateWebSecret(db: SqliteDatabase): string {
  const secret = newSecret();
  db.run("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", SECRET_KEY, secret);
  return secret;
}

/** The address to open: the secret rides in the fragment, which browsers never send. */
export function webAppUrl(port: number, secret: string): string {
  return `http://127.0.0.1:${port}/#key=${secret}`;
}

/** 32 random octets, in base64url. */
function newSecret(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url");
}
