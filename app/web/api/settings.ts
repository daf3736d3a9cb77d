/**
 * Settings: `/api/settings`, `/api/gateway`, `/api/passphrase`.
 *
 * @module
 */
import type { DaemonState } from "./state.ts";

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
