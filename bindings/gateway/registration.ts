/**
 * Private node registration on a PoWeb server (RS-016): pre-registration gives a
 * node a short-lived authorisation (PNRA) for its key; registration takes the
 * node's countersigned request (PNRR) and answers with a certificate issued by
 * the gateway identity (PNR). The HTTP checks (content type, body size) are the
 * server's; these functions take the body it read and answer with a response or
 * a refusal.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createPublicKey } from "node:crypto";
import {
  derSerializePublicKey,
  getIdFromIdentityKey,
  getPublicKeyDigestHex,
  issueEndpointCertificate,
  PrivateNodeRegistration,
  PrivateNodeRegistrationAuthorization,
  PrivateNodeRegistrationRequest,
} from "@relaycorp/relaynet-core";
import { errorMessage, toArrayBuffer } from "../validation.ts";
import type { HttpRefusal } from "./http_front.ts";
import type { GatewayIdentity } from "./identity.ts";
import { ContentType } from "./rs016.ts";
import type { GatewayStore } from "./store.ts";

/**
 * The Internet gateway address this server gives registering nodes when it has
 * none: PoWeb requires a syntactically valid domain name, and `.invalid` (RFC 2606)
 * can never resolve, so nobody mistakes it for a real Internet gateway.
 */
export const NO_INTERNET_GATEWAY = "relaymail-mesh.invalid";

/** RS-018: node keys are RSA keys with a modulus of 2048 bits or more. */
export const MIN_RSA_MODULUS_BITS = 2048;

/** Largest pre-registration body: a hex SHA-256 digest, maybe with whitespace. */
export const MAX_PRE_REGISTRATION_BODY = 128;
/** Largest registration request body. */
export const MAX_REGISTRATION_BODY = 1024 * 1024;

/** How long a pre-registration authorisation (PNRA) lasts. */
const PNRA_TTL_MS = 9_000;
/** How far back issued certificates start, for nodes whose clocks run behind. */
const CERTIFICATE_BACKDATE_MS = 2 * 3_600_000;
const DEFAULT_CERTIFICATE_VALIDITY_MS = 180 * 86_400_000;

/** What registration needs from the server. */
export interface RegistrationOptions {
  /** The gateway identity that signs authorisations and issues certificates. */
  readonly identity: GatewayIdentity;
  /** Where registrations are recorded. */
  readonly store: GatewayStore;
  /** The Internet gateway address given to nodes (default {@linkcode NO_INTERNET_GATEWAY}). */
  readonly internetAddress?: string;
  /** Lifetime of the certificates issued to nodes (default 180 days). */
  readonly certificateValidityMs?: number;
  /** The clock. */
  readonly now: () => Date;
  /** Called when a node registers (or registers again). */
  readonly onRegistered?: (nodeId: string) => void;
}

/**
 * Answers a pre-registration: `body` is the hex SHA-256 digest of the node's
 * public key; the answer is a PNRA for that digest, signed by the gateway.
 */
export async function preRegister(
  body: Uint8Array,
  options: Pick<RegistrationOptions, "identity" | "now">,
): Promise<Response | HttpRefusal> {
  const digest = new TextDecoder().decode(body).trim();
  if (!/^[0-9a-f]{64}$/i.test(digest)) {
    return { status: 400, reason: "Body must be the hex SHA-256 digest of the node's public key" };
  }
  const pnra = new PrivateNodeRegistrationAuthorization(
    new Date(options.now().getTime() + PNRA_TTL_MS),
    toArrayBuffer(new TextEncoder().encode(digest.toLowerCase())),
  );
  return new Response(await pnra.serialize(options.identity.privateKey), {
    status: 200,
    headers: { "content-type": ContentType.PNRA },
  });
}

/**
 * Answers a registration: `body` is a PNRR carrying a PNRA this gateway issued
 * for the node's key. The node is recorded in the store and gets a PNR.
 */
export async function register(
  body: Uint8Array,
  options: RegistrationOptions,
): Promise<Response | HttpRefusal> {
  let pnrr: PrivateNodeRegistrationRequest;
  let pnra: PrivateNodeRegistrationAuthorization;
  try {
    pnrr = await PrivateNodeRegistrationRequest.deserialize(toArrayBuffer(body));
    pnra = await PrivateNodeRegistrationAuthorization.deserialize(
      pnrr.pnraSerialized,
      options.identity.publicKey,
    );
  } catch (error) {
    return {
      status: 400,
      reason: `Malformed or badly signed registration request: ${errorMessage(error)}`,
    };
  }
  const bits = await rsaModulusBits(pnrr.privateNodePublicKey);
  if (bits === null) {
    return { status: 400, reason: "The node's key must be an RSA key (RS-018)" };
  }
  if (bits < MIN_RSA_MODULUS_BITS) {
    return {
      status: 400,
      reason: `The node's RSA key must have at least ${MIN_RSA_MODULUS_BITS} bits (RS-018): ` +
        `received a ${bits}-bit key`,
    };
  }
  if (pnra.expiryDate <= options.now()) {
    return { status: 400, reason: "The registration authorization has expired" };
  }
  const keyDigest = await getPublicKeyDigestHex(pnrr.privateNodePublicKey);
  if (new TextDecoder().decode(pnra.gatewayData) !== keyDigest) {
    return { status: 403, reason: "The registration authorization was issued for another node" };
  }
  const now = options.now().getTime();
  const identity = options.identity;
  const certificate = await issueEndpointCertificate({
    issuerCertificate: identity.certificate,
    issuerPrivateKey: identity.privateKey,
    subjectPublicKey: pnrr.privateNodePublicKey,
    validityStartDate: new Date(now - CERTIFICATE_BACKDATE_MS),
    validityEndDate: new Date(
      now + (options.certificateValidityMs ?? DEFAULT_CERTIFICATE_VALIDITY_MS),
    ),
  });
  const nodeId = await getIdFromIdentityKey(pnrr.privateNodePublicKey);
  options.store.register(nodeId, new Uint8Array(certificate.serialize()), certificate.expiryDate);
  options.onRegistered?.(nodeId);
  const registration = new PrivateNodeRegistration(
    certificate,
    identity.certificate,
    options.internetAddress ?? NO_INTERNET_GATEWAY,
  );
  return new Response(await registration.serialize(), {
    status: 200,
    headers: { "content-type": ContentType.PNR },
  });
}

/** The modulus length of an RSA key, or null if it is not an RSA key. */
async function rsaModulusBits(key: CryptoKey): Promise<number | null> {
  try {
    const spki = Buffer.from(await derSerializePublicKey(key));
    const details = createPublicKey({ key: spki, format: "der", type: "spki" })
      .asymmetricKeyDetails;
    return details?.modulusLength ?? null;
  } catch {
    return null;
  }
}
