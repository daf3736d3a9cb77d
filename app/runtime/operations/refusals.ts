/**
 * The parcels this device refused, with the reasons.
 *
 * @module
 */
import type { Operation, OperationContext } from "../types.ts";
import { contactNames, count } from "./_input.ts";

/** Refusals listed at most when no limit is given. */
const DEFAULT_LIMIT = 100;

/** The refusal operations. */
export const REFUSAL_OPERATIONS = {
  /** The latest refusals, at most `limit`, and the names of the contacts who sent them. */
  "refusals.list": (context: OperationContext, input: { limit?: number }) => {
    const refusals = context.messenger.refusals.list({
      limit: count(input.limit, "The limit", DEFAULT_LIMIT),
    });
    return { refusals, names: contactNames(context, refusals.map((r) => r.senderId)) };
  },
} satisfies Record<string, Operation>;
