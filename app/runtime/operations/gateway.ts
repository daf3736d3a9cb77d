/**
 * The Awala gateway this endpoint falls back to: its registration, and
 * registering with one.
 *
 * @module
 */
import { parsePoWebUrl } from "../../../bindings/gateway/client.ts";
import { NoIdentityError } from "../../core/identity.ts";
import type { Operation, OperationContext } from "../types.ts";
import { text } from "./_input.ts";

/** The gateway operations. */
export const GATEWAY_OPERATIONS = {
  /** The gateway set in the settings, and the registration with one, if any. */
  "gateway.show": (context: OperationContext) => {
    const registration = context.messenger.gateway.registration();
    return {
      configured: context.settings.get("gateway.url") || null,
      registered: registration
        ? {
          url: registration.gatewayUrl,
          registeredAt: registration.registeredAt.toISOString(),
          expiresAt: registration.expiresAt.toISOString(),
          internetAddress: registration.internetAddress || null,
        }
        : null,
    };
  },

  /**
   * Registers with the gateway at `url` now and makes it the one to use; a
   * running daemon restarts to use it.
   */
  "gateway.register": async (context: OperationContext, input: { url: string }) => {
    const messenger = context.messenger;
    if (!messenger.identity.exists()) throw new NoIdentityError(context.dataDir);
    const address = parsePoWebUrl(text(input.url, "The gateway's URL"));
    const registration = await messenger.useGateway(address.url);
    await context.settingsChanged();
    return { url: address.url, expiresAt: registration.expiresAt.toISOString() };
  },
} satisfies Record<string, Operation>;
