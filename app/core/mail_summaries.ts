/**
 * Messages as listings show them: each row with its people named (contacts by
 * their local names, this endpoint by its own), its attachments listed and,
 * for sent mail, each recipient's delivery.
 *
 * @module
 */
import type { SqliteDatabase } from "../../bindings/durable.ts";
import type { Contacts } from "./contacts.ts";
import { fingerprint, type IdentityManager } from "./identity.ts";
import type { MessageSummary } from "./mail_types.ts";
import type { SummaryRow } from "./message_rows.ts";
import type { DeliveryState, Party } from "./types.ts";

/**
 * Names people for one listing: this endpoint and each contact are looked up
 * once, however many messages name them.
 */
export function partiesOf(identity: IdentityManager, contacts: Contacts): (id: string) => Party {
  const me = identity.id;
  const known = new Map<string, Party>();
  return (id) => {
    let party = known.get(id);
    if (!party) {
      const contact = id === me ? undefined : contacts.get(id);
      party = {
        id,
        name: id === me
          ? identity.name
          : contact?.name ?? `unknown (${fingerprint(id).slice(0, 9)})`,
        fingerprint: fingerprint(id),
        isMe: id === me,
      };
      known.set(id, party);
    }
    return party;
  };
}

/** The message in `row` as listed, its people named by `party`. */
export function summarize(
  db: SqliteDatabase,
  row: SummaryRow,
  party: (id: string) => Party,
): MessageSummary {
  const deliveries = row.folder === "sent"
    ? db.all<
      {
        recipient_id: string;
        state: DeliveryState;
        via: string | null;
        updated_at: number;
        parcel_key: string | null;
      }
    >(
      "SELECT recipient_id, state, via, updated_at, parcel_key FROM deliveries WHERE message = ? ORDER BY rowid",
      row.id,
    ).map((d) => ({
      ...party(d.recipient_id),
      state: d.state,
      via: d.via,
      updatedAt: new Date(d.updated_at),
      parcelKey: d.parcel_key,
    }))
    : [];
  return {
    id: row.message_id,
    folder: row.archived ? "archive" : row.folder,
    archived: row.archived === 1,
    threadId: row.thread_id,
    inReplyTo: row.in_reply_to,
    from: party(row.sender_id),
    to: (JSON.parse(row.recipients) as string[]).map(party),
    subject: row.subject,
    sentAt: new Date(row.sent_at),
    receivedAt: row.received_at === null ? null : new Date(row.received_at),
    read: row.read_at !== null,
    attachments: db.all<{ file_name: string; media_type: string; size: number }>(
      "SELECT file_name, media_type, size FROM attachments WHERE message = ? ORDER BY position",
      row.id,
    ).map((a) => ({ fileName: a.file_name, mediaType: a.media_type, size: a.size })),
    deliveries,
  };
}
