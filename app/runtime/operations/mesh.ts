/**
 * The running daemon's mesh node, as `relaymail mesh` shows it: its peers, and
 * the path of each message of this device on its way.
 *
 * @module
 */
import type { Operation, OperationContext } from "../types.ts";
import { contactNames } from "./_input.ts";

/** The mesh operations. */
export const MESH_OPERATIONS = {
  /**
   * The daemon's status with the path of each parcel this device sent and not
   * yet delivered (every hop it was handed to, by message id, as `sent` names
   * them), and the names of the contacts its peers host; null when no daemon
   * runs in this runtime.
   */
  "mesh.show": (context: OperationContext) => {
    if (!context.daemon) return null;
    const { contacts, outbox } = context.messenger;
    const status = context.daemon.status();
    const paths = outbox.list()
      .filter((p) => p.state === "queued" || p.state === "sent")
      .map((p) => ({
        messageId: outbox.messageOf(p.key) ?? null,
        kind: p.kind,
        to: contacts.get(p.recipientId)?.name ?? p.recipientId.slice(1, 13),
        state: p.state,
        hops: outbox.handovers(p.key).map((h) => ({
          via: h.hop ? `${h.binding} …${h.hop.slice(-12)}` : h.binding,
          toRecipient: h.toRecipient,
          at: h.at.toISOString(),
        })),
      }));
    return {
      status: { ...status, paths },
      names: contactNames(context, status.peers.flatMap((p) => p.endpoints)),
    };
  },
} satisfies Record<string, Operation>;
