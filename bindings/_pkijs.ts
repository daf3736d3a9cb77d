/**
 * Access to the PKI.js objects inside relaynet-core's `Certificate`, which its
 * published typings mark internal. Kept in one place so a library upgrade that
 * renames them breaks here, loudly.
 *
 * @module
 */
import { Certificate } from "@relaycorp/relaynet-core";
import type * as pkijs from "pkijs";

interface CertificateInternals {
  readonly pkijsCertificate: pkijs.Certificate;
}

type CertificateConstructor = new (pkijsCertificate: pkijs.Certificate) => Certificate;

/** The PKI.js certificate that a relaynet-core `Certificate` wraps. */
export function pkijsCertificateOf(certificate: Certificate): pkijs.Certificate {
  const inner = (certificate as unknown as CertificateInternals).pkijsCertificate;
  if (!inner) throw new TypeError("relaynet-core Certificate no longer exposes pkijsCertificate");
  return inner;
}

/** Wraps a PKI.js certificate as a relaynet-core `Certificate`. */
export function certificateFromPkijs(certificate: pkijs.Certificate): Certificate {
  return new (Certificate as unknown as CertificateConstructor)(certificate);
}
