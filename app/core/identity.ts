/**
 * This data directory's endpoint identity: an RSA-2048 key pair and its
 * self-issued certificate, renewed well before it expires.
 *
 * @module
 */
import {
  Certificate,
  CertificationPath,
  Channel,
  derSerializePrivateKey,
  Endpoint,
  getIdFromIdentityKey,
  getRSAPublicKeyFromPrivate,
  issueDeliveryAuthorization,
  issueEndpointCertificate,
  type ServiceMessage,
} from "@relaycorp/relaynet-core";
import { toArrayBuffer } from "../../bindings/validation.ts";
import { type EndpointSigner, signerFromPkcs8 } from "../../mesh/mod.ts";
import type { NodeContext } from "./context.ts";
import { ConflictError } from "./errors.ts";

/** A Relaynet channel carrying Relaymail's service messages. */
export class RelaymailChannel extends Channel<ServiceMessage, string> {}

/** A private Relaynet endpoint whose channels are {@linkcode RelaymailChannel}s. */
export class RelaymailEndpoint extends Endpoint {
  protected readonly channelConstructor = RelaymailChannel;
}

/** This endpoint's registration with a gateway (see app/services/gateway.ts). */
export interface GatewayRegistration {
  readonly gatewayUrl: string;
  /** Our identity key, certified by the gateway: PDAs are issued under it. */
  readonly certificate: Certificate;
  readonly gatewayCertificate: Certificate;
  /** The gateway's Internet gateway, "" when it has none. */
  readonly internetAddress: string;
  readonly registeredAt: Date;
  readonly expiresAt: Date;
}

/** Raised when a command needs an identity and the data directory has none yet. */
export class NoIdentityError extends Error {
  constructor(dataDir: string) {
    super(
      `No identity in ${dataDir} yet: create one with "relaymail identity create --name <your name>"`,
    );
    this.name = "NoIdentityError";
  }
}

/** What `identity show` prints. */
export interface IdentityInfo {
  /** Endpoint id: "0" and the hex SHA-256 of the identity key. */
  readonly id: string;
  /** The name this user gives contacts as a hint. */
  readonly name: string;
  /** Short form of the id that people compare aloud. */
  readonly fingerprint: string;
  readonly createdAt: Date;
  readonly certificateExpiresAt: Date;
}

/**
 * Groups the first 128 bits of an endpoint id's hash in fours, for people to
 * compare: `3f2a 9c1d 0b7e …`.
 */
export function fingerprint(id: string): string {
  return id.slice(1, 33).match(/.{4}/g)!.join(" ");
}

/** Loads, creates and renews the identity of one data directory. */
export class IdentityManager {
  #endpoint: RelaymailEndpoint | null = null;

  constructor(private readonly ctx: NodeContext) {}

  /** True once an identity exists. */
  exists(): boolean {
    return this.ctx.db.get("SELECT 1 FROM identity") !== undefined;
  }

  /** Creates the identity; fails if there is one. */
  async create(name: string): Promise<IdentityInfo> {
    const trimmed = name.trim();
    if (trimmed.length === 0 || trimmed.length > 100) {
      throw new RangeError("Cannot create identity: the name must have 1 to 100 characters");
    }
    if (this.exists()) {
      throw new ConflictError(
        `An identity already exists in ${this.ctx.dataDir}: ${this.info().id}`,
      );
    }
    const keyPair = await this.ctx.keys.privateKeyStore.generateIdentityKeyPair();
    const certificate = await this.#issueCertificate(keyPair.privateKey, keyPair.publicKey);
    this.ctx.db.transaction(() => {
      this.ctx.db.run(
        "INSERT INTO identity (singleton, node_id, name, created_at) VALUES (1, ?, ?, ?)",
        keyPair.id,
        trimmed,
        this.ctx.now().getTime(),
      );
      this.#saveCertificate(certificate);
    });
    return this.info();
  }

  /** The identity's public facts. */
  info(): IdentityInfo {
    const row = this.#row();
    const latest = this.#latestExpiry();
    return {
      id: row.node_id,
      name: row.name,
      fingerprint: fingerprint(row.node_id),
      createdAt: new Date(row.created_at),
      certificateExpiresAt: new Date(latest ?? 0),
    };
  }

  /** The endpoint id. */
  get id(): string {
    return this.#row().node_id;
  }

  /** The name given to contacts as a hint. */
  get name(): string {
    return this.#row().name;
  }

  /** Changes the name given to contacts as a hint (from the next pairing on). */
  rename(name: string): void {
    const trimmed = name.trim();
    if (trimmed.length === 0 || trimmed.length > 100) {
      throw new RangeError("Cannot rename identity: the name must have 1 to 100 characters");
    }
    this.#row();
    this.ctx.db.run("UPDATE identity SET name = ?", trimmed);
  }

  /** The relaynet-core endpoint, with the identity's private key loaded. */
  async endpoint(): Promise<RelaymailEndpoint> {
    if (!this.#endpoint) {
      const id = this.id;
      const privateKey = await this.ctx.keys.privateKeyStore.retrieveIdentityKey(id);
      if (!privateKey) {
        throw new Error(`The private key of identity ${id} is missing from the database`);
      }
      const publicKey = await getRSAPublicKeyFromPrivate(privateKey);
      if (await getIdFromIdentityKey(publicKey) !== id) {
        throw new Error(`The private key stored for identity ${id} belongs to another identity`);
      }
      this.#endpoint = new RelaymailEndpoint(id, { privateKey, publicKey }, this.ctx.keys, {});
    }
    return this.#endpoint;
  }

  /**
   * A signer for the mesh (delivery proofs and hosting claims, mesh/proofs.ts),
   * holding the identity key as `node:crypto` uses it.
   */
  async meshSigner(): Promise<EndpointSigner> {
    const { identityKeyPair } = await this.endpoint();
    const signer = signerFromPkcs8(
      new Uint8Array(await derSerializePrivateKey(identityKeyPair.privateKey)),
    );
    if (signer.id !== this.id) {
      throw new Error(`The private key stored for identity ${this.id} belongs to another identity`);
    }
    return signer;
  }

  /** Every certificate of this identity valid now, newest first: the PDA trust anchors. */
  certificates(): Certificate[] {
    const now = this.ctx.now().getTime();
    // Asked for every parcel received: each certificate is parsed once.
    return this.ctx.db.all<{ serial: string }>(
      `SELECT serial FROM identity_certificates WHERE starts_at <= ? AND expires_at > ?
       ORDER BY expires_at DESC`,
      now,
      now,
    ).map(({ serial }) => {
      let certificate = this.#parsed.get(serial);
      if (!certificate) {
        const { der } = this.ctx.db.get<{ der: Uint8Array }>(
          "SELECT certificate AS der FROM identity_certificates WHERE serial = ?",
          serial,
        )!;
        certificate = Certificate.deserialize(toArrayBuffer(der));
        this.#parsed.set(serial, certificate);
      }
      return certificate;
    });
  }
  readonly #parsed = new Map<string, Certificate>();

  /** The newest certificate, which PDAs are issued under. */
  latestCertificate(): Certificate {
    const [latest] = this.certificates();
    if (!latest) throw new Error("The identity certificate has expired and could not be renewed");
    return latest;
  }

  /** The registration with a gateway, if any (expired or not). */
  gatewayRegistration(): GatewayRegistration | null {
    const row = this.ctx.db.get<{
      gateway_url: string;
      internet_address: string;
      registered_at: number;
      expires_at: number;
    }>(
      "SELECT gateway_url, internet_address, registered_at, expires_at FROM gateway_registration",
    );
    if (!row) return null;
    // Certificates are parsed once per registration, not at every PDA issued.
    if (this.#registration?.registeredAt.getTime() !== row.registered_at) {
      const blobs = this.ctx.db.get<{ certificate: Uint8Array; gateway_certificate: Uint8Array }>(
        "SELECT certificate, gateway_certificate FROM gateway_registration",
      )!;
      this.#registration = {
        gatewayUrl: row.gateway_url,
        certificate: Certificate.deserialize(toArrayBuffer(blobs.certificate)),
        gatewayCertificate: Certificate.deserialize(toArrayBuffer(blobs.gateway_certificate)),
        internetAddress: row.internet_address,
        registeredAt: new Date(row.registered_at),
        expiresAt: new Date(row.expires_at),
      };
    }
    return this.#registration;
  }
  #registration: GatewayRegistration | null = null;

  /** The Internet gateway address our connection parameters give, "" when there is none. */
  internetAddress(): string {
    const registration = this.#liveRegistration();
    return registration?.internetAddress ?? "";
  }

  /**
   * Issues a PDA to `subjectKey` lasting `validityMs` (capped by our certificate's
   * expiry), returned as its certification path. Registered with a gateway, the
   * PDA is issued under the certificate the gateway gave us and the path runs
   * PDA → us → gateway, which is what Awala gateways check; otherwise it is
   * PDA → our self-issued certificate.
   */
  async issueAuthorization(subjectKey: CryptoKey, validityMs: number): Promise<CertificationPath> {
    const endpoint = await this.endpoint();
    const registration = this.#liveRegistration();
    const certificate = registration?.certificate ?? this.latestCertificate();
    const now = this.ctx.now().getTime();
    const pda = await issueDeliveryAuthorization({
      issuerCertificate: certificate,
      issuerPrivateKey: endpoint.identityKeyPair.privateKey,
      subjectPublicKey: subjectKey,
      // Back-dated so that hops whose clocks run behind ours still accept it.
      validityStartDate: new Date(now - this.ctx.tunables.clockDriftToleranceMs),
      validityEndDate: new Date(Math.min(now + validityMs, certificate.expiryDate.getTime())),
    });
    return new CertificationPath(
      pda,
      registration ? [certificate, registration.gatewayCertificate] : [certificate],
    );
  }

  /**
   * The channel to a contact, addressed through its Internet gateway when it has
   * one; null when we know no key for it or its authorisation for us has expired
   * (nothing can be sent until it is renewed).
   */
  async channel(peerId: string): Promise<RelaymailChannel | null> {
    const endpoint = await this.endpoint();
    const contact = this.ctx.db.get<{ internet_address: string }>(
      "SELECT internet_address FROM contacts WHERE id = ?",
      peerId,
    );
    try {
      return await endpoint.getChannel(peerId, contact?.internet_address ?? "") as
        | RelaymailChannel
        | null;
    } catch {
      return null;
    }
  }

  /** The registration, when it is still good for a day at least. */
  #liveRegistration(): GatewayRegistration | null {
    const registration = this.gatewayRegistration();
    const margin = this.ctx.now().getTime() + 86_400_000;
    return registration && registration.expiresAt.getTime() > margin &&
        registration.certificate.startDate <= this.ctx.now()
      ? registration
      : null;
  }

  /**
   * Issues a new certificate when the newest one expires within the renewal margin;
   * returns true when it did.
   */
  async renewIfDue(): Promise<boolean> {
    const latest = this.#latestExpiry();
    const margin = this.ctx.tunables.identityRenewalMarginMs;
    if (latest !== null && latest - this.ctx.now().getTime() > margin) return false;
    const endpoint = await this.endpoint();
    const certificate = await this.#issueCertificate(
      endpoint.identityKeyPair.privateKey,
      endpoint.identityKeyPair.publicKey,
    );
    // Expired certificates are kept a year: if the clock was wrong and is put back,
    // they are what PDAs issued meanwhile still chain to.
    this.ctx.db.transaction(() => {
      this.#saveCertificate(certificate);
      this.ctx.db.run(
        "DELETE FROM identity_certificates WHERE expires_at <= ?",
        this.ctx.now().getTime() - 365 * 86_400_000,
      );
    });
    return true;
  }

  #issueCertificate(privateKey: CryptoKey, publicKey: CryptoKey): Promise<Certificate> {
    const now = this.ctx.now().getTime();
    return issueEndpointCertificate({
      issuerPrivateKey: privateKey,
      subjectPublicKey: publicKey,
      // Back-dated so that hops whose clocks run behind ours still accept it.
      validityStartDate: new Date(now - this.ctx.tunables.clockDriftToleranceMs),
      validityEndDate: new Date(now + this.ctx.tunables.identityCertificateValidityMs),
    });
  }

  #saveCertificate(certificate: Certificate): void {
    this.ctx.db.run(
      "INSERT INTO identity_certificates (serial, certificate, starts_at, expires_at) VALUES (?, ?, ?, ?)",
      certificate.getSerialNumberHex(),
      new Uint8Array(certificate.serialize()),
      certificate.startDate.getTime(),
      certificate.expiryDate.getTime(),
    );
  }

  #row(): { node_id: string; name: string; created_at: number } {
    const row = this.ctx.db.get<{ node_id: string; name: string; created_at: number }>(
      "SELECT node_id, name, created_at FROM identity",
    );
    if (!row) throw new NoIdentityError(this.ctx.dataDir);
    return row;
  }

  /** When the newest certificate expires, or null with none. */
  #latestExpiry(): number | null {
    return this.ctx.db.get<{ latest: number | null }>(
      "SELECT max(expires_at) AS latest FROM identity_certificates",
    )!.latest;
  }
}
