/**
 * Pairing: the invitations this device makes, and accepting someone else's.
 *
 * @module
 */
import { UserInputError } from "../../core/errors.ts";
import { invitationText } from "../../core/invitations.ts";
import type { Operation, OperationContext } from "../types.ts";
import { contactNames, count, optionalText, text } from "./_input.ts";

/** The invitation operations. */
export const INVITATION_OPERATIONS = {
  /**
   * A new invitation, good for one pairing, valid for `ttlMs` (default: the
   * messenger's), for someone to be known as `name`, its text in `format` (2, the
   * default, or 1 for someone whose Relaymail predates version 2).
   */
  "invitations.create": (
    context: OperationContext,
    input: { name?: string; ttlMs?: number; format?: number },
  ) =>
    context.messenger.pairing.createInvitation({
      contactName: optionalText(input.name, "The name"),
      ttlMs: input.ttlMs === undefined || input.ttlMs === null
        ? undefined
        : count(input.ttlMs, "The invitation's lifetime (ms)", 0, Number.MAX_SAFE_INTEGER),
      format: invitationFormat(input.format),
    }),

  /** The pending invitation `id` (or an id prefix), with its text to hand over again. */
  "invitations.show": (context: OperationContext, input: { id: string }) =>
    invitationText(
      context.messenger.ctx,
      context.messenger.identity,
      text(input.id, "The invitation id"),
    ),

  /** The invitations this device made, and the names of the contacts who used them. */
  "invitations.list": (context: OperationContext) => {
    const invitations = context.messenger.pairing.listInvitations();
    return { invitations, names: contactNames(context, invitations.map((i) => i.usedBy)) };
  },

  /** Withdraws the pending invitation `id`. */
  "invitations.revoke": (context: OperationContext, input: { id: string }) =>
    context.messenger.pairing.revokeInvitation(text(input.id, "The invitation id")),

  /**
   * Accepts the invitation `text` (whole or as its parts, joined), naming the
   * inviter `name`. Says, beside the new contact, what can carry the answer now:
   * the peers of the running daemon (null when none runs) and the gateway.
   */
  "invitations.accept": async (
    context: OperationContext,
    input: { text: string; name?: string },
  ) => {
    const contact = await context.messenger.pairing.acceptInvitation(
      text(input.text, "The invitation"),
      { name: optionalText(input.name, "The name") },
    );
    return {
      contact,
      meshPeers: context.daemon ? context.daemon.status().peers.length : null,
      gateway: context.settings.get("gateway.url") || null,
    };
  },
} satisfies Record<string, Operation>;

/** An invitation text format asked for: 1, 2, or none (the default). */
function invitationFormat(value: unknown): 1 | 2 | undefined {
  if (value === undefined || value === null) return undefined;
  if (value !== 1 && value !== 2) {
    throw new UserInputError(`An invitation's format is 1 or 2, not ${value}`);
  }
  return value;
}
