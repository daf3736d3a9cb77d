import { testBindingContract } from "../../bindings/testing/contract.ts";
import { type Attachment, attachParcelNode, MeshNode } from "../../mesh/mod.ts";
import type { MemoryParcelNode } from "../../bindings/testing/memory_node.ts";

const LOOPBACK = ["/ip4/127.0.0.1/tcp/0"];

testBindingContract({
  name: "mesh (two nodes on loopback)",
  async setup(a, b, endpoints) {
    const meshA = await MeshNode.create({ storePath: ":memory:", listen: LOOPBACK, mdns: false });
    const meshB = await MeshNode.create({ storePath: ":memory:", listen: LOOPBACK, mdns: false });
    const attached = new Map<MemoryParcelNode, { mesh: MeshNode; attachment: Attachment }>([
      [a, {
        mesh: meshA,
        attachment: attachParcelNode(meshA, a, { endpointIds: [endpoints.a], pollIntervalMs: 0 }),
      }],
      [b, {
        mesh: meshB,
        attachment: attachParcelNode(meshB, b, { endpointIds: [endpoints.b], pollIntervalMs: 0 }),
      }],
    ]);
    await meshA.start();
    await meshB.start();
    await meshA.dial(meshB.addresses[0]);
    return {
      async transfer(from, to) {
        const sender = attached.get(from)!;
        await sender.attachment.pump();
        await sender.mesh.syncNow();
        await attached.get(to)!.mesh.idle();
      },
      nextHopHolds(key, from) {
        const next = from === a ? b : a;
        return Promise.resolve(
          next.stored.has(key) || attached.get(next)!.mesh.store.knows(key) !== null,
        );
      },
      async close() {
        for (const { mesh, attachment } of attached.values()) {
          attachment.stop();
          await mesh.stop();
        }
      },
    };
  },
});
