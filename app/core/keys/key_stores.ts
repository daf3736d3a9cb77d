/**
 * relaynet-core's key stores, persisted in the data directory's SQLite database.
 * Private keys (the mesh node's libp2p key among them) are sealed under the user's
 * passphrase when one is set; session keys a peer has moved past are deleted
 * (forward secrecy is only real once they are gone).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import {
  CertificateStore,
  CertificationPath,
  derDeserializeRSAPrivateKey,
  derSerializePrivateKey,
  type KeyStoreSet,
  PrivateKeyStore,
  PublicKeyStore,
  type SessionPrivateKeyData,
  type SessionPublicKeyData,
  type UnboundSessionPrivateKeyData,
} from "@relaycorp/relaynet-core";
import type { SqliteDatabase } from "../../../bindings/durable.ts";
import { fromHex, toArrayBuffer, toHex } from "../../../bindings/validation.ts";
import type { Clock } from "../clock.ts";
import type { KeySealer } from "./sealing.ts";

/** Raised when private keys are sealed and no passphrase was given. */
export class PassphraseRequiredError extends Error {
  constructor() {
    super(
      "This data directory's keys are protected by a passphrase: set RELAYMAIL_PASSPHRASE or use --passphrase-file",
    );
    this.name = "PassphraseRequiredError";
  }
}

/**
 * Where Relaymail.open keeps the passphrase check (app/services/relaymail.ts), beside the
 * salt, in table `meta`; {@linkcode SqlitePrivateKeyStore.upgradeSealing} reseals it.
 */
const CHECK_META_KEY = "passphrase.check";

/** The mesh node's libp2p private key, as the key store keeps it. */
export interface MeshKey {
  /** The libp2p peer id the key gives. */
  readonly peerId: string;
  /** The private key, protobuf-encoded (as libp2p's `privateKeyToProtobuf` writes it). */
  readonly key: Uint8Array;
}

interface PrivateKeyRow {
  key_id: string;
  node_id: string;
  peer_id: string | null;
  key: Uint8Array;
  sealed: number;
}

/** Private identity, session and mesh keys, in table `private_keys`. */
export class SqlitePrivateKeyStore extends PrivateKeyStore {
  #sealer: KeySealer | null;

  constructor(
    private readonly db: SqliteDatabase,
    sealer: KeySealer | null,
    private readonly now: Clock,
  ) {
    super();
    this.#sealer = sealer;
  }

  override async retrieveIdentityKey(nodeId: string): Promise<CryptoKey | null> {
    const row = this.db.get<PrivateKeyRow>(
      "SELECT * FROM private_keys WHERE key_id = ? AND kind = 'identity'",
      nodeId,
    );
    return row ? await derDeserializeRSAPrivateKey(Buffer.from(this.#open(row))) : null;
  }

  override async saveIdentityKey(nodeId: string, privateKey: CryptoKey): Promise<void> {
    const der = new Uint8Array(await derSerializePrivateKey(privateKey));
    this.db.run(
      `INSERT INTO private_keys (key_id, kind, node_id, key, sealed, created_at)
       VALUES (?, 'identity', ?, ?, ?, ?)
       ON CONFLICT (key_id) DO UPDATE SET key = excluded.key, sealed = excluded.sealed`,
      nodeId,
      nodeId,
      this.#seal(der, nodeId),
      this.#sealer ? 1 : 0,
      this.now().getTime(),
    );
  }

  protected override saveSessionKeySerialized(
    keyId: string,
    keySerialized: Buffer,
    nodeId: string,
    peerId?: string,
  ): Promise<void> {
    this.saveSessionKeyDer(keyId, new Uint8Array(keySerialized), nodeId, peerId);
    return Promise.resolve();
  }

  /** Stores a private session key (PKCS#8 DER); synchronous, for use inside transactions. */
  saveSessionKeyDer(keyId: string, der: Uint8Array, nodeId: string, peerId?: string): void {
    this.db.run(
      `INSERT OR REPLACE INTO private_keys (key_id, kind, node_id, peer_id, key, sealed, created_at)
       VALUES (?, 'session', ?, ?, ?, ?, ?)`,
      keyId,
      nodeId,
      peerId ?? null,
      this.#seal(der, keyId),
      this.#sealer ? 1 : 0,
      this.now().getTime(),
    );
  }

  protected override retrieveSessionKeyData(keyId: string): Promise<SessionPrivateKeyData | null> {
    const row = this.db.get<PrivateKeyRow>(
      "SELECT * FROM private_keys WHERE key_id = ? AND kind = 'session'",
      keyId,
    );
    if (!row) return Promise.resolve(null);
    return Promise.resolve({
      keySerialized: Buffer.from(this.#open(row)),
      nodeId: row.node_id,
      peerId: row.peer_id ?? undefined,
    });
  }

  protected override retrieveLatestUnboundSessionKeyData(
    nodeId: string,
  ): Promise<UnboundSessionPrivateKeyData | null> {
    const row = this.db.get<PrivateKeyRow>(
      `SELECT * FROM private_keys WHERE node_id = ? AND kind = 'session' AND peer_id IS NULL
       ORDER BY created_at DESC, rowid DESC LIMIT 1`,
      nodeId,
    );
    if (!row) return Promise.resolve(null);
    return Promise.resolve({ keyId: row.key_id, keySerialized: Buffer.from(this.#open(row)) });
  }

  /**
   * Records that `peerId` encrypted with our session key `usedKeyId`: every key we
   * gave that peer before it is superseded from now on.
   */
  markSuperseded(nodeId: string, peerId: string, usedKeyId: string): void {
    const used = this.db.get<{ created_at: number; rowid: number }>(
      "SELECT created_at, rowid FROM private_keys WHERE key_id = ? AND kind = 'session'",
      usedKeyId,
    );
    if (!used) return;
    this.db.run(
      `UPDATE private_keys SET superseded_at = ?
       WHERE kind = 'session' AND node_id = ? AND peer_id = ? AND superseded_at IS NULL
         AND (created_at < ? OR (created_at = ? AND rowid < ?))`,
      this.now().getTime(),
      nodeId,
      peerId,
      used.created_at,
      used.created_at,
      used.rowid,
    );
  }

  /** Deletes one session key (an invitation's initial key once used). */
  deleteSessionKey(keyId: string): void {
    this.db.run("DELETE FROM private_keys WHERE key_id = ? AND kind = 'session'", keyId);
  }

  /** Deletes the session keys superseded before `cutoff`; returns how many. */
  purgeSuperseded(cutoff: Date): number {
    return this.db.run(
      "DELETE FROM private_keys WHERE kind = 'session' AND superseded_at IS NOT NULL AND superseded_at <= ?",
      cutoff.getTime(),
    );
  }

  /** The mesh node's libp2p key, or null when none is kept yet. */
  retrieveMeshKey(): MeshKey | null {
    const row = this.db.get<PrivateKeyRow>("SELECT * FROM private_keys WHERE kind = 'mesh'");
    return row ? { peerId: row.key_id, key: this.#open(row) } : null;
  }

  /**
   * Keeps `key` as the mesh node's libp2p key, sealed like the other private keys,
   * unless one is kept already; returns the one kept.
   */
  saveMeshKey(peerId: string, key: Uint8Array): MeshKey {
    return this.db.transaction(() => {
      const kept = this.retrieveMeshKey();
      if (kept) return kept;
      this.db.run(
        `INSERT INTO private_keys (key_id, kind, node_id, key, sealed, created_at)
         VALUES (?, 'mesh', ?, ?, ?, ?)`,
        peerId,
        peerId,
        this.#seal(key, peerId),
        this.#sealer ? 1 : 0,
        this.now().getTime(),
      );
      return { peerId, key };
    });
  }

  /**
   * Reseals, in one transaction, every private key sealed in an older format or
   * at another cost than the sealer's (`RMS1` keys, say: see sealing.ts), and the
   * passphrase check kept beside them; returns how many keys it resealed. Run
   * when the store is opened, with a sealer whose passphrase was checked.
   */
  upgradeSealing(): number {
    const sealer = this.#sealer;
    if (!sealer || !this.#needsUpgrade(sealer)) return 0;
    // Derived before the write lock is taken: scrypt takes a second or so.
    const check = sealer.makeCheck();
    return scrubbing(this.db, () =>
      this.db.transaction(() => {
        let resealed = 0;
        for (
          const row of this.db.all<PrivateKeyRow>("SELECT * FROM private_keys WHERE sealed = 1")
        ) {
          if (!outdated(sealer, row.key, row.key_id)) continue;
          let plain;
          try {
            plain = sealer.open(row.key, row.key_id);
          } catch {
            // A damaged key fails when it is used, as it always did; it does not
            // lock the user out of the whole directory.
            continue;
          }
          this.db.run(
            "UPDATE private_keys SET key = ? WHERE key_id = ?",
            sealer.seal(plain, row.key_id),
            row.key_id,
          );
          resealed++;
        }
        const old = this.#check();
        if (old && sealer.needsReseal(old, "check")) {
          sealer.verifyCheck(old);
          this.db.run("UPDATE meta SET value = ? WHERE key = ?", toHex(check), CHECK_META_KEY);
        }
        return resealed;
      }));
  }

  #needsUpgrade(sealer: KeySealer): boolean {
    const check = this.#check();
    return (check !== null && sealer.needsReseal(check, "check")) ||
      this.db.all<{ key_id: string; key: Uint8Array }>(
        "SELECT key_id, key FROM private_keys WHERE sealed = 1",
      ).some((row) => outdated(sealer, row.key, row.key_id));
  }

  #check(): Uint8Array | null {
    const row = this.db.get<{ value: string }>(
      "SELECT value FROM meta WHERE key = ?",
      CHECK_META_KEY,
    );
    return row ? fromHex(row.value) : null;
  }

  /** Re-encrypts every private key under `sealer` (null: store them in the clear). */
  reseal(sealer: KeySealer | null): void {
    scrubbing(this.db, () =>
      this.db.transaction(() => {
        for (const row of this.db.all<PrivateKeyRow>("SELECT * FROM private_keys")) {
          const plain = this.#open(row);
          this.db.run(
            "UPDATE private_keys SET key = ?, sealed = ? WHERE key_id = ?",
            sealer ? sealer.seal(plain, row.key_id) : plain,
            sealer ? 1 : 0,
            row.key_id,
          );
        }
      }));
    this.#sealer = sealer;
  }

  #seal(der: Uint8Array, label: string): Uint8Array {
    return this.#sealer ? this.#sealer.seal(der, label) : der;
  }

  #open(row: PrivateKeyRow): Uint8Array {
    if (!row.sealed) return row.key;
    if (!this.#sealer) throw new PassphraseRequiredError();
    return this.#sealer.open(row.key, row.key_id);
  }
}

/**
 * Runs `fn` with SQLite zeroing the space it frees: the form a key had before it
 * was resealed (under an older cost or passphrase, or none) must not linger in
 * the file, where it would be cheaper to attack than the new one.
 */
function scrubbing<T>(db: SqliteDatabase, fn: () => T): T {
  const was = db.get<{ secure_delete: number }>("PRAGMA secure_delete")!.secure_delete;
  db.exec("PRAGMA secure_delete = ON");
  try {
    return fn();
  } finally {
    db.exec(`PRAGMA secure_delete = ${was ? "ON" : "OFF"}`);
  }
}

/** Whether `sealed` needs resealing; a key too damaged to tell is left alone. */
function outdated(sealer: KeySealer, sealed: Uint8Array, label: string): boolean {
  try {
    return sealer.needsReseal(sealed, label);
  } catch {
    return false;
  }
}

/** Peers' public identity and session keys, in `peer_identity_keys` and `peer_session_keys`. */
export class SqlitePublicKeyStore extends PublicKeyStore {
  constructor(private readonly db: SqliteDatabase) {
    super();
  }

  protected override retrieveIdentityKeySerialized(peerId: string): Promise<Buffer | null> {
    const row = this.db.get<{ key: Uint8Array }>(
      "SELECT key FROM peer_identity_keys WHERE peer_id = ?",
      peerId,
    );
    return Promise.resolve(row ? Buffer.from(row.key) : null);
  }

  protected override retrieveSessionKeyData(peerId: string): Promise<SessionPublicKeyData | null> {
    const row = this.db.get<{ key_id: Uint8Array; key: Uint8Array; created_at: number }>(
      "SELECT key_id, key, created_at FROM peer_session_keys WHERE peer_id = ?",
      peerId,
    );
    return Promise.resolve(
      row
        ? {
          publicKeyId: Buffer.from(row.key_id),
          publicKeyDer: Buffer.from(row.key),
          publicKeyCreationTime: new Date(row.created_at),
        }
        : null,
    );
  }

  protected override saveIdentityKeySerialized(
    keySerialized: Buffer,
    peerId: string,
  ): Promise<void> {
    this.saveIdentityKeyDer(peerId, new Uint8Array(keySerialized));
    return Promise.resolve();
  }

  protected override saveSessionKeyData(
    keyData: SessionPublicKeyData,
    peerId: string,
  ): Promise<void> {
    this.saveSessionKeyDer(
      peerId,
      new Uint8Array(keyData.publicKeyId),
      new Uint8Array(keyData.publicKeyDer),
      keyData.publicKeyCreationTime,
    );
    return Promise.resolve();
  }

  /** Stores a peer's identity key (SPKI DER); synchronous, for use inside transactions. */
  saveIdentityKeyDer(peerId: string, der: Uint8Array): void {
    this.db.run(
      "INSERT OR REPLACE INTO peer_identity_keys (peer_id, key) VALUES (?, ?)",
      peerId,
      der,
    );
  }

  /** Stores a peer's session key unless a newer one is already known; synchronous. */
  saveSessionKeyDer(peerId: string, keyId: Uint8Array, der: Uint8Array, createdAt: Date): void {
    this.db.run(
      `INSERT INTO peer_session_keys (peer_id, key_id, key, created_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (peer_id) DO UPDATE SET key_id = excluded.key_id, key = excluded.key,
         created_at = excluded.created_at
       WHERE excluded.created_at > peer_session_keys.created_at`,
      peerId,
      keyId,
      der,
      createdAt.getTime(),
    );
  }
}

/**
 * Certification paths (PDAs and their chains), in `certification_paths`. The base
 * class reads the wall clock; this one uses the node's clock so expiry is testable.
 */
export class SqliteCertificateStore extends CertificateStore {
  constructor(private readonly db: SqliteDatabase, private readonly now: Clock) {
    super();
  }

  override async save(path: CertificationPath, issuerId: string): Promise<void> {
    if (this.now() < path.leafCertificate.expiryDate) {
      this.savePath(path, await path.leafCertificate.calculateSubjectId(), issuerId);
    }
  }

  /** Stores a path whose leaf's subject id is already known; synchronous. */
  savePath(path: CertificationPath, subjectId: string, issuerId: string): void {
    const leaf = path.leafCertificate;
    this.db.run(
      `INSERT INTO certification_paths (subject_id, issuer_id, expires_at, starts_at, path)
       VALUES (?, ?, ?, ?, ?)`,
      subjectId,
      issuerId,
      leaf.expiryDate.getTime(),
      leaf.startDate.getTime(),
      new Uint8Array(path.serialize()),
    );
  }

  /**
   * The path that started last, of those valid now (not the one that lasts
   * longest: contacts issue PDAs ahead, docs/protocol.md §6); when none has started
   * yet (a clock set back), the next to start.
   */
  override retrieveLatest(subjectId: string, issuerId: string): Promise<CertificationPath | null> {
    const now = this.now().getTime();
    const row = this.db.get<{ path: Uint8Array }>(
      `SELECT path FROM certification_paths WHERE subject_id = ? AND issuer_id = ? AND expires_at > ?
       ORDER BY starts_at <= ? DESC, CASE WHEN starts_at <= ? THEN -starts_at ELSE starts_at END,
         id DESC LIMIT 1`,
      subjectId,
      issuerId,
      now,
      now,
      now,
    );
    return Promise.resolve(row ? CertificationPath.deserialize(toArrayBuffer(row.path)) : null);
  }

  override retrieveAll(subjectId: string, issuerId: string): Promise<readonly CertificationPath[]> {
    return Promise.resolve(
      this.db.all<{ path: Uint8Array }>(
        `SELECT path FROM certification_paths WHERE subject_id = ? AND issuer_id = ? AND expires_at > ?
         ORDER BY expires_at DESC`,
        subjectId,
        issuerId,
        this.now().getTime(),
      ).map((row) => CertificationPath.deserialize(toArrayBuffer(row.path))),
    );
  }

  override deleteExpired(): Promise<void> {
    this.db.run("DELETE FROM certification_paths WHERE expires_at <= ?", this.now().getTime());
    return Promise.resolve();
  }

  protected override saveData(
    serialization: ArrayBuffer,
    subjectId: string,
    _subjectCertificateExpiryDate: Date,
    issuerId: string,
  ): Promise<void> {
    this.savePath(CertificationPath.deserialize(serialization), subjectId, issuerId);
    return Promise.resolve();
  }

  protected override retrieveLatestSerialization(
    subjectId: string,
    issuerId: string,
  ): Promise<ArrayBuffer | null> {
    return this.retrieveLatest(subjectId, issuerId).then((path) => path?.serialize() ?? null);
  }

  protected override retrieveAllSerializations(
    subjectId: string,
    issuerId: string,
  ): Promise<readonly ArrayBuffer[]> {
    return this.retrieveAll(subjectId, issuerId).then((paths) => paths.map((p) => p.serialize()));
  }
}

/** The three stores over one database. */
export class SqliteKeyStoreSet implements KeyStoreSet {
  readonly privateKeyStore: SqlitePrivateKeyStore;
  readonly publicKeyStore: SqlitePublicKeyStore;
  readonly certificateStore: SqliteCertificateStore;

  constructor(db: SqliteDatabase, sealer: KeySealer | null, now: Clock) {
    this.privateKeyStore = new SqlitePrivateKeyStore(db, sealer, now);
    this.publicKeyStore = new SqlitePublicKeyStore(db);
    this.certificateStore = new SqliteCertificateStore(db, now);
  }
}
