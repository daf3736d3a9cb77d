/**
 * Relaymail and Awala gateways, both ways round:
 *
 * - {@linkcode GatewayAccount}: this endpoint registered with a gateway (Awala
 *   Desktop on this machine, or a Relaymail node serving PoWeb). The gateway's
 *   certificate chain then backs every PDA we issue, and contacts are sent new
 *   connection parameters, so that Awala gateways accept their parcels for us.
 * - {@linkcode ownGatewayIdentity}: the identity this node uses when it serves
 *   PoWeb to other endpoints; it issues their certificates.
 *
 * @module
 */
import {
  Certificate,
  getIdFromIdentityKey,
  getRSAPublicKeyFromPrivate,
  type PrivateNodeRegistration,
} from "@relaycorp/relaynet-core";
import {
  type GatewayCredentials,
  parsePoWebUrl,
  registerWithGateway,
} from "../../bindings/gateway/client.ts";
import { type GatewayIdentity, makeGatewayIdentity } from "../../bindings/gateway/poweb_server.ts";
import { pkijsCertificateOf } from "../../bindings/_pkijs.ts";
import { toArrayBuffer } from "../../bindings/validation.ts";
import { emit, type NodeContext } from "../core/context.ts";
import type { GatewayRegistration, IdentityManager } from "../core/identity.ts";
import type { Pairing } from "../core/pairing.ts";
import { ConflictError, TransientError, UserInputError } from "../core/errors.ts";

/** How a registration is obtained (replaceable in tests). */
export type Registrar = (url: string, keyPair: CryptoKeyPair) => Promise<PrivateNodeRegistration>;

const DAY = 86_400_000;

/** This endpoint's standing with its gateway. */
export class GatewayAccount {
  constructor(
    private readonly ctx: NodeContext,
    private readonly identity: IdentityManager,
    private readonly pairing: Pairing,
    private readonly registrar: Registrar = (url, keys) =>
      registerWithGateway(parsePoWebUrl(url), keys),
  ) {}

  /** The current registration, if any. */
  registration(): GatewayRegistration | null {
    return this.identity.gatewayRegistration();
  }

  /**
   * Registers with the gateway at `url` (PoWeb pre-registration, then
   * registration) and keeps what it issued. When the chain or Internet address
   * our contacts know changes, each active contact is sent new connection
   * parameters. Throws when the gateway cannot be reached or refuses.
   */
  async register(url: string): Promise<GatewayRegistration> {
    const canonical = parsePoWebUrl(url).url;
    const endpoint = await this.identity.endpoint();
    let registration: PrivateNodeRegistration;
    try {
      registration = await this.registrar(canonical, endpoint.identityKeyPair);
    } catch (error) {
      throw new TransientError(
        `Could not register with the gateway at ${canonical}: ${(error as Error).message}`,
        { cause: error },
      );
    }
    const certificate = registration.privateNodeCertificate;
    if (await certificate.calculateSubjectId() !== this.identity.id) {
      throw new UserInputError(
        `The gateway at ${canonical} certified another key than ours: use another gateway`,
      );
    }
    // The signature, not the dates: those are checked against our clock where used.
    if (
      !await pkijsCertificateOf(certificate).verify(
        pkijsCertificateOf(registration.gatewayCertificate),
      )
    ) {
      throw new UserInputError(
        `The gateway at ${canonical} sent a certificate it did not issue: use another gateway`,
      );
    }
    const previous = this.registration();
    // `.invalid` (RFC 2606) never resolves: a gateway without an Internet gateway says so.
    const internetAddress = registration.internetGatewayInternetAddress.endsWith(".invalid")
      ? ""
      : registration.internetGatewayInternetAddress;
    this.ctx.db.run(
      `INSERT INTO gateway_registration
         (singleton, gateway_url, certificate, gateway_certificate, internet_address, registered_at, expires_at)
       VALUES (1, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (singleton) DO UPDATE SET gateway_url = excluded.gateway_url,
         certificate = excluded.certificate, gateway_certificate = excluded.gateway_certificate,
         internet_address = excluded.internet_address, registered_at = excluded.registered_at,
         expires_at = excluded.expires_at`,
      canonical,
      new Uint8Array(certificate.serialize()),
      new Uint8Array(registration.gatewayCertificate.serialize()),
      internetAddress,
      this.ctx.now().getTime(),
      certificate.expiryDate.getTime(),
    );
    const changed = !previous ||
      previous.internetAddress !== internetAddress ||
      !previous.gatewayCertificate.isEqual(registration.gatewayCertificate);
    if (changed) await this.pairing.announceConnectionParams();
    emit(this.ctx, "gateway-changed", { url: canonical });
    return this.registration()!;
  }

  /**
   * Registers again when there is no registration with `url`, or the one there is
   * expires within a third of its lifetime. Returns true when it registered.
   */
  async ensureRegistered(url: string): Promise<boolean> {
    const current = this.registration();
    const canonical = parsePoWebUrl(url).url;
    if (current && current.gatewayUrl === canonical) {
      const lifetime = current.expiresAt.getTime() - current.certificate.startDate.getTime();
      const left = current.expiresAt.getTime() - this.ctx.now().getTime();
      if (left > Math.max(lifetime / 3, DAY)) return false;
    }
    await this.register(canonical);
    return true;
  }

  /** The certificate and key that countersign deliveries and collection handshakes. */
  async credentials(): Promise<GatewayCredentials> {
    const registration = this.registration();
    if (!registration) throw new ConflictError("This endpoint is not registered with a gateway");
    const endpoint = await this.identity.endpoint();
    return {
      certificate: registration.certificate,
      privateKey: endpoint.identityKeyPair.privateKey,
    };
  }
}

/**
 * The gateway identity this node serves PoWeb with, created on first use: a key
 * pair sealed like the endpoint's own keys, and a self-issued gateway
 * certificate, renewed when a third of its life is left.
 */
export async function ownGatewayIdentity(ctx: NodeContext): Promise<GatewayIdentity> {
  const row = ctx.db.get<{ node_id: string; certificate: Uint8Array; expires_at: number }>(
    "SELECT node_id, certificate, expires_at FROM gateway_identity",
  );
  const validityMs = 360 * DAY;
  const now = ctx.now();
  if (row) {
    const privateKey = await ctx.keys.privateKeyStore.retrieveIdentityKey(row.node_id);
    if (!privateKey) throw new Error(`The private key of gateway ${row.node_id} is missing`);
    const publicKey = await getRSAPublicKeyFromPrivate(privateKey);
    const certificate = Certificate.deserialize(toArrayBuffer(row.certificate));
    if (row.expires_at - now.getTime() > validityMs / 3) {
      return { privateKey, publicKey, certificate };
    }
    const renewed = await makeGatewayIdentity(validityMs, now, ctx.tunables.clockDriftToleranceMs, {
      privateKey,
      publicKey,
    });
    saveGatewayCertificate(ctx, row.node_id, renewed.certificate);
    return renewed;
  }
  const identity = await makeGatewayIdentity(validityMs, now, ctx.tunables.clockDriftToleranceMs);
  const id = await getIdFromIdentityKey(identity.publicKey);
  await ctx.keys.privateKeyStore.saveIdentityKey(id, identity.privateKey);
  saveGatewayCertificate(ctx, id, identity.certificate);
  return identity;
}

function saveGatewayCertificate(ctx: NodeContext, nodeId: string, certificate: Certificate): void {
  ctx.db.run(
    `INSERT INTO gateway_identity (singleton, node_id, certificate, expires_at) VALUES (1, ?, ?, ?)
     ON CONFLICT (singleton) DO UPDATE SET certificate = excluded.certificate,
       expires_at = excluded.expires_at`,
    nodeId,
    new Uint8Array(certificate.serialize()),
    certificate.expiryDate.getTime(),
  );
}
