/**
 * The overview `relaymail status` shows: who this device is and what waits.
 *
 * @module
 */
import type { Operation, OperationContext } from "../types.ts";

/** The status operations. */
export const STATUS_OPERATIONS = {
  /**
   * The identity and the counts of contacts, mail (by folder), unread mail,
   * parcels waiting and refusals. The mail's counts are counters the schema keeps
   * and the outbox's an index, so the status costs the same however much mail
   * there is; contacts and the (trimmed) refusal log are small tables.
   */
  "status.show": (context: OperationContext) => {
    const messenger = context.messenger;
    if (!messenger.identity.exists()) return { identity: null };
    return {
      identity: messenger.identity.info(),
      contacts: messenger.contacts.count(),
      unread: messenger.mailbox.unreadCount(),
      mail: messenger.mailbox.counts(),
      parcelsWaitingToLeave: messenger.outbox.queuedCount(),
      refusals: messenger.refusals.count(),
    };
  },
} satisfies Record<string, Operation>;
