/**
 * Rotates the web secret of the data directory given as the first argument, as
 * another process (`relaymail web rotate-secret`) would while `relaymail start`
 * runs on it, and prints the new secret.
 */
import { join } from "node:path";
import { SqliteDatabase } from "../../bindings/durable.ts";
import { DATABASE_FILE } from "../../app/services/relaymail.ts";
import { MIGRATIONS } from "../../app/core/store/schema.ts";
import { rotateWebSecret } from "../../app/web/sessions.ts";

const db = SqliteDatabase.open(join(Deno.args[0], DATABASE_FILE), { migrations: MIGRATIONS });
try {
  console.log(rotateWebSecret(db));
} finally {
  db.close();
}
