/**
 * The schema of the mesh node's store (mesh/store.ts), as the migrations that
 * build it: applied in order, once each, by `SqliteDatabase.open`
 * (bindings/durable.ts), which records in `PRAGMA user_version` how many ran.
 * Append a migration to change the schema; never edit one that has shipped.
 *
 * @module
 */

/**
 * The store's migrations, oldest first: the tables of parcels, of tombstones
 * (`delivered`), of known recipients, of meta values, and (protocol 3) of
 * broadcast posts and followed channels.
 */
export const MIGRATIONS: readonly string[] = [
  `
CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);

CREATE TABLE parcels (
  key TEXT PRIMARY KEY,          -- hex SHA-256 of the parcel
  recipient_id TEXT NOT NULL,
  sender_id TEXT NOT NULL,
  size INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,   -- ms since the epoch
  received_at INTEGER NOT NULL,
  origin TEXT NOT NULL CHECK (origin IN ('local', 'relay')),
  copies INTEGER NOT NULL,       -- spray-and-wait: copies this node may still hand out
  from_peer TEXT,
  handed_to TEXT,                -- first peer that acknowledged it (for local parcels)
  handed_to_recipient INTEGER NOT NULL DEFAULT 0,
  bytes BLOB NOT NULL
);
CREATE INDEX parcels_by_recipient ON parcels (recipient_id);
CREATE INDEX parcels_by_expiry ON parcels (expires_at);
CREATE INDEX parcels_by_sender ON parcels (origin, sender_id);

CREATE TABLE delivered (
  key TEXT PRIMARY KEY,
  expires_at INTEGER NOT NULL,
  delivered_at INTEGER NOT NULL,
  local INTEGER NOT NULL DEFAULT 0  -- the parcel was handed in by this node's own host
);
CREATE INDEX delivered_by_expiry ON delivered (expires_at);
`,
  `
-- Protocol 2: only a recipient's signature makes a tombstone worth spreading.
-- proven: its proof was checked against the parcel's recipient; unverified: a
-- peer's proof for a parcel never held here (bounded, checked if the parcel comes);
-- local: this node's own knowledge, with no proof (a gateway, a PoWeb endpoint).
ALTER TABLE delivered ADD COLUMN state TEXT NOT NULL DEFAULT 'local'
  CHECK (state IN ('proven', 'unverified', 'local'));
ALTER TABLE delivered ADD COLUMN proof BLOB;
ALTER TABLE delivered ADD COLUMN from_peer TEXT;
ALTER TABLE delivered ADD COLUMN from_host TEXT;
CREATE INDEX delivered_unverified ON delivered (state, from_peer);
ALTER TABLE parcels ADD COLUMN from_host TEXT;
ALTER TABLE parcels ADD COLUMN known_recipient INTEGER NOT NULL DEFAULT 1;
-- Recipients known to be real: hosted here, or seen in a verified proof or claim.
CREATE TABLE known_recipients (id TEXT PRIMARY KEY, until INTEGER NOT NULL);
`,
  `
-- A parcel is (sender, parcel id), whatever its octets: one signed parcel can be
-- re-encoded (BER) into other octets under the same signature.
ALTER TABLE parcels ADD COLUMN parcel_id TEXT;
CREATE INDEX parcels_by_id ON parcels (sender_id, parcel_id);
ALTER TABLE delivered ADD COLUMN sender_id TEXT;
ALTER TABLE delivered ADD COLUMN parcel_id TEXT;
CREATE INDEX delivered_by_id ON delivered (sender_id, parcel_id);
`,
  `
-- Making room for a peer's unverifiable proofs evicts the oldest: without this
-- index each eviction sorted every unverified tombstone.
CREATE INDEX delivered_unverified_by_age ON delivered (state, delivered_at);
`,
  `
-- Protocol 3: broadcast posts (docs/broadcast.md), keyed by the SHA-256 of their
-- octets. followed: the node follows the channel (its own posts, counted per
-- channel); otherwise it carries them for neighbours, within the post quota.
CREATE TABLE posts (
  key TEXT PRIMARY KEY,
  channel_id TEXT NOT NULL,
  author_id TEXT NOT NULL,
  post_id TEXT NOT NULL,
  created_at INTEGER NOT NULL,   -- ms since the epoch, as its author dated it
  expires_at INTEGER NOT NULL,
  received_at INTEGER NOT NULL,
  size INTEGER NOT NULL,
  from_peer TEXT,                -- null: published here
  from_host TEXT,
  followed INTEGER NOT NULL,
  bytes BLOB NOT NULL
);
CREATE INDEX posts_by_channel ON posts (channel_id, created_at);
CREATE INDEX posts_by_expiry ON posts (expires_at);
CREATE TABLE followed_channels (channel_id TEXT PRIMARY KEY, since INTEGER NOT NULL);
`,
];
