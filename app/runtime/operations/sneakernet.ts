/**
 * Sneakernet: parcels carried on a USB stick or any directory. The directory is
 * an absolute path, since the process that runs the operation (the daemon,
 * perhaps) has a working directory of its own; it runs as the same user. It
 * must exist: export refuses a missing one (a stick not plugged in, a
 * mistyped path) rather than create it.
 *
 * @module
 */
import { isAbsolute } from "node:path";
import { exportParcels, importParcels } from "../../../bindings/sneakernet/sneakernet.ts";
import { NotFoundError, UserInputError } from "../../core/errors.ts";
import type { Operation, OperationContext } from "../types.ts";
import { text } from "./_input.ts";

/** The sneakernet operations. */
export const SNEAKERNET_OPERATIONS = {
  /**
   * Writes every parcel waiting to leave this device into `directory`, which
   * must exist; with `resend`, also those that left before but are not
   * delivered yet.
   */
  "sneakernet.export": (
    context: OperationContext,
    input: { directory: string; resend?: boolean },
  ) =>
    onMedium(() =>
      exportParcels(context.messenger, absolute(input.directory), {
        includeHandedOver: input.resend === true,
        onProgress: (progress) => context.progress(progress),
      })
    ),

  /** Takes in every parcel file found in `directory`. */
  "sneakernet.import": (context: OperationContext, input: { directory: string }) =>
    onMedium(() =>
      importParcels(context.messenger, absolute(input.directory), {
        onProgress: (progress) => context.progress(progress),
      })
    ),
} satisfies Record<string, Operation>;

function absolute(directory: unknown): string {
  const path = text(directory, "The directory");
  if (!isAbsolute(path)) {
    throw new UserInputError(`Give the directory's absolute path, not "${path}"`);
  }
  return path;
}

/**
 * Runs `fn` on the medium; a directory that is missing or that the file system
 * refuses is the person's to fix, not our bug.
 */
async function onMedium<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new NotFoundError(error.message, { cause: error });
    }
    if (
      error instanceof Deno.errors.PermissionDenied || error instanceof Deno.errors.NotADirectory ||
      error instanceof Deno.errors.IsADirectory || error instanceof Deno.errors.AlreadyExists
    ) throw new UserInputError(error.message, { cause: error });
    throw error;
  }
}
