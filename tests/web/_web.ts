/**
 * Helpers of the web app's tests: an app on a free loopback port with its log
 * kept, and a reader of `Content-Disposition` as RFC 6266 clients read it.
 */
import type { Relaymail } from "../../app/services/relaymail.ts";
import { WebApp, type WebAppOptions } from "../../app/web/server.ts";

/** A running web app, with what its user needs to call it. */
export interface TestWeb {
  readonly web: WebApp;
  readonly base: string;
  /** The secret in the printed address. */
  readonly secret: () => string;
  /** Headers that authorise with the secret. */
  readonly bearer: () => Record<string, string>;
  /** Every line the app logged. */
  readonly logs: string[];
}

/** Starts a web app for `node` on a free port, with mDNS off and its log kept. */
export async function startWeb(
  node: Relaymail,
  options: Partial<WebAppOptions> = {},
): Promise<TestWeb> {
  const logs: string[] = [];
  const web = await WebApp.start(node, {
    port: 0,
    daemonOptions: () => ({ listen: ["/ip4/127.0.0.1/tcp/0"], mdns: false }),
    log: (line) => logs.push(line),
    ...options,
  });
  const secret = () => new URL(web.url).hash.replace("#key=", "");
  return {
    web,
    base: `http://127.0.0.1:${web.port}`,
    secret,
    bearer: () => ({ authorization: `Bearer ${secret()}` }),
    logs,
  };
}

/**
 * The file name a client following RFC 6266 §4.3 takes from `header`: the
 * `filename*` (RFC 8187) when there is one, else `filename`; with the ASCII
 * `filename` as given.
 */
export function dispositionNames(header: string): { filename?: string; extended?: string } {
  const names: { filename?: string; extended?: string } = {};
  const parameter = /;\s*([^\s=;]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))/g;
  for (const match of header.matchAll(parameter)) {
    const key = match[1].toLowerCase();
    if (key === "filename") names.filename = (match[2] ?? match[3]).replace(/\\(.)/g, "$1");
    if (key === "filename*") {
      const ext = /^UTF-8'[^']*'(.*)$/i.exec(match[3] ?? "");
      if (!ext) throw new Error(`Not an RFC 8187 value: ${match[3]}`);
      names.extended = decodeURIComponent(ext[1]);
    }
  }
  return names;
}
