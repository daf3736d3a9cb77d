/**
 * Parcel delivery authorisations (PDAs) between this endpoint and its contacts:
 * issuing connection parameters (a PDA, a session key and our Internet gateway
 * address), checking the PDAs contacts issue to us, renewing ours before they
 * expire, and announcing new parameters when our gateway registration changes.
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

/** Connection parameters issued to a peer, with the session key still to be saved. */
export interface IssuedConnectionParams {
  readonly params: PrivateEndpointConnParams;
  readonly serialized: Uint8Array;
  readonly pdaExpiresAt: Date;
  readonly sessionKeyId: string;
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
    validityMs = this.ctx.tunables.pdaValidityMs,
  ): Promise<IssuedConnectionParams> {
    const endpoint = await this.identity.endpoint();
    const path = await this.identity.issueAuthorization(peerKey, validityMs);
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
      sessionKeyId,
      saveSessionKey: () =>
        this.ctx.keys.privateKeyStore.saveSessionKeyDer(
          sessionKeyId,
          sessionKeyDer,
          endpoint.id,
          peerId,
        ),
    };
  }

  /** Checks that `path` is a PDA for this endpoint issued by `peerId`. */
  async checkIssuedBy(path: CertificationPath, peerId: string): Promise<void> {
    const pda = path.leafCertificate;
    if (await pda.calculateSubjectId() !== this.identity.id) {
      throw new ParcelRefusedError(
        "bad-content",
        "The authorisation received is for another endpoint",
      );
    }
    try {
      await verifyPathIssuedBy(path, peerId, this.ctx.now());
    } catch (error) {
      throw new ParcelRefusedError(
        "bad-content",
        `The authorisation received was not issued by its sender: ${
          error instanceof Error ? error.message : error
        }`,
      );
    }
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
   * Issues a fresh PDA to an active contact and queues it for them; used when the
   * previous one nears its expiry or our certificate was renewed.
   */
  async renew(contactId: string): Promise<void> {
    const key = await this.ctx.keys.publicKeyStore.retrieveIdentityKey(contactId);
    if (!key) throw new Error(`No identity key stored for contact ${contactId}`);
    const path = await this.identity.issueAuthorization(key, this.ctx.tunables.pdaValidityMs);
    const serialized = new Uint8Array(path.serialize());
    this.ctx.db.transaction(() => {
      this.ctx.db.run(
        "UPDATE contacts SET pda_expires_at = ? WHERE id = ?",
        path.leafCertificate.expiryDate.getTime(),
        contactId,
      );
      this.jobs.add("pda-path", contactId, Buffer.from(serialized).toString("base64"));
    });
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
