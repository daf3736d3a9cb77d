/**
 * What the PoWeb server bounds: how long a request head may take, how long a
 * keep-alive connection may sit idle, how many connections one address may hold,
 * and (RS-018) how small a registering node's RSA key may be.
 */
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import {
  derDeserializeRSAPrivateKey,
  getRSAPublicKeyFromPrivate,
  PrivateNodeRegistrationRequest,
} from "@relaycorp/relaynet-core";
import { ContentType, MIN_RSA_MODULUS_BITS } from "../../bindings/gateway/poweb_server.ts";
import { post, rawExchange, SAFETY_MS, type TestGateway, withGateway } from "./_poweb_helpers.ts";

const encoder = new TextEncoder();

/** Any digest: pre-registration answers 200 to it, cheaply, while the server serves. */
const DIGEST = "ab".repeat(32);

async function assertServes(gateway: TestGateway): Promise<void> {
  const response = await post(gateway, "/pre-registrations", DIGEST, {
    "content-type": "text/plain",
  });
  assert.equal(response.status, 200);
}

/** A raw TCP connection read until the server closes it or `limitMs` pass. */
async function readUntilClosed(
  conn: Deno.Conn,
  limitMs: number,
): Promise<{ closed: boolean; text: string }> {
  let text = "";
  let gaveUp = false;
  const timer = setTimeout(() => {
    gaveUp = true;
    conn.close();
  }, limitMs);
  const buffer = new Uint8Array(4096);
  try {
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) break;
      text += new TextDecoder().decode(buffer.subarray(0, n));
    }
  } catch (error) {
    if (!gaveUp && !(error instanceof Deno.errors.ConnectionReset)) throw error;
  } finally {
    clearTimeout(timer);
  }
  if (!gaveUp) conn.close();
  return { closed: !gaveUp, text };
}

function connect(gateway: TestGateway): Promise<Deno.Conn> {
  return Deno.connect({ hostname: "127.0.0.1", port: gateway.server.port });
}

Deno.test("PoWebServer answers 408 to a request head that does not arrive within headersTimeoutMs", async () => {
  await withGateway({ headersTimeoutMs: 300 }, async (gateway) => {
    const started = performance.now();
    const stalled = rawExchange(
      gateway.server.port,
      encoder.encode("POST /v1/pre-registrations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-"),
    );
    await assertServes(gateway);
    const outcome = await stalled;
    const tookMs = performance.now() - started;

    assert.equal(outcome.kind, "response", JSON.stringify(outcome));
    assert.equal(outcome.kind === "response" && outcome.status, 408);
    assert.ok(tookMs < SAFETY_MS / 2, `Cut off after ${Math.round(tookMs)} ms`);
    assert.ok(gateway.refusals.some((r) => r.startsWith("408 ")), gateway.refusals.join("; "));
    await assertServes(gateway);
  });
});

Deno.test("PoWebServer times out a request head trickled in one header at a time: the limit is for the whole head", async () => {
  await withGateway({ headersTimeoutMs: 500 }, async (gateway) => {
    const conn = await connect(gateway);
    const started = performance.now();
    await conn.write(encoder.encode("GET /v1/parcel-collection HTTP/1.1\r\nHost: 127.0.0.1\r\n"));
    // Never silent for long: an inactivity timeout alone would never fire.
    let n = 0;
    const trickle = setInterval(() => {
      conn.write(encoder.encode(`X-Filler-${n++}: ${"a".repeat(20)}\r\n`)).catch(() => {});
    }, 50);
    try {
      const { closed, text } = await readUntilClosed(conn, SAFETY_MS);
      const tookMs = performance.now() - started;
      assert.ok(closed, "The server kept the connection");
      assert.match(text, /^HTTP\/1\.1 408 /);
      assert.ok(tookMs < 3_000, `Cut off after ${Math.round(tookMs)} ms`);
    } finally {
      clearInterval(trickle);
    }
    await assertServes(gateway);
  });
});

Deno.test("PoWebServer closes a connection that never sends a request", async () => {
  await withGateway({ headersTimeoutMs: 300 }, async (gateway) => {
    const conn = await connect(gateway);
    const { closed } = await readUntilClosed(conn, SAFETY_MS);
    assert.ok(closed, "A silent connection was kept open");
    await assertServes(gateway);
  });
});

Deno.test("PoWebServer closes a keep-alive connection idle for idleTimeoutMs, and not before", async () => {
  await withGateway({ idleTimeoutMs: 400 }, async (gateway) => {
    const conn = await connect(gateway);
    const request = encoder.encode(
      "POST /v1/pre-registrations HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
        `Content-Type: text/plain\r\nContent-Length: ${DIGEST.length}\r\n\r\n${DIGEST}`,
    );
    const buffer = new Uint8Array(8192);
    for (let i = 0; i < 3; i++) {
      // Reused within the idle time: still open.
      await conn.write(request);
      const n = await conn.read(buffer);
      assert.match(new TextDecoder().decode(buffer.subarray(0, n ?? 0)), /^HTTP\/1\.1 200 /);
      // Idle for part of idleTimeoutMs: a duration, not a wait.
      await new Promise((r) => setTimeout(r, 150));
    }
    const idleSince = performance.now();
    const { closed } = await readUntilClosed(conn, SAFETY_MS);
    const idleMs = performance.now() - idleSince;
    assert.ok(closed, "The idle connection was kept open");
    // Node's server grants a second more than the timeout it is given.
    assert.ok(idleMs < 400 + 1_000 + 1_000, `Closed after ${Math.round(idleMs)} ms idle`);
  });
});

Deno.test("PoWebServer drops connections over maxConnectionsPerAddress and serves again once one closes", async () => {
  await withGateway({ maxConnectionsPerAddress: 3 }, async (gateway) => {
    const held = [await connect(gateway), await connect(gateway), await connect(gateway)];
    try {
      const extra = await connect(gateway);
      const { closed } = await readUntilClosed(extra, SAFETY_MS);
      assert.ok(closed, "A fourth connection was kept");
      assert.ok(
        gateway.refusals.some((r) =>
          /^503 Too many connections from 127\.0\.0\.1: at most 3/.test(r)
        ),
        gateway.refusals.join("; "),
      );
      held.pop()!.close();
      // The server counts the closure once it sees it.
      const deadline = Date.now() + SAFETY_MS;
      for (;;) {
        try {
          await assertServes(gateway);
          break;
        } catch (error) {
          if (Date.now() > deadline) throw error;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    } finally {
      for (const conn of held) conn.close();
    }
  });
});

Deno.test("POST /v1/nodes refuses a node whose RSA key has fewer than 2048 bits (RS-018), naming its size", async () => {
  await withGateway({}, async (gateway) => {
    const weak = generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey;
    const privateKey = await derDeserializeRSAPrivateKey(
      weak.export({ format: "der", type: "pkcs8" }),
      { name: "RSA-PSS", hash: { name: "SHA-256" } },
    );
    const publicKey = await getRSAPublicKeyFromPrivate(privateKey);
    const pnra = await gateway.client.preRegisterNode(publicKey);
    const pnrr = await new PrivateNodeRegistrationRequest(publicKey, pnra).serialize(privateKey);

    const response = await post(gateway, "/nodes", new Uint8Array(pnrr), {
      "content-type": ContentType.PNRR,
    });

    const reason = JSON.parse(new TextDecoder().decode(response.body)).message;
    assert.equal(response.status, 400, reason);
    assert.match(reason, new RegExp(`at least ${MIN_RSA_MODULUS_BITS} bits.*1024-bit key`));
    assert.deepEqual(gateway.store.registeredNodes(), []);
  });
});
