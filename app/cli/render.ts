/**
 * What commands print: `--json` output, and the text views of messages,
 * contacts and the status that several commands share.
 *
 * @module
 */
import type { Contact } from "../core/contacts.ts";
import type { MessageDetail, MessageSummary } from "../core/mailbox.ts";
import type { ResultOf } from "../runtime/operations/mod.ts";
import { clip, shortDate, shortId, size, table } from "./format.ts";

/** Writes to stdout. */
export type Print = (text: string) => void;

/** Where a command's answer goes. */
export interface Output {
  /** Writes to stdout. */
  readonly print: Print;
  /** Prints `json` as JSON under `--json`, else `text()`. */
  show(options: { json?: boolean }, json: unknown, text: () => string): void;
}

/** The {@linkcode Output} that writes with `print`. */
export function output(print: Print): Output {
  return {
    print,
    show: (options, json, text) => print(options.json ? JSON.stringify(json, null, 2) : text()),
  };
}

/** A contact's name from `names`, or the start of its id when it is no contact. */
export function nameOf(names: Readonly<Record<string, string>>, id: string): string {
  return names[id] ?? id.slice(1, 13);
}

/** `relaymail status`. */
export function statusText(dataDir: string, status: ResultOf<"status.show">): string {
  if (!status.identity) {
    return [
      `Relaymail — data directory ${dataDir}`,
      "No identity yet. Create one (from the Relaymail directory):",
      '  npx --yes deno@2.9.6 task relaymail identity create --name "Your Name"',
      "Then invite someone: `... task relaymail invite`; all commands: `... task relaymail --help`.",
    ].join("\n");
  }
  return [
    `Relaymail — ${status.identity.name} (${status.identity.fingerprint})`,
    `Data directory:  ${dataDir}`,
    `Contacts:        ${status.contacts}`,
    `Unread:          ${status.unread}`,
    `Mail:            ${status.mail.inbox} received, ${status.mail.sent} sent, ` +
    `${status.mail.outbox} not yet delivered`,
    `Waiting to leave: ${status.parcelsWaitingToLeave} parcel(s)`,
    `Refused parcels: ${status.refusals}`,
    "",
    "Next: `relaymail invite` to pair with someone, `relaymail inbox` to read, `relaymail --help` for all.",
  ].join("\n");
}

/** The contact list. */
export function contactsTable(list: readonly Contact[]): string {
  return table(
    ["NAME", "FINGERPRINT", "STATE", "CALLS ITSELF", "LAST ACTIVITY"],
    list.map((
      c,
    ) => [c.name, c.fingerprint, c.state, c.nameHint || "-", shortDate(c.lastActivityAt)]),
  );
}

/** A folder's messages, one a line. */
export function messagesTable(
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

/** A delivery's state in words: how far a copy that left got. */
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

/** One message, headers then body. */
export function messageText(m: MessageDetail): string {
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
