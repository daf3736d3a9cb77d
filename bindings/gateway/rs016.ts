/**
 * Constants of PoWeb (RS-016) shared by the server and the client.
 *
 * @module
 */

/** Content types of RS-016. */
export const ContentType = {
  PNRA: "application/vnd.awala.node-registration.authorization",
  PNRR: "application/vnd.awala.node-registration.request",
  PNR: "application/vnd.awala.node-registration.registration",
  PARCEL: "application/vnd.awala.parcel",
} as const;

/** WebSocket close codes of RS-016 (and 1005, which a close without a code reads as). */
export const CloseCode = {
  NORMAL: 1000,
  CANNOT_ACCEPT: 1003,
  NO_STATUS: 1005,
  VIOLATED_POLICY: 1008,
  SERVER_ERROR: 1011,
  TRY_AGAIN: 4000,
} as const;

/**
 * Request header of the collection handshake by which a collector that reads
 * each WebSocket message on its own (as Relaymail's does) asks for up to five
 * deliveries in flight (RS-000's limit) instead of one. A Relaymail extension,
 * not RS-016's: clients that do not send it get one delivery at a time, since
 * Relaycorp's own client cannot take a second frame before it read the first.
 */
export const COLLECTION_WINDOW_HEADER = "x-relaymail-collection-window";
