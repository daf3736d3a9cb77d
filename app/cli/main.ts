/**
 * The `relaymail` command line. Every command that lists or shows something takes
 * `--json`; failures print one line to stderr and exit non-zero (1 for a failed
 * operation, 2 for a usage error).
 *
 * @module
 */
import { basename, join } from "node:path";
import { Command, CommanderError, Option } from "commander";
import mime from "mime";
import { exportParcels, importParcels } from "../../bindings/sneakernet/sneakernet.ts";
import { type Clock, offsetClock, parseDuration, systemClock } from "../core/clock.ts";
import { type DaemonOptions, readDaemonStatus, runDaemon } from "../services/daemon.ts";
import { WebApp } from "../web/server.ts";
import { parseAddress, parseSize, Settings } from "../core/settings.ts";
import { parsePoWebUrl } from "../../bindings/gateway/client.ts";
import { errorMessage } from "../../bindings/validation.ts";
import { NoIdentityError } from "../core/identity.ts";
import type { Contact } from "../core/contacts.ts";
import { messageToEml, numberedFileName, safeFileName, threadToEml } from "../core/eml.ts";
import { PassphraseRequiredError } from "../core/keys/key_stores.ts";
import type { MessageDetail, MessageSummary } from "../core/mailbox.ts";
import { Relaymail } from "../services/relaymail.ts";
import { rotateWebSecret, webAppUrl } from "../web/sessions.ts";
import { clip, shortDate, shortId, size, table } from "./format.ts";
import { passphraseFrom, promptPassphrase } from "./passphrase.ts";
import { progressBar } from "./progress.ts";

/** Where data lives when no `--data-dir` or `RELAYMAIL_DATA_DIR` is given. */
export function defaultDataDir(): string {
  const xdg = Deno.env.get("XDG_DATA_HOME");
  const home = Deno.env.get("HOME") ?? Deno.env.get("USERPROFILE") ?? ".";
  return join(xdg || join(home, ".local", "share"), "relaymail");
}

interface GlobalOptions {
  dataDir: string;
  json?: boolean;
  passphraseFile?: string;
}

/** Writes to stdout. */
type Print = (text: string) => void;

/** Runs the CLI with `args`; returns the exit status. */
export async function main(args: readonly string[], print: Print = console.log): Promise<number> {
  const program = buildProgram(print);
  try {
    await program.parseAsync([...args], { from: "user" });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version exit 0; usage errors were already printed by commander.
      return error.exitCode === 0 ? 0 : 2;
    }
    console.error(`relaymail: ${oneLine(error)}`);
    if (Deno.env.get("RELAYMAIL_DEBUG")) console.error(error);
    return 1;
  }
}

function oneLine(error: unknown): string {
  return errorMessage(error).split("\n")[0];
}

/** The clock, shifted by `RELAYMAIL_CLOCK_OFFSET` (e.g. `181d`) for tests and drills. */
function clockFromEnvironment(): Clock {
  const offset = Deno.env.get("RELAYMAIL_CLOCK_OFFSET");
  return offset ? offsetClock(parseDuration(offset)) : systemClock;
}

async function openNode(options: GlobalOptions, interactive = true): Promise<Relaymail> {
  const now = clockFromEnvironment();
  let passphrase = await passphraseFrom(options.passphraseFile, "RELAYMAIL_PASSPHRASE");
  try {
    return await Relaymail.open(options.dataDir, { passphrase, now });
  } catch (error) {
    if (!(error instanceof PassphraseRequiredError) || !interactive) throw error;
    passphrase = await promptPassphrase("Passphrase: ");
    if (passphrase === undefined) throw error;
    return await Relaymail.open(options.dataDir, { passphrase, now });
  }
}

/** Opens the data directory, runs `fn`, runs housekeeping, and closes. */
async function withNode<T>(
  command: Command,
  fn: (node: Relaymail, options: GlobalOptions) => Promise<T>,
): Promise<T> {
  const options = command.optsWithGlobals<GlobalOptions>();
  const node = await openNode(options);
  try {
    if (node.identity.exists()) await node.maintain();
    const result = await fn(node, options);
    if (node.identity.exists()) await node.flush();
    return result;
  } finally {
    node.close();
  }
}

function buildProgram(print: Print): Command {
  const out = (options: GlobalOptions, json: unknown, text: () => string) =>
    print(options.json ? JSON.stringify(json, null, 2) : text());

  const program = new Command("relaymail")
    .description("Spam-free, serverless, offline-first mail over Relaynet parcels")
    .addOption(
      new Option("-d, --data-dir <dir>", "data directory").env("RELAYMAIL_DATA_DIR").default(
        defaultDataDir(),
      ),
    )
    .option("--json", "print machine-readable JSON")
    .option(
      "--passphrase-file <file>",
      "read the passphrase from this file (or set RELAYMAIL_PASSPHRASE)",
    )
    .exitOverride()
    .showHelpAfterError()
    .configureOutput({
      writeOut: (s) => print(s.trimEnd()),
      writeErr: (s) => console.error(s.trimEnd()),
    });

  addDaemonOptions(
    program.command("start")
      .description(
        "start the messenger: the daemon and the web app on 127.0.0.1 (Ctrl-C stops both)",
      )
      .option("--port <port>", "the web app's port on 127.0.0.1 (setting web.port)"),
  ).action(function (this: Command, opts: DaemonFlags & { port?: string }) {
    return withNode(this, async (node) => {
      const settings = new Settings(node.ctx.db);
      const port = opts.port !== undefined ? Number(opts.port) : settings.get("web.port");
      if (!Number.isInteger(port) || port < 0 || port > 65535) {
        throw new RangeError(`--port takes a port number, not "${opts.port}"`);
      }
      const log = (line: string) => console.log(`${new Date().toISOString()} ${line}`);
      let web: WebApp;
      try {
        web = await WebApp.start(node, {
          port,
          daemonOptions: () => daemonOptionsFrom(opts, new Settings(node.ctx.db)),
          log,
        });
      } catch (error) {
        if (error instanceof Deno.errors.AddrInUse) {
          throw new Error(
            `Port ${port} on 127.0.0.1 is taken (is Relaymail already running?): use --port`,
          );
        }
        throw error;
      }
      print(`Relaymail is running. Open this address in your browser:\n\n  ${web.url}\n`);
      print(
        node.identity.exists()
          ? `Data directory ${node.dataDir}. Ctrl-C stops it.`
          : `First run: the page walks you through creating your identity. Ctrl-C stops it.`,
      );
      const stop = Promise.withResolvers<string>();
      const handlers = (["SIGINT", "SIGTERM"] as const).map((name) =>
        [name, () => stop.resolve(name)] as const
      );
      for (const [name, handler] of handlers) Deno.addSignalListener(name, handler);
      try {
        log(`stopping (${await stop.promise})`);
      } finally {
        for (const [name, handler] of handlers) Deno.removeSignalListener(name, handler);
        await web.stop();
      }
    });
  });

  program.command("status")
    .description("show identity, contacts and mail counts")
    .action(function (this: Command) {
      return withNode(this, (node, options) => {
        const status = statusOf(node);
        out(options, status, () => statusText(node, status));
        return Promise.resolve();
      });
    });

  // Identity
  const identity = program.command("identity").description("this device's Relaymail identity");
  identity.command("create")
    .description("create the identity (an RSA key pair and its certificate)")
    .requiredOption("-n, --name <name>", "your name, shown to contacts as a hint")
    .action(function (this: Command, opts: { name: string }) {
      return withNode(this, async (node, options) => {
        const info = await node.identity.create(opts.name);
        out(
          options,
          info,
          () => `Created identity ${info.name}\nFingerprint: ${info.fingerprint}\nId: ${info.id}`,
        );
      });
    });
  identity.command("show")
    .description("show the identity")
    .action(function (this: Command) {
      return withNode(this, (node, options) => {
        const info = node.identity.info();
        out(options, { ...info, passphraseProtected: node.hasPassphrase }, () =>
          [
            `Name:         ${info.name}`,
            `Fingerprint:  ${info.fingerprint}`,
            `Id:           ${info.id}`,
            `Created:      ${shortDate(info.createdAt)}`,
            `Certificate:  valid until ${
              shortDate(info.certificateExpiresAt)
            } (renewed automatically)`,
            `Keys:         ${
              node.hasPassphrase ? "sealed under a passphrase" : "not passphrase-protected"
            }`,
          ].join("\n"));
        return Promise.resolve();
      });
    });
  identity.command("rename <name>")
    .description("change the name given to contacts as a hint")
    .action(function (this: Command, name: string) {
      return withNode(this, (node) => {
        node.identity.rename(name);
        return Promise.resolve();
      });
    });

  const passphrase = program.command("passphrase").description(
    "protect private keys with a passphrase",
  );
  passphrase.command("set")
    .description(
      "seal private keys under a new passphrase (from --new-passphrase-file, RELAYMAIL_NEW_PASSPHRASE or a prompt)",
    )
    .option("--new-passphrase-file <file>", "read the new passphrase from this file")
    .action(function (this: Command, opts: { newPassphraseFile?: string }) {
      return withNode(this, async (node) => {
        const next = await passphraseFrom(opts.newPassphraseFile, "RELAYMAIL_NEW_PASSPHRASE") ??
          await promptPassphrase("New passphrase: ");
        if (!next) throw new Error("No new passphrase given");
        node.setPassphrase(next);
        console.error("Private keys are now sealed under the new passphrase.");
      });
    });
  passphrase.command("remove")
    .description("store private keys without a passphrase")
    .action(function (this: Command) {
      return withNode(this, (node) => {
        node.setPassphrase(null);
        console.error("Private keys are no longer passphrase-protected.");
        return Promise.resolve();
      });
    });

  // Pairing
  program.command("invite")
    .description("create an invitation: one line of text (and a file) good for one pairing")
    .option("-n, --name <name>", "the name you will know the new contact by")
    .option("--expires <duration>", "how long it stays valid, e.g. 2h or 7d", "7d")
    .option("-o, --out <file>", "also write the invitation to this file")
    .action(function (this: Command, opts: { name?: string; expires: string; out?: string }) {
      return withNode(this, async (node, options) => {
        const invitation = await node.pairing.createInvitation({
          contactName: opts.name,
          ttlMs: parseDuration(opts.expires),
        });
        const file = opts.out ??
          join(node.dataDir, "invitations", `${invitation.id.slice(1, 13)}.relaymail-invite`);
        await Deno.mkdir(join(file, ".."), { recursive: true });
        await Deno.writeTextFile(file, invitation.text + "\n", { mode: 0o600 });
        out(options, { ...invitation, file }, () => invitation.text);
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
      return withNode(this, (node, options) => {
        const list = node.pairing.listInvitations();
        out(options, list, () =>
          table(
            ["ID", "FOR", "STATE", "EXPIRES", "USED BY"],
            list.map((i) => [
              i.id.slice(1, 13),
              i.contactName ?? "-",
              i.state,
              shortDate(i.expiresAt),
              i.usedBy ? (node.contacts.get(i.usedBy)?.name ?? i.usedBy.slice(1, 13)) : "-",
            ]),
          ));
        return Promise.resolve();
      });
    });
  invitations.command("revoke <id>")
    .description("withdraw a pending invitation")
    .action(function (this: Command, id: string) {
      return withNode(this, (node, options) => {
        const info = node.pairing.revokeInvitation(id);
        out(options, info, () => `Revoked invitation ${info.id.slice(1, 13)}`);
        return Promise.resolve();
      });
    });

  program.command("accept <invitation...>")
    .description(
      "accept an invitation: its text, its parts (relaymail-invite-part:K/N:…) in any order, or a file holding it",
    )
    .option("-n, --name <name>", "the name you will know the inviter by")
    .action(function (this: Command, invitation: string[], opts: { name?: string }) {
      return withNode(this, async (node, options) => {
        const text = await readInvitationArgument(invitation);
        const contact = await node.pairing.acceptInvitation(text, { name: opts.name });
        const travel = await howAnswersTravel(node);
        out(
          options,
          contact,
          () =>
            `Paired with ${contact.name} (fingerprint ${contact.fingerprint}; they call themselves "${contact.nameHint}").\n` +
            `Your answer is in the outbox: ${travel}`,
        );
      });
    });

  // Contacts
  const contacts = program.command("contacts").description("list contacts")
    .action(function (this: Command) {
      return withNode(this, (node, options) => {
        const list = node.contacts.list();
        out(options, list, () => contactsTable(list));
        return Promise.resolve();
      });
    });
  contacts.command("rename <contact> <name>").description("give a contact another name")
    .action(function (this: Command, ref: string, name: string) {
      return withNode(this, (node, options) => {
        const contact = node.contacts.rename(ref, name);
        out(options, contact, () => `Renamed to ${contact.name}`);
        return Promise.resolve();
      });
    });
  contacts.command("block <contact>").description("refuse every parcel from a contact from now on")
    .action(function (this: Command, ref: string) {
      return withNode(this, (node, options) => {
        const contact = node.contacts.block(ref);
        out(options, contact, () => `Blocked ${contact.name}: their parcels will be refused`);
        return Promise.resolve();
      });
    });
  contacts.command("unblock <contact>").description("accept a blocked contact's parcels again")
    .action(function (this: Command, ref: string) {
      return withNode(this, (node, options) => {
        const contact = node.contacts.unblock(ref);
        out(options, contact, () => `Unblocked ${contact.name}`);
        return Promise.resolve();
      });
    });

  // Mail
  program.command("send")
    .description("send a message (one parcel per recipient)")
    .option("-t, --to <contact...>", "recipients: contact names or fingerprints")
    .option("-s, --subject <subject>", "subject")
    .option("-b, --body <text>", "body text")
    .option("--body-file <file>", "read the body from a file (- for stdin)")
    .option(
      "-a, --attach <file>",
      "attach a file (repeatable)",
      collect,
    )
    .option("-r, --reply-to <message>", "answer this message, in its conversation")
    .action(function (
      this: Command,
      opts: {
        to?: string[];
        subject?: string;
        body?: string;
        bodyFile?: string;
        attach?: string[];
        replyTo?: string;
      },
    ) {
      return withNode(this, async (node, options) => {
        if (opts.body !== undefined && opts.bodyFile !== undefined) {
          throw new Error("Give the body with --body or --body-file, not both");
        }
        const body = opts.bodyFile === undefined
          ? opts.body ?? ""
          : opts.bodyFile === "-"
          ? await new Response(Deno.stdin.readable).text()
          : await Deno.readTextFile(opts.bodyFile);
        const attachments = [];
        for (const path of opts.attach ?? []) {
          attachments.push({
            fileName: basename(path),
            mediaType: mediaTypeOf(path),
            content: await Deno.readFile(path),
          });
        }
        const message = await node.mailbox.send({
          to: opts.to,
          subject: opts.subject,
          body,
          attachments,
          replyTo: opts.replyTo,
        });
        out(options, message, () =>
          `Queued ${shortId(message.id)} "${message.subject}" for ` +
          message.deliveries.map((d) => `${d.name} (${d.state})`).join(", "));
      });
    });

  for (const folder of ["inbox", "sent", "outbox"] as const) {
    program.command(folder)
      .description(
        folder === "inbox"
          ? "list received messages"
          : folder === "sent"
          ? "list sent messages with each recipient's delivery state"
          : "list sent messages not yet delivered to everyone",
      )
      .option("--limit <n>", "at most this many", "100")
      .action(function (this: Command, opts: { limit: string }) {
        return withNode(this, (node, options) => {
          const list = node.mailbox.list(folder, { limit: Number(opts.limit) });
          out(options, list, () => messagesTable(list, folder));
          return Promise.resolve();
        });
      });
  }

  program.command("search <text>").description("find messages whose subject or body contains text")
    .action(function (this: Command, text: string) {
      return withNode(this, (node, options) => {
        const list = node.mailbox.search(text);
        out(options, list, () => messagesTable(list, "inbox"));
        return Promise.resolve();
      });
    });

  program.command("read <message>")
    .description("show a message (and mark it read)")
    .option("--save-attachments <dir>", "write its attachments into this directory")
    .action(function (this: Command, ref: string, opts: { saveAttachments?: string }) {
      return withNode(this, async (node, options) => {
        const message = node.mailbox.read(ref);
        const saved: string[] = [];
        if (opts.saveAttachments) {
          await Deno.mkdir(opts.saveAttachments, { recursive: true });
          for (const a of node.mailbox.attachments(ref)) {
            // The sender chose the name: it must not reach outside the directory,
            // nor replace a file already there.
            const name = safeFileName(a.fileName, "attachment");
            saved.push(await writeNewFile(opts.saveAttachments, name, a.content));
          }
        }
        out(
          options,
          opts.saveAttachments ? { ...message, savedAttachments: saved } : message,
          () => [messageText(message), ...saved.map((path) => `Saved:    ${path}`)].join("\n"),
        );
      });
    });

  program.command("thread <message>").description(
    "show the whole conversation a message belongs to",
  )
    .action(function (this: Command, ref: string) {
      return withNode(this, (node, options) => {
        const messages = node.mailbox.thread(ref);
        out(
          options,
          messages,
          () => messages.map(messageText).join("\n\n" + "─".repeat(60) + "\n\n"),
        );
        return Promise.resolve();
      });
    });

  program.command("export-eml <message>")
    .description("export a message, or with --thread its whole conversation, as an .eml file")
    .option("--thread", "export the whole conversation")
    .option("-o, --out <file>", "where to write it (default: <subject>.eml here)")
    .action(function (this: Command, ref: string, opts: { thread?: boolean; out?: string }) {
      return withNode(this, async (node, options) => {
        const exportable = node.mailbox.exportable(ref);
        const message = exportable.message;
        const eml = opts.thread
          ? await threadToEml(
            node.mailbox.conversation(ref),
            { ...node.identity.info(), isMe: true },
            new Date(),
          )
          : await messageToEml(exportable);
        const file = opts.out ?? `${safeFileName(message.subject)}.eml`;
        await Deno.writeFile(file, eml);
        out(
          options,
          { file, bytes: eml.byteLength },
          () => `Wrote ${file} (${size(eml.byteLength)})`,
        );
      });
    });

  // Sneakernet
  const sneakernet = program.command("sneakernet").description(
    "carry parcels on a USB stick or any directory",
  );
  sneakernet.command("export <dir>")
    .description("write every parcel waiting to leave this device into <dir>")
    .option("--resend", "also write parcels that left before but are not delivered yet")
    .action(function (this: Command, dir: string, opts: { resend?: boolean }) {
      return withNode(this, async (node, options) => {
        const bar = progressBar("Exporting");
        const report = await exportParcels(node, dir, {
          includeHandedOver: opts.resend,
          onProgress: bar.update,
        })
          .finally(bar.stop);
        out(
          options,
          report,
          () =>
            `Exported ${report.written} parcel(s) (${size(report.bytes)}) to ${dir}` +
            (report.alreadyThere ? `; ${report.alreadyThere} already there` : ""),
        );
      });
    });
  sneakernet.command("import <dir>")
    .description("take in every parcel file found in <dir>")
    .action(function (this: Command, dir: string) {
      return withNode(this, async (node, options) => {
        const bar = progressBar("Importing");
        const report = await importParcels(node, dir, { onProgress: bar.update }).finally(bar.stop);
        out(options, report, () =>
          [
            `Imported ${report.accepted} new parcel(s); ${report.duplicates} already had; ` +
            `${report.skipped} for others left on the medium; ${report.refused.length} refused; ` +
            `${report.unreadable.length} unreadable; ${report.ignored.length} other entries ignored`,
            ...report.refused.map((r) => `  refused ${basename(r.file)}: ${r.code}: ${r.reason}`),
            ...report.unreadable.map((r) => `  unreadable ${basename(r.file)}: ${r.error}`),
            ...report.ignored.slice(0, 20).map((i) => `  ignored ${basename(i.file)}: ${i.reason}`),
            ...(report.ignored.length > 20
              ? [`  and ${report.ignored.length - 20} more ignored (see --json)`]
              : []),
          ].join("\n"));
      });
    });

  addDaemonOptions(
    program.command("daemon")
      .description(
        "run the mesh: find peers nearby, carry parcels, receive mail (Ctrl-C stops it)",
      ),
  ).action(function (this: Command, opts: DaemonFlags) {
    return withNode(this, async (node) => {
      if (!node.identity.exists()) throw new NoIdentityError(node.dataDir);
      await runDaemon(node, daemonOptionsFrom(opts, new Settings(node.ctx.db)));
    });
  });

  const gateway = program.command("gateway")
    .description("show this endpoint's registration with its gateway")
    .action(function (this: Command) {
      return withNode(this, (node, options) => {
        const registration = node.gateway.registration();
        const configured = new Settings(node.ctx.db).get("gateway.url");
        const report = {
          configured: configured || null,
          registered: registration
            ? {
              url: registration.gatewayUrl,
              registeredAt: registration.registeredAt.toISOString(),
              expiresAt: registration.expiresAt.toISOString(),
              internetAddress: registration.internetAddress || null,
            }
            : null,
        };
        out(options, report, () =>
          registration
            ? [
              `Registered with ${registration.gatewayUrl} on ${registration.registeredAt.toISOString()}`,
              `  certificate valid until ${registration.expiresAt.toISOString()}`,
              `  Internet gateway: ${registration.internetAddress || "none"}`,
              configured && configured !== registration.gatewayUrl
                ? `  (the daemon will register with ${configured} when it starts)`
                : "",
            ].filter(Boolean).join("\n")
            : configured
            ? `Not registered yet; the daemon registers with ${configured} when it starts`
            : "No gateway: set one with `relaymail gateway register <url>`");
        return Promise.resolve();
      });
    });
  gateway.command("register <url>")
    .description("register with an Awala gateway now (e.g. http://127.0.0.1:13276) and use it")
    .action(function (this: Command, url: string) {
      return withNode(this, async (node, options) => {
        if (!node.identity.exists()) throw new NoIdentityError(node.dataDir);
        const address = parsePoWebUrl(url);
        const registration = await node.useGateway(address.url);
        out(
          options,
          { url: address.url, expiresAt: registration.expiresAt.toISOString() },
          () =>
            `Registered with ${address.url}; certificate valid until ${registration.expiresAt.toISOString()}.\n` +
            `Contacts will be sent the new way to reach you; run \`relaymail daemon\` to use the gateway.`,
        );
      });
    });

  const settings = program.command("settings").description(
    "list the settings kept in the data directory",
  )
    .action(function (this: Command) {
      return withNode(this, (node, options) => {
        const all = new Settings(node.ctx.db).all();
        out(options, all, () =>
          table(
            ["SETTING", "VALUE", "", "WHAT"],
            all.map((s) => [s.name, JSON.stringify(s.value), s.set ? "" : "(default)", s.help]),
          ));
        return Promise.resolve();
      });
    });
  settings.command("set <name> <value>")
    .description("change a setting (lists are comma-separated, booleans on/off, sizes like 512M)")
    .action(function (this: Command, name: string, value: string) {
      return withNode(this, (node) => {
        new Settings(node.ctx.db).set(name, value);
        return Promise.resolve();
      });
    });
  settings.command("unset <name>")
    .description("return a setting to its default")
    .action(function (this: Command, name: string) {
      return withNode(this, (node) => {
        new Settings(node.ctx.db).unset(name);
        return Promise.resolve();
      });
    });

  const web = program.command("web").description("the web app `relaymail start` serves");
  web.command("rotate-secret")
    .description("replace the web app's secret: the old address and every session stop working")
    .action(function (this: Command) {
      return withNode(this, (node, options) => {
        const url = webAppUrl(
          new Settings(node.ctx.db).get("web.port"),
          rotateWebSecret(node.ctx.db),
        );
        out(options, { url }, () => `New address (open pages are signed out):\n\n  ${url}`);
        return Promise.resolve();
      });
    });

  program.command("mesh")
    .description("show the running daemon's mesh node and the peers it is connected to")
    .action(function (this: Command) {
      return withNode(this, async (node, options) => {
        const status = await readDaemonStatus(node.dataDir);
        if (!status) {
          out(
            options,
            null,
            () => "No daemon runs for this data directory: start one with `relaymail daemon`.",
          );
          return;
        }
        const name = (endpoints: readonly string[]) =>
          endpoints.map((id) => node.contacts.get(id)?.name ?? id.slice(1, 13)).join(", ") || "-";
        // The path of each message this device sent and not yet delivered: every hop
        // it was handed to, by message id (as `sent` names them).
        const paths = node.outbox.list()
          .filter((p) => p.state === "queued" || p.state === "sent")
          .map((p) => ({
            messageId: node.outbox.messageOf(p.key) ?? null,
            kind: p.kind,
            to: node.contacts.get(p.recipientId)?.name ?? p.recipientId.slice(1, 13),
            state: p.state,
            hops: node.outbox.handovers(p.key).map((h) => ({
              via: h.hop ? `${h.binding} …${h.hop.slice(-12)}` : h.binding,
              toRecipient: h.toRecipient,
              at: h.at.toISOString(),
            })),
          }));
        out(options, { ...status, paths }, () =>
          [
            `Mesh node ${status.peerId} (pid ${status.pid}), carrying ${status.parcelsCarried} parcel(s)`,
            ...status.addresses.map((a) => `  listening on ${a}`),
            "",
            table(
              ["PEER", "ADDRESS", "HOSTS"],
              status.peers.map((
                p,
              ) => [`…${p.id.slice(-12)}`, p.addresses[0] ?? "-", name(p.endpoints)]),
            ),
            "",
            paths.length === 0 ? "Nothing of yours on its way." : table(
              ["MESSAGE", "TO", "PATH"],
              paths.map((p) => [
                p.messageId?.slice(0, 8) ?? p.kind,
                p.to,
                p.hops.length === 0
                  ? "queued here"
                  : p.hops.map((h) => `${h.via}${h.toRecipient ? " (their device)" : ""}`).join(
                    " → ",
                  ),
              ]),
            ),
          ].join("\n"));
      });
    });

  program.command("refused")
    .description("list parcels this device refused, with the reasons")
    .option("--limit <n>", "at most this many", "100")
    .action(function (this: Command, opts: { limit: string }) {
      return withNode(this, (node, options) => {
        const list = node.refusals.list({ limit: Number(opts.limit) });
        out(options, list, () =>
          table(
            ["WHEN", "VIA", "CODE", "FROM", "TIMES", "REASON"],
            list.map((r) => [
              shortDate(r.lastAt),
              r.via,
              r.code,
              r.senderId
                ? (node.contacts.get(r.senderId)?.name ?? r.senderId.slice(1, 13))
                : r.hop
                ? `${r.via === "mesh" ? "peer " : ""}…${r.hop.slice(-12)}`
                : "-",
              String(r.count),
              clip(r.reason, 100),
            ]),
          ));
        return Promise.resolve();
      });
    });

  return program;
}

/** How the answer to an invitation will reach the inviter, from what runs here now. */
async function howAnswersTravel(node: Relaymail): Promise<string> {
  const status = await readDaemonStatus(node.dataDir);
  const gateway = new Settings(node.ctx.db).get("gateway.url");
  const ways = [];
  if (status) {
    ways.push(
      status.peers.length > 0
        ? `the mesh carries it now (${status.peers.length} peer(s) nearby)`
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
  if (/relaymail-invite(-part)?:/.test(joined)) return joined;
  if (argumentsGiven.length > 1) {
    throw new Error("Give one invitation: its text, its parts, or one file holding it");
  }
  const argument = joined;
  try {
    return await Deno.readTextFile(argument);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Error(`"${clip(argument, 40)}" is neither an invitation nor a file holding one`);
    }
    throw error;
  }
}

function statusOf(node: Relaymail) {
  if (!node.identity.exists()) return { identity: null };
  return {
    identity: node.identity.info(),
    contacts: node.contacts.count(),
    unread: node.mailbox.unreadCount(),
    parcelsWaitingToLeave: node.outbox.queuedCount(),
    refusals: node.refusals.count(),
  };
}

function statusText(node: Relaymail, status: ReturnType<typeof statusOf>): string {
  if (!status.identity) {
    return [
      `Relaymail — data directory ${node.dataDir}`,
      "No identity yet. Create one (from the Relaymail directory):",
      '  npx --yes deno@2.9.6 task relaymail identity create --name "Your Name"',
      "Then invite someone: `... task relaymail invite`; all commands: `... task relaymail --help`.",
    ].join("\n");
  }
  return [
    `Relaymail — ${status.identity.name} (${status.identity.fingerprint})`,
    `Data directory:  ${node.dataDir}`,
    `Contacts:        ${status.contacts}`,
    `Unread:          ${status.unread}`,
    `Waiting to leave: ${status.parcelsWaitingToLeave} parcel(s)`,
    `Refused parcels: ${status.refusals}`,
    "",
    "Next: `relaymail invite` to pair with someone, `relaymail inbox` to read, `relaymail --help` for all.",
  ].join("\n");
}

function contactsTable(list: readonly Contact[]): string {
  return table(
    ["NAME", "FINGERPRINT", "STATE", "CALLS ITSELF", "LAST ACTIVITY"],
    list.map((
      c,
    ) => [c.name, c.fingerprint, c.state, c.nameHint || "-", shortDate(c.lastActivityAt)]),
  );
}

function messagesTable(
  list: readonly MessageSummary[],
  folder: "inbox" | "sent" | "outbox",
): string {
  return table(
    [
      "ID",
      "DATE",
      folder === "inbox" ? "FROM" : "TO",
      "SUBJECT",
      folder === "inbox" ? "" : "STATE",
    ],
    list.map((m) => [
      (m.folder === "inbox" && !m.read ? "*" : " ") + shortId(m.id),
      shortDate(m.sentAt),
      clip(m.folder === "inbox" ? m.from.name : m.to.map((p) => p.name).join(", "), 30),
      clip(m.subject || "(no subject)", 50) +
      (m.attachments.length ? ` [${m.attachments.length} att]` : ""),
      m.folder === "sent"
        ? m.deliveries.map((d) => `${d.name}: ${stateLabel(d.state, d.via)}`).join("; ")
        : "",
    ]),
  );
}

function stateLabel(state: string, via?: string | null): string {
  if (state !== "sent") return state;
  switch (via) {
    case "mesh relay":
      return "handed to a relay";
    case "mesh recipient":
      return "reached their device";
    case "sneakernet":
      return "on a stick";
    case "gateway relay":
      return "through a gateway";
    default:
      return "left this device";
  }
}

function messageText(m: MessageDetail): string {
  return [
    `Message:  ${m.id}`,
    `From:     ${m.from.name} (${m.from.fingerprint})`,
    `To:       ${m.to.map((p) => p.name).join(", ")}`,
    `Date:     ${shortDate(m.sentAt)} UTC`,
    `Subject:  ${m.subject}`,
    ...(m.inReplyTo ? [`Reply to: ${m.inReplyTo}`] : []),
    ...m.attachments.map((a) => `Attached: ${a.fileName} (${a.mediaType}, ${size(a.size)})`),
    ...(m.folder === "sent"
      ? m.deliveries.map((d) =>
        `Delivery: ${d.name}: ${stateLabel(d.state, d.via)}${d.via ? ` via ${d.via}` : ""}`
      )
      : []),
    "",
    m.body,
  ].join("\n");
}

/**
 * Writes `content` to a new file `name` in `directory`, or `name (1)`, `name (2)`…
 * when taken; returns its path. Never overwrites, nor follows a link planted there.
 */
async function writeNewFile(directory: string, name: string, content: Uint8Array): Promise<string> {
  for (let n = 0; n <= MAX_NUMBERED_COPIES; n++) {
    const path = join(directory, n === 0 ? name : numberedFileName(name, n));
    try {
      await Deno.writeFile(path, content, { createNew: true });
      return path;
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    }
  }
  throw new Error(
    `Cannot save "${name}" in ${directory}: it and ${MAX_NUMBERED_COPIES} numbered copies exist`,
  );
}

/** How far {@linkcode writeNewFile} numbers a name before giving up. */
const MAX_NUMBERED_COPIES = 999;

function collect(value: string, all: string[] = []): string[] {
  return [...all, value];
}

function mediaTypeOf(path: string): string {
  return mime.getType(path) ?? "application/octet-stream";
}

/** The daemon's command-line flags (shared by `daemon` and `start`). */
interface DaemonFlags {
  listen?: string[];
  peer?: string[];
  mdns?: boolean;
  mdnsInterval: string;
  mdnsInterface?: string[];
  quota?: string;
  stallTimeout: string;
  gateway?: string;
  gatewayWindow?: string;
  servePoweb?: boolean | string;
}

function addDaemonOptions(command: Command): Command {
  return command
    .option("-l, --listen <multiaddr...>", "addresses to listen on (setting mesh.listen)")
    .option(
      "-p, --peer <multiaddr>",
      "a peer to dial and keep dialling, repeatable (setting mesh.peers)",
      collect,
    )
    .option("--mdns", "find peers by mDNS (setting mesh.mdns, on by default)")
    .option("--no-mdns", "do not find peers by mDNS: dial --peer addresses only")
    .option("--mdns-interval <ms>", "how often to ask the network for peers by mDNS", "10000")
    .option(
      "--mdns-interface <name>",
      "speak mDNS on this interface only, repeatable (setting mesh.interfaces; default: all)",
      collect,
    )
    .option(
      "--quota <size>",
      "storage for other people's parcels, e.g. 512M or 2G (setting mesh.quota)",
    )
    .option("--stall-timeout <ms>", "drop a peer that makes no progress for this long", "20000")
    .option(
      "-g, --gateway <url>",
      "fall back to this Awala gateway over PoWeb, e.g. http://127.0.0.1:13276 (setting gateway.url)",
    )
    .option(
      "--gateway-window <duration>",
      "how long the mesh may try before a parcel also goes to the gateway, e.g. 10m (setting gateway.window)",
    )
    .option(
      "--serve-poweb [host:port]",
      "serve PoWeb, as the gateway of Awala apps and other nodes (settings poweb.serve, poweb.listen)",
    )
    .option("--no-serve-poweb", "do not serve PoWeb");
}

/** The daemon's options: command-line flags first, then the settings kept in the data directory. */
function daemonOptionsFrom(opts: DaemonFlags, settings: Settings): DaemonOptions {
  const gatewayUrl = opts.gateway ?? settings.get("gateway.url");
  const serve = opts.servePoweb ?? settings.get("poweb.serve");
  return {
    listen: opts.listen ?? settings.get("mesh.listen"),
    peers: [...settings.get("mesh.peers"), ...(opts.peer ?? [])],
    mdns: opts.mdns ?? settings.get("mesh.mdns"),
    mdnsIntervalMs: Number(opts.mdnsInterval),
    mdnsInterfaces: opts.mdnsInterface ?? settings.get("mesh.interfaces"),
    quotaBytes: opts.quota ? parseSize(opts.quota) : settings.get("mesh.quota"),
    stallTimeoutMs: Number(opts.stallTimeout),
    gatewayUrl: gatewayUrl ? parsePoWebUrl(gatewayUrl).url : undefined,
    gatewayWindowMs: opts.gatewayWindow
      ? parseDuration(opts.gatewayWindow)
      : settings.get("gateway.window"),
    poweb: serve === false
      ? undefined
      : parseAddress(typeof serve === "string" ? serve : settings.get("poweb.listen")),
  };
}
