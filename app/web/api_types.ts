/**
 * The JSON the web app's API (`server.ts`) answers with and accepts, as the page
 * receives it: one contract for both sides. The page (`static/*.js`) imports
 * these types in JSDoc and `deno check` holds it to them; the server is to
 * annotate its answers with them too.
 *
 * These are wire types: a date is the ISO 8601 text `JSON.stringify` makes of a
 * `Date`, and nothing here imports the domain modules, so that checking the page
 * does not pull in the server.
 *
 * Every error answer is an {@linkcode ErrorBody}.
 *
 * @module
 */

/** A date as JSON carries it: ISO 8601 text, e.g. `2025-03-01T12:00:00.000Z`. */
export type IsoDate = string;

/** The body of every answer with an error status. */
export interface ErrorBody {
  /** What went wrong, for people. */
  readonly error: string;
}

// ---------------------------------------------------------------------------------------------
// Sessions: POST /api/session, POST /api/tickets

/** `POST /api/session`: trades the secret of the printed address for a session. */
export interface SessionRequest {
  readonly secret: string;
}

/** The answer to `POST /api/session`. */
export interface Session {
  /** Sent as `Authorization: Bearer <token>`. */
  readonly token: string;
  readonly expiresAt: IsoDate;
  /** How long the session lasts unused. */
  readonly idleMs: number;
}

/** `POST /api/tickets`: a single-use ticket for a download (a plain navigation has no header). */
export interface TicketRequest {
  /** An attachment or `.eml` export path. */
  readonly path: string;
}

/** The answer to `POST /api/tickets`. */
export interface Ticket {
  /** `path` with its ticket, to open as a navigation. */
  readonly url: string;
}

// ---------------------------------------------------------------------------------------------
// State: GET /api/state, POST /api/identity, the `hello` event

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

// ---------------------------------------------------------------------------------------------
// Mail: GET /api/messages, /api/messages/:id, /api/threads/:id, POST /api/send

/** A folder of `GET /api/messages?folder=`. */
export type Folder = "inbox" | "sent";

/** Where a sent message is, for one recipient. */
export type DeliveryState = "waiting" | "queued" | "sent" | "delivered" | "expired";

/** A person a message is from or to. */
export interface Party {
  readonly id: string;
  /** The local name: the contact's, the user's own, or "unknown". */
  readonly name: string;
  readonly fingerprint: string;
  readonly isMe: boolean;
}

/** A recipient of a sent message and how far its copy got. */
export interface Delivery extends Party {
  readonly state: DeliveryState;
  readonly via: string | null;
  readonly updatedAt: IsoDate;
  readonly parcelKey: string | null;
}

/** One step of a parcel's way out of this device. */
export interface Handover {
  /** The binding that took it: "mesh", "gateway", "sneakernet"… */
  readonly binding: string;
  readonly hop: string | null;
  /** Whether the next hop was the recipient's own device. */
  readonly toRecipient: boolean;
  readonly at: IsoDate;
}

/** A delivery with the path its parcel took (in a message's detail). */
export interface DeliveryWithPath extends Delivery {
  readonly path: readonly Handover[];
}

/** An attachment as listed (its bytes: `GET /api/messages/:id/attachments/:index`). */
export interface AttachmentInfo {
  readonly fileName: string;
  readonly mediaType: string;
  readonly size: number;
}

/** A message as `GET /api/messages` lists it. */
export interface MessageSummary {
  /** The sender-chosen message id (a UUID). */
  readonly id: string;
  readonly folder: Folder;
  readonly threadId: string;
  readonly inReplyTo: string | null;
  readonly from: Party;
  readonly to: readonly Party[];
  readonly subject: string;
  readonly sentAt: IsoDate;
  readonly receivedAt: IsoDate | null;
  readonly read: boolean;
  readonly attachments: readonly AttachmentInfo[];
  /** For sent messages: each recipient's delivery. */
  readonly deliveries: readonly Delivery[];
}

/**
 * `GET /api/messages?folder=&q=&cursor=&limit=`: newest first, a page of `folder` (`inbox`, the
 * default, or `sent`) or with `q` of what a search finds in every folder (whole words; `word*`
 * for starts). `limit`: 1 to 500, default 100. The next page: `cursor=` this one's `next`.
 */
export interface MessagePage {
  readonly messages: readonly MessageSummary[];
  /** The cursor of the next (older) page; null when this page is the last. */
  readonly next: string | null;
}

/**
 * A message with its body and each delivery's path: the answer to
 * `GET /api/messages/:id` and `POST /api/send`; `GET /api/threads/:id` answers
 * with a list of them.
 *
 * `POST /api/send` takes `multipart/form-data`, not JSON: `to` (a contact, once
 * per recipient), `subject`, `body`, `replyTo` (a message id) and `attachments`
 * (files).
 */
export interface MessageDetail extends MessageSummary {
  readonly body: string;
  readonly deliveries: readonly DeliveryWithPath[];
}

// ---------------------------------------------------------------------------------------------
// Contacts and pairing: /api/contacts, /api/invitations, /api/accept

/**
 * Where a pairing stands: `lapsed` when every authorisation one side gave the
 * other has expired (a silence longer than the horizon, docs/protocol.md §6), so
 * that they must pair again (`POST /api/contacts/:id/repair`).
 */
export type ContactState = "pairing" | "active" | "lapsed" | "blocked";

/**
 * A contact: `GET /api/contacts` lists them; renaming, blocking, unblocking
 * (`POST /api/contacts/:id/…`) and `POST /api/accept` answer with one.
 */
export interface Contact {
  readonly id: string;
  /** The name the user gave them. */
  readonly name: string;
  /** The name they gave themselves: a hint only. */
  readonly nameHint: string;
  readonly fingerprint: string;
  readonly state: ContactState;
  readonly createdAt: IsoDate;
  readonly lastActivityAt: IsoDate;
  /** When the last authorisation we gave them runs out: they can write to us until then. */
  readonly authorizationExpiresAt: IsoDate | null;
  /** When the last authorisation they gave us runs out: we can write to them until then. */
  readonly writableUntil: IsoDate | null;
}

/** `POST /api/contacts/:id/rename`. */
export interface RenameRequest {
  readonly name: string;
}

/** An invitation: `GET /api/invitations` lists them, newest first. */
export interface Invitation {
  readonly id: string;
  readonly contactName: string | null;
  readonly createdAt: IsoDate;
  readonly expiresAt: IsoDate;
  readonly state: "pending" | "used" | "revoked" | "expired";
  readonly usedAt: IsoDate | null;
  readonly usedBy: string | null;
}

/** `POST /api/invitations`: `name` is the local name of whoever accepts. */
export interface InvitationRequest {
  readonly name?: string;
}

/**
 * The answer to `POST /api/invitations`, and to `POST /api/contacts/:id/repair`
 * (an invitation only that contact can use, to pair again): the text to hand
 * over, whole and as QR codes.
 */
export interface CreatedInvitation extends Invitation {
  readonly text: string;
  /** The text cut into parts that each fit a QR code. */
  readonly parts: readonly string[];
  /** One `data:image/svg+xml` URL per part. */
  readonly qrCodes: readonly string[];
}

/** `POST /api/accept`: an invitation someone gave the user; answers with the new contact. */
export interface AcceptRequest {
  readonly text: string;
  readonly name?: string;
}

// ---------------------------------------------------------------------------------------------
// What is happening: GET /api/refused, POST /api/sneakernet/:direction

/** Why a parcel was refused, in a stable form (`docs/protocol.md` §1.3). */
export type RefusalCode =
  | "too-large"
  | "malformed"
  | "bad-signature"
  | "expired"
  | "future-dated"
  | "unauthorized"
  | "blocked"
  | "duplicate"
  | "invitation-used"
  | "invitation-expired"
  | "undecryptable"
  | "bad-content"
  | "quota"
  | "rate-limited";

/** Refusals of alike parcels, counted together. */
export interface Refusal {
  readonly id: number;
  readonly at: IsoDate;
  readonly lastAt: IsoDate;
  readonly count: number;
  /** The binding that carried the parcel, and its previous hop. */
  readonly via: string;
  readonly hop: string | null;
  readonly code: RefusalCode;
  /** Why, for people. */
  readonly reason: string;
  readonly parcelId: string | null;
  readonly senderId: string | null;
  readonly recipientId: string | null;
  readonly size: number;
}

/** The answer to `GET /api/refused`. */
export interface Refused {
  /** The latest refusals (500 at most), extra copies of received parcels left out. */
  readonly refusals: readonly Refusal[];
  /** How many extra copies of parcels already received were dropped. */
  readonly copies: number;
}

/** The directions of `POST /api/sneakernet/:direction`. */
export type Direction = "export" | "import";

/** `POST /api/sneakernet/:direction`. */
export interface SneakernetRequest {
  /** The directory of the stick, e.g. `/media/usb`. */
  readonly directory: string;
}

/** The answer to `POST /api/sneakernet/export`. */
export interface ExportReport {
  readonly written: number;
  readonly alreadyThere: number;
  readonly bytes: number;
}

/** The answer to `POST /api/sneakernet/import`. */
export interface ImportReport {
  readonly accepted: number;
  readonly duplicates: number;
  /** Parcels for others, left on the stick. */
  readonly skipped: number;
  readonly refused: readonly { file: string; code: RefusalCode; reason: string }[];
  readonly unreadable: readonly { file: string; error: string }[];
  readonly ignored: readonly { file: string; code: string; reason: string }[];
}

/** The data of the `progress` event, during an export or import. */
export interface Progress {
  readonly direction: Direction;
  readonly done: number;
  readonly total: number;
}

// ---------------------------------------------------------------------------------------------
// Settings: /api/settings, /api/gateway, /api/passphrase

/** Each setting's value, as `GET /api/settings` gives it. */
export interface SettingValues {
  "mesh.listen": readonly string[];
  "mesh.peers": readonly string[];
  "mesh.mdns": boolean;
  "mesh.interfaces": readonly string[];
  /** Bytes. */
  "mesh.quota": number;
  "gateway.url": string;
  /** Milliseconds. */
  "gateway.window": number;
  "poweb.serve": boolean;
  "web.port": number;
  "poweb.listen": string;
}

/** A setting's name. */
export type SettingName = keyof SettingValues;

/** A setting as `GET /api/settings` lists it. */
export type Setting = {
  [K in SettingName]: {
    readonly name: K;
    readonly value: SettingValues[K];
    /** Whether it was set, rather than defaulted. */
    readonly set: boolean;
    readonly help: string;
  };
}[SettingName];

/**
 * `POST /api/settings`: settings in their text form (a list comma-separated, a
 * boolean on/off, a size like 512M); "" unsets one. All or nothing.
 */
export type SettingsRequest = { readonly [K in SettingName]?: string | number | boolean };

/** The answer to `POST /api/settings`: the daemon has restarted with them. */
export interface SettingsSaved {
  readonly settings: readonly Setting[];
  readonly daemon: DaemonState;
}

/** `POST /api/gateway`: registers with the gateway at `url` and uses it; answers with the state. */
export interface GatewayRequest {
  readonly url: string;
}

/** `POST /api/passphrase`: null removes the passphrase; `current` is needed while there is one. */
export interface PassphraseRequest {
  readonly passphrase: string | null;
  readonly current?: string;
}

/** The answer to `POST /api/passphrase`. */
export interface PassphraseAnswer {
  readonly passphraseProtected: boolean;
}

// ---------------------------------------------------------------------------------------------
// Events: GET /api/events (server-sent events, JSON data)

/** The data of each event the page follows. */
export interface PushEvents {
  /** First on every stream. */
  readonly hello: State;
  readonly "mail-received": unknown;
  readonly "delivery-changed": unknown;
  readonly "contact-changed": unknown;
  readonly "parcel-refused": unknown;
  readonly "outbox-changed": unknown;
  readonly "gateway-changed": unknown;
  /** A mesh peer came or went: the page reads the state again. */
  readonly peers: null;
  /** The daemon's state changed. */
  readonly status: DaemonState;
  /** The daemon (re)started, or the web app is stopping. */
  readonly daemon: DaemonState | { readonly stopping: true };
  readonly progress: Progress;
  /** The session ended: the stream ends after it. */
  readonly session: { readonly ended: true };
}

/** An event's name. */
export type PushEventName = keyof PushEvents;

/**
 * What the server may hand to `c.json()` to answer with a `T`: the same shape,
 * with a `Date` wherever `T` has text (JSON turns dates into ISO strings).
 */
export type Sendable<T> = T extends string ? string | Date
  : T extends readonly (infer U)[] ? readonly Sendable<U>[]
  : T extends object ? { readonly [K in keyof T]: Sendable<T[K]> }
  : T;
