/**
 * Parcel collection by an Awala app as Relaycorp ships them: Node 20 running
 * `@relaycorp/relaynet-poweb` 1.6.35 (tests/fixtures/poweb_node_client.mjs),
 * installed from npm by this test, against a Relaymail PoWeb server.
 *
 * That client reads parcel deliveries through a byte stream (`ws`'s
 * `createWebSocketStream`), which joins the frames that wait unread into one
 * chunk, and it drops any socket on which no ping came for 7 s, busy or not.
 */
// Pings must come within 7 s on a line kept busy for 30 s: a quiet machine's deadline.
// test-set: serial
import assert from "node:assert/strict";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { StreamingMode } from "@relaycorp/relaynet-core";
import { sha256Hex } from "../../bindings/validation.ts";
import { makeParcel, SAFETY_MS, type TestGateway, withGateway } from "./_poweb_helpers.ts";
import { waitFor } from "../helpers.ts";

const CLIENT = new URL("../fixtures/poweb_node_client.mjs", import.meta.url).pathname;
const LOCK = new URL("../fixtures/poweb_node_client.lock.json", import.meta.url).pathname;

/**
 * Installs the packages pinned by the fixture's lock file with `npm ci` into a
 * directory of the system's temporary folder named after the lock file's digest,
 * so that later runs reuse it. Returns that directory.
 */
async function installOfficialClient(): Promise<string> {
  const lockText = await Deno.readTextFile(LOCK);
  const digest = (await sha256Hex(new TextEncoder().encode(lockText))).slice(0, 16);
  const dir = join(tmpdir(), `relaymail-poweb-node-${digest}`);
  const marker = join(dir, ".installed");
  if (await exists(marker)) return dir;

  const staging = await Deno.makeTempDir({ prefix: "relaymail-poweb-node-staging-" });
  const lock = JSON.parse(lockText);
  await Deno.writeTextFile(join(staging, "package-lock.json"), lockText);
  await Deno.writeTextFile(
    join(staging, "package.json"),
    JSON.stringify({
      name: lock.name,
      private: true,
      dependencies: lock.packages[""].dependencies,
    }),
  );
  const npm = await new Deno.Command("npm", {
    args: ["ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
    cwd: staging,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!npm.success) {
    await Deno.remove(staging, { recursive: true }).catch(() => {});
    throw new Error(`npm ci failed: ${new TextDecoder().decode(npm.stderr)}`);
  }
  await Deno.writeTextFile(join(staging, ".installed"), new Date().toISOString());
  try {
    await Deno.rename(staging, dir);
  } catch {
    // Another run installed it meanwhile.
    await Deno.remove(staging, { recursive: true }).catch(() => {});
    if (!await exists(marker)) throw new Error(`Could not install into ${dir}`);
  }
  return dir;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** What the Node program says after a collection. */
interface Collected {
  readonly event: "collected";
  readonly digests: string[];
  readonly handshakes: number;
  readonly ms: number;
  readonly pings: number;
  readonly maxPingGapMs: number;
}

/** The Node program, driven one JSON line at a time. */
class NodeApp {
  readonly #child: Deno.ChildProcess;
  readonly #lines: ReadableStreamDefaultReader<string>;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #stderr: Promise<string>;
  #buffered = "";

  constructor(packagesDir: string, port: number) {
    this.#child = new Deno.Command("node", {
      args: [CLIENT, packagesDir, String(port)],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#lines = this.#child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    this.#stdin = this.#child.stdin.getWriter();
    this.#stdin.closed.catch(() => {/* the program exited: ask() says so */});
    this.#stderr = new Response(this.#child.stderr).text();
  }

  /** Sends a command and returns the program's answer. */
  async ask(command: Record<string, unknown>): Promise<Record<string, unknown>> {
    try {
      await this.#stdin.write(new TextEncoder().encode(JSON.stringify(command) + "\n"));
    } catch (error) {
      throw new Error(`The Node program exited: ${await this.#stderr}`, { cause: error });
    }
    while (!this.#buffered.includes("\n")) {
      const { value, done } = await this.#lines.read();
      if (done) {
        throw new Error(`The Node program exited: ${await this.#stderr}`);
      }
      this.#buffered += value;
    }
    const at = this.#buffered.indexOf("\n");
    const line = this.#buffered.slice(0, at);
    this.#buffered = this.#buffered.slice(at + 1);
    const answer = JSON.parse(line);
    if (answer.event === "failed") {
      throw new Error(`The Node program failed: ${JSON.stringify(answer)}`);
    }
    return answer;
  }

  async close(): Promise<void> {
    await this.#stdin.write(new TextEncoder().encode(JSON.stringify({ cmd: "exit" }) + "\n"))
      .catch(() => {});
    await this.#stdin.close().catch(() => {});
    const killer = setTimeout(() => this.#child.kill("SIGKILL"), 5_000);
    await this.#child.status;
    clearTimeout(killer);
    await this.#lines.cancel().catch(() => {});
    await this.#stderr.catch(() => "");
  }
}

/** Queues `count` new parcels for `nodeId`; returns their digests. */
async function queueParcels(gateway: TestGateway, nodeId: string, count: number) {
  const digests: string[] = [];
  for (let i = 0; i < count; i++) {
    const parcel = await makeParcel();
    await gateway.server.enqueue(parcel.bytes, nodeId, parcel.expiresAt);
    digests.push(await sha256Hex(parcel.bytes));
  }
  return digests;
}

/** Every parcel queued was collected, once. */
function assertSameParcels(collected: string[], queued: string[]): void {
  assert.equal(collected.length, queued.length, "As many parcels as were queued");
  assert.deepEqual([...collected].sort(), [...queued].sort(), "Every parcel, once");
}

function nodeVersion(): string {
  const output = new Deno.Command("node", { args: ["--version"] }).outputSync();
  return new TextDecoder().decode(output.stdout).trim();
}

Deno.test("Relaycorp's PoWebClient under Node 20 collects 100 parcels in one session, both modes, and keeps a busy line", async (t) => {
  const version = nodeVersion();
  assert.ok(
    Number(/^v(\d+)/.exec(version)?.[1]) >= 20,
    `Node 20 or later is needed, not ${version}`,
  );
  let started = performance.now();
  const packages = await installOfficialClient();
  console.log(
    `Node ${version}, official client ready in ${Math.round(performance.now() - started)} ms`,
  );

  await withGateway({}, async (gateway) => {
    const app = new NodeApp(packages, gateway.server.port);
    try {
      const { nodeId } = await app.ask({ cmd: "register" }) as { nodeId: string };
      assert.ok(gateway.server.isRegistered(nodeId));

      await t.step(
        "close-upon-completion: 100 queued parcels, one session that ends by itself",
        async () => {
          const queued = await queueParcels(gateway, nodeId, 100);
          const result = await app.ask({
            cmd: "collect",
            mode: StreamingMode.CLOSE_UPON_COMPLETION,
            timeoutMs: 20_000,
          }) as unknown as Collected;
          console.log(`close-upon-completion: ${result.digests.length} parcels in ${result.ms} ms`);
          assertSameParcels(result.digests, queued);
          assert.equal(result.handshakes, 1);
          assert.equal(gateway.store.queued(), 0, "Every parcel was acknowledged");
        },
      );

      await t.step("keep-alive: 100 queued parcels on one socket", async () => {
        const queued = await queueParcels(gateway, nodeId, 100);
        const result = await app.ask({
          cmd: "collect",
          mode: StreamingMode.KEEP_ALIVE,
          count: 100,
          timeoutMs: 20_000,
        }) as unknown as Collected;
        console.log(`keep-alive: ${result.digests.length} parcels in ${result.ms} ms`);
        assertSameParcels(result.digests, queued);
        assert.equal(result.handshakes, 1, "No reconnection");
        // The last acknowledgement may still be on its way.
        await waitFor("every acknowledgement", () => gateway.store.queued() === 0, SAFETY_MS);
      });

      await t.step("keep-alive: a line kept busy for 30 s is never dropped", async () => {
        const busyMs = 30_000;
        const everyMs = 100;
        const count = busyMs / everyMs;
        const collecting = app.ask({
          cmd: "collect",
          mode: StreamingMode.KEEP_ALIVE,
          count,
          timeoutMs: busyMs + 15_000,
        }) as unknown as Promise<Collected>;
        let failed = false;
        collecting.catch(() => (failed = true)); // awaited below
        started = performance.now();
        const queued: string[] = [];
        for (let i = 0; i < count && !failed; i++) {
          const due = started + i * everyMs; // pacing the sender: a duration, not a wait
          await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())));
          queued.push(...await queueParcels(gateway, nodeId, 1));
        }
        const result = await collecting;
        console.log(
          `busy keep-alive line: ${result.digests.length} parcels over ${result.ms} ms, ` +
            `${result.handshakes - 1} reconnections, ${result.pings} pings, ` +
            `longest gap between pings ${result.maxPingGapMs} ms`,
        );
        assert.equal(result.handshakes - 1, 0, "No reconnection");
        assertSameParcels(result.digests, queued);
        assert.ok(result.maxPingGapMs < 7_000, "The client's 7 s watchdog never fired");
      });
    } finally {
      await app.close();
    }
  });
});
