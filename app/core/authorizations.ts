/**
 * Parcel delivery authorisations (PDAs) between this endpoint and its contacts:
 * issuing connection parameters (a PDA, a session key and our Internet gateway
 * address) and the PDAs that follow it, checking the PDAs contacts issue to us,
 * keeping ours issued ahead to the authorisation horizon, and announcing new
 * parameters when our gateway registration changes.
 *
 * No certificate lasts more than 180 days (RS-002), so a contact gets a ladder:
 * PDAs that each start a rotation after the previous one and overlap it, issued
 * ahead and handed over while parcels can travel, so that a long silence later
 * does not end the pairing (docs/protocol.md §6).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import {
  CertificationPath,
  derSerializePrivateKey,
  getIdFromIdentityKey,
  PrivateEndpointConnParams,
  SessionKeyPair,
} from "@relaycorp/relaynet-core";
import {
  ParcelRefusedError,
  toArrayBuffer,
  verifyPathIssuedBy,
} from "../../bindings/validation.ts";
import type { Contact } from "./contacts.ts";
import { emit, type NodeContext } from "./context.ts";
import type { IdentityManager } from "./identity.ts";
import type { Jobs } from "./jobs.ts";
import type { Effect, Incoming } from "./types.ts";

/** Key in table `meta` marking a contact that takes no PDA dated ahead (an older peer). */
const NO_DATES_AHEAD = "contact.no-pdas-ahead.";

/** Connection parameters issued to a peer, with the session key still to be saved. */
export interface IssuedConnectionParams {
  readonly params: PrivateEndpointConnParams;
  readonly serialized: Uint8Array;
  readonly pdaExpiresAt: Date;
  /**
   * The PDAs issued ahead to follow the one in the parameters (DER
   * `CertificationPath`s, in order), when asked for; empty otherwise.
   */
  readonly authorizations: readonly Uint8Array[];
  /** When the last PDA issued (in the parameters or ahead) expires. */
  readonly authorizedUntil: Date;
  readonly sessionKeyId: string;
  /** The private half of the session key, until saved (it seals a pending pairing request). */
  readonly sessionPrivateKey: CryptoKey;
  /** Saves the session key; call it inside the transaction that records the pairing. */
  saveSessionKey(): void;
}

/** Issues, checks and renews the authorisations that let contacts write to each other. */
export class Authorizations {
  constructor(
    private readonly ctx: NodeContext,
    private readonly identity: IdentityManager,
    private readonly jobs: Jobs,
  ) {}

  /**
   * Issues a PDA to `peerKey` and a session key for that peer, and wraps them with
   * our identity key as connection parameters. The session key is saved by calling
   * `saveSessionKey()` inside the caller's transaction.
   */
  async connectionParamsFor(
    peerKey: CryptoKey,
    peerId: string,
    options: { validityMs?: number; ahead?: boolean } = {},
  ): Promise<IssuedConnectionParams> {
    const endpoint = await this.identity.endpoint();
    const path = await this.identity.issueAuthorization(
      peerKey,
      options.validityMs ?? this.ctx.tunables.pdaValidityMs,
    );
    const ahead = options.ahead
      ? await this.#issueAhead(peerKey, path.leafCertificate.expiryDate.getTime())
      : [];
    const session = await SessionKeyPair.generate();
    const sessionKeyId = session.sessionKey.keyId.toString("hex");
    const sessionKeyDer = new Uint8Array(await derSerializePrivateKey(session.privateKey));
    const params = new PrivateEndpointConnParams(
      endpoint.identityKeyPair.publicKey,
      this.identity.internetAddress(),
      path,
      session.sessionKey,
    );
    return {
      params,
      serialized: new Uint8Array(await params.serialize()),
      pdaExpiresAt: path.leafCertificate.expiryDate,
      authorizations: ahead.map((p) => new Uint8Array(p.serialize())),
      authorizedUntil: (ahead.at(-1) ?? path).leafCertificate.expiryDate,
      sessionKeyId,
      sessionPrivateKey: session.privateKey,
      saveSessionKey: () =>
        this.ctx.keys.privateKeyStore.saveSessionKeyDer(
          sessionKeyId,
          sessionKeyDer,
          endpoint.id,
          peerId,
        ),
    };
  }

  /**
   * Checks that `path` is a PDA for this endpoint issued by `peerId`, valid now or,
   * for one issued ahead, when it starts.
   */
  async checkIssuedBy(path: CertificationPath, peerId: string): Promise<void> {
    const pda = path.leafCertificate;
    if (await pda.calculateSubjectId() !== this.identity.id) {
      throw new ParcelRefusedError(
        "bad-content",
        "The authorisation received is for another endpoint",
      );
    }
    const now = this.ctx.now();
    try {
      await verifyPathIssuedBy(path, peerId, pda.startDate > now ? pda.startDate : now);
    } catch (error) {
      throw new ParcelRefusedError(
        "bad-content",
        `The authorisation received was not issued by its sender: ${
          error instanceof Error ? error.message : error
        }`,
      );
    }
  }

  /**
   * Reads and checks the PDAs a contact issued us ahead (DER `CertificationPath`s,
   * as a pairing message carries them): each must be ours, issued by `peerId`.
   * Those already expired are left out: they no longer matter.
   */
  async checkIssuedAhead(
    serialized: readonly Uint8Array[],
    peerId: string,
  ): Promise<CertificationPath[]> {
    const paths: CertificationPath[] = [];
    for (const [index, der] of serialized.entries()) {
      let path: CertificationPath;
      try {
        path = CertificationPath.deserialize(toArrayBuffer(der));
      } catch (error) {
        throw new ParcelRefusedError(
          "bad-content",
          `Authorisation ${index + 1} issued ahead is malformed`,
          { cause: error },
        );
      }
      if (path.leafCertificate.expiryDate <= this.ctx.now()) continue;
      await this.checkIssuedBy(path, peerId);
      paths.push(path);
    }
    return paths;
  }

  /** Handles a renewed PDA from a contact (Awala's `pda-path` message). */
  async preparePdaPath(incoming: Incoming, contact: Contact): Promise<Effect> {
    let path: CertificationPath;
    try {
      path = CertificationPath.deserialize(toArrayBuffer(new Uint8Array(incoming.message.content)));
    } catch (error) {
      throw new ParcelRefusedError("bad-content", "PDA path is malformed", { cause: error });
    }
    await this.checkIssuedBy(path, contact.id);
    const ourId = this.identity.id;
    return {
      apply: () => this.ctx.keys.certificateStore.savePath(path, ourId, contact.id),
      savesSenderSessionKey: true,
    };
  }

  /**
   * Issues a contact the PDAs that carry its authorisation from where the last one
   * we issued ends to the horizon, and queues each for them (Awala's `pda-path`
   * message). A contact whose pairing predates PDAs issued ahead gets one that
   * starts now instead, once the last has lived out a rotation. Returns how many
   * it issued.
   */
  async renew(contactId: string, lastExpiry: Date | null): Promise<number> {
    const key = await this.ctx.keys.publicKeyStore.retrieveIdentityKey(contactId);
    if (!key) throw new Error(`No identity key stored for contact ${contactId}`);
    const paths = await this.#issueAhead(
      key,
      lastExpiry?.getTime() ?? 0,
      this.#datesAhead(contactId),
    );
    if (paths.length === 0) return 0;
    this.ctx.db.transaction(() => {
      this.ctx.db.run(
        "UPDATE contacts SET pda_expires_at = ? WHERE id = ?",
        paths.at(-1)!.leafCertificate.expiryDate.getTime(),
        contactId,
      );
      for (const path of paths) {
        this.jobs.add("pda-path", contactId, Buffer.from(path.serialize()).toString("base64"));
      }
    });
    return paths.length;
  }

  /**
   * Records whether `peerId` takes PDAs dated ahead: it does when its pairing
   * message had `authorizations` (docs/protocol.md §3.2), even empty. Contacts
   * paired before that field are taken to.
   */
  noteDatesAhead(peerId: string, datesAhead: boolean): void {
    if (datesAhead) this.ctx.db.run("DELETE FROM meta WHERE key = ?", NO_DATES_AHEAD + peerId);
    else {
      this.ctx.db.run(
        "INSERT OR REPLACE INTO meta (key, value) VALUES (?, '1')",
        NO_DATES_AHEAD + peerId,
      );
    }
  }

  #datesAhead(peerId: string): boolean {
    return this.ctx.db.get("SELECT 1 FROM meta WHERE key = ?", NO_DATES_AHEAD + peerId) ===
      undefined;
  }

  /**
   * Issues `peerKey` the PDAs that follow one ending at `after`, up to the horizon
   * (without `ahead`, at most one, starting now).
   */
  async #issueAhead(peerKey: CryptoKey, after: number, ahead = true): Promise<CertificationPath[]> {
    const horizon = this.ctx.now().getTime() + this.ctx.tunables.authorizationHorizonMs;
    const paths: CertificationPath[] = [];
    let end = after;
    while (end < horizon) {
      const path = await this.identity.issueNextAuthorization(peerKey, end, ahead);
      const pathEnd = path?.leafCertificate.expiryDate.getTime() ?? end;
      if (pathEnd <= end) break; // reaches no further: nothing more can be issued ahead
      paths.push(path!);
      end = pathEnd;
    }
    return paths;
  }

  /**
   * Sends every active contact new connection parameters: a PDA issued under our
   * current certificate chain and our current Internet gateway address. Called
   * when our gateway registration changes, so that contacts paired earlier can
   * reach us through the gateway. Returns how many contacts were told.
   */
  async announceConnectionParams(): Promise<number> {
    const contacts = this.ctx.db.all<{ id: string }>(
      "SELECT id FROM contacts WHERE state = 'active'",
    );
    for (const { id } of contacts) {
      const key = await this.ctx.keys.publicKeyStore.retrieveIdentityKey(id);
      if (!key) continue;
      const params = await this.connectionParamsFor(key, id);
      this.ctx.db.transaction(() => {
        params.saveSessionKey();
        this.ctx.db.run(
          "UPDATE contacts SET pda_expires_at = ? WHERE id = ?",
          params.pdaExpiresAt.getTime(),
          id,
        );
        this.jobs.add("connection-params", id, Buffer.from(params.serialized).toString("base64"));
      });
    }
    return contacts.length;
  }

  /**
   * Handles new connection parameters from a contact: its new PDA path for us and
   * its Internet gateway address. The channel's session keys carry on as they
   * were; the session key the parameters must carry is not adopted.
   */
  async prepareConnectionParams(incoming: Incoming, contact: Contact): Promise<Effect> {
    let params: PrivateEndpointConnParams;
    try {
      params = await PrivateEndpointConnParams.deserialize(
        toArrayBuffer(new Uint8Array(incoming.message.content)),
      );
    } catch (error) {
      throw new ParcelRefusedError("bad-content", "Connection parameters are malformed", {
        cause: error,
      });
    }
    if (await getIdFromIdentityKey(params.identityKey) !== contact.id) {
      throw new ParcelRefusedError(
        "bad-content",
        `Connection parameters from ${contact.id} carry another endpoint's key`,
      );
    }
    await this.checkIssuedBy(params.deliveryAuth, contact.id);
    const ourId = this.identity.id;
    return {
      apply: () => {
        // The new chain replaces what the contact issued us ahead under its old one
        // (those would otherwise take over as they start: §6.1).
        this.ctx.db.run(
          "DELETE FROM certification_paths WHERE subject_id = ? AND issuer_id = ? AND starts_at > ?",
          ourId,
          contact.id,
          params.deliveryAuth.leafCertificate.startDate.getTime(),
        );
        this.ctx.keys.certificateStore.savePath(params.deliveryAuth, ourId, contact.id);
        this.ctx.db.run(
          "UPDATE contacts SET internet_address = ? WHERE id = ?",
          params.internetGatewayAddress,
          contact.id,
        );
      },
      after: () => {
        emit(this.ctx, "contact-changed", { id: contact.id });
        return Promise.resolve();
      },
      savesSenderSessionKey: true,
    };
  }
}
