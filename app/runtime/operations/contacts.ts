/**
 * The contact list: its names and who is blocked.
 *
 * @module
 */
import type { Operation, OperationContext } from "../types.ts";
import { text } from "./_input.ts";

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
} satisfies Record<string, Operation>;
