/**
 * State: `GET /api/state`, `POST /api/identity`, the `hello` event.
 *
 * @module
 */
import type { IsoDate } from "./common.ts";

/** The user's identity: their public facts. */
export interface Identity {
  /** Endpoint id: "0" and the hex SHA-256 of the identity key. */
  readonly id: string;
  readonly name: string;
  /** Short form of the id that people compare aloud. */
  readonly fingerprint: string;
  readonly createdAt: IsoDate;
  readonly certificateExpiresAt: IsoDate;
}

/** Limits the page tells the user before the server refuses. */
export interface Limits {
  /** Largest message, attachments included, in bytes. */
  readonly mail: number;
}

/** The gateway this node falls back to; the collection fields come once it is registered. */
export interface GatewayStatus {
  readonly url: string;
  readonly registeredUntil: IsoDate | null;
  /** State of the collection socket: `waiting` is between attempts to connect. */
  readonly collecting?: "connecting" | "connected" | "waiting";
  readonly connectedSince?: IsoDate | null;
  /** Why collection last failed; null once a collection socket is up again. */
  readonly lastError?: string | null;
  /** Parcels delivered to the gateway since the node was joined to it. */
  readonly delivered?: number;
  /** Parcels collected from the gateway since the node was joined to it. */
  readonly collected?: number;
}

/** The PoWeb server this node runs for Awala apps, if it runs one. */
export interface PoWebStatus {
  readonly url: string;
  readonly registeredNodes: number;
  readonly queuedParcels: number;
}

/** The daemon the web app runs: also the data of the `status` and `daemon` events. */
export interface DaemonState {
  readonly running: boolean;
  /** Why it could not start. */
  readonly error: string | null;
  readonly peerId: string | null;
  readonly addresses: readonly string[];
  /** Other people's parcels this device holds for them. */
  readonly parcelsCarried: number;
  readonly gateway: GatewayStatus | null;
  readonly poweb: PoWebStatus | null;
}

/** A mesh peer connected now, with the endpoints it hosts. */
export interface Peer {
  readonly id: string;
  readonly addresses: readonly string[];
  readonly endpoints: readonly {
    readonly id: string;
    /** "you", a contact's name, or null for a stranger. */
    readonly name: string | null;
  }[];
}

/** The registration with a gateway, while there is one. */
export interface Registration {
  readonly url: string;
  readonly expiresAt: IsoDate;
  /** The Internet gateway behind it; "" when there is none. */
  readonly internetAddress: string;
}

/** `GET /api/state` before the user has an identity. */
export interface NewState {
  readonly identity: null;
  readonly dataDir: string;
  readonly limits: Limits;
}

/** `GET /api/state` once the user has an identity. */
export interface ReadyState {
  readonly identity: Identity;
  readonly dataDir: string;
  readonly passphraseProtected: boolean;
  /** Unread messages in the inbox. */
  readonly unread: number;
  readonly contacts: number;
  /** Parcels waiting in the outbox. */
  readonly waiting: number;
  /** Refusals, not counting extra copies of parcels already received. */
  readonly refusals: number;
  readonly limits: Limits;
  readonly daemon: DaemonState;
  readonly peers: readonly Peer[];
  readonly registration: Registration | null;
}

/** The answer to `GET /api/state`, `POST /api/identity` and `POST /api/gateway`. */
export type State = NewState | ReadyState;

/** `POST /api/identity`: creates the user's identity. */
export interface IdentityRequest {
  readonly name: string;
}
