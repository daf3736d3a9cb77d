/**
 * Drafts: listing, saving (new or over one), deleting and sending. They join
 * the mail operations (`mail.ts`).
 *
 * @module
 */
import { UserInputError } from "../../core/errors.ts";
import type { DraftInput } from "../../core/mailbox.ts";
import type { Operation, OperationContext } from "../types.ts";
import { contactNames, optionalText, text } from "./_input.ts";

/** The draft operations. */
export const DRAFT_OPERATIONS = {
  /** Every draft, the most recently saved first, with the names of their recipients. */
  "drafts.list": (context: OperationContext) => {
    const drafts = context.messenger.mailbox.drafts.list();
    return { drafts, names: contactNames(context, drafts.flatMap((d) => d.to)) };
  },

  /**
   * Saves a draft: a new one, or with `id` over that one (what is left out stays
   * as it was). Recipients are contact names or fingerprints.
   */
  "drafts.save": (context: OperationContext, input: DraftInput & { id?: string }) => {
    const drafts = context.messenger.mailbox.drafts;
    const fields = draftInput(input);
    const id = optionalText(input.id, "The draft");
    return id === undefined ? drafts.create(fields) : drafts.update(id, fields);
  },

  /** Deletes the draft `draft` (its id or first characters); returns its id. */
  "drafts.delete": (context: OperationContext, input: { draft: string }) => ({
    deleted: context.messenger.mailbox.drafts.delete(text(input.draft, "The draft")),
  }),

  /** Sends the draft `draft` as a message, which deletes it. */
  "drafts.send": (context: OperationContext, input: { draft: string }) =>
    context.messenger.mailbox.sendDraft(text(input.draft, "The draft")),
} satisfies Record<string, Operation>;

/** A draft's fields as given, checked. */
export function draftInput(input: DraftInput): DraftInput {
  if (input.to !== undefined && !Array.isArray(input.to)) {
    throw new UserInputError("A draft's recipients must be a list");
  }
  const reference = (value: unknown, name: string) =>
    value === null ? null : optionalText(value, name);
  return {
    to: input.to?.map((name) => text(name, "A recipient")),
    subject: optionalText(input.subject, "The subject"),
    body: optionalText(input.body, "The body"),
    replyTo: reference(input.replyTo, "The message replied to"),
    forward: reference(input.forward, "The message forwarded"),
  };
}
