/**
 * The contact list: its names, who is blocked, and pairing again with a contact
 * whose authorisations lapsed.
 *
 * @module
 */
import type { Operation, OperationContext } from "../types.ts";
import { count, text } from "./_input.ts";

/** The contact operations. */
export const CONTACT_OPERATIONS = {
  /** Every contact, by name. */
  "contacts.list": (context: OperationContext) => context.messenger.contacts.list(),

  /** Gives `contact` (a name or fingerprint) the local name `name`. */
  "contacts.rename": (context: OperationContext, input: { contact: string; name: string }) =>
    context.messenger.contacts.rename(
      text(input.contact, "The contact"),
      text(input.name, "The name"),
    ),

  /** Refuses every parcel from `contact` from now on. */
  "contacts.block": (context: OperationContext, input: { contact: string }) =>
    context.messenger.contacts.block(text(input.contact, "The contact")),

  /** Accepts a blocked `contact`'s parcels again. */
  "contacts.unblock": (context: OperationContext, input: { contact: string }) =>
    context.messenger.contacts.unblock(text(input.contact, "The contact")),

  /**
   * An invitation to pair again with `contact` (docs/protocol.md §6.2), valid for
   * `ttlMs` (default: the messenger's): only that contact can use it, and using it
   * restores the same contact on both sides.
   */
  "contacts.repair": (context: OperationContext, input: { contact: string; ttlMs?: number }) =>
    context.messenger.pairing.repairInvitation(text(input.contact, "The contact"), {
      ttlMs: input.ttlMs === undefined || input.ttlMs === null
        ? undefined
        : count(input.ttlMs, "The invitation's lifetime (ms)", 0, Number.MAX_SAFE_INTEGER),
    }),
} satisfies Record<string, Operation>;
