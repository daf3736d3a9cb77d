/**
 * The web app's secret, which the address `relaymail start` prints carries.
 *
 * @module
 */
import { rotateWebSecret, webAppUrl } from "../../core/web_secret.ts";
import type { Operation, OperationContext } from "../types.ts";

/** The web operations. */
export const WEB_OPERATIONS = {
  /**
   * Replaces the web app's secret: the old address and every session stop
   * working (a running web app reads the secret afresh on each check). Returns
   * the new address.
   */
  "web.rotateSecret": (context: OperationContext) => ({
    url: webAppUrl(context.settings.get("web.port"), rotateWebSecret(context.messenger.ctx.db)),
  }),
} satisfies Record<string, Operation>;
