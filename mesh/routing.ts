/**
 * Who gets a copy of a parcel: binary spray-and-wait (Spyropoulos, Psounis and
 * Raghavendra, 2005). A parcel starts with L copies at its source. A node holding
 * c > 1 copies that meets a node without the parcel hands it ⌊c/2⌋ of them and
 * keeps the rest; a node left with one copy waits to meet the recipient's node.
 * The recipient's node always gets the parcel, whatever the copies.
 *
 * Why not epidemic routing: it stores every parcel on every node it reaches, so a
 * busy mesh fills every relay's quota with the same parcels, and each delivery
 * leaves copies to purge everywhere. Spray-and-wait bounds the copies of a parcel
 * to L (here 8) while keeping most of epidemic's speed when contacts are sparse,
 * which is the camp, school or blackout case; tests/bench/routing_sim.ts measures
 * both on random contact traces.
 *
 * @module
 */

/** Copies a parcel starts with at its source. */
export const DEFAULT_INITIAL_COPIES = 8;

/** What to do with a parcel the peer lacks. */
export type RoutingDecision =
  /** Send it; the peer hosts its recipient. */
  | { readonly send: true; readonly direct: true; readonly give: 0 }
  /** Send it with `give` copies; keep the rest. */
  | { readonly send: true; readonly direct: false; readonly give: number }
  /** Keep it for now. */
  | { readonly send: false };

/** Decides whether a peer lacking a parcel gets it. */
export function route(copies: number, peerHostsRecipient: boolean): RoutingDecision {
  if (peerHostsRecipient) return { send: true, direct: true, give: 0 };
  if (copies > 1) return { send: true, direct: false, give: Math.floor(copies / 2) };
  return { send: false };
}
