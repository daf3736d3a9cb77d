/**
 * The messenger's SQLite schema, one migration per release that changed it.
 * Times are milliseconds since the Unix epoch.
 *
 * @module
 */
import { V8 } from "./schema_v8.ts";

const V1 = `
CREATE TABLE meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

-- Key stores (relaynet-core PrivateKeyStore, PublicKeyStore, CertificateStore)
CREATE TABLE private_keys (
  key_id TEXT PRIMARY KEY,      -- the node id for identity keys, hex key id for session keys
  kind TEXT NOT NULL CHECK (kind IN ('identity', 'session')),
  node_id TEXT NOT NULL,
  peer_id TEXT,                 -- the peer a session key was given to, if bound
  key BLOB NOT NULL,            -- PKCS#8 DER, sealed when 'sealed' = 1
  sealed INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  superseded_at INTEGER         -- when the peer started using a newer key
);
CREATE INDEX private_keys_by_peer ON private_keys (node_id, peer_id, created_at);

CREATE TABLE peer_identity_keys (
  peer_id TEXT PRIMARY KEY,
  key BLOB NOT NULL             -- SPKI DER
);

CREATE TABLE peer_session_keys (
  peer_id TEXT PRIMARY KEY,
  key_id BLOB NOT NULL,
  key BLOB NOT NULL,            -- SPKI DER
  created_at INTEGER NOT NULL
);

CREATE TABLE certification_paths (
  id INTEGER PRIMARY KEY,
  subject_id TEXT NOT NULL,
  issuer_id TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  path BLOB NOT NULL            -- DER CertificationPath
);
CREATE INDEX certification_paths_by_pair ON certification_paths (subject_id, issuer_id, expires_at);

-- This endpoint
CREATE TABLE identity (
  singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
  node_id TEXT NOT NULL,
  name TEXT NOT NULL,
  created_at INTEGER NOT NULL
);

CREATE TABLE identity_certificates (
  serial TEXT PRIMARY KEY,
  certificate BLOB NOT NULL,    -- DER, self-issued
  starts_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);

-- People
CREATE TABLE contacts (
  id TEXT PRIMARY KEY,          -- the contact's endpoint id
  name TEXT NOT NULL,           -- chosen by the local user
  name_hint TEXT NOT NULL DEFAULT '',  -- what the contact calls itself: a hint, never trusted
  state TEXT NOT NULL CHECK (state IN ('pairing', 'active', 'blocked')),
  created_at INTEGER NOT NULL,
  last_activity_at INTEGER NOT NULL,
  pda_expires_at INTEGER,       -- expiry of the PDA this endpoint issued to the contact
  blocked_at INTEGER
);
CREATE UNIQUE INDEX contacts_by_name ON contacts (name COLLATE NOCASE);

CREATE TABLE invitations (
  id TEXT PRIMARY KEY,          -- id of the invitation key K
  contact_name TEXT,            -- local name for whoever accepts it
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  session_key_id TEXT NOT NULL, -- the initial session key handed out in the invitation
  state TEXT NOT NULL CHECK (state IN ('pending', 'used', 'revoked', 'expired')),
  used_at INTEGER,
  used_by TEXT
);

-- Mail
CREATE TABLE messages (
  id INTEGER PRIMARY KEY,
  message_id TEXT NOT NULL,     -- chosen by the sender, shared by every copy
  sender_id TEXT NOT NULL,
  folder TEXT NOT NULL CHECK (folder IN ('inbox', 'sent')),
  thread_id TEXT NOT NULL,
  in_reply_to TEXT,
  subject TEXT NOT NULL,
  body TEXT NOT NULL,
  recipients TEXT NOT NULL,     -- JSON array of endpoint ids, as the sender listed them
  sent_at INTEGER NOT NULL,
  received_at INTEGER,
  read_at INTEGER,
  UNIQUE (sender_id, message_id)
);
CREATE INDEX messages_by_folder ON messages (folder, sent_at);
CREATE INDEX messages_by_thread ON messages (thread_id, sent_at);

CREATE TABLE attachments (
  message INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  file_name TEXT NOT NULL,
  media_type TEXT NOT NULL,
  size INTEGER NOT NULL,
  content BLOB NOT NULL,
  PRIMARY KEY (message, position)
);

-- One row per (sent message, recipient): how far that copy has got.
CREATE TABLE deliveries (
  message INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
  recipient_id TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('waiting', 'queued', 'sent', 'delivered', 'expired')),
  parcel_key TEXT,
  via TEXT,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (message, recipient_id)
);
CREATE INDEX deliveries_by_parcel ON deliveries (parcel_key);

-- Parcels this endpoint made, until delivered or expired.
CREATE TABLE outgoing_parcels (
  key TEXT PRIMARY KEY,         -- hex SHA-256 of bytes
  parcel_id TEXT NOT NULL,
  recipient_id TEXT NOT NULL,
  kind TEXT NOT NULL,           -- mail, receipt, pairing-request, pairing-accept, pda-path
  bytes BLOB,                   -- dropped once the parcel is delivered or expired
  size INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('queued', 'sent', 'delivered', 'expired')),
  handed_at INTEGER,
  handed_via TEXT
);
CREATE INDEX outgoing_parcels_by_state ON outgoing_parcels (state, created_at);

-- Replay protection (RS-001): every parcel taken, until it expires.
CREATE TABLE received_parcels (
  sender_id TEXT NOT NULL,
  parcel_id TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  received_at INTEGER NOT NULL,
  message_id TEXT,              -- for mail, so a repeated parcel can be answered with a receipt
  PRIMARY KEY (sender_id, parcel_id)
);
CREATE INDEX received_parcels_by_expiry ON received_parcels (expires_at);

CREATE TABLE refusals (
  id INTEGER PRIMARY KEY,
  at INTEGER NOT NULL,
  last_at INTEGER NOT NULL,
  count INTEGER NOT NULL DEFAULT 1,   -- the same refusal repeated (one parcel offered again)
  via TEXT NOT NULL,
  hop TEXT,
  code TEXT NOT NULL,
  reason TEXT NOT NULL,
  parcel_id TEXT,
  sender_id TEXT,
  recipient_id TEXT,
  size INTEGER NOT NULL
);
CREATE INDEX refusals_by_parcel ON refusals (parcel_id, sender_id);

-- Work that must produce parcels, kept durably so a crash cannot lose it.
CREATE TABLE jobs (
  id INTEGER PRIMARY KEY,
  kind TEXT NOT NULL CHECK (kind IN ('receipt', 'pairing-accept', 'pda-path')),
  peer_id TEXT NOT NULL,
  data TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  UNIQUE (kind, peer_id, data)
);
`;

/** Gateways: the one this endpoint registered with, and this node's own gateway identity. */
const V2 = `
-- This endpoint's registration with a private or upstream gateway (PoWeb).
CREATE TABLE gateway_registration (
  singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
  gateway_url TEXT NOT NULL,
  certificate BLOB NOT NULL,          -- DER: this endpoint's key, issued by the gateway
  gateway_certificate BLOB NOT NULL,  -- DER: the gateway's own
  internet_address TEXT NOT NULL,     -- the gateway's Internet gateway, '' if none
  registered_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);

-- The gateway identity this node uses when it serves PoWeb to other endpoints;
-- its private key is in private_keys (kind 'identity', sealed like the others).
CREATE TABLE gateway_identity (
  singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
  node_id TEXT NOT NULL,
  certificate BLOB NOT NULL,          -- DER, self-issued gateway certificate
  expires_at INTEGER NOT NULL
);

-- The newest authorisation a contact issued is the one to use, even when an older
-- one outlives it (one issued under a gateway's shorter-lived chain, say).
ALTER TABLE certification_paths ADD COLUMN starts_at INTEGER NOT NULL DEFAULT 0;

-- Where a contact's Internet gateway is (Awala connection parameters), '' if none.
ALTER TABLE contacts ADD COLUMN internet_address TEXT NOT NULL DEFAULT '';

-- Every binding an outgoing parcel left by: it may leave by several.
CREATE TABLE handovers (
  parcel_key TEXT NOT NULL,
  binding TEXT NOT NULL,
  hop TEXT,
  to_recipient INTEGER NOT NULL,
  at INTEGER NOT NULL,
  PRIMARY KEY (parcel_key, binding)
);

-- Jobs gain 'connection-params' (sent to every contact when our gateway changes).
CREATE TABLE jobs_v2 (
  id INTEGER PRIMARY KEY,
  kind TEXT NOT NULL CHECK (kind IN ('receipt', 'pairing-accept', 'pda-path', 'connection-params')),
  peer_id TEXT NOT NULL,
  data TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  UNIQUE (kind, peer_id, data)
);
INSERT INTO jobs_v2 (id, kind, peer_id, data, created_at)
  SELECT id, kind, peer_id, data, created_at FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_v2 RENAME TO jobs;
`;

const V3 = `
-- Work that two processes on one data directory (the daemon and a CLI command)
-- must not both do: a holder takes the lease until it expires or gives it back.
CREATE TABLE leases (
  name TEXT PRIMARY KEY,
  holder TEXT NOT NULL,
  until INTEGER NOT NULL
);
`;

/**
 * The mesh node's libp2p key joins the other private keys, sealed like them
 * (it was kept in the clear in mesh.sqlite): private_keys gains kind 'mesh'.
 */
const V4 = `
-- Zero what the rebuild frees: the old table holds keys sealed at a lower cost.
PRAGMA secure_delete = ON;
-- rowid is copied: the order of session keys made in the same millisecond rests on it.
CREATE TABLE private_keys_v4 (
  key_id TEXT PRIMARY KEY,      -- the node id for identity keys, hex key id for session
                                -- keys, the libp2p peer id for the mesh key
  kind TEXT NOT NULL CHECK (kind IN ('identity', 'session', 'mesh')),
  node_id TEXT NOT NULL,        -- the owner: for the mesh key, its peer id again
  peer_id TEXT,                 -- the peer a session key was given to, if bound
  key BLOB NOT NULL,            -- PKCS#8 DER (the mesh key: libp2p's protobuf encoding),
                                -- sealed when 'sealed' = 1 (app/core/keys/sealing.ts)
  sealed INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  superseded_at INTEGER         -- when the peer started using a newer key
);
INSERT INTO private_keys_v4
  (rowid, key_id, kind, node_id, peer_id, key, sealed, created_at, superseded_at)
  SELECT rowid, key_id, kind, node_id, peer_id, key, sealed, created_at, superseded_at
  FROM private_keys;
DROP TABLE private_keys;
ALTER TABLE private_keys_v4 RENAME TO private_keys;
CREATE INDEX private_keys_by_peer ON private_keys (node_id, peer_id, created_at);
CREATE UNIQUE INDEX private_keys_one_mesh ON private_keys (kind) WHERE kind = 'mesh';
PRAGMA secure_delete = OFF;  -- SQLite's default, which every other connection has
`;

// The triggers' parts, shared by the migrations that write them (V5, V6).
/** Sets the list key of message `new.id`, sent at `new.sent_at`. */
const keyNew = `UPDATE messages SET list_key = (
    SELECT CASE
      WHEN top IS NULL THEN base
      WHEN top + 1 < base + 1024 THEN top + 1
      ELSE (SELECT k.list_key + 1 FROM messages k
            WHERE k.list_key >= base + 1023
              AND NOT EXISTS (SELECT 1 FROM messages j WHERE j.list_key = k.list_key + 1)
            ORDER BY k.list_key LIMIT 1)
    END
    FROM (SELECT base,
            (SELECT max(list_key) FROM messages WHERE list_key >= base AND list_key < base + 1024)
              AS top
          FROM (SELECT max(0, min(4398046511103, new.sent_at)) * 1024 AS base))
  ) WHERE id = new.id;`;
/** Writes the index entry of the message with row id `id`, as it is now. */
const index = (id: string) =>
  `INSERT INTO message_search (rowid, subject, body, attachments, sender)
    SELECT list_key, subject, body, attachments, sender_id FROM message_search_text
    WHERE id = ${id};`;
/** Drops the index entry of the message with row id `id` (gone already: nothing). */
const unindex = (id: string) =>
  `DELETE FROM message_search WHERE rowid = (SELECT list_key FROM messages WHERE id = ${id});`;
/** Counts message `row` (`new` or `old`) in `folder` (an expression), in or out by `sign`. */
const countIn = (folder: string, row: string, sign: string) =>
  `INSERT INTO message_counts (folder, total, unread)
    VALUES (${folder}, ${sign}1, ${sign}(${row}.read_at IS NULL))
    ON CONFLICT (folder) DO UPDATE
    SET total = total + excluded.total, unread = unread + excluded.unread;`;

/**
 * Mail at any size (app/core/message_rows.ts and mailbox.ts read what this keeps):
 *
 * - `messages.list_key` orders every listing and pages it (a cursor is a key):
 *   the send time in ms, clamped to 0..2^42-1 (1970 to 2109), times 1024, plus
 *   the message's rank among those sent in the same millisecond, by row id. The
 *   order is exactly that of `sent_at, id`; a key is never reused, so a page
 *   boundary stays put whatever arrives meanwhile. Keys stay under 2^52 (the
 *   rest, up to 2^53, is room for overflow): JavaScript reads them exactly. Over
 *   1024 messages sent in one millisecond take the next free keys instead.
 * - `message_search` is the full-text index (FTS5, contentless: it holds no copy
 *   of the text), one row per message with its list key as rowid, so that a
 *   search walks it newest first and stops after one page. It indexes subject,
 *   body, attachment names and the sender's endpoint id. Names are not indexed:
 *   a search matches them against the contacts (and this endpoint) as they are
 *   named at the time, so renaming a contact finds its mail by the new name at
 *   once, without re-indexing any of it.
 * - `message_counts` holds each folder's total and unread count.
 *
 * Triggers keep all three in step in the statement that changes a message or an
 * attachment, whichever code writes it: nothing else needs to remember them.
 */
const V5 = (() => {
  const count = (row: string, sign: string) => countIn(`${row}.folder`, row, sign);
  return `
ALTER TABLE messages ADD COLUMN list_key INTEGER;
-- Each key as wanted (base + rank), or one more than the key before where over
-- 1024 messages share a millisecond: a running maximum keeps keys unique.
UPDATE messages SET list_key = keyed.key FROM (
  SELECT id, i + max(wanted - i) OVER (ORDER BY i ROWS UNBOUNDED PRECEDING) AS key FROM (
    SELECT id, base + rank AS wanted, row_number() OVER (ORDER BY base, id) - 1 AS i FROM (
      SELECT id, max(0, min(4398046511103, sent_at)) * 1024 AS base,
        row_number() OVER (PARTITION BY max(0, min(4398046511103, sent_at)) ORDER BY id) - 1
          AS rank
      FROM messages
    )
  )
) AS keyed WHERE keyed.id = messages.id;
CREATE UNIQUE INDEX messages_by_key ON messages (list_key);
CREATE INDEX messages_by_folder_key ON messages (folder, list_key);
-- The outbox (sent mail not yet delivered to everyone) and mail waiting for a contact.
CREATE INDEX deliveries_by_state ON deliveries (state, message);

CREATE VIEW message_search_text AS
  SELECT m.id, m.list_key, m.subject, m.body, m.sender_id,
    coalesce((SELECT group_concat(a.file_name, ' ') FROM attachments a WHERE a.message = m.id), '')
      AS attachments
  FROM messages m;

CREATE VIRTUAL TABLE message_search USING fts5(
  subject, body, attachments, sender,
  content = '', contentless_delete = 1,
  tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO message_search (rowid, subject, body, attachments, sender)
  SELECT list_key, subject, body, attachments, sender_id FROM message_search_text;

CREATE TABLE message_counts (
  folder TEXT PRIMARY KEY,
  total INTEGER NOT NULL,
  unread INTEGER NOT NULL     -- read_at IS NULL
);
INSERT INTO message_counts (folder, total, unread)
  SELECT folder, count(*), sum(read_at IS NULL) FROM messages GROUP BY folder;

CREATE TRIGGER messages_added AFTER INSERT ON messages BEGIN
  ${keyNew}
  ${index("new.id")}
  ${count("new", "")}
END;

CREATE TRIGGER messages_removed AFTER DELETE ON messages BEGIN
  DELETE FROM message_search WHERE rowid = old.list_key;
  ${count("old", "-")}
END;

CREATE TRIGGER messages_retexted AFTER UPDATE OF subject, body, sender_id ON messages BEGIN
  DELETE FROM message_search WHERE rowid = old.list_key;
  ${index("new.id")}
END;

-- A message's send time is not meant to change; if it does, it moves in the order.
CREATE TRIGGER messages_redated AFTER UPDATE OF sent_at ON messages BEGIN
  DELETE FROM message_search WHERE rowid = old.list_key;
  UPDATE messages SET list_key = NULL WHERE id = new.id;
  ${keyNew}
  ${index("new.id")}
END;

CREATE TRIGGER messages_recounted AFTER UPDATE OF folder, read_at ON messages BEGIN
  ${count("old", "-")}
  ${count("new", "")}
END;

-- An attachment's name is part of its message's index entry, which is written anew.
CREATE TRIGGER attachments_added AFTER INSERT ON attachments BEGIN
  ${unindex("new.message")}
  ${index("new.message")}
END;

CREATE TRIGGER attachments_removed AFTER DELETE ON attachments BEGIN
  ${unindex("old.message")}
  ${index("old.message")}
END;

CREATE TRIGGER attachments_renamed AFTER UPDATE OF file_name ON attachments BEGIN
  ${unindex("new.message")}
  ${index("new.message")}
END;
`;
})();

/**
 * Mail people can live in (app/core/mail_actions.ts and drafts.ts):
 *
 * - `messages.archived`: an archived message leaves the inbox or sent listing
 *   for the archive (its own index, `messages_archived`), and search still
 *   finds it. `message_counts` counts it under `archive` instead of its folder,
 *   so the inbox's unread count leaves out archived mail: the count triggers
 *   are written anew with that place, and moving a message in or out of the
 *   archive recounts it.
 * - `drafts`: messages being written, saved as they are typed. Recipients are
 *   contact ids (JSON), replies and forwards name a message by its id; files
 *   picked into a draft are not kept.
 *
 * Deleting a message needs no schema: its attachments and deliveries go with it
 * (ON DELETE CASCADE), and the triggers above drop its index entry and count.
 */
const V6 = (() => {
  const place = (row: string) => `CASE WHEN ${row}.archived THEN 'archive' ELSE ${row}.folder END`;
  const count = (row: string, sign: string) => countIn(place(row), row, sign);
  return `
ALTER TABLE messages ADD COLUMN archived INTEGER NOT NULL DEFAULT 0 CHECK (archived IN (0, 1));
DROP INDEX messages_by_folder_key;
CREATE INDEX messages_by_place ON messages (folder, archived, list_key);
CREATE INDEX messages_archived ON messages (list_key) WHERE archived = 1;

DROP TRIGGER messages_added;
CREATE TRIGGER messages_added AFTER INSERT ON messages BEGIN
  ${keyNew}
  ${index("new.id")}
  ${count("new", "")}
END;

DROP TRIGGER messages_removed;
CREATE TRIGGER messages_removed AFTER DELETE ON messages BEGIN
  DELETE FROM message_search WHERE rowid = old.list_key;
  ${count("old", "-")}
END;

DROP TRIGGER messages_recounted;
CREATE TRIGGER messages_recounted AFTER UPDATE OF folder, read_at, archived ON messages BEGIN
  ${count("old", "-")}
  ${count("new", "")}
END;

CREATE TABLE drafts (
  id TEXT PRIMARY KEY,          -- a UUID
  recipients TEXT NOT NULL,     -- JSON array of contact ids
  subject TEXT NOT NULL,
  body TEXT NOT NULL,
  reply_to TEXT,                -- the message id it answers
  forward TEXT,                 -- the message id it forwards
  updated_at INTEGER NOT NULL
);
CREATE INDEX drafts_by_time ON drafts (updated_at);
`;
})();

/**
 * Received mail deleted for good stays deleted (app/core/mail_actions.ts and
 * incoming_mail.ts): `deleted_mail` remembers each received message deleted,
 * by sender and message id, until no copy of it can still arrive (see
 * `MailActions.delete` for the expiry), so that a copy sent again (the first
 * mail that rode a pairing request, re-sent as ordinary mail) is answered with
 * a receipt and not stored. One row per message deleted: bounded by what was
 * stored, and expired rows are purged.
 */
const V7 = `
CREATE TABLE deleted_mail (
  sender_id TEXT NOT NULL,
  message_id TEXT NOT NULL,
  expires_at INTEGER NOT NULL,  -- after this, no copy of it is still travelling
  PRIMARY KEY (sender_id, message_id)
) WITHOUT ROWID;
CREATE INDEX deleted_mail_by_expiry ON deleted_mail (expires_at);
`;

/** Migrations of the messenger's database, oldest first. */
export const MIGRATIONS: readonly string[] = [V1, V2, V3, V4, V5, V6, V7, V8];
