/**
 * What the node's services share, handed to each by the node: the connected
 * peers, the store, the links to peers, who hosts whom, the signature checker,
 * the counters, the event dispatcher and the logger.
 *
 * @module
 */
import type { Emit } from "./core.ts";
import type { Hosting } from "./hosting.ts";
import type { Links } from "./links.ts";
import type { Logger } from "./log.ts";
import type { SignatureVerifier } from "./proofs.ts";
import type { MeshStore } from "./store.ts";
import type { MeshStats, PeerState } from "./types.ts";

/** The node's parts a service works with. */
export interface NodeParts {
  /** The connected peers, by peer id. */
  readonly peers: ReadonlyMap<string, PeerState>;
  readonly store: MeshStore;
  readonly links: Links;
  readonly hosting: Hosting;
  readonly verifier: SignatureVerifier;
  readonly stats: MeshStats;
  readonly emit: Emit;
  readonly logger: Logger;
}
