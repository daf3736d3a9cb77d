/**
 * This device's identity and the passphrase its private keys are sealed under.
 *
 * @module
 */
import { ConflictError, UserInputError } from "../../core/errors.ts";
import type { Operation, OperationContext } from "../types.ts";
import { optionalText, text } from "./_input.ts";

/** The identity operations. */
export const IDENTITY_OPERATIONS = {
  /**
   * Creates the identity named `name`. With a `passphrase`, private keys are
   * sealed under it (unless they already are, the directory having been opened
   * with one).
   */
  "identity.create": async (
    context: OperationContext,
    input: { name: string; passphrase?: string },
  ) => {
    const messenger = context.messenger;
    const name = text(input.name, "The name");
    const passphrase = optionalText(input.passphrase, "The passphrase");
    if (messenger.identity.exists()) {
      throw new ConflictError(
        `An identity already exists in ${context.dataDir}: ${messenger.identity.id}`,
      );
    }
    if (passphrase && !messenger.hasPassphrase) messenger.setPassphrase(passphrase);
    const info = await messenger.identity.create(name);
    // A runtime that waited for an identity starts its daemon now.
    await context.settingsChanged();
    return info;
  },

  /** The identity, and whether its keys are sealed under a passphrase. */
  "identity.show": (context: OperationContext) => ({
    ...context.messenger.identity.info(),
    passphraseProtected: context.messenger.hasPassphrase,
  }),

  /** Changes the name given to contacts as a hint. */
  "identity.rename": (context: OperationContext, input: { name: string }) => {
    context.messenger.identity.rename(text(input.name, "The name"));
    return null;
  },

  /** Whether the private keys are sealed under a passphrase. */
  "passphrase.status": (context: OperationContext) => ({
    protected: context.messenger.hasPassphrase,
  }),

  /**
   * Seals every private key under a new passphrase. When they are sealed
   * already, `current` must be the passphrase they are sealed under.
   */
  "passphrase.set": (
    context: OperationContext,
    input: { passphrase: string; current?: string },
  ) => {
    const passphrase = text(input.passphrase, "The passphrase");
    if (!passphrase) throw new UserInputError("No new passphrase given");
    context.checkPassphrase(optionalText(input.current, "The current passphrase"));
    context.messenger.setPassphrase(passphrase);
    return null;
  },

  /** Stores private keys without a passphrase; `current` must be the one they are sealed under. */
  "passphrase.remove": (context: OperationContext, input: { current?: string }) => {
    context.checkPassphrase(optionalText(input.current, "The current passphrase"));
    context.messenger.setPassphrase(null);
    return null;
  },
} satisfies Record<string, Operation>;
