/**
 * What commands print: `--json` output, and the text views of messages,
 * contacts and the status that several commands share.
 *
 * @module
 */
import type { Contact } from "../core/contacts.ts";
import type {
  DeleteResult,
  Draft,
  FolderName,
  MessageDetail,
  MessageSummary,
} from "../core/mailbox.ts";
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
    `${status.mail.archive} archived, ${status.mail.outbox} not yet delivered`,
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

/**
 * A folder's messages, or what a search found, one a line; where received and
 * sent mail mix (the archive, a search), each says who it is from or to.
 */
export function messagesTable(
  list: readonly MessageSummary[],
  folder: FolderName | "search",
): string {
  const mixed = folder === "archive" || folder === "search";
  const people = (m: MessageSummary) =>
    m.from.isMe ? m.to.map((p) => p.name).join(", ") : m.from.name;
  return table(
    [
      "ID",
      "DATE",
      mixed ? "FROM/TO" : folder === "inbox" ? "FROM" : "TO",
      "SUBJECT",
      folder === "inbox" ? "" : "STATE",
    ],
    list.map((m) => [
      (!m.read ? "*" : " ") + shortId(m.id),
      shortDate(m.sentAt),
      clip(mixed ? (m.from.isMe ? "to " : "from ") + people(m) : people(m), 30),
      clip(m.subject || "(no subject)", 50) +
      (m.attachments.length ? ` [${m.attachments.length} att]` : ""),
      m.deliveries.map((d) => `${d.name}: ${stateLabel(d.state, d.via)}`).join("; "),
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
    ...(m.archived ? ["Folder:   archive"] : []),
    ...(m.deliveries.length > 0
      ? m.deliveries.map((d) =>
        `Delivery: ${d.name}: ${stateLabel(d.state, d.via)}${d.via ? ` via ${d.via}` : ""}`
      )
      : []),
    "",
    m.body,
  ].join("\n");
}

/** What `send` and its kin print: the message queued and each delivery's state. */
export function queuedText(message: MessageDetail, verb = "Queued"): string {
  return `${verb} ${shortId(message.id)} "${message.subject}" for ` +
    message.deliveries.map((d) => `${d.name} (${d.state})`).join(", ");
}

/** What `delete` did: the attachments purged and the deliveries cancelled. */
export function deletedText(result: DeleteResult): string {
  const lines = [
    `Deleted ${shortId(result.deleted)}` +
    (result.attachments ? `, with its ${result.attachments} attachment(s)` : ""),
  ];
  if (result.cancelled.length > 0) {
    lines.push(
      `Delivery cancelled for ${result.cancelled.map((p) => p.name).join(", ")}: ` +
        `its copy had not left this device` +
        (result.parcels ? ` (${result.parcels} parcel(s) dropped)` : ""),
    );
  }
  return lines.join("\n");
}

/** The drafts, one a line. */
export function draftsTable(
  list: readonly Draft[],
  names: Readonly<Record<string, string>>,
): string {
  return table(
    ["ID", "SAVED", "TO", "SUBJECT"],
    list.map((d) => [
      shortId(d.id),
      shortDate(d.updatedAt),
      clip(d.to.map((id) => nameOf(names, id)).join(", ") || "-", 30),
      clip(d.subject || "(no subject)", 50),
    ]),
  );
}
