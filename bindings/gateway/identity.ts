/**
 * The identity a PoWeb server acts under: the gateway key pair and self-issued
 * certificate that issue the certificates of the private nodes registered with it.
 *
 * @module
 */
// `@internal` marks types of npm packages that our public API names: they are documented
// upstream, and `deno doc --lint` should not ask us to export them (denoland/deno#27364).
import {
  /** @internal */
  type Certificate,
  generateRSAKeyPair,
  issueGatewayCertificate,
} from "@relaycorp/relaynet-core";

/** The gateway identity that issues registered nodes' certificates. */
export interface GatewayIdentity {
  /** The gateway's private key, which signs the certificates it issues. */
  readonly privateKey: CryptoKey;
  /** The gateway's public key. */
  readonly publicKey: CryptoKey;
  /** The gateway's self-issued certificate (relaynet-core's `Certificate`). */
  readonly certificate: Certificate;
}

/**
 * Makes a gateway identity: an RSA key pair (`keyPair`, or a new one) and a
 * self-issued gateway certificate, back-dated by `backdateMs` for peers whose
 * clocks run behind.
 */
export async function makeGatewayIdentity(
  validityMs = 360 * 86_400_000,
  now = new Date(),
  backdateMs = 2 * 3_600_000,
  keyPair?: CryptoKeyPair,
): Promise<GatewayIdentity> {
  const { privateKey, publicKey } = keyPair ?? await generateRSAKeyPair();
  const certificate = await issueGatewayCertificate({
    issuerPrivateKey: privateKey,
    subjectPublicKey: publicKey,
    validityStartDate: new Date(now.getTime() - backdateMs),
    validityEndDate: new Date(now.getTime() + validityMs),
  });
  return { privateKey, publicKey, certificate };
}
