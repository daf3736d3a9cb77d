/**
 * Parcel validation that every hop performs before it stores or relays a parcel
 * (RS-000 "Message delivery", RS-001 "Parcel"): syntax, signature, timing with a
 * bounded clock-drift tolerance, size, and authorisation of the sender by the
 * recipient (its PDA chain).
 *
 * relaynet-core's own `Parcel.validate()` reads the wall clock and tolerates no
 * drift at all, so this module checks timing itself against an injected clock and
 * runs the certificate-chain check with that same clock.
 *
 * @module
 */
// `@internal` marks types of npm packages that our public API names: they are documented
// upstream, and `deno doc --lint` should not ask us to export them (denoland/deno#27364).
import {
  /** @internal */
  type Certificate,
  /** @internal */
  type CertificationPath,
  InvalidMessageError,
  /** @internal */
  Parcel,
  RAMFSyntaxError,
  RAMFValidationError,
} from "@relaycorp/relaynet-core";
import { createHash } from "node:crypto";
import * as pkijs from "pkijs";
import { certificateFromPkijs, pkijsCertificateOf } from "./_pkijs.ts";
import type { RefusalCode } from "./binding.ts";

/**
 * Largest serialised parcel any hop accepts, in octets. It is relaynet-core's
 * `CargoMessageSet.MAX_MESSAGE_LENGTH` (RS-000: a parcel must fit in a cargo), the
 * limit `Parcel.deserialize()` enforces.
 */
export const MAX_PARCEL_LENGTH = 8_322_038;

/** RAMF's longest time to live, in seconds (180 days). */
export const RAMF_MAX_TTL_SECONDS = 15_552_000;

/** RS-001 asks nodes to tolerate clocks up to two hours apart. */
export const MAX_CLOCK_DRIFT_TOLERANCE_MS = 2 * 60 * 60 * 1000;

/** Raised when a parcel must be refused; `code` says why in a stable form. */
export class ParcelRefusedError extends Error {
  /** Creates the error with its refusal code. */
  constructor(readonly code: RefusalCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ParcelRefusedError";
  }
}

/** Options of {@linkcode validateParcel}. */
export interface ValidateParcelOptions {
  /** The current time (default: the wall clock). */
  readonly now?: Date;
  /**
   * How far in the future a parcel's creation date may be, in milliseconds
   * (default and maximum: {@linkcode MAX_CLOCK_DRIFT_TOLERANCE_MS}).
   */
  readonly clockDriftToleranceMs?: number;
  /**
   * Certificates of the recipient that may have issued the sender's PDA. When
   * absent (a relay), the recipient's certificate found in the parcel's own chain is
   * the trust anchor: its subject id is derived from its key, so it cannot be faked.
   */
  readonly trustedCertificates?: readonly Certificate[];
}

/** A parcel that passed {@linkcode validateParcel}. */
export interface ValidatedParcel {
  /** The parcel, parsed (relaynet-core's `Parcel`). */
  readonly parcel: Parcel;
  /** The parcel id chosen by its sender. */
  readonly id: string;
  /** Id of the sender's key (its endpoint id, or an invitation key's id). */
  readonly senderId: string;
  /** Id of the endpoint it is addressed to. */
  readonly recipientId: string;
  /** When its sender created it (its sender's clock). */
  readonly creationDate: Date;
  /** When it expires; past it, no hop may carry it. */
  readonly expiresAt: Date;
}

/**
 * Checks a serialised parcel and returns it parsed, or throws
 * {@linkcode ParcelRefusedError} saying why it must be refused.
 */
export async function validateParcel(
  bytes: Uint8Array,
  options: ValidateParcelOptions = {},
): Promise<ValidatedParcel> {
  return await checkParcel(await parseParcel(bytes), options);
}

/**
 * Checks the timing and authorisation of a parcel already parsed (and so with its
 * signature verified) by {@linkcode parseParcel}.
 */
export async function checkParcel(
  parcel: Parcel,
  options: ValidateParcelOptions = {},
): Promise<ValidatedParcel> {
  try {
    return await checkParsedParcel(parcel, options);
  } catch (error) {
    if (error instanceof ParcelRefusedError) throw error;
    // The certificates travel outside the signed fields: a damaged one lands here.
    throw new ParcelRefusedError(
      "malformed",
      `Parcel carries a certificate that cannot be used: ${errorMessage(error)}`,
      { cause: error },
    );
  }
}

async function checkParsedParcel(
  parcel: Parcel,
  options: ValidateParcelOptions,
): Promise<ValidatedParcel> {
  const now = options.now ?? new Date();
  checkDates(
    { expiresAt: parcel.expiryDate, creationDate: parcel.creationDate },
    now,
    options.clockDriftToleranceMs,
  );
  const recipientId = parcel.recipient.id;
  const anchors = options.trustedCertificates ?? [await findRecipientCertificate(parcel)];
  await verifyDeliveryAuthorization(
    parcel.senderCertificate,
    parcel.senderCaCertificateChain,
    recipientId,
    anchors,
    now,
  );
  return {
    parcel,
    id: parcel.id,
    senderId: await parcel.senderCertificate.calculateSubjectId(),
    recipientId,
    creationDate: parcel.creationDate,
    expiresAt: parcel.expiryDate,
  };
}

/** Parses a parcel and verifies its signature, mapping failures to refusal codes. */
export async function parseParcel(bytes: Uint8Array): Promise<Parcel> {
  checkParcelSize(bytes);
  try {
    return await Parcel.deserialize(toArrayBuffer(bytes));
  } catch (error) {
    if (error instanceof RAMFValidationError) {
      throw new ParcelRefusedError(
        "bad-signature",
        `Parcel signature is invalid: ${errorMessage(error)}`,
        { cause: error },
      );
    }
    const detail = error instanceof RAMFSyntaxError || error instanceof InvalidMessageError
      ? errorMessage(error)
      : `not a parcel (${errorMessage(error)})`;
    throw new ParcelRefusedError("malformed", `Parcel is malformed: ${detail}`, { cause: error });
  }
}

/**
 * Refuses a parcel that expired, or is dated further ahead than `toleranceMs`
 * (capped at {@linkcode MAX_CLOCK_DRIFT_TOLERANCE_MS}) of `now`.
 */
export function checkDates(
  dates: { readonly expiresAt: Date; readonly creationDate: Date },
  now: Date,
  toleranceMs: number = MAX_CLOCK_DRIFT_TOLERANCE_MS,
): void {
  const tolerance = Math.min(Math.max(toleranceMs, 0), MAX_CLOCK_DRIFT_TOLERANCE_MS);
  if (dates.expiresAt <= now) {
    throw new ParcelRefusedError(
      "expired",
      `Parcel expired at ${dates.expiresAt.toISOString()} (now ${now.toISOString()})`,
    );
  }
  if (dates.creationDate.getTime() > now.getTime() + tolerance) {
    throw new ParcelRefusedError(
      "future-dated",
      `Parcel is dated ${dates.creationDate.toISOString()}, more than ${
        Math.round(tolerance / 60_000)
      } minutes ahead of this clock (${now.toISOString()})`,
    );
  }
}

async function findRecipientCertificate(parcel: Parcel): Promise<Certificate> {
  const [certificate] = await certificatesOf(parcel.senderCaCertificateChain, parcel.recipient.id);
  if (certificate) return certificate;
  throw noRecipientCertificate(parcel.recipient.id);
}

/** Refuses a parcel longer than {@linkcode MAX_PARCEL_LENGTH}. */
export function checkParcelSize(bytes: Uint8Array): void {
  if (bytes.byteLength > MAX_PARCEL_LENGTH) {
    throw new ParcelRefusedError(
      "too-large",
      `Cannot accept parcel as it exceeds ${MAX_PARCEL_LENGTH} bytes: received ${bytes.byteLength} bytes`,
    );
  }
}

/** The refusal of a parcel whose chain holds no certificate of its recipient. */
export function noRecipientCertificate(recipientId: string): ParcelRefusedError {
  return new ParcelRefusedError(
    "unauthorized",
    `Sender is not authorised: the parcel carries no certificate of its recipient ${recipientId}`,
  );
}

/** The certificates in `chain` whose subject is the node `id`. */
export async function certificatesOf(
  chain: readonly Certificate[],
  id: string,
): Promise<Certificate[]> {
  const found = [];
  for (const certificate of chain) {
    if (await certificate.calculateSubjectId() === id) found.push(certificate);
  }
  return found;
}

/**
 * Checks that the leaf of `path` is a PDA issued by `issuerId`, valid at `at`,
 * taking the issuer's own certificates in the path as the trust anchors (its id
 * is derived from its key, so they cannot be faked); throws
 * {@linkcode ParcelRefusedError} with code `unauthorized` otherwise.
 */
export async function verifyPathIssuedBy(
  path: CertificationPath,
  issuerId: string,
  at: Date,
): Promise<void> {
  const anchors = await certificatesOf(path.certificateAuthorities, issuerId);
  if (anchors.length === 0) {
    throw new ParcelRefusedError("unauthorized", `no certificate of ${issuerId} in the path`);
  }
  await verifyDeliveryAuthorization(
    path.leafCertificate,
    path.certificateAuthorities,
    issuerId,
    anchors,
    at,
  );
}

/**
 * Checks that `senderCertificate` is a delivery authorisation (PDA) issued by
 * `recipientId`, chaining to one of `anchors` at time `now`; throws
 * {@linkcode ParcelRefusedError} with code `unauthorized` otherwise.
 */
export async function verifyDeliveryAuthorization(
  senderCertificate: Certificate,
  chain: readonly Certificate[],
  recipientId: string,
  anchors: readonly Certificate[],
  now: Date,
): Promise<void> {
  // Leave out chain members that are anchors themselves or the anchors' issuers:
  // PKI.js fails to build a path when a trusted certificate (or its issuer) also
  // appears as an intermediate.
  const excludedNames = anchors.flatMap((c) => {
    const inner = pkijsCertificateOf(c);
    return [inner.subject, inner.issuer];
  });
  const intermediates = chain.filter((c) =>
    !excludedNames.some((name) => name.isEqual(pkijsCertificateOf(c).subject))
  );
  const engine = new pkijs.CertificateChainValidationEngine({
    certs: [...intermediates, senderCertificate].map(pkijsCertificateOf),
    trustedCerts: anchors.map(pkijsCertificateOf),
    checkDate: now,
  });
  let result: pkijs.CertificateChainValidationEngineVerifyResult;
  try {
    result = await engine.verify({ passedWhenNotRevValues: false });
  } catch (error) {
    result = { result: false, resultCode: -1, resultMessage: errorMessage(error) };
  }
  if (!result.result || !result.certificatePath || result.certificatePath.length < 2) {
    throw new ParcelRefusedError(
      "unauthorized",
      `Sender is not authorised by recipient ${recipientId}: ${
        result.resultMessage || "no certification path"
      }`,
    );
  }
  // The PDA must have been issued by the recipient itself, not by some other node
  // further up a chain that happens to be trusted.
  const issuerId = await certificateFromPkijs(result.certificatePath[1]).calculateSubjectId();
  if (issuerId !== recipientId) {
    throw new ParcelRefusedError(
      "unauthorized",
      `Sender is authorised to reach ${issuerId}, not ${recipientId}`,
    );
  }
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
const NIBBLE: Record<string, number> = Object.fromEntries(
  [..."0123456789abcdef"].flatMap((c, i) => [[c, i], [c.toUpperCase(), i]]),
);

/** Lower-case hex of some bytes. */
export function toHex(bytes: Uint8Array): string {
  let hex = "";
  for (let i = 0; i < bytes.length; i++) hex += HEX[bytes[i]];
  return hex;
}

/** Bytes of a lower- or upper-case hex string of even length. */
export function fromHex(hex: string): Uint8Array {
  const bytes = new Uint8Array(hex.length >> 1);
  if (hex.length % 2 !== 0) throw new TypeError(`Not hex: "${hex.slice(0, 20)}"`);
  for (let i = 0; i < bytes.length; i++) {
    const high = NIBBLE[hex[2 * i]];
    const low = NIBBLE[hex[2 * i + 1]];
    if (high === undefined || low === undefined) {
      throw new TypeError(`Not hex: "${hex.slice(0, 20)}"`);
    }
    bytes[i] = (high << 4) | low;
  }
  return bytes;
}

/** Hex SHA-256 of some bytes: the key parcels are stored and named under. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  // node:crypto hashes the view where it lies; WebCrypto would copy it first.
  return await Promise.resolve(createHash("sha256").update(bytes).digest("hex"));
}

/** A standalone ArrayBuffer holding exactly these bytes (relaynet-core wants one). */
export function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  if (
    bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength &&
    bytes.buffer instanceof ArrayBuffer
  ) {
    return bytes.buffer;
  }
  // Copies (a Node.js Buffer's own slice() would share the pool instead).
  return new Uint8Array(bytes).buffer as ArrayBuffer;
}

/** The message of anything thrown. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
