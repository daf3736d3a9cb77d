/**
 * How the PoWeb server paces a collection: deliveries in flight per socket (one
 * unless the collector asks for more, never over RS-000's five), and pings on
 * every socket, busy or idle, so that Relaycorp's client never hits its 7 s
 * watchdog; a collector that stops answering pings is dropped.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  HandshakeChallenge,
  HandshakeResponse,
  type ParcelCollectionHandshakeSigner,
  ParcelDelivery,
} from "@relaycorp/relaynet-core";
// @deno-types="@types/ws"
import WebSocket from "ws";
import { COLLECTION_WINDOW_HEADER } from "../../bindings/gateway/poweb_server.ts";
import { toArrayBuffer } from "../../bindings/validation.ts";
import {
  apiUrl,
  CollectionSocket,
  makeParcel,
  registerNode,
  SAFETY_MS,
  type TestGateway,
  type TestParcel,
  withGateway,
} from "./_poweb_helpers.ts";
import { waitFor } from "../helpers.ts";

/** How long a test waits to be sure that nothing more comes. */
const QUIET_MS = 300;

let parcels: Promise<TestParcel[]> | undefined;
/** Seven parcels, made once (each test has a store of its own). */
function sevenParcels(): Promise<TestParcel[]> {
  return parcels ??= Promise.all(Array.from({ length: 7 }, () => makeParcel()));
}

const windows: [asked: string | undefined, granted: number][] = [
  [undefined, 1],
  ["1", 1],
  ["3", 3],
  ["5", 5],
  ["50", 5],
  ["0", 1],
  ["many", 1],
];

for (const [asked, granted] of windows) {
  const what = asked === undefined ? "no window" : `window "${asked}"`;
  Deno.test(`/v1/parcel-collection with ${what} keeps ${granted} in flight before acknowledgements`, async () => {
    await withGateway({}, async (gateway) => {
      const node = await registerNode(gateway);
      for (const parcel of await sevenParcels()) {
        await gateway.server.enqueue(parcel.bytes, node.nodeId, parcel.expiresAt);
      }
      const socket = CollectionSocket.open(gateway, {
        "x-awala-streaming-mode": "close-upon-completion",
        ...(asked === undefined ? {} : { [COLLECTION_WINDOW_HEADER]: asked }),
      });
      try {
        await socket.handshake(node.handshakeSigner);
        const deliveries: ParcelDelivery[] = [];
        for (;;) {
          const event = await socket.next(deliveries.length < granted ? SAFETY_MS : QUIET_MS);
          if (event.kind === "timeout") break;
          assert.equal(event.kind, "message", JSON.stringify(event));
          deliveries.push(ParcelDelivery.deserialize((event as { data: ArrayBuffer }).data));
        }
        assert.equal(deliveries.length, granted, "Deliveries before any acknowledgement");

        socket.send(deliveries[0].deliveryId);
        const next = await socket.next();
        assert.equal(next.kind, "message", "An acknowledgement makes room for one more");
        assert.equal((await socket.next(QUIET_MS)).kind, "timeout", "And for one only");
      } finally {
        await socket.close();
      }
    });
  });
}

/** A collection socket on the `ws` package, which shows pings, acknowledging every delivery. */
class PingCountingCollector {
  readonly pings: number[] = [];
  deliveries = 0;
  readonly closed: Promise<number>;
  readonly #socket: WebSocket;

  constructor(gateway: TestGateway, signer: ParcelCollectionHandshakeSigner, autoPong = true) {
    this.#socket = new WebSocket(`${apiUrl(gateway, "ws")}/parcel-collection`, {
      headers: { "x-awala-streaming-mode": "keep-alive" },
      autoPong,
    });
    const closed = Promise.withResolvers<number>();
    this.closed = closed.promise;
    let challenged = false;
    this.#socket.on("ping", () => this.pings.push(performance.now()));
    this.#socket.on("message", async (data: Buffer) => {
      const bytes = toArrayBuffer(new Uint8Array(data));
      if (!challenged) {
        challenged = true;
        const { nonce } = HandshakeChallenge.deserialize(bytes);
        this.#socket.send(new HandshakeResponse([await signer.sign(nonce)]).serialize());
        return;
      }
      this.deliveries++;
      this.#socket.send(ParcelDelivery.deserialize(bytes).deliveryId);
    });
    this.#socket.on("error", () => {/* a close event follows */});
    this.#socket.on("close", (code: number) => closed.resolve(code));
  }

  /** The longest wait for a ping since `from` (a `performance.now()` time). */
  longestGapSince(from: number): number {
    let last = from;
    let longest = 0;
    for (const at of this.pings.filter((t) => t >= from)) {
      longest = Math.max(longest, at - last);
      last = at;
    }
    return Math.max(longest, performance.now() - last);
  }

  async close(): Promise<number> {
    this.#socket.close(1000);
    return await this.closed;
  }
}

Deno.test("/v1/parcel-collection pings a busy socket, on which acknowledgements never stop, as often as an idle one", async () => {
  const intervalMs = 200;
  await withGateway({ pingIntervalMs: intervalMs }, async (gateway) => {
    const node = await registerNode(gateway);
    const collector = new PingCountingCollector(gateway, node.handshakeSigner);
    try {
      await waitFor("the first ping", () => collector.pings.length > 0, SAFETY_MS);

      // Busy: a parcel every 40 ms for 1.2 s, each acknowledged at once.
      const busySince = performance.now();
      const fresh = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("hex");
      for (let i = 0; i < 30; i++) {
        await gateway.server.enqueue(
          new TextEncoder().encode(`${fresh} ${i}`),
          node.nodeId,
          new Date(Date.now() + 3_600_000),
        );
        await new Promise((r) => setTimeout(r, 40)); // pacing the sender, not a wait
      }
      await waitFor("every delivery", () => collector.deliveries === 30, SAFETY_MS);
      const busyGap = collector.longestGapSince(busySince);

      // Idle: five intervals must pass (a duration, not a wait) to see the pings keep time.
      const idleSince = performance.now();
      await new Promise((r) => setTimeout(r, 5 * intervalMs));
      const idleGap = collector.longestGapSince(idleSince);

      assert.ok(busyGap < 2 * intervalMs, `Busy: ${Math.round(busyGap)} ms without a ping`);
      assert.ok(idleGap < 2 * intervalMs, `Idle: ${Math.round(idleGap)} ms without a ping`);
      assert.equal(gateway.store.queued(), 0);
    } finally {
      await collector.close();
    }
  });
});

Deno.test("/v1/parcel-collection drops a collector that answers no ping for three intervals", async () => {
  const intervalMs = 400; // roomy enough for a loaded CI machine
  await withGateway({ pingIntervalMs: intervalMs }, async (gateway) => {
    const node = await registerNode(gateway);
    const collector = new PingCountingCollector(gateway, node.handshakeSigner, false);
    const code = await Promise.race([
      collector.closed,
      new Promise<string>((r) => setTimeout(() => r("still open"), SAFETY_MS)),
    ]);
    assert.equal(code, 1006, "Dropped without a closing handshake");
    assert.ok(collector.pings.length >= 3, `${collector.pings.length} pings`);
    assert.ok(
      gateway.refusals.some((r) =>
        r.includes(`answered none of 3 pings, sent every ${intervalMs} ms`)
      ),
      gateway.refusals.join("; "),
    );
  });
});
