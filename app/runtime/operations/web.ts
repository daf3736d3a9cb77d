/**
 * The web app's secret, which the address `relaymail start` prints carries.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { Operation, OperationContext } from "../types.ts";

/**
 * The meta key the web app keeps its secret under. It must stay the one
 * `app/web/sessions.ts` reads, which this layer cannot import: a running web
 * app reads the secret afresh on each check, so a new one ends its sessions.
 */
const WEB_SECRET_KEY = "web.secret";

/** The web operations. */
export const WEB_OPERATIONS = {
  /**
   * Replaces the web app's secret: the old address and every session stop
   * working. Returns the new address.
   */
  "web.rotateSecret": (context: OperationContext) => {
    const secret = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url");
    context.messenger.ctx.db.run(
      "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
      WEB_SECRET_KEY,
      secret,
    );
    // As `webAppUrl` in app/web/sessions.ts: the secret rides in the fragment.
    return { url: `http://127.0.0.1:${context.settings.get("web.port")}/#key=${secret}` };
  },
} satisfies Record<string, Operation>;
