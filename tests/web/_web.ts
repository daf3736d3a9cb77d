/**
 * Helpers of the web app's tests: an app on a free loopback port with its log
 * kept, and a reader of `Content-Disposition` as RFC 6266 clients read it.
 */
import { Runtime } from "../../app/runtime/runtime.ts";
import type { Relaymail } from "../../app/services/relaymail.ts";
import { WebApp, type WebAppOptions } from "../../app/web/server.ts";

/** A web app and the runtime under it, as `relaymail start` runs them. */
export class TestWebApp {
  constructor(readonly app: WebApp, readonly runtime: Runtime) {}

  get url(): string {
    return this.app.url;
  }

  get port(): number {
    return this.app.port;
  }

  rotateSecret(): string {
    return this.app.rotateSecret();
  }

  /** Stops the app, then the runtime and its daemon (the messenger stays open). */
  async stop(): Promise<void> {
    await this.app.stop();
    await this.runtime.close();
  }
}

/** A running web app, with what its user needs to call it. */
export interface TestWeb {
  readonly web: TestWebApp;
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
  const log = options.log ?? ((line: string) => logs.push(line));
  const runtime = await Runtime.attach(node, { log });
  await runtime.runDaemon(() => ({ listen: ["/ip4/127.0.0.1/tcp/0"], mdns: false }));
  const web = new TestWebApp(await WebApp.start(runtime, { port: 0, log, ...options }), runtime);
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
