/**
 * This data directory's endpoint identity: an RSA-2048 key pair and its
 * self-issued certificates. Each lasts at most 180 days (RS-002), and they are
 * issued ahead, one starting every rotation, so that one is valid at every
 * instant up to the authorisation horizon: PDAs issued under them can reach that
 * far too (docs/protocol.md §6).
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
    const certificates = await this.#issueAhead(keyPair.privateKey, keyPair.publicKey, null);
    this.ctx.db.transaction(() => {
      this.ctx.db.run(
        "INSERT INTO identity (singleton, node_id, name, created_at) VALUES (1, ?, ?, ?)",
        keyPair.id,
        trimmed,
        this.ctx.now().getTime(),
      );
      for (const certificate of certificates) this.#saveCertificate(certificate);
    });
    return this.info();
  }

  /** The identity's public facts. */
  info(): IdentityInfo {
    const row = this.#row();
    const [current] = this.certificates();
    return {
      id: row.node_id,
      name: row.name,
      fingerprint: fingerprint(row.node_id),
      createdAt: new Date(row.created_at),
      // The certificate in use now; those issued ahead follow it (see certifiedUntil()).
      certificateExpiresAt: current?.expiryDate ?? new Date(this.#latest()?.expires_at ?? 0),
    };
  }

  /** When the last of this identity's certificates, issued ahead, expires (0 with none). */
  certifiedUntil(): Date {
    return new Date(this.#latest()?.expires_at ?? 0);
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
    ).map(({ serial }) => this.#certificate(serial));
  }

  /** The certificate with serial number `serial`, parsed once. */
  #certificate(serial: string): Certificate {
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
   * PDA → our self-issued certificate valid now that ends last.
   */
  issueAuthorization(subjectKey: CryptoKey, validityMs: number): Promise<CertificationPath> {
    const registration = this.#liveRegistration();
    const issuer = registration?.certificate ?? this.latestCertificate();
    return this.#issue(subjectKey, issuer, registration, this.ctx.now().getTime() + validityMs);
  }

  /**
   * Issues to `subjectKey` the next PDA of a ladder whose last one ends at `after`:
   * one that ends later, issued under our certificate that ends next after it
   * (they overlap by all but a rotation), valid no longer than that certificate
   * nor the PDA lifetime. Registered with a gateway, or when not `ahead` (for a
   * peer that takes no PDA dated ahead), it is issued as {@linkcode issueAuthorization}
   * does instead, starting now, once the last has lived out a rotation: the
   * gateway's chain cannot be issued ahead. Null when there is none to issue.
   */
  issueNextAuthorization(
    subjectKey: CryptoKey,
    after: number,
    ahead = true,
  ): Promise<CertificationPath | null> {
    const registration = this.#liveRegistration();
    const t = this.ctx.tunables;
    const until = this.ctx.now().getTime() + t.pdaValidityMs;
    if (registration || !ahead) {
      const issuer = registration?.certificate ?? this.latestCertificate();
      const { end } = this.#span(issuer, until);
      if (end <= after || after > until - t.certificateRotationMs) return Promise.resolve(null);
      return this.#issue(subjectKey, issuer, registration, until);
    }
    const next = this.ctx.db.get<{ serial: string }>(
      `SELECT serial FROM identity_certificates WHERE expires_at > ?
       ORDER BY starts_at, expires_at LIMIT 1`,
      Math.max(after, this.ctx.now().getTime()),
    );
    return next
      ? this.#issue(subjectKey, this.#certificate(next.serial), null, Infinity)
      : Promise.resolve(null);
  }

  /** Issues a PDA to `subjectKey` under `issuer`, ending by `until` (dates as `#span` says). */
  async #issue(
    subjectKey: CryptoKey,
    issuer: Certificate,
    registration: GatewayRegistration | null,
    until: number,
  ): Promise<CertificationPath> {
    const endpoint = await this.endpoint();
    const { start, end } = this.#span(issuer, until);
    const pda = await issueDeliveryAuthorization({
      issuerCertificate: issuer,
      issuerPrivateKey: endpoint.identityKeyPair.privateKey,
      subjectPublicKey: subjectKey,
      validityStartDate: new Date(start),
      validityEndDate: new Date(end),
    });
    return new CertificationPath(
      pda,
      registration ? [issuer, registration.gatewayCertificate] : [issuer],
    );
  }

  /**
   * When a PDA issued now under `issuer` starts and ends: back-dated so that hops
   * whose clocks run behind ours still accept it, within its issuer's validity
   * (RS-002), no longer than the PDA lifetime, and ending by `until`.
   */
  #span(issuer: Certificate, until: number): { start: number; end: number } {
    const t = this.ctx.tunables;
    const start = Math.max(
      this.ctx.now().getTime() - t.clockDriftToleranceMs,
      issuer.startDate.getTime(),
    );
    return { start, end: Math.min(until, start + t.pdaValidityMs, issuer.expiryDate.getTime()) };
  }

  /**
   * The channel to a contact, addressed through its Internet gateway when it has
   * one; null when we know no key for it or every authorisation it gave us has
   * expired (nothing can be sent until it is renewed).
   *
   * Of the contact's PDAs, it uses the one that started last, among those that
   * started at least the drift tolerance ago (so that a receiver whose clock runs
   * behind ours within it still finds it valid); failing that, the one that
   * started last; failing that (our clock is behind theirs), the next to start.
   * Contacts issue PDAs ahead (§6), so this is not the one that lasts longest.
   */
  async channel(peerId: string): Promise<RelaymailChannel | null> {
    const endpoint = await this.endpoint();
    const now = this.ctx.now().getTime();
    const settled = now - this.ctx.tunables.clockDriftToleranceMs;
    const row = this.ctx.db.get<{ path: Uint8Array }>(
      `SELECT path FROM certification_paths WHERE subject_id = ? AND issuer_id = ? AND expires_at > ?
       ORDER BY CASE WHEN starts_at <= ? THEN 0 WHEN starts_at <= ? THEN 1 ELSE 2 END,
         CASE WHEN starts_at <= ? THEN -starts_at ELSE starts_at END, id DESC
       LIMIT 1`,
      endpoint.id,
      peerId,
      now,
      settled,
      now,
      now,
    );
    const identityKey = await this.ctx.keys.publicKeyStore.retrieveIdentityKey(peerId);
    if (!row || !identityKey) return null;
    const contact = this.ctx.db.get<{ internet_address: string }>(
      "SELECT internet_address FROM contacts WHERE id = ?",
      peerId,
    );
    let path: CertificationPath;
    try {
      path = CertificationPath.deserialize(toArrayBuffer(row.path));
    } catch {
      return null;
    }
    const internetAddress = contact?.internet_address ?? "";
    const peer = { id: peerId, identityPublicKey: identityKey, internetAddress };
    return new RelaymailChannel(endpoint, peer, path, this.ctx.keys, {});
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
   * Issues certificates ahead until one is valid at every instant up to the
   * authorisation horizon from now; returns how many it issued. Expired ones are
   * kept a year: if the clock was wrong and is put back, they are what PDAs issued
   * meanwhile still chain to.
   */
  async extendCertificates(): Promise<number> {
    const latest = this.#latest();
    const horizon = this.ctx.now().getTime() + this.ctx.tunables.authorizationHorizonMs;
    if (latest && latest.expires_at >= horizon) return 0;
    const endpoint = await this.endpoint();
    const certificates = await this.#issueAhead(
      endpoint.identityKeyPair.privateKey,
      endpoint.identityKeyPair.publicKey,
      latest,
    );
    this.ctx.db.transaction(() => {
      for (const certificate of certificates) this.#saveCertificate(certificate);
      this.ctx.db.run(
        "DELETE FROM identity_certificates WHERE expires_at <= ?",
        this.ctx.now().getTime() - 365 * 86_400_000,
      );
    });
    return certificates.length;
  }

  /**
   * Self-issues the certificates that follow `latest` (or start now, with none or
   * when it started more than a rotation ago), one per rotation, each as long as
   * RS-002 allows, until the last reaches the authorisation horizon.
   */
  async #issueAhead(
    privateKey: CryptoKey,
    publicKey: CryptoKey,
    latest: { starts_at: number; expires_at: number } | null,
  ): Promise<Certificate[]> {
    const t = this.ctx.tunables;
    if (
      !(t.certificateRotationMs > 0 && t.certificateRotationMs < t.identityCertificateValidityMs)
    ) {
      throw new RangeError(
        `Certificates must start less than their lifetime apart (${t.identityCertificateValidityMs} ms): ` +
          `the rotation is ${t.certificateRotationMs} ms`,
      );
    }
    const now = this.ctx.now().getTime();
    // Back-dated so that hops whose clocks run behind ours still accept them.
    const earliest = now - t.clockDriftToleranceMs;
    const horizon = now + t.authorizationHorizonMs;
    const issued: Certificate[] = [];
    let start = latest === null ? null : latest.starts_at;
    let end = latest?.expires_at ?? -Infinity;
    while (end < horizon) {
      start = start === null ? earliest : Math.max(start + t.certificateRotationMs, earliest);
      const certificate = await issueEndpointCertificate({
        issuerPrivateKey: privateKey,
        subjectPublicKey: publicKey,
        validityStartDate: new Date(start),
        validityEndDate: new Date(start + t.identityCertificateValidityMs),
      });
      issued.push(certificate);
      start = certificate.startDate.getTime();
      end = certificate.expiryDate.getTime();
    }
    return issued;
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

  /** The certificate that starts last (and so ends last), or null with none. */
  #latest(): { starts_at: number; expires_at: number } | null {
    return this.ctx.db.get<{ starts_at: number; expires_at: number }>(
      "SELECT starts_at, expires_at FROM identity_certificates ORDER BY starts_at DESC LIMIT 1",
    ) ?? null;
  }
}
