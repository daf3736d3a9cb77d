/**
 * The gateway binding ({@linkcode attachGateway}) runs the transport-binding
 * contract suite: both nodes are registered with one PoWeb server on loopback,
 * each delivers its parcels to it and collects the parcels queued there for it.
 */
import { generateRSAKeyPair } from "@relaycorp/relaynet-core";
import {
  attachGateway,
  type GatewayBinding,
  type GatewayCredentials,
  parsePoWebUrl,
  registerWithGateway,
} from "../../bindings/gateway/client.ts";
import { PoWebServer } from "../../bindings/gateway/poweb_server.ts";
import { GatewayStore } from "../../bindings/gateway/store.ts";
import { testBindingContract } from "../../bindings/testing/contract.ts";
import type { MemoryParcelNode } from "../../bindings/testing/memory_node.ts";
import { ParcelRefusedError, sha256Hex, validateParcel } from "../../bindings/validation.ts";
import { gatewayIdentity, SAFETY_MS } from "./_poweb_helpers.ts";

/** RSA key pairs are slow to make: each node keeps its key across the tests. */
const nodeKeys = new Map<string, Promise<CryptoKeyPair>>();

function keyOf(node: MemoryParcelNode): Promise<CryptoKeyPair> {
  let keys = nodeKeys.get(node.name);
  if (!keys) nodeKeys.set(node.name, keys = generateRSAKeyPair());
  return keys;
}

testBindingContract({
  name: "gateway (two nodes registered with a PoWeb server on loopback)",
  async setup(a, b, endpoints) {
    const store = GatewayStore.open(":memory:");
    // The gateway routes a parcel to the registered node that hosts its recipient.
    const hostOf = new Map<string, string>();
    const server: PoWebServer = new PoWebServer({
      identity: await gatewayIdentity(),
      store,
      hostname: "127.0.0.1",
      port: 0,
      async accept(bytes) {
        const parcel = await validateParcel(bytes);
        const nodeId = hostOf.get(parcel.recipientId);
        if (!nodeId) throw new ParcelRefusedError("unauthorized", "No such recipient here");
        await server.enqueue(bytes, nodeId, parcel.expiresAt);
      },
    });
    await server.start();
    const address = parsePoWebUrl(server.url);
    const joined = new Map<MemoryParcelNode, { nodeId: string; binding: GatewayBinding }>();
    try {
      for (const [node, endpoint] of [[a, endpoints.a], [b, endpoints.b]] as const) {
        const keys = await keyOf(node);
        const registration = await registerWithGateway(address, keys);
        const credentials: GatewayCredentials = {
          certificate: registration.privateNodeCertificate,
          privateKey: keys.privateKey,
        };
        const nodeId = await credentials.certificate.calculateSubjectId();
        hostOf.set(endpoint, nodeId);
        const binding = attachGateway(node, {
          address,
          credentials: () => Promise.resolve(credentials),
          delayMs: () => 0,
          // The suite drives delivery through `transfer`, not the poll.
          pollIntervalMs: 3_600_000,
          initialBackoffMs: 50,
          maxBackoffMs: 200,
        });
        joined.set(node, { nodeId, binding });
      }
    } catch (error) {
      for (const { binding } of joined.values()) await binding.stop();
      await server.stop();
      store.close();
      throw error;
    }
    /** Parcels the gateway holds for `node`, delivered to it or not. */
    const heldFor = (node: MemoryParcelNode) =>
      store.waiting([joined.get(node)!.nodeId], new Set());
    return {
      async transfer(from, to) {
        await joined.get(from)!.binding.pump();
        // `to` collects on its own; it got everything once it acknowledged every
        // parcel, which it does only after storing (or refusing) each one.
        const deadline = Date.now() + SAFETY_MS;
        while (heldFor(to).length > 0) {
          if (Date.now() > deadline) {
            throw new Error(`${to.name} collected nothing from the gateway for ${SAFETY_MS} ms`);
          }
          await new Promise((r) => setTimeout(r, 20));
        }
      },
      async nextHopHolds(key, from) {
        const next = from === a ? b : a;
        if (next.stored.has(key)) return true;
        for (const parcel of heldFor(next)) {
          if (await sha256Hex(parcel.bytes) === key) return true;
        }
        return false;
      },
      async close() {
        for (const { binding } of joined.values()) await binding.stop();
        await server.stop();
        store.close();
      },
    };
  },
});
