/**
 * Pairing: `relaymail invite`, `relaymail invitations …` and `relaymail accept`.
 *
 * @module
 */
import { join } from "node:path";
import type { Command } from "commander";
// @deno-types="@types/qrcode"
import QRCode from "qrcode";
import { parseDuration } from "../../core/clock.ts";
import { FaultError, UserInputError } from "../../core/errors.ts";
import { invitationQrCodes } from "../../core/protocol/invitation.ts";
import { withMessenger } from "../connection.ts";
import { makeDirectory, readText, writeFile } from "../files.ts";
import { clip, shortDate, table } from "../format.ts";
import { nameOf, type Output } from "../render.ts";

/** Adds `invite`, `invitations` and `accept` to `program`. */
export function addInvitationCommands(program: Command, output: Output): void {
  const invite = program.command("invite")
    .description("create an invitation: one line of text (and a file) good for one pairing")
    .option("-n, --name <name>", "the name you will know the new contact by")
    .option("--expires <duration>", "how long it stays valid, e.g. 2h or 7d", "7d")
    .option("-o, --out <file>", "also write the invitation to this file")
    .option(
      "--format <version>",
      "2: compact, one QR code (default); 1: for a Relaymail older than version 2 invitations",
      "2",
    )
    .option("--qr", "also print the invitation as a QR code")
    .action(function (
      this: Command,
      opts: { name?: string; expires: string; out?: string; format: string; qr?: boolean },
    ) {
      return withMessenger(this, async (messenger, options) => {
        if (opts.format !== "1" && opts.format !== "2") {
          throw new FaultError("usage", `--format takes 1 or 2, not "${opts.format}"`);
        }
        const invitation = await messenger.call("invitations.create", {
          name: opts.name,
          ttlMs: parseDuration(opts.expires),
          format: Number(opts.format),
        });
        const file = opts.out ??
          join(options.dataDir, "invitations", `${invitation.id.slice(1, 13)}.relaymail-invite`);
        await makeDirectory(join(file, ".."));
        await writeFile(file, invitation.text + "\n", { mode: 0o600 });
        output.show(options, { ...invitation, file }, () => invitation.text);
        if (opts.qr && !options.json) output.print(await terminalQrCodes(invitation.text));
        if (!options.json) {
          console.error(
            `Invitation ${invitation.id.slice(1, 13)}, valid until ${
              shortDate(invitation.expiresAt)
            } UTC, ` +
              `saved to ${file}. Give it to one person only: it works once.`,
          );
        }
      });
    });

  const invitations = program.command("invitations").description("list the invitations you made")
    .action(function (this: Command) {
      return withMessenger(this, async (messenger, options) => {
        const { invitations, names } = await messenger.call("invitations.list");
        output.show(options, invitations, () =>
          table(
            ["ID", "FOR", "STATE", "EXPIRES", "USED BY"],
            invitations.map((i) => [
              i.id.slice(1, 13),
              i.contactName ?? "-",
              i.state,
              shortDate(i.expiresAt),
              i.usedBy ? nameOf(names, i.usedBy) : "-",
            ]),
          ));
      });
    });
  // The same two under both names: `invite show|revoke` and `invitations show|revoke`.
  for (const parent of [invite, invitations]) addShowAndRevoke(parent, output);

  program.command("accept <invitation...>")
    .description(
      "accept an invitation: its text, its parts (relaymail-invite-part:K/N:…) in any order, or a file holding it",
    )
    .option("-n, --name <name>", "the name you will know the inviter by")
    .action(function (this: Command, invitation: string[], opts: { name?: string }) {
      return withMessenger(this, async (messenger, options) => {
        const text = await readInvitationArgument(invitation);
        const accepted = await messenger.call("invitations.accept", { text, name: opts.name });
        const contact = accepted.contact;
        output.show(
          options,
          contact,
          () =>
            `Paired with ${contact.name} (fingerprint ${contact.fingerprint}; they call themselves "${contact.nameHint}").\n` +
            `Your answer is in the outbox: ${howAnswersTravel(accepted)}`,
        );
      });
    });
}

/** Adds `show <id>` and `revoke <id>` to `parent`. */
function addShowAndRevoke(parent: Command, output: Output): void {
  parent.command("show <id>")
    .description("print a pending invitation's text again (its id as listed by `invitations`)")
    .option("--qr", "also print it as a QR code")
    .action(function (this: Command, id: string, opts: { qr?: boolean }) {
      return withMessenger(this, async (messenger, options) => {
        const invitation = await messenger.call("invitations.show", { id });
        output.show(options, invitation, () => invitation.text);
        if (opts.qr && !options.json) output.print(await terminalQrCodes(invitation.text));
      });
    });
  parent.command("revoke <id>")
    .description("withdraw a pending invitation: nobody can pair with it any more")
    .action(function (this: Command, id: string) {
      return withMessenger(this, async (messenger, options) => {
        const info = await messenger.call("invitations.revoke", { id });
        output.show(options, info, () => `Revoked invitation ${info.id.slice(1, 13)}`);
      });
    });
}

/** The invitation `text` as QR codes drawn with block characters: one for a version 2 text. */
async function terminalQrCodes(text: string): Promise<string> {
  const codes = invitationQrCodes(text);
  const drawn = await Promise.all(
    codes.map((segments) =>
      QRCode.toString([...segments], {
        type: "utf8",
        errorCorrectionLevel: codes.length === 1 ? "M" : "L",
      })
    ),
  );
  return drawn.map((code, i) =>
    codes.length > 1 ? `Part ${i + 1} of ${codes.length}\n${code}` : code
  )
    .join("\n");
}

/** How the answer to an invitation will reach the inviter, from what runs now. */
function howAnswersTravel(
  { meshPeers, gateway }: { meshPeers: number | null; gateway: string | null },
): string {
  const ways = [];
  if (meshPeers !== null) {
    ways.push(
      meshPeers > 0
        ? `the mesh carries it now (${meshPeers} peer(s) nearby)`
        : "the mesh carries it as soon as a peer is nearby",
    );
  }
  if (gateway) ways.push(`the gateway ${gateway} carries it if the mesh does not in time`);
  if (ways.length === 0) {
    return "carry it to them (sneakernet export), or start `relaymail daemon` to send it over " +
      "the mesh, and you can both write.";
  }
  return `${ways.join("; ")}. You can both write once it arrives (or carry it yourself: ` +
    "sneakernet export).";
}

/**
 * The invitation in `accept`'s arguments: its text (whitespace around it, as pasted
 * from a mail, is no matter), its parts as separate arguments, or a file's path.
 */
async function readInvitationArgument(argumentsGiven: readonly string[]): Promise<string> {
  const joined = argumentsGiven.join(" ").trim();
  if (/relaymail-invite(-part)?:/i.test(joined)) return joined;
  if (argumentsGiven.length > 1) {
    throw new UserInputError("Give one invitation: its text, its parts, or one file holding it");
  }
  try {
    return await readText(joined);
  } catch (error) {
    if ((error as Error).cause instanceof Deno.errors.NotFound) {
      throw new UserInputError(
        `"${clip(joined, 40)}" is neither an invitation nor a file holding one`,
      );
    }
    throw error;
  }
}
