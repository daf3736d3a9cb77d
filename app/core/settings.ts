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

  /**
   * Sets a setting from its text form: a list is comma-separated, a boolean on/off, a
   * size like 512M. A value it cannot take is refused with a TypeError naming the
   * setting and the value: `Setting <name> takes <what>, not "<value>": <why>`.
   */
  set(name: string, text: string): void {
    const setting = checkName(name);
    this.db.run(
      "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
      `setting.${setting}`,
      JSON.stringify(parseSetting(setting, text)),
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

/** The value `text` gives setting `name`, or a TypeError naming both and what is wrong. */
function parseSetting(name: SettingName, text: string): unknown {
  const refuse = (what: string, value: string, why: string, cause?: unknown) =>
    new TypeError(`Setting ${name} takes ${what}, not "${value}": ${why}`, { cause });
  const trimmed = text.trim();
  switch (SETTINGS[name].kind) {
    case "list": {
      const items = splitList(text);
      for (const address of items) {
        try {
          multiaddr(address);
        } catch (error) {
          throw refuse("multiaddrs", address, (error as Error).message, error);
        }
      }
      return items;
    }
    case "names": {
      const items = splitList(text);
      const bad = items.find((item) => !/^[\w.:@-]{1,15}$/.test(item));
      if (bad !== undefined) {
        throw refuse("interface names", bad, "a name is 1 to 15 letters, digits or . : @ _ -");
      }
      return items;
    }
    case "boolean":
      if (!/^(on|off|true|false|yes|no)$/i.test(trimmed)) {
        throw refuse("on or off", text, "use on/off, true/false or yes/no");
      }
      return /^(on|true|yes)$/i.test(trimmed);
    case "size": {
      const size = readSize(text);
      if (typeof size === "string") throw refuse("a size", text, size);
      return size;
    }
    case "duration": {
      let ms: number;
      try {
        ms = parseDuration(text);
      } catch (error) {
        if (!(error instanceof TypeError)) throw error;
        throw refuse("a duration", text, parserProblem(error, text), error);
      }
      if (ms < 0) throw refuse("a duration", text, "it cannot be negative");
      if (!Number.isSafeInteger(ms)) {
        throw refuse("a duration", text, `it exceeds ${Number.MAX_SAFE_INTEGER} ms`);
      }
      return ms;
    }
    case "url":
      if (trimmed === "") return "";
      try {
        return parsePoWebUrl(trimmed).url;
      } catch (error) {
        if (!(error instanceof TypeError)) throw error;
        throw refuse("a PoWeb URL", text, urlProblem(trimmed), error);
      }
    case "address": {
      const address = readAddress(text);
      if (typeof address === "string") throw refuse("a host:port address", text, address);
      return formatAddress(address);
    }
    case "port": {
      const port = Number(trimmed);
      if (!/^\d{1,5}$/.test(trimmed) || port > 65535) {
        throw refuse("a port number", text, "use a whole number from 0 to 65535");
      }
      return port;
    }
  }
}

/** The items of a comma-separated list, trimmed, empty ones dropped. */
function splitList(text: string): string[] {
  return text.split(",").map((item) => item.trim()).filter((item) => item.length > 0);
}

/**
 * What a shared parser found wrong with `text`: its message after the quoted text
 * (`Cannot parse duration "soon": use …`), or the whole message if it has no such part.
 */
function parserProblem(error: Error, text: string): string {
  const quoted = `"${text}": `;
  const at = error.message.indexOf(quoted);
  return at === -1 ? error.message : error.message.slice(at + quoted.length);
}

/** Why parsePoWebUrl() refused `text`, said without repeating it. */
function urlProblem(text: string): string {
  if (!URL.canParse(text)) return "it is not a URL (e.g. http://127.0.0.1:13276)";
  const scheme = new URL(text).protocol;
  if (scheme !== "http:" && scheme !== "https:") {
    return `it starts with ${scheme}//, not http:// or https://`;
  }
  return "a PoWeb URL has no path, query or credentials";
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
  const address = readAddress(text);
  if (typeof address === "string") {
    throw new TypeError(`Cannot parse address "${text}": ${address}`);
  }
  return address;
}

/** `host:port` read from `text`, or what is wrong with it. */
function readAddress(text: string): { hostname: string; port: number } | string {
  const match = /^(?:\[([0-9a-f:.]+)\]|([^:\s\[\]]+)):(\d{1,5})$/i.exec(text.trim());
  if (!match) return "use host:port, e.g. 127.0.0.1:13276 or [::1]:13276";
  const port = Number(match[3]);
  if (port > 65535) return `port ${port} is above 65535`;
  return { hostname: match[1] ?? match[2], port };
}

function formatAddress(address: { hostname: string; port: number }): string {
  const host = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname;
  return `${host}:${address.port}`;
}

/** Parses `512M`, `2G`, `100K` or a plain number of octets. */
export function parseSize(text: string): number {
  const size = readSize(text);
  if (typeof size === "string") throw new TypeError(`Cannot parse size "${text}": ${size}`);
  return size;
}

/** The octets `text` says, or what is wrong with it. */
function readSize(text: string): number | string {
  const match = /^(\d+(?:\.\d+)?)\s*([KMG]i?B?|B)?$/i.exec(text.trim());
  if (!match) return "use a number with K, M or G (e.g. 512M)";
  const unit = (match[2] ?? "B").toUpperCase()[0];
  const factor = unit === "K" ? 1024 : unit === "M" ? 1024 ** 2 : unit === "G" ? 1024 ** 3 : 1;
  const size = Math.round(Number(match[1]) * factor);
  // Past this a number loses octets, and Infinity would be stored as null.
  if (!Number.isSafeInteger(size)) return `it exceeds ${Number.MAX_SAFE_INTEGER} octets`;
  return size;
}
