/**
 * The settings kept in the data directory. A change reaches a running daemon,
 * which restarts with it.
 *
 * @module
 */
import type { Operation, OperationContext } from "../types.ts";
import { text } from "./_input.ts";

/** The settings operations. */
export const SETTINGS_OPERATIONS = {
  /** Every setting: its value, whether it is set, and what it does. */
  "settings.list": (context: OperationContext) => context.settings.all(),

  /** Sets `name` from `value` as a person writes it (lists comma-separated, booleans on/off). */
  "settings.set": async (context: OperationContext, input: { name: string; value: string }) => {
    context.settings.set(text(input.name, "The setting"), text(input.value, "The value"));
    await context.settingsChanged();
    return null;
  },

  /** Returns `name` to its default. */
  "settings.unset": async (context: OperationContext, input: { name: string }) => {
    context.settings.unset(text(input.name, "The setting"));
    await context.settingsChanged();
    return null;
  },
} satisfies Record<string, Operation>;
