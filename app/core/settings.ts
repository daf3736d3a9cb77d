/**
 * The user's settings, kept in the data directory: how the daemon joins the mesh,
 * which gateway it falls back to, and whether it serves PoWeb. Command-line
 * options override them.
 *
 * @module
 */
import { multiaddr } from "@multiformats/multiaddr";
import type { SqliteDatabase } from "../../bindings/durable.ts";
import { parsePoWebUrl } from "../../bindings/gateway/client.ts";
import { parseDuration } from "../core/clock.ts";

/** Every setting, its type and its default. */
export const SETTINGS = {
  "mesh.listen": {
    kind: "list",
    default: ["/ip4/0.0.0.0/tcp/4747"],
    help: "addresses the daemon listens on",
  },
  "mesh.peers": {
    kind: "list",
    default: [] as string[],
    help: "peers the daemon dials and keeps dialling",
  },
  "mesh.mdns": { kind: "boolean", default: true, help: "find peers on the local network by mDNS" },
  "mesh.interfaces": {
    kind: "names",
    default: [] as string[],
    help: "network interfaces to speak mDNS on (default: every one that is up)",
  },
  "mesh.quota": {
    kind: "size",
    default: 512 * 1024 * 1024,
    help: "storage for other people's parcels",
  },
  "gateway.url": {
    kind: "url",
    default: "",
    help: "the Awala gateway to fall back to over PoWeb, e.g. http://127.0.0.1:13276",
  },
  "gateway.window": {
    kind: "duration",
    default: 10 * 60_000,
    help: "how long the mesh may try before a parcel also goes to the gateway",
  },
  "poweb.serve": {
    kind: "boolean",
    default: false,
    help: "serve PoWeb: act as the gateway of Awala apps and other Relaymail nodes",
  },
  "web.port": {
    kind: "port",
    default: 8473,
    help: "the port of the web app `relaymail start` serves on 127.0.0.1",
  },
  "poweb.listen": {
    kind: "address",
    default: "127.0.0.1:13276",
    help: "where to serve PoWeb (loopback unless other machines are to use it)",
  },
} as const;

/** A setting's name. */
export type SettingName = keyof typeof SETTINGS;

/** A setting's value type. */
export type SettingValue<K extends SettingName> = (typeof SETTINGS)[K]["kind"] extends
  "list" | "names" ? string[]
  : (typeof SETTINGS)[K]["kind"] extends "boolean" ? boolean
  : (typeof SETTINGS)[K]["kind"] extends "url" | "address" ? string
  : number;

/** Reads and writes settings in the `meta` table. */
export class Settings {
  constructor(private readonly db: SqliteDatabase) {}

  /** A setting's value (its default when unset). */
  get<K extends SettingName>(name: K): SettingValue<K> {
    const row = this.db.get<{ value: string }>(
      "SELECT value FROM meta WHERE key = ?",
      `setting.${name}`,
    );
    return (row ? JSON.parse(row.value) : SETTINGS[name].default) as SettingValue<K>;
  }

  /** Whether a setting was set (not just defaulted). */
  isSet(name: SettingName): boolean {
    return this.db.get("SELECT 1 FROM meta WHERE key = ?", `setting.${name}`) !== undefined;
  }

  /** Sets a setting from its text form: a list is comma-separated, a boolean on/off, a size like 512M. */
  set(name: string, text: string): void {
    const setting = SETTINGS[checkName(name)];
    let value: unknown;
    switch (setting.kind) {
      case "list":
        value = text.split(",").map((item) => item.trim()).filter((item) => item.length > 0);
        for (const address of value as string[]) {
          try {
            multiaddr(address);
          } catch (error) {
            throw new TypeError(
              `Setting ${name} takes multiaddrs: "${address}" is not one (${
                (error as Error).message
              })`,
            );
          }
        }
        break;
      case "names":
        value = text.split(",").map((item) => item.trim()).filter((item) => item.length > 0);
        for (const item of value as string[]) {
          if (!/^[\w.:@-]{1,15}$/.test(item)) {
            throw new TypeError(`Setting ${name} takes interface names: "${item}" is not one`);
          }
        }
        break;
      case "boolean":
        if (!/^(on|off|true|false|yes|no)$/i.test(text.trim())) {
          throw new TypeError(`Setting ${name} takes on or off, not "${text}"`);
        }
        value = /^(on|true|yes)$/i.test(text.trim());
        break;
      case "size":
        value = parseSize(text);
        break;
      case "duration":
        value = parseDuration(text);
        if ((value as number) < 0) throw new TypeError(`Setting ${name} cannot be negative`);
        break;
      case "url":
        value = text.trim() === "" ? "" : parsePoWebUrl(text.trim()).url;
        break;
      case "address":
        value = formatAddress(parseAddress(text));
        break;
      case "port":
        value = Number(text.trim());
        if (!/^\d{1,5}$/.test(text.trim()) || (value as number) > 65535) {
          throw new TypeError(`Setting ${name} takes a port number, not "${text}"`);
        }
        break;
    }
    this.db.run(
      "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
      `setting.${name}`,
      JSON.stringify(value),
    );
  }

  /** Returns a setting to its default. */
  unset(name: string): void {
    this.db.run("DELETE FROM meta WHERE key = ?", `setting.${checkName(name)}`);
  }

  /** Every setting with its value, whether it was set, and what it is for. */
  all(): { name: SettingName; value: unknown; set: boolean; help: string }[] {
    return (Object.keys(SETTINGS) as SettingName[]).map((name) => ({
      name,
      value: this.get(name),
      set: this.isSet(name),
      help: SETTINGS[name].help,
    }));
  }
}

function checkName(name: string): SettingName {
  if (!(name in SETTINGS)) {
    throw new TypeError(
      `No setting "${name}": the settings are ${Object.keys(SETTINGS).join(", ")}`,
    );
  }
  return name as SettingName;
}

/** Parses `host:port` (IPv6 hosts in brackets). */
export function parseAddress(text: string): { hostname: string; port: number } {
  const match = /^(?:\[([0-9a-f:.]+)\]|([^:\s\[\]]+)):(\d{1,5})$/i.exec(text.trim());
  const port = Number(match?.[3]);
  if (!match || !(port >= 0 && port <= 65535)) {
    throw new TypeError(`Cannot parse address "${text}": use host:port, e.g. 127.0.0.1:13276`);
  }
  return { hostname: match[1] ?? match[2], port };
}

function formatAddress(address: { hostname: string; port: number }): string {
  const host = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname;
  return `${host}:${address.port}`;
}

/** Parses `512M`, `2G`, `100K` or a plain number of octets. */
export function parseSize(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([KMG]i?B?|B)?$/i.exec(text.trim());
  if (!match) {
    throw new TypeError(`Cannot parse size "${text}": use a number with K, M or G (e.g. 512M)`);
  }
  const unit = (match[2] ?? "B").toUpperCase()[0];
  const factor = unit === "K" ? 1024 : unit === "M" ? 1024 ** 2 : unit === "G" ? 1024 ** 3 : 1;
  return Math.round(Number(match[1]) * factor);
}
