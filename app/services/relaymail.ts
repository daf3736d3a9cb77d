/**
 * One Relaymail data directory, opened: the messenger's identity, contacts, mail
 * and outbox, and the {@linkcode ParcelNode} every binding talks to.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Relaymail } from "./relaymail.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const mail = await Relaymail.open(dir);
 * try {
 *   await mail.identity.create("Alice");
 *   const invitation = await mail.pairing.createInvitation({ contactName: "Bob" });
 *   assert.match(invitation.text, /^relaymail-invite:2:/);
 *   assert.equal(mail.pairing.listInvitations().length, 1);
 * } finally {
 *   mail.close();
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { join } from "node:path";
import {
  type Handover,
  isSafelyStored,
  type OutgoingParcel,
  type OutgoingParcelsOptions,
  type ParcelNode,
  type ParcelOrigin,
  type ReceiveOutcome,
} from "../../bindings/binding.ts";
import { SqliteDatabase } from "../../bindings/durable.ts";
import {
  type BackupOptions,
  type BackupReport,
  type BackupTarget,
  restoreBackupFile,
  type RestoreOptions,
  writeBackupFile,
} from "../core/backup.ts";
import { sealerRecord, writeSealerRecord } from "../core/backup_db.ts";
import type { BackupManifest } from "../core/backup_format.ts";
import { type Clock, systemClock } from "../core/clock.ts";
import { Channels } from "../core/channels.ts";
import { Contacts } from "../core/contacts.ts";
import {
  DEFAULT_TUNABLES,
  MessengerEvents,
  type NodeContext,
  type Tunables,
} from "../core/context.ts";
import { GatewayAccount } from "./gateway.ts";
import {
  type GatewayRegistration,
  type IdentityInfo,
  IdentityManager,
  NoIdentityError,
} from "../core/identity.ts";
import { Jobs } from "../core/jobs.ts";
import { PassphraseRequiredError, SqliteKeyStoreSet } from "../core/keys/key_stores.ts";
import { KeySealer } from "../core/keys/sealing.ts";
import { Leases } from "../core/leases.ts";
import { Mailbox } from "../core/mailbox.ts";
import { Outbox } from "../core/outbox.ts";
import { Pairing } from "../core/pairing.ts";
import { Receiver } from "./receiver.ts";
import { RefusalLog } from "../core/refusals.ts";
import { Settings } from "../core/settings.ts";
import { MIGRATIONS } from "../core/store/schema.ts";
import { ConflictError, UserInputError } from "../core/errors.ts";

/** Name of the database file inside a data directory. */
export const DATABASE_FILE = "relaymail.sqlite";

/** Options of {@linkcode Relaymail.open}. */
export interface OpenOptions {
  /** Unlocks private keys sealed under a passphrase; on a new directory, seals them. */
  readonly passphrase?: string;
  /** The clock (default: the machine's). */
  readonly now?: Clock;
  /** Overrides of {@linkcode DEFAULT_TUNABLES}. */
  readonly tunables?: Partial<Tunables>;
}

/** What {@linkcode Relaymail.maintain} did. */
export interface MaintenanceReport {
  readonly certificateRenewed: boolean;
  readonly authorizationsRenewed: number;
  readonly invitationsExpired: number;
  readonly parcelsExpired: number;
  readonly sessionKeysDeleted: number;
  readonly parcelsQueued: number;
  /** True when another process (the daemon) held the maintenance lease: it does the work. */
  readonly skipped?: boolean;
}

export type { BackupOptions, BackupReport, RestoreOptions };

/** What {@linkcode Relaymail.restore} restored. */
export interface RestoreReport {
  /** What the backup said of itself. */
  readonly backup: BackupManifest;
  /** The identity, restored. */
  readonly identity: IdentityInfo;
  readonly contacts: number;
  readonly messages: number;
}

/** How long a maintenance run may hold its lease before another process may take over. */
const MAINTENANCE_LEASE_MS = 10 * 60_000;

/** An open data directory. */
export class Relaymail implements ParcelNode {
  readonly identity: IdentityManager;
  readonly contacts: Contacts;
  readonly outbox: Outbox;
  readonly jobs: Jobs;
  readonly mailbox: Mailbox;
  readonly pairing: Pairing;
  readonly refusals: RefusalLog;
  readonly receiver: Receiver;
  /** Broadcast channels: owned, written to, followed (docs/broadcast.md). */
  readonly channels: Channels;
  /** Registration with a gateway (PoWeb), when one is configured. */
  readonly gateway: GatewayAccount;
  #sealer: KeySealer | null;
  readonly #leases: Leases;
  #flushTimer: ReturnType<typeof setTimeout> | undefined;

  private constructor(readonly ctx: NodeContext, sealer: KeySealer | null) {
    this.#sealer = sealer;
    this.#leases = new Leases(ctx.db);
    this.identity = new IdentityManager(ctx);
    this.contacts = new Contacts(ctx);
    this.outbox = new Outbox(ctx);
    this.jobs = new Jobs(ctx, this.identity, this.outbox);
    this.mailbox = new Mailbox(ctx, this.identity, this.contacts, this.outbox, this.jobs);
    this.pairing = new Pairing(
      ctx,
      this.identity,
      this.contacts,
      this.outbox,
      this.jobs,
      (contactId) => this.mailbox.flushWaiting(contactId).then(() => undefined),
    );
    this.refusals = new RefusalLog(ctx);
    this.channels = new Channels(ctx, this.identity, this.contacts, this.outbox);
    this.receiver = new Receiver(
      ctx,
      this.identity,
      this.contacts,
      this.pairing,
      this.mailbox,
      this.jobs,
      this.refusals,
      this.channels,
    );
    this.gateway = new GatewayAccount(ctx, this.identity, this.pairing);
  }

  /** Opens (creating if needed) the data directory `dataDir`. */
  static async open(dataDir: string, options: OpenOptions = {}): Promise<Relaymail> {
    await Deno.mkdir(dataDir, { recursive: true, mode: 0o700 });
    // Only its owner may look inside, whatever mode an existing directory had:
    // it holds private keys and mail.
    if (Deno.build.os !== "windows") await Deno.chmod(dataDir, 0o700);
    const db = SqliteDatabase.open(join(dataDir, DATABASE_FILE), { migrations: MIGRATIONS });
    try {
      // What is deleted (superseded session keys, keys sealed the old way) is
      // overwritten, not left in free pages.
      db.exec("PRAGMA secure_delete = ON");
      const now = options.now ?? systemClock;
      const sealer = openSealer(db, options.passphrase);
      const keys = new SqliteKeyStoreSet(db, sealer, now);
      // Keys sealed with older parameters are sealed again, now that the passphrase
      // is known to be right.
      keys.privateKeyStore.upgradeSealing();
      const ctx: NodeContext = {
        dataDir,
        db,
        keys,
        now,
        tunables: { ...DEFAULT_TUNABLES, ...options.tunables },
        events: new MessengerEvents(),
      };
      return new Relaymail(ctx, sealer);
    } catch (error) {
      db.close();
      throw error;
    }
  }

  /** The data directory. */
  get dataDir(): string {
    return this.ctx.dataDir;
  }

  /** Live events: see {@linkcode RelaymailEventName}. */
  get events(): EventTarget {
    return this.ctx.events;
  }

  /** True when private keys are sealed under a passphrase. */
  get hasPassphrase(): boolean {
    return this.#sealer !== null;
  }

  outgoingParcels(options?: OutgoingParcelsOptions): Promise<OutgoingParcel[]> {
    return Promise.resolve(this.outbox.pending(options));
  }

  parcelHandedOver(key: string, handover: Handover): Promise<void> {
    this.outbox.handedOver(key, handover);
    return Promise.resolve();
  }

  async receiveParcel(bytes: Uint8Array, origin: ParcelOrigin): Promise<ReceiveOutcome> {
    const outcome = await this.receiver.receive(bytes, origin);
    if (isSafelyStored(outcome)) this.#scheduleFlush();
    return outcome;
  }

  /**
   * Registers with the gateway at `url` and makes it the one the daemon uses
   * (setting `gateway.url`); contacts' new connection parameters are built at once.
   */
  async useGateway(url: string): Promise<GatewayRegistration> {
    const registration = await this.gateway.register(url);
    new Settings(this.ctx.db).set("gateway.url", registration.gatewayUrl);
    await this.flush();
    return registration;
  }

  /**
   * Builds the parcels owed after receiving (receipts, pairing answers) now. Bindings
   * call it after a batch; otherwise it happens by itself shortly after a receipt.
   */
  async flush(): Promise<void> {
    if (this.#flushTimer !== undefined) clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    await this.jobs.run();
  }

  #scheduleFlush(): void {
    if (this.#flushTimer !== undefined) return;
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = undefined;
      this.jobs.run().catch((error) =>
        // The jobs are durable: the next flush or maintenance retries them.
        console.error(
          `Relaymail: could not build follow-up parcels yet: ${error?.message ?? error}`,
        )
      );
    }, this.ctx.tunables.followUpDelayMs);
  }

  /**
   * Housekeeping, cheap enough to run on every start and periodically: issues
   * certificates and contacts' authorisations ahead to the horizon, expires
   * invitations and parcels, forgets replay records and session keys no longer
   * needed, and builds owed parcels.
   */
  async maintain(): Promise<MaintenanceReport> {
    const empty = {
      certificateRenewed: false,
      authorizationsRenewed: 0,
      invitationsExpired: 0,
      parcelsExpired: 0,
      sessionKeysDeleted: 0,
      parcelsQueued: 0,
    };
    if (!this.identity.exists()) return empty;
    // One process at a time: a CLI command next to a running daemon leaves the
    // renewals and follow-up parcels to whoever holds the lease.
    const holder = `${Deno.pid}:${crypto.randomUUID()}`;
    if (!this.#leases.take("maintenance", holder, MAINTENANCE_LEASE_MS)) {
      return { ...empty, skipped: true };
    }
    try {
      return await this.#maintain();
    } finally {
      this.#leases.release("maintenance", holder);
    }
  }

  async #maintain(): Promise<MaintenanceReport> {
    const s = this.ctx.tunables;
    const now = this.ctx.now().getTime();
    // Certificates and contacts' authorisations are kept issued ahead to the horizon,
    // whether or not anyone wrote lately, so that a silence does not end a pairing.
    const certificateRenewed = await this.identity.extendCertificates() > 0;
    let authorizationsRenewed = 0;
    for (const id of this.contacts.dueForRenewal(now + s.authorizationHorizonMs)) {
      if (await this.pairing.renewAuthorization(id) > 0) authorizationsRenewed++;
    }
    const invitationsExpired = this.pairing.expireInvitations();
    const parcelsExpired = this.outbox.expire();
    this.receiver.forgetExpired(now);
    this.mailbox.purgeDeleted();
    const sessionKeysDeleted = this.ctx.keys.privateKeyStore.purgeSuperseded(
      new Date(now - s.sessionKeyGraceMs),
    );
    await this.ctx.keys.certificateStore.deleteExpired();
    this.refusals.trim(s.refusalLogLimit);
    // Channel certificates renewed, authors' too, expired posts deleted; a failure
    // there (a key that cannot be read, say) does not hold up the mail's housekeeping.
    await this.channels.maintain().catch((error) =>
      console.error(`Relaymail: channel housekeeping failed: ${error?.message ?? error}`)
    );
    let parcelsQueued = 0;
    for (const contactId of this.mailbox.contactsWaitedFor()) {
      parcelsQueued += await this.mailbox.flushWaiting(contactId);
    }
    parcelsQueued += await this.jobs.run();
    return {
      certificateRenewed,
      authorizationsRenewed,
      invitationsExpired,
      parcelsExpired,
      sessionKeysDeleted,
      parcelsQueued,
    };
  }

  /**
   * Seals every private key under a new passphrase, or stores them in the clear
   * when `passphrase` is null. The directory must have been opened with its
   * current passphrase, if it had one.
   */
  setPassphrase(passphrase: string | null): void {
    const sealer = passphrase === null ? null : KeySealer.fromPassphrase(passphrase);
    this.ctx.db.transaction(() => {
      this.ctx.keys.privateKeyStore.reseal(sealer);
      saveSealer(this.ctx.db, sealer);
    });
    this.#sealer = sealer;
  }

  /**
   * Writes a backup of this directory to `file`, which must not exist; see
   * `../core/backup.ts` for what it holds.
   */
  backup(file: string, options: BackupOptions): Promise<BackupReport> {
    if (!this.identity.exists()) throw new NoIdentityError(this.dataDir);
    return writeBackupFile(this.#backupTarget(), file, options);
  }

  /**
   * Restores the backup in `file`, encrypted under `passphrase`, into this
   * directory, which must have no identity yet. All or nothing: a wrong
   * passphrase or a damaged file leaves the directory as it was.
   */
  async restore(
    file: string,
    passphrase: string,
    options: RestoreOptions = {},
  ): Promise<RestoreReport> {
    this.#refuseIdentity();
    // Two at once would both pass the check for an identity, and both write.
    if (this.#restoring) {
      throw new ConflictError(
        `A restore into ${this.dataDir} is under way already: wait for it to end`,
      );
    }
    this.#restoring = true;
    try {
      const { manifest, sealer } = await restoreBackupFile(
        this.#backupTarget(),
        file,
        passphrase,
        { ...options, refuse: () => this.#refuseIdentity() },
      );
      this.#sealer = sealer;
      await this.maintain();
      return this.#restored(manifest);
    } finally {
      this.#restoring = false;
    }
  }

  /** Whether a restore is under way (see {@linkcode restore}). */
  #restoring = false;

  #restored(manifest: BackupManifest): RestoreReport {
    return {
      backup: manifest,
      identity: this.identity.info(),
      contacts: this.contacts.count(),
      messages: this.ctx.db.get<{ n: number }>("SELECT count(*) AS n FROM messages")!.n,
    };
  }

  #backupTarget(): BackupTarget {
    return {
      dataDir: this.dataDir,
      databaseFile: join(this.dataDir, DATABASE_FILE),
      db: this.ctx.db,
      keys: this.ctx.keys.privateKeyStore,
      sealer: this.#sealer,
      now: this.ctx.now,
    };
  }

  #refuseIdentity(): void {
    if (!this.identity.exists()) return;
    const { name, fingerprint } = this.identity.info();
    throw new ConflictError(
      `${this.dataDir} already has an identity (${name}, ${fingerprint}): restore a backup only into a new data directory`,
    );
  }

  /** Closes the database. Deferred work stays recorded and is done at the next open. */
  close(): void {
    if (this.#flushTimer !== undefined) clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    this.ctx.db.close();
  }
}

function openSealer(db: SqliteDatabase, passphrase: string | undefined): KeySealer | null {
  const salt = db.get<{ value: string }>("SELECT value FROM meta WHERE key = 'passphrase.salt'");
  const check = db.get<{ value: string }>("SELECT value FROM meta WHERE key = 'passphrase.check'");
  if (salt && check) {
    if (passphrase === undefined || passphrase === "") throw new PassphraseRequiredError();
    const sealer = KeySealer.fromPassphrase(passphrase, Buffer.from(salt.value, "hex"));
    sealer.verifyCheck(Buffer.from(check.value, "hex"));
    return sealer;
  }
  if (passphrase === undefined || passphrase === "") return null;
  const hasKeys = db.get("SELECT 1 FROM private_keys LIMIT 1") !== undefined;
  if (hasKeys) {
    throw new UserInputError(
      'This data directory has no passphrase; to protect its keys with one, run "relaymail passphrase set"',
    );
  }
  const sealer = KeySealer.fromPassphrase(passphrase);
  db.transaction(() => saveSealer(db, sealer));
  return sealer;
}

/** Records the salt and check value of `sealer` (none when null). */
function saveSealer(db: SqliteDatabase, sealer: KeySealer | null): void {
  writeSealerRecord(db, sealer ? sealerRecord(sealer) : null);
}
