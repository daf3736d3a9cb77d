/**
 * The PoWeb server (RS-016) against Relaycorp's own client, `PoWebClient`, and
 * against the malformed, hostile or stalled requests that client never sends.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  derSerializePublicKey,
  generateRSAKeyPair,
  getIdFromIdentityKey,
  HandshakeResponse,
  ParcelCollectionHandshakeSigner,
  ParcelDelivery,
  ParcelDeliverySigner,
  PrivateNodeRegistrationAuthorization,
  PrivateNodeRegistrationRequest,
  StreamingMode,
} from "@relaycorp/relaynet-core";
import { ParcelDeliveryError, RefusedParcelError } from "@relaycorp/relaynet-poweb";
import {
  CloseCode,
  ContentType,
  NO_INTERNET_GATEWAY,
} from "../../bindings/gateway/poweb_server.ts";
import { MAX_PARCEL_LENGTH, sha256Hex, toArrayBuffer } from "../../bindings/validation.ts";
import {
  apiUrl,
  certifiedKey,
  CollectionSocket,
  collectWithClient,
  countersignature,
  HOUR,
  makeParcel,
  MINUTE,
  otherGatewayIdentity,
  post,
  postParcel,
  rawExchange,
  type RegisteredNode,
  registerNode,
  SAFETY_MS,
  type TestGateway,
  type TestResponse,
  withGateway,
} from "./_poweb_helpers.ts";
import { waitFor } from "../helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Hex SHA-256 of a public key's DER, which a node pre-registers with. */
async function keyDigest(publicKey: CryptoKey): Promise<string> {
  return await sha256Hex(new Uint8Array(await derSerializePublicKey(publicKey)));
}

/** A response body as text, for assertion messages. */
function reason(response: TestResponse): string {
  return decoder.decode(response.body);
}

/** A good pre-registration still gets a PNRA signed by the gateway for that key. */
async function assertPreRegisters(gateway: TestGateway): Promise<void> {
  const { publicKey } = await generateRSAKeyPair();
  const pnra = await PrivateNodeRegistrationAuthorization.deserialize(
    await gateway.client.preRegisterNode(publicKey),
    gateway.identity.publicKey,
  );
  assert.equal(decoder.decode(pnra.gatewayData), await keyDigest(publicKey));
}

/** A good delivery from `node` is still accepted. */
async function assertDelivers(gateway: TestGateway, node: RegisteredNode): Promise<void> {
  const before = gateway.accepted.length;
  const parcel = await makeParcel();
  const response = await postParcel(gateway, parcel.bytes, node);
  assert.equal(response.status, 202, decoder.decode(response.body));
  assert.equal(gateway.accepted.length, before + 1);
  assert.deepEqual(gateway.accepted.at(-1)!.bytes, parcel.bytes);
}

/** A good collection by `node` still completes, bringing what is queued for it. */
async function assertCollects(gateway: TestGateway, node: RegisteredNode): Promise<void> {
  const parcel = await makeParcel();
  await gateway.server.enqueue(parcel.bytes, node.nodeId, parcel.expiresAt);
  const collected = await collectWithClient(gateway, node, StreamingMode.CLOSE_UPON_COMPLETION);
  assert.ok(collected.some((bytes) => Buffer.from(bytes).equals(parcel.bytes)));
  assert.equal(gateway.store.waiting([node.nodeId], new Set()).length, 0);
}

/** A copy of `bytes` with the first occurrence of `needle` altered. */
function tamper(bytes: Uint8Array, needle: Uint8Array): Uint8Array {
  const at = Buffer.from(bytes).indexOf(Buffer.from(needle));
  assert.ok(at >= 0, "The payload is not in the parcel");
  const copy = bytes.slice();
  copy[at + Math.floor(needle.length / 2)] ^= 0xff;
  return copy;
}

// 1. Interoperability with Relaycorp's client

Deno.test("PoWebClient registers a node: the gateway's certificate issues the node's", async () => {
  await withGateway({}, async (gateway) => {
    const node = await registerNode(gateway);

    const certificate = node.registration.privateNodeCertificate;
    const gatewayId = await gateway.identity.certificate.calculateSubjectId();
    assert.equal(
      await certificate.calculateSubjectId(),
      await getIdFromIdentityKey(node.publicKey),
    );
    assert.equal(certificate.getIssuerId(), gatewayId);
    const path = await certificate.getCertificationPath([], [gateway.identity.certificate]);
    assert.equal(path.length, 2);
    assert.ok(path[1].isEqual(gateway.identity.certificate));
    assert.ok(node.registration.gatewayCertificate.isEqual(gateway.identity.certificate));
    assert.equal(node.registration.internetGatewayInternetAddress, NO_INTERNET_GATEWAY);
    assert.ok(gateway.server.isRegistered(node.nodeId));
    assert.deepEqual(gateway.store.registeredNodes(), [node.nodeId]);
  });
});

Deno.test("PoWebClient.deliverParcel() hands accept() the exact parcel and the node's id", async () => {
  await withGateway({}, async (gateway) => {
    const node = await registerNode(gateway);
    const parcel = await makeParcel();

    await gateway.client.deliverParcel(toArrayBuffer(parcel.bytes.slice()), node.deliverySigner);

    assert.equal(gateway.accepted.length, 1);
    assert.deepEqual(gateway.accepted[0], { bytes: parcel.bytes, fromNodeId: node.nodeId });
  });
});

Deno.test("PoWebClient.deliverParcel() sees a refused parcel as RefusedParcelError, another gateway's node as ParcelDeliveryError", async () => {
  await withGateway({}, async (gateway) => {
    const node = await registerNode(gateway);
    const expired = await makeParcel({
      creationDate: new Date(Date.now() - 2 * 24 * HOUR),
      ttlSeconds: 86_400,
    });
    await assert.rejects(
      gateway.client.deliverParcel(toArrayBuffer(expired.bytes), node.deliverySigner),
      RefusedParcelError,
    );
    const stranger = await certifiedKey(await otherGatewayIdentity());
    const parcel = await makeParcel();
    await assert.rejects(
      gateway.client.deliverParcel(
        toArrayBuffer(parcel.bytes),
        new ParcelDeliverySigner(stranger.certificate, stranger.privateKey),
      ),
      ParcelDeliveryError,
    );
    assert.equal(gateway.accepted.length, 0);
  });
});

Deno.test("PoWebClient.collectParcels() in close-upon-completion mode takes the node's queue, oldest first, and ends by itself", async () => {
  await withGateway({}, async (gateway) => {
    const node = await registerNode(gateway);
    const other = await registerNode(gateway);
    // More than RS-000's five deliveries in flight, which Relaycorp's client gets one at a time.
    const parcels = [];
    for (let i = 0; i < 7; i++) {
      parcels.push(await makeParcel());
      await gateway.server.enqueue(parcels[i].bytes, node.nodeId, parcels[i].expiresAt);
      gateway.clock.advance(1_000);
    }
    const forOther = await makeParcel();
    await gateway.server.enqueue(forOther.bytes, other.nodeId, forOther.expiresAt);

    const collected = await collectWithClient(
      gateway,
      node,
      StreamingMode.CLOSE_UPON_COMPLETION,
    );

    assert.deepEqual(collected, parcels.map((p) => p.bytes));
    assert.equal(gateway.store.queued(), 1, "Only the other node's parcel is left");
    assert.deepEqual(
      await collectWithClient(gateway, node, StreamingMode.CLOSE_UPON_COMPLETION),
      [],
      "An empty queue ends the collection at once",
    );
  });
});

Deno.test("PoWebClient.collectParcels() in keep-alive mode receives a parcel queued after the handshake", async () => {
  await withGateway({}, async (gateway) => {
    const node = await registerNode(gateway);
    const parcel = await makeParcel();
    const handshaken = Promise.withResolvers<void>();
    let handshakes = 0;

    const collecting = collectWithClient(gateway, node, StreamingMode.KEEP_ALIVE, {
      stopAfter: 1,
      onHandshake: () => {
        handshakes++;
        handshaken.resolve();
      },
    });
    await handshaken.promise;
    await gateway.server.enqueue(parcel.bytes, node.nodeId, parcel.expiresAt);

    assert.deepEqual(await collecting, [parcel.bytes]);
    assert.equal(handshakes, 1, "The parcel came on the socket left open, not a new one");
    await waitFor(
      "the acknowledgement to be processed",
      () => gateway.store.queued() === 0,
      SAFETY_MS,
    );
  });
});

Deno.test("PoWebServer delivers an unacknowledged parcel again, and an acknowledged one never", async () => {
  await withGateway({}, async (gateway) => {
    const node = await registerNode(gateway);
    const parcel = await makeParcel();
    await gateway.server.enqueue(parcel.bytes, node.nodeId, parcel.expiresAt);

    const first = await collectWithClient(gateway, node, StreamingMode.CLOSE_UPON_COMPLETION, {
      ack: false,
      stopAfter: 1,
    });
    assert.deepEqual(first, [parcel.bytes]);
    assert.equal(gateway.store.queued(), 1);

    const second = await collectWithClient(gateway, node, StreamingMode.CLOSE_UPON_COMPLETION);
    assert.deepEqual(second, [parcel.bytes]);
    assert.equal(gateway.store.queued(), 0);

    assert.deepEqual(
      await collectWithClient(gateway, node, StreamingMode.CLOSE_UPON_COMPLETION),
      [],
    );
  });
});

// 2. Bad input

Deno.test("POST /v1/pre-registrations refuses bad requests and the server keeps serving", async (t) => {
  await withGateway({}, async (gateway) => {
    const { publicKey } = await generateRSAKeyPair();
    const digest = await keyDigest(publicKey);
    const cases = [
      { name: "a wrong content type", type: "application/octet-stream", body: digest, status: 400 },
      {
        name: "a body that is not a digest",
        type: "text/plain",
        body: "not a digest",
        status: 400,
      },
      { name: "a digest one digit short", type: "text/plain", body: digest.slice(1), status: 400 },
      { name: "an oversize body", type: "text/plain", body: digest.repeat(16), status: 413 },
    ];
    for (const c of cases) {
      await t.step(`${c.name}: ${c.status}`, async () => {
        const response = await post(gateway, "/pre-registrations", c.body, {
          "content-type": c.type,
        });
        assert.equal(response.status, c.status);
        await assertPreRegisters(gateway);
      });
    }
    await t.step(
      "the RS-016 spelling /pre-registration and an upper-case digest work",
      async () => {
        const response = await post(gateway, "/pre-registration", digest.toUpperCase(), {
          "content-type": "text/plain; charset=utf-8",
        });
        assert.equal(response.status, 200);
        assert.equal(response.headers.get("content-type"), ContentType.PNRA);
        const pnra = await PrivateNodeRegistrationAuthorization.deserialize(
          toArrayBuffer(response.body),
          gateway.identity.publicKey,
        );
        assert.equal(decoder.decode(pnra.gatewayData), digest);
      },
    );
  });
});

Deno.test("POST /v1/nodes refuses bad registrations and the server keeps serving", async (t) => {
  await withGateway({}, async (gateway) => {
    const node = await generateRSAKeyPair();
    const nodeId = await getIdFromIdentityKey(node.publicKey);
    const register = (body: Uint8Array | string, type: string = ContentType.PNRR) =>
      post(gateway, "/nodes", body, { "content-type": type });
    const pnrr = async (pnra: ArrayBuffer, keys = node) =>
      new Uint8Array(
        await new PrivateNodeRegistrationRequest(keys.publicKey, pnra).serialize(keys.privateKey),
      );
    const check = async (response: TestResponse, status: number, why?: RegExp) => {
      assert.equal(response.status, status, reason(response));
      if (why) assert.match(reason(response), why);
      assert.equal(gateway.store.isRegistered(nodeId), false);
      await registerNode(gateway);
    };

    await t.step("a wrong content type: 415", async () => {
      const body = await pnrr(await gateway.client.preRegisterNode(node.publicKey));
      await check(await register(body, "application/octet-stream"), 415);
    });
    await t.step("a garbage body: 400", async () => {
      await check(await register(crypto.getRandomValues(new Uint8Array(300))), 400);
    });
    await t.step("a PNRA signed by another gateway: 400", async () => {
      const forged = new PrivateNodeRegistrationAuthorization(
        new Date(Date.now() + MINUTE),
        toArrayBuffer(encoder.encode(await keyDigest(node.publicKey))),
      );
      const pnra = await forged.serialize((await otherGatewayIdentity()).privateKey);
      await check(await register(await pnrr(pnra)), 400);
    });
    await t.step("a PNRA issued for another key: 403", async () => {
      const other = await generateRSAKeyPair();
      const pnra = await gateway.client.preRegisterNode(other.publicKey);
      await check(await register(await pnrr(pnra)), 403, /another node/);
      assert.equal(gateway.store.isRegistered(await getIdFromIdentityKey(other.publicKey)), false);
    });
    await t.step("an expired PNRA: 400", async () => {
      const pnra = await gateway.client.preRegisterNode(node.publicKey);
      gateway.clock.advance(MINUTE);
      await check(await register(await pnrr(pnra)), 400, /expired/);
    });
  });
});

Deno.test("POST /v1/parcels refuses bad deliveries and the server keeps serving", async (t) => {
  await withGateway({}, async (gateway) => {
    const node = await registerNode(gateway);
    const good = await makeParcel();
    const signed = await countersignature(node.deliverySigner, good.bytes);
    const check = async (
      response: { status: number; body?: Uint8Array },
      status: number,
      why?: RegExp,
    ) => {
      assert.equal(response.status, status, decoder.decode(response.body));
      if (why) assert.match(decoder.decode(response.body), why);
      const before = gateway.accepted.length;
      await assertDelivers(gateway, node);
      assert.equal(gateway.accepted.length, before + 1, "Only the good parcel was accepted");
    };

    await t.step("a wrong content type: 415", async () => {
      const response = await post(gateway, "/parcels", good.bytes, {
        "content-type": "application/octet-stream",
        authorization: signed,
      });
      await check(response, 415);
    });
    await t.step("no Authorization: 401 with a challenge", async () => {
      const response = await post(gateway, "/parcels", good.bytes, {
        "content-type": ContentType.PARCEL,
      });
      assert.match(response.headers.get("www-authenticate") ?? "", /Countersignature/);
      await check(response, 401);
    });
    await t.step("another authorization scheme: 401", async () => {
      await check(await postParcel(gateway, good.bytes, node, "Bearer abc"), 401);
    });
    await t.step("a countersignature that is garbage: 401", async () => {
      const garbage = `Awala-Countersignature ${btoa("not a signature")}`;
      const response = await postParcel(gateway, good.bytes, node, garbage);
      assert.match(response.headers.get("www-authenticate") ?? "", /Countersignature/);
      await check(response, 401);
    });
    await t.step("a countersignature over other bytes: 401", async () => {
      const other = await makeParcel();
      const authorization = await countersignature(node.deliverySigner, other.bytes);
      await check(await postParcel(gateway, good.bytes, node, authorization), 401);
    });
    await t.step("a node certificate issued by another gateway: 401", async () => {
      const stranger = await certifiedKey(await otherGatewayIdentity());
      const authorization = await countersignature(
        new ParcelDeliverySigner(stranger.certificate, stranger.privateKey),
        good.bytes,
      );
      await check(await postParcel(gateway, good.bytes, node, authorization), 401);
    });
    await t.step("a self-issued node certificate: 401", async () => {
      const stranger = await certifiedKey();
      const authorization = await countersignature(
        new ParcelDeliverySigner(stranger.certificate, stranger.privateKey),
        good.bytes,
      );
      await check(await postParcel(gateway, good.bytes, node, authorization), 401);
    });
    await t.step("a body that is not a parcel, countersigned: 400", async () => {
      const garbage = crypto.getRandomValues(new Uint8Array(500));
      await check(await postParcel(gateway, garbage, node), 400);
    });
    await t.step("an empty body, countersigned: 400", async () => {
      await check(await postParcel(gateway, new Uint8Array(), node), 400);
    });
    await t.step("an expired parcel: 422", async () => {
      const expired = await makeParcel({
        creationDate: new Date(Date.now() - 2 * 24 * HOUR),
        ttlSeconds: 86_400,
      });
      await check(await postParcel(gateway, expired.bytes, node), 422, /expired/);
    });
    await t.step("a parcel whose PDA its recipient did not issue: 422", async () => {
      const unauthorised = await makeParcel({ pdaIssuer: "stranger" });
      await check(await postParcel(gateway, unauthorised.bytes, node), 422, /not authorised/);
    });
    await t.step("a parcel whose signature does not match: 422", async () => {
      const parcel = await makeParcel();
      const tampered = tamper(parcel.bytes, parcel.payload);
      await check(await postParcel(gateway, tampered, node), 422, /signature/);
    });
    await t.step("a Content-Length over MAX_PARCEL_LENGTH: 413", async () => {
      const outcome = await rawExchange(
        gateway.server.port,
        encoder.encode(
          "POST /v1/parcels HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
            `Content-Type: ${ContentType.PARCEL}\r\nAuthorization: ${signed}\r\n` +
            `Content-Length: ${MAX_PARCEL_LENGTH + 1}\r\n\r\n`,
        ),
        good.bytes,
      );
      assert.equal(outcome.kind, "response", JSON.stringify(outcome));
      await check({ status: outcome.kind === "response" ? outcome.status : 0 }, 413);
    });
  });
});

Deno.test("POST /v1/parcels cuts off a client that stalls mid-body, serving others meanwhile", async () => {
  await withGateway({ stallTimeoutMs: 300 }, async (gateway) => {
    const node = await registerNode(gateway);
    const parcel = await makeParcel();
    const authorization = await countersignature(node.deliverySigner, parcel.bytes);

    const stalled = rawExchange(
      gateway.server.port,
      encoder.encode(
        "POST /v1/parcels HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
          `Content-Type: ${ContentType.PARCEL}\r\nAuthorization: ${authorization}\r\n` +
          `Content-Length: ${parcel.bytes.length}\r\n\r\n`,
      ),
      parcel.bytes.subarray(0, 100),
    );
    await assertDelivers(gateway, node);
    const outcome = await stalled;

    assert.ok(
      outcome.kind === "closed" || (outcome.kind === "response" && outcome.status === 408),
      `Expected 408 or a closed connection, got ${JSON.stringify(outcome)}`,
    );
    assert.equal(gateway.accepted.length, 1, "The stalled parcel was not accepted");
    await assertDelivers(gateway, node);
  });
});

Deno.test("PoWebServer refuses a node whose registration expired in its store (403)", async () => {
  await withGateway({ certificateValidityMs: MINUTE }, async (gateway) => {
    const node = await registerNode(gateway);
    await assertDelivers(gateway, node);
    gateway.clock.advance(2 * MINUTE);

    const parcel = await makeParcel();
    const response = await postParcel(gateway, parcel.bytes, node);

    assert.equal(response.status, 403, decoder.decode(response.body));
    assert.equal(gateway.accepted.length, 1);
    await assertDelivers(gateway, await registerNode(gateway));
  });
});

Deno.test("PoWebServer refuses every request with an Origin header (403)", async (t) => {
  await withGateway({}, async (gateway) => {
    const node = await registerNode(gateway);
    const parcel = await makeParcel();
    const origin = { origin: "https://example.com" };
    const { publicKey, privateKey } = await generateRSAKeyPair();
    const pnra = await gateway.client.preRegisterNode(publicKey);
    const pnrr = new Uint8Array(
      await new PrivateNodeRegistrationRequest(publicKey, pnra).serialize(privateKey),
    );
    const requests: [string, Uint8Array | string, Record<string, string>][] = [
      ["/pre-registrations", await keyDigest(publicKey), { "content-type": "text/plain" }],
      ["/pre-registration", await keyDigest(publicKey), { "content-type": "text/plain" }],
      ["/nodes", pnrr, { "content-type": ContentType.PNRR }],
      ["/parcels", parcel.bytes, {
        "content-type": ContentType.PARCEL,
        authorization: await countersignature(node.deliverySigner, parcel.bytes),
      }],
      ["/no-such-endpoint", "", {}],
    ];
    for (const [path, body, headers] of requests) {
      await t.step(`POST ${path}`, async () => {
        const response = await post(gateway, path, body, { ...headers, ...origin });
        assert.equal(response.status, 403);
        await assertPreRegisters(gateway);
      });
    }
    assert.equal(gateway.accepted.length, 0);

    await t.step("a WebSocket to /v1/parcel-collection is closed with 1008", async () => {
      await gateway.server.enqueue(parcel.bytes, node.nodeId, parcel.expiresAt);
      const socket = CollectionSocket.open(gateway, {
        ...origin,
        "x-awala-streaming-mode": "close-upon-completion",
      });
      try {
        const event = await socket.next();
        assert.equal(event.kind, "close", "No handshake challenge is sent");
        assert.equal(event.kind === "close" && event.code, CloseCode.VIOLATED_POLICY);
      } finally {
        await socket.close();
      }
      assert.equal(gateway.store.queued(), 1);
      await assertCollects(gateway, node);
    });
  });
});

Deno.test("GET /v1/parcel-collection with an Origin header but no upgrade is refused with 403", async () => {
  await withGateway({}, async (gateway) => {
    const response = await fetch(`${apiUrl(gateway)}/parcel-collection`, {
      headers: { origin: "https://example.com" },
    });
    await response.body?.cancel();
    assert.equal(response.status, 403);
    await assertPreRegisters(gateway);
  });
});

Deno.test("/v1/parcel-collection closes bad handshakes with 1003 and the server keeps serving", async (t) => {
  await withGateway({}, async (gateway) => {
    const node = await registerNode(gateway);
    const selfIssued = await certifiedKey();
    const foreign = await certifiedKey(await otherGatewayIdentity());
    const responses: [string, (socket: CollectionSocket) => Promise<void>][] = [
      ["garbage", async (socket) => {
        await socket.next();
        socket.send(crypto.getRandomValues(new Uint8Array(64)).buffer);
      }],
      ["a text frame", async (socket) => {
        await socket.next();
        socket.send("hello");
      }],
      ["no signatures", async (socket) => {
        await socket.next();
        socket.send(new HandshakeResponse([]).serialize());
      }],
      ["a signature over another nonce", async (socket) => {
        await socket.next();
        const nonce = crypto.getRandomValues(new Uint8Array(32)).buffer;
        socket.send(new HandshakeResponse([await node.handshakeSigner.sign(nonce)]).serialize());
      }],
      ["a self-issued certificate", (socket) =>
        socket.handshake(
          new ParcelCollectionHandshakeSigner(selfIssued.certificate, selfIssued.privateKey),
        )],
      ["a certificate issued by another gateway", (socket) =>
        socket.handshake(
          new ParcelCollectionHandshakeSigner(foreign.certificate, foreign.privateKey),
        )],
    ];
    for (const [name, respond] of responses) {
      await t.step(name, async () => {
        const parcel = await makeParcel();
        await gateway.server.enqueue(parcel.bytes, node.nodeId, parcel.expiresAt);
        const socket = CollectionSocket.open(gateway);
        try {
          await respond(socket);
          const event = await socket.next();
          assert.equal(event.kind, "close", `No parcel is delivered: ${event.kind}`);
          assert.equal(event.kind === "close" && event.code, CloseCode.CANNOT_ACCEPT);
        } finally {
          await socket.close();
        }
        await assertCollects(gateway, node);
      });
    }
  });
});

Deno.test("/v1/parcel-collection closes with 1003 on an unknown acknowledgement and keeps the parcel", async () => {
  await withGateway({}, async (gateway) => {
    const node = await registerNode(gateway);
    const parcel = await makeParcel();
    await gateway.server.enqueue(parcel.bytes, node.nodeId, parcel.expiresAt);

    const socket = CollectionSocket.open(gateway, {
      "x-awala-streaming-mode": "close-upon-completion",
    });
    try {
      await socket.handshake(node.handshakeSigner);
      const event = await socket.next();
      assert.equal(event.kind, "message");
      const delivery = ParcelDelivery.deserialize(event.data as ArrayBuffer);
      assert.deepEqual(new Uint8Array(delivery.parcelSerialized), parcel.bytes);
      socket.send(crypto.randomUUID());
      const closure = await socket.next();
      assert.equal(closure.kind === "close" && closure.code, CloseCode.CANNOT_ACCEPT);
    } finally {
      await socket.close();
    }

    assert.equal(gateway.store.queued(), 1);
    assert.deepEqual(
      await collectWithClient(gateway, node, StreamingMode.CLOSE_UPON_COMPLETION),
      [parcel.bytes],
    );
    assert.equal(gateway.store.queued(), 0);
  });
});

Deno.test("/v1/parcel-collection closes with 1003 a client that never answers the challenge", async () => {
  await withGateway({ stallTimeoutMs: 300 }, async (gateway) => {
    const node = await registerNode(gateway);
    const socket = CollectionSocket.open(gateway);
    try {
      const challenge = await socket.next();
      assert.equal(challenge.kind, "message");
      const closure = await socket.next();
      assert.equal(closure.kind === "close" && closure.code, CloseCode.CANNOT_ACCEPT);
    } finally {
      await socket.close();
    }
    await assertCollects(gateway, node);
  });
});

Deno.test("/v1/parcel-collection refuses the handshake of a node whose registration expired", async () => {
  await withGateway({ certificateValidityMs: MINUTE }, async (gateway) => {
    const node = await registerNode(gateway);
    const parcel = await makeParcel();
    await gateway.server.enqueue(parcel.bytes, node.nodeId, parcel.expiresAt);
    gateway.clock.advance(2 * MINUTE);
    assert.equal(gateway.server.isRegistered(node.nodeId), false);

    const socket = CollectionSocket.open(gateway, {
      "x-awala-streaming-mode": "close-upon-completion",
    });
    try {
      await socket.handshake(node.handshakeSigner);
      const event = await socket.next();
      assert.equal(event.kind, "close", `Expected a closure, got a ${event.kind}`);
      assert.equal(event.kind === "close" && event.code, CloseCode.CANNOT_ACCEPT);
    } finally {
      await socket.close();
    }
    assert.equal(gateway.store.queued(), 1);
  });
});

// 3. Expiry

Deno.test("PoWebServer does not deliver queued parcels once they expired, and purgeExpired() drops them", async () => {
  await withGateway({}, async (gateway) => {
    const node = await registerNode(gateway);
    const shortLived = await makeParcel({ ttlSeconds: 3_600 });
    const longLived = await makeParcel({ ttlSeconds: 86_400 });
    await gateway.server.enqueue(shortLived.bytes, node.nodeId, shortLived.expiresAt);
    await gateway.server.enqueue(longLived.bytes, node.nodeId, longLived.expiresAt);
    assert.equal(gateway.store.waiting([node.nodeId], new Set()).length, 2);

    gateway.clock.advance(2 * HOUR);

    assert.deepEqual(
      gateway.store.waiting([node.nodeId], new Set()).map((p) => p.bytes),
      [longLived.bytes],
    );
    assert.deepEqual(
      await collectWithClient(gateway, node, StreamingMode.CLOSE_UPON_COMPLETION),
      [longLived.bytes],
    );
    assert.equal(gateway.store.queued(), 1, "The expired parcel is still stored");
    gateway.store.purgeExpired();
    assert.equal(gateway.store.queued(), 0);
  });
});

Deno.test("PoWebServer does not deliver in keep-alive mode a parcel that expired before it was collected", async () => {
  await withGateway({}, async (gateway) => {
    const node = await registerNode(gateway);
    const expired = await makeParcel();
    const fresh = await makeParcel();
    await gateway.server.enqueue(
      expired.bytes,
      node.nodeId,
      new Date(gateway.clock.now().getTime() + MINUTE),
    );
    gateway.clock.advance(2 * MINUTE);
    const handshaken = Promise.withResolvers<void>();

    const collecting = collectWithClient(gateway, node, StreamingMode.KEEP_ALIVE, {
      stopAfter: 1,
      onHandshake: () => handshaken.resolve(),
    });
    await handshaken.promise;
    await gateway.server.enqueue(fresh.bytes, node.nodeId, fresh.expiresAt);

    assert.deepEqual(await collecting, [fresh.bytes]);
  });
});
