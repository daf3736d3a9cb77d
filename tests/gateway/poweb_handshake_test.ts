/**
 * Malformed WebSocket handshakes to `/v1/parcel-collection` (RFC 6455 §4.2.1):
 * each is answered with a 4xx saying what is wrong, never a 500, and the server
 * keeps taking good handshakes.
 */
import assert from "node:assert/strict";
import { CollectionSocket, rawExchange, type TestGateway, withGateway } from "./_poweb_helpers.ts";

const KEY = "dGhlIHNhbXBsZSBub25jZQ==";

/** A request head from its request line and header lines. */
function head(requestLine: string, ...headers: string[]): Uint8Array {
  return new TextEncoder().encode([requestLine, ...headers, "", ""].join("\r\n"));
}

/** A good handshake still gets the server's challenge. */
async function assertStillCollects(gateway: TestGateway): Promise<void> {
  const socket = CollectionSocket.open(gateway);
  try {
    const event = await socket.next();
    assert.equal(event.kind, "message", `Expected a handshake challenge, got ${event.kind}`);
  } finally {
    await socket.close();
  }
}

interface MalformedUpgrade {
  readonly name: string;
  readonly request: Uint8Array;
  readonly status: number;
  /** A header the refusal must carry, lower-cased, with its value. */
  readonly header?: string;
  /** Words the refusal's reason must contain. */
  readonly reason?: RegExp;
}

const GET = "GET /v1/parcel-collection HTTP/1.1";
const HOST = "Host: 127.0.0.1";
const UPGRADE = "Upgrade: websocket";
const VERSION = "Sec-WebSocket-Version: 13";

const cases: MalformedUpgrade[] = [
  // The four the issue found answered with 500:
  {
    name: "Upgrade: websocket without Connection: Upgrade",
    request: head(GET, HOST, UPGRADE, `Sec-WebSocket-Key: ${KEY}`, VERSION),
    status: 400,
    reason: /Connection header is missing/,
  },
  {
    name: "no Sec-WebSocket-Key",
    request: head(GET, HOST, UPGRADE, "Connection: Upgrade", VERSION),
    status: 400,
    reason: /Sec-WebSocket-Key header is missing/,
  },
  {
    name: "Connection: keep-alive",
    request: head(
      GET,
      HOST,
      UPGRADE,
      "Connection: keep-alive",
      `Sec-WebSocket-Key: ${KEY}`,
      VERSION,
    ),
    status: 400,
    reason: /must include Upgrade: received "keep-alive"/,
  },
  {
    name: "no Connection but an Origin",
    request: head(
      GET,
      HOST,
      UPGRADE,
      "Origin: https://example.com",
      `Sec-WebSocket-Key: ${KEY}`,
      VERSION,
    ),
    status: 403,
    reason: /Web browsers/,
  },
  // And the other ways a handshake can be wrong:
  {
    name: "a Sec-WebSocket-Key that is not 16 octets",
    request: head(
      GET,
      HOST,
      UPGRADE,
      "Connection: Upgrade",
      "Sec-WebSocket-Key: c2hvcnQ=",
      VERSION,
    ),
    status: 400,
    reason: /16 octets/,
  },
  {
    name: "Sec-WebSocket-Version: 8",
    request: head(
      GET,
      HOST,
      UPGRADE,
      "Connection: Upgrade",
      `Sec-WebSocket-Key: ${KEY}`,
      "Sec-WebSocket-Version: 8",
    ),
    status: 426,
    header: "sec-websocket-version: 13",
  },
  {
    name: "no Sec-WebSocket-Version",
    request: head(GET, HOST, UPGRADE, "Connection: Upgrade", `Sec-WebSocket-Key: ${KEY}`),
    status: 426,
    header: "sec-websocket-version: 13",
  },
  {
    name: "Upgrade: h2c",
    request: head(GET, HOST, "Upgrade: h2c", "Connection: Upgrade", `Sec-WebSocket-Key: ${KEY}`),
    status: 426,
    header: "upgrade: websocket",
  },
  {
    name: "a plain GET",
    request: head(GET, HOST),
    status: 426,
    header: "upgrade: websocket",
  },
  {
    name: "POST with the upgrade headers",
    request: head(
      "POST /v1/parcel-collection HTTP/1.1",
      HOST,
      UPGRADE,
      "Connection: Upgrade",
      `Sec-WebSocket-Key: ${KEY}`,
      VERSION,
      "Content-Length: 0",
    ),
    status: 405,
    header: "allow: GET",
  },
  {
    name: "HTTP/1.0",
    request: head(
      "GET /v1/parcel-collection HTTP/1.0",
      HOST,
      UPGRADE,
      "Connection: Upgrade",
      `Sec-WebSocket-Key: ${KEY}`,
      VERSION,
    ),
    status: 400,
    reason: /HTTP\/1\.1/,
  },
  {
    name: "no Host",
    request: head(GET, UPGRADE, "Connection: Upgrade", `Sec-WebSocket-Key: ${KEY}`, VERSION),
    status: 400,
  },
  {
    name: "a good handshake to another path",
    request: head(
      "GET /v1/nodes HTTP/1.1",
      HOST,
      UPGRADE,
      "Connection: Upgrade",
      `Sec-WebSocket-Key: ${KEY}`,
      VERSION,
    ),
    status: 404,
  },
];

for (const c of cases) {
  Deno.test(`/v1/parcel-collection answers ${c.name} with ${c.status}`, async () => {
    await withGateway({}, async (gateway) => {
      const outcome = await rawExchange(gateway.server.port, c.request);

      assert.equal(outcome.kind, "response", JSON.stringify(outcome));
      if (outcome.kind !== "response") return;
      assert.equal(outcome.status, c.status, outcome.head);
      const headLower = outcome.head.toLowerCase();
      if (c.header) assert.ok(headLower.includes(`\r\n${c.header.toLowerCase()}`), outcome.head);
      assert.ok(headLower.includes("content-type: application/json"), outcome.head);
      if (c.reason) {
        assert.ok(
          gateway.refusals.some((r) => r.startsWith(`${c.status} `) && c.reason!.test(r)),
          `Refusals: ${gateway.refusals.join("; ")}`,
        );
      }
      assert.ok(!gateway.refusals.some((r) => r.startsWith("5")), gateway.refusals.join("; "));
      await assertStillCollects(gateway);
    });
  });
}
