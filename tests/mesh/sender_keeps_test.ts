/**
 * The sender keeps what it sent (issue: "Erase mail"): a peer that answers the
 * messenger's own parcel with a false "delivered" does not make the outbox drop
 * it; a relay's acknowledgement shows as "handed to a relay"; `--resend` (the
 * parcels handed over but undelivered) still has the bytes until the end-to-end
 * receipt or a verified delivery proof.
 */
import assert from "node:assert/strict";
import { attachParcelNode, MeshNode } from "../../mesh/mod.ts";
import { makeNode, pair, waitFor } from "../helpers.ts";
import { JsonProcess, type Message } from "./_attack_proc.ts";

const ATTACKER = "tests/fixtures/mesh_attacker.ts";

Deno.test({
  name: "Relaymail keeps its parcel, with its bytes, when a peer lies that it was delivered",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const alice = await makeNode("Alice");
    const bob = await makeNode("Bob");
    const mesh = await MeshNode.create({
      storePath: ":memory:",
      listen: ["/ip4/127.0.0.1/tcp/0"],
      mdns: false,
    });
    const attachment = attachParcelNode(mesh, alice.node, {
      endpointIds: [alice.node.identity.id],
      signers: [await alice.node.identity.meshSigner()],
      pollIntervalMs: 0,
    });
    try {
      await pair(alice, bob);
      await mesh.start();
      const sent = await alice.node.mailbox.send({ to: ["Bob"], subject: "Hi", body: "Carry me" });
      const key = alice.node.outbox.list().find((p) => p.kind === "mail")!.key;
      assert.equal(await attachment.pump(), 1);

      // Mallory takes the parcel and answers "already delivered", with a proof
      // signed by her own key.
      const misbehaved: string[] = [];
      mesh.on("peer:misbehaved", ({ peer }) => misbehaved.push(peer));
      const mallory = await JsonProcess.start("attacker sink", ATTACKER, {
        mode: "sink",
        victim: mesh.addresses[0],
        recipientId: bob.node.identity.id,
        claim: { kind: "none" },
        ack: { status: 3, proof: "own-key" },
      });
      try {
        const got = await mallory.next("received");
        assert.deepEqual(got.parcels.map((p: Message) => p.key), [key]);
        await waitFor("the lie noticed", () => misbehaved.includes(got.peerId), 10_000);
        assert.equal(mesh.store.knows(key), "held");
        // A negative check, so a duration: a handover reported for the lie would come by now.
        await new Promise((r) => setTimeout(r, 200));
      } finally {
        await mallory.stop();
      }
      const message = alice.node.mailbox.read(sent.id);
      assert.notEqual(message.deliveries[0].state, "delivered");
      assert.ok(
        !alice.node.outbox.handovers(key).some((h) => h.toRecipient),
        "no handover to the recipient was recorded",
      );
      // `sneakernet export --resend` lists it, bytes and all.
      const resend = await alice.node.outgoingParcels({ includeHandedOver: true });
      const parcel = resend.find((p) => p.key === key);
      assert.ok(parcel, "the parcel is still there to resend");
      assert.ok((await parcel.read())?.byteLength, "with its bytes");
    } finally {
      attachment.stop();
      await mesh.stop();
      await alice.close();
      await bob.close();
    }
  },
});
