/**
 * The overview `relaymail status` shows: who this device is and what waits.
 *
 * @module
 */
import type { Operation, OperationContext } from "../types.ts";

/** The status operations. */
export const STATUS_OPERATIONS = {
  /** The identity and the counts of contacts, unread mail, parcels waiting and refusals. */
  "status.show": (context: OperationContext) => {
    const messenger = context.messenger;
    if (!messenger.identity.exists()) return { identity: null };
    return {
      identity: messenger.identity.info(),
      contacts: messenger.contacts.count(),
      unread: messenger.mailbox.unreadCount(),
      parcelsWaitingToLeave: messenger.outbox.queuedCount(),
      refusals: messenger.refusals.count(),
    };
  },
} satisfies Record<string, Operation>;
