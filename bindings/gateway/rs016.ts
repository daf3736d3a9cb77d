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
