/**
 * Every operation, by name: what the CLI can ask of the messenger, whether it
 * runs the operation itself or the daemon does it over the control API. Each
 * group lives in its own module; an operation takes plain data and returns
 * plain data (dates and bytes included, see `../json.ts`), and never prints,
 * prompts or reads the caller's files.
 *
 * @module
 */
import type { Operation, OperationContext } from "../types.ts";
import { BACKUP_OPERATIONS } from "./backup.ts";
import { CHANNEL_OPERATIONS } from "./channels.ts";
import { CONTACT_OPERATIONS } from "./contacts.ts";
import { GATEWAY_OPERATIONS } from "./gateway.ts";
import { IDENTITY_OPERATIONS } from "./identity.ts";
import { INVITATION_OPERATIONS } from "./invitations.ts";
import { MAIL_OPERATIONS } from "./mail.ts";
import { MESH_OPERATIONS } from "./mesh.ts";
import { REFUSAL_OPERATIONS } from "./refusals.ts";
import { SETTINGS_OPERATIONS } from "./settings.ts";
import { SNEAKERNET_OPERATIONS } from "./sneakernet.ts";
import { STATUS_OPERATIONS } from "./status.ts";
import { WEB_OPERATIONS } from "./web.ts";

const RUNTIME_OPERATIONS = {
  /** Who is running this data directory, and is its daemon up. */
  "runtime.status": (context: OperationContext) => ({
    pid: Deno.pid,
    dataDir: context.dataDir,
    daemon: context.daemonState(),
    /** The running daemon's full status (its peers and all), or null. */
    status: context.daemon?.status() ?? null,
  }),
} satisfies Record<string, Operation>;

const ALL = {
  ...RUNTIME_OPERATIONS,
  ...STATUS_OPERATIONS,
  ...IDENTITY_OPERATIONS,
  ...BACKUP_OPERATIONS,
  ...INVITATION_OPERATIONS,
  ...CONTACT_OPERATIONS,
  ...MAIL_OPERATIONS,
  ...SNEAKERNET_OPERATIONS,
  ...GATEWAY_OPERATIONS,
  ...SETTINGS_OPERATIONS,
  ...WEB_OPERATIONS,
  ...MESH_OPERATIONS,
  ...REFUSAL_OPERATIONS,
  ...CHANNEL_OPERATIONS,
};

/** The operations, with the types of what each takes and returns. */
export type Operations = typeof ALL;

/** The name of an operation. */
export type OperationName = keyof Operations;

/** What the operation `N` takes. */
export type InputOf<N extends OperationName> = Parameters<Operations[N]>[1];

/** What the operation `N` returns, once awaited. */
export type ResultOf<N extends OperationName> = Awaited<ReturnType<Operations[N]>>;

/** The operations, by name. */
export const OPERATIONS: Readonly<Record<string, Operation>> = ALL;
