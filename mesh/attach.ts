/**
 * Joins a {@linkcode ParcelNode} (such as a Relaymail data directory) to a mesh
 * node: the mesh carries the node's outgoing parcels and reports each handover,
 * and parcels for the node's endpoints arrive through the node's own receiving
 * path. This is the mesh binding in the sense of bindings/binding.ts.
 *
 * @module
 */
import type { ParcelNode } from "../bindings/binding.ts";
import { ParcelRefusedError } from "../bindings/validation.ts";
import { createLogger, type Logger } from "./log.ts";
import type { MeshNode } from "./node.ts";
import type { EndpointSigner } from "./proofs.ts";

/** Name of this binding in handovers and refusal logs. */
export const MESH = "mesh";

/** Options of {@linkcode attachParcelNode}. */
export interface AttachOptions {
  /** Endpoints the node hosts: parcels for them are handed to it. */
  readonly endpointIds: readonly string[];
  /**
   * The identities of those endpoints, to sign delivery proofs and hosting claims
   * (see `HostOptions.signer`); an endpoint without one is hosted as a
   * relay would carry it.
   */
  readonly signers?: readonly EndpointSigner[];
  /** How often to look for new outgoing parcels, in ms (default 2000; 0: only on {@linkcode Attachment.pump}). */
  readonly pollIntervalMs?: number;
  /** Told about parcels the mesh would not take (expired, invalid). */
  readonly onRefused?: (key: string, error: ParcelRefusedError) => void;
  /** Where failures to record a handover or to pump go (default: the mesh's warn level on stderr). */
  readonly logger?: Logger;
}

/** A node joined to a mesh. */
export interface Attachment {
  /** Hands the mesh every outgoing parcel it does not have yet; returns how many. */
  pump(): Promise<number>;
  /** Detaches: stops polling and hosting. */
  stop(): void;
}

/** Joins `node` to `mesh`. */
export function attachParcelNode(
  mesh: MeshNode,
  node: ParcelNode,
  options: AttachOptions,
): Attachment {
  const logger = options.logger ?? createLogger({ component: "mesh/attach" });
  const reported = new Set<string>();
  const refused = new Set<string>();
  for (const id of options.endpointIds) {
    mesh.host(
      id,
      (bytes, origin) => node.receiveParcel(bytes, { binding: MESH, hop: origin.hop }),
      { signer: options.signers?.find((s) => s.id === id) },
    );
  }
  const report = (key: string, peer: string | null, toRecipient: boolean) =>
    node.parcelHandedOver(key, { binding: MESH, hop: peer ?? undefined, toRecipient }).then(() => {
      reported.add(key);
    });
  const offHanded = mesh.on("parcel:handed", ({ key, peer, toRecipient }) => {
    if (mesh.store.isLocal(key)) {
      report(key, peer, toRecipient).catch((error) =>
        logger.warn("Could not record a handover", { key, peer, error })
      );
    }
  });
  // Learnt from another node's tombstone: the parcel reached its recipient's node.
  const offDelivered = mesh.on("parcel:delivered", ({ key }) => {
    if (mesh.store.isLocal(key)) {
      report(key, null, true).catch((error) =>
        logger.warn("Could not record a delivery", { key, error })
      );
    }
  });

  let pumping: Promise<number> | null = null;
  const pumpOnce = async (): Promise<number> => {
    let handed = 0;
    for (const parcel of await node.outgoingParcels({ includeHandedOver: true })) {
      if (reported.has(parcel.key) || refused.has(parcel.key)) continue;
      const handover = mesh.store.handover(parcel.key);
      if (handover) {
        await report(parcel.key, handover.peer, handover.toRecipient);
        continue;
      }
      if (mesh.store.knows(parcel.key)) continue;
      const bytes = await parcel.read();
      if (!bytes) continue;
      try {
        const result = await mesh.send(bytes);
        if (result.status === "delivered") await report(parcel.key, null, true);
        handed++;
      } catch (error) {
        if (!(error instanceof ParcelRefusedError)) throw error;
        refused.add(parcel.key);
        options.onRefused?.(parcel.key, error);
      }
    }
    return handed;
  };
  const pump = () => {
    pumping ??= pumpOnce().finally(() => (pumping = null));
    return pumping;
  };
  const interval = options.pollIntervalMs ?? 2000;
  const timer = interval > 0
    ? setInterval(
      () => pump().catch((error) => logger.warn("Could not hand parcels to the mesh", { error })),
      interval,
    )
    : undefined;
  return {
    pump,
    stop() {
      clearInterval(timer);
      offHanded();
      offDelivered();
      for (const id of options.endpointIds) mesh.unhost(id);
    },
  };
}
