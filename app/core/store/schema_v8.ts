/**
 * Migration V8: broadcast channels (docs/broadcast.md §6). A channel's private
 * key, when this device owns it, is kept in `private_keys` as an identity key
 * (kind 'identity', its key id the channel id), sealed like the user's own.
 * "IF NOT EXISTS" throughout: a directory taken back to an older version (as
 * tests/key_stores_test.ts does) keeps these tables, and the migration runs again.
 *
 * @module
 */

/** Channels, their posts, authors, content keys and subscribers. */
export const V8 = `
CREATE TABLE IF NOT EXISTS channels (
  id TEXT PRIMARY KEY,          -- the channel key's id
  title TEXT NOT NULL,          -- as the owner signed it (link, docs/broadcast.md §5)
  visibility TEXT NOT NULL CHECK (visibility IN ('public', 'private')),
  role TEXT NOT NULL CHECK (role IN ('owner', 'author', 'follower')),
  following INTEGER NOT NULL DEFAULT 1 CHECK (following IN (0, 1)),
  link BLOB NOT NULL,           -- the link's octets: certificate, title, signature
  certificate_expires_at INTEGER NOT NULL,
  source_id TEXT,               -- the contact who sent it (author or subscriber), if any
  created_at INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS channel_posts (
  key TEXT PRIMARY KEY,         -- hex SHA-256 of the post's octets
  channel_id TEXT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
  author_id TEXT NOT NULL,
  bytes BLOB NOT NULL,
  key_id TEXT,                  -- a sealed post's content key id (hex), else null
  title TEXT,
  text TEXT,                    -- null while unreadable
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  received_at INTEGER NOT NULL,
  read INTEGER NOT NULL DEFAULT 0 CHECK (read IN (0, 1)),
  own INTEGER NOT NULL DEFAULT 0 CHECK (own IN (0, 1)),
  published INTEGER NOT NULL DEFAULT 0 CHECK (published IN (0, 1)),
  fanned_out INTEGER NOT NULL DEFAULT 0 CHECK (fanned_out IN (0, 1))
);
CREATE INDEX IF NOT EXISTS channel_posts_by_time ON channel_posts (channel_id, created_at, key);
CREATE INDEX IF NOT EXISTS channel_posts_by_expiry ON channel_posts (expires_at);
CREATE INDEX IF NOT EXISTS channel_posts_unpublished ON channel_posts (published) WHERE published = 0;

-- On the owner's device: every author it authorised (itself among them). On an
-- author's: its own certificate. renew = 0 once the owner removed the author.
CREATE TABLE IF NOT EXISTS channel_authors (
  channel_id TEXT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
  author_id TEXT NOT NULL,
  certificate BLOB NOT NULL,
  expires_at INTEGER NOT NULL,
  renew INTEGER NOT NULL DEFAULT 1 CHECK (renew IN (0, 1)),
  days INTEGER NOT NULL DEFAULT 30,
  PRIMARY KEY (channel_id, author_id)
) WITHOUT ROWID;

-- Private channels' content keys (AES-256), the newest the one posts use.
CREATE TABLE IF NOT EXISTS channel_content_keys (
  channel_id TEXT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
  key_id TEXT NOT NULL,         -- 16 octets, hex
  key BLOB NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (channel_id, key_id)
);

-- On the owner's device: contacts posts fan out to through a gateway. 'subscriber':
-- added by the owner; 'follower': told the owner it follows. On a follower's
-- device: 'notified', a contact who authored a post and was told we follow.
CREATE TABLE IF NOT EXISTS channel_subscribers (
  channel_id TEXT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
  contact_id TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('subscriber', 'follower', 'notified')),
  added_at INTEGER NOT NULL,
  PRIMARY KEY (channel_id, contact_id)
) WITHOUT ROWID;
`;
