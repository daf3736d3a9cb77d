/**
 * Parcel delivery on a PoWeb server (RS-016, `POST /v1/parcels`): the parcel is
 * countersigned by a node this gateway registered, and is handed to the server's
 * {@linkcode ParcelSink}, whose refusal becomes the answer's status. The HTTP
 * checks (content type, body size) are the server's.
 *
 * @module
 */
import { Buffer } from "node:buffer";
// `@internal` marks types of npm packages that our public API names: they are documented
// upstream, and `deno doc --lint` should not ask us to export them (denoland/deno#27364).
import {
  /** @internal */
  type Certificate,
  ParcelDeliveryVerifier,
} from "@relaycorp/relaynet-core";
import type { RefusalCode } from "../binding.ts";
import { StorageFullError } from "../durable.ts";
import { errorMessage, ParcelRefusedError, toArrayBuffer } from "../validation.ts";
import type { HttpRefusal } from "./http_front.ts";
import type { GatewayStore } from "./store.ts";

/** What the server does with a parcel a registered node delivered. */
export type ParcelSink = (bytes: Uint8Array, fromNodeId: string) => Promise<void>;

/** What a delivery needs from the server. */
export interface DeliveryOptions {
  /** The certificate that issued the certificates of the registered nodes. */
  readonly gatewayCertificate: Certificate;
  /** Where registrations are recorded. */
  readonly store: GatewayStore;
  /** Validates, then stores or forwards the parcel; throws {@linkcode ParcelRefusedError} to refuse it. */
  readonly accept: ParcelSink;
}

/**
 * The countersignature of an `Authorization` header (`Awala-Countersignature`,
 * or the reference client's `Relaynet-Countersignature`), or a 401 refusal.
 */
export function countersignatureOf(authorization: string | null): Uint8Array | HttpRefusal {
  const match = /^(?:Awala|Relaynet)-Countersignature ([A-Za-z0-9+/=]+)$/.exec(
    (authorization ?? "").trim(),
  );
  if (!match) {
    return unauthenticated("The Awala-Countersignature authorization is missing or malformed");
  }
  return new Uint8Array(Buffer.from(match[1], "base64"));
}

/**
 * Takes a delivered parcel: checks that a registered node countersigned it, then
 * hands it to `options.accept`. Resolves null once the parcel is accepted, or the
 * refusal to answer with; rejects when `accept` failed otherwise.
 */
export async function takeDelivery(
  countersignature: Uint8Array,
  parcel: Uint8Array,
  options: DeliveryOptions,
): Promise<HttpRefusal | null> {
  let signer: Certificate;
  try {
    signer = await new ParcelDeliveryVerifier([options.gatewayCertificate]).verify(
      toArrayBuffer(countersignature),
      toArrayBuffer(parcel),
    );
  } catch (error) {
    return unauthenticated(`The countersignature is invalid: ${errorMessage(error)}`);
  }
  const nodeId = await signer.calculateSubjectId();
  if (!options.store.isRegistered(nodeId)) {
    return { status: 403, reason: `Node ${nodeId} is no longer registered here` };
  }
  // `accept` validates the parcel (a node must anyway, to carry it): its
  // refusal says whether it was malformed (400) or invalid (422).
  try {
    await options.accept(parcel, nodeId);
  } catch (error) {
    if (error instanceof StorageFullError) {
      // A full disk passes: the node may deliver again later.
      return { status: 503, reason: error.message, headers: { "retry-after": "60" } };
    }
    if (!(error instanceof ParcelRefusedError)) throw error;
    const status = statusFor(error.code);
    return status === 503
      ? { status, reason: error.message, headers: { "retry-after": "60" } }
      : { status, reason: error.message };
  }
  return null;
}

/** 401, as Relaycorp's gateways answer a missing or invalid countersignature. */
function unauthenticated(reason: string): HttpRefusal {
  return { status: 401, reason, headers: { "www-authenticate": "Awala-Countersignature" } };
}

/**
 * RS-016 status for a refused parcel: 400 if it is not a parcel at all, 503 if it
 * may be retried later, 422 if it is well-formed but invalid (bad signature,
 * expired, not authorised by its recipient, …).
 */
function statusFor(code: RefusalCode): number {
  switch (code) {
    case "malformed":
      return 400;
    case "too-large":
      return 413;
    case "quota":
    case "rate-limited":
      return 503;
    default:
      return 422;
  }
}
