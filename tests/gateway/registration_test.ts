/**
 * A Relaymail endpoint registering with a gateway: it keeps the chain the
 * gateway issued, backs its PDAs with it (what Awala gateways check), tells the
 * contacts it paired with earlier, and registers again only when due.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { makeGatewayIdentity, PoWebServer } from "../../bindings/gateway/poweb_server.ts";
import { GatewayStore } from "../../bindings/gateway/store.ts";
import { carry, DAY, makeNode, pair } from "../helpers.ts";

Deno.test("registering with a gateway re-issues contacts' authorisations through its chain", async (t) => {
  const alice = await makeNode("Alice");
  const bob = await makeNode("Bob");
  const dir = await Deno.makeTempDir({ prefix: "relaymail-registration-" });
  const store = GatewayStore.open(join(dir, "gateway.sqlite"));
  const identity = await makeGatewayIdentity();
  const server = new PoWebServer({
    identity,
    store,
    port: 0,
    internetAddress: "gateway.example.net",
    certificateValidityMs: 90 * DAY,
    now: alice.clock.now,
    accept: () => Promise.resolve(),
  });
  await server.start();
  try {
    await pair(alice, bob);

    await t.step("Alice registers and keeps the gateway's chain", async () => {
      const registration = await alice.node.gateway.register(server.url);
      assert.equal(registration.gatewayUrl, server.url);
      assert.ok(registration.gatewayCertificate.isEqual(identity.certificate));
      assert.equal(await registration.certificate.calculateSubjectId(), alice.node.identity.id);
      assert.equal(registration.internetAddress, "gateway.example.net");
      assert.ok(store.isRegistered(alice.node.identity.id));
    });

    await t.step("Bob is sent new connection parameters and uses them", async () => {
      await alice.node.flush();
      const updates = alice.node.outbox.list().filter((p) => p.kind === "connection-params");
      assert.equal(updates.length, 1);
      assert.equal(updates[0].recipientId, bob.node.identity.id);
      const outcomes = await carry(alice.node, bob.node);
      assert.deepEqual(outcomes.map((o) => o.status), ["accepted"]);

      const channel = await bob.node.identity.channel(alice.node.identity.id);
      const authorities = channel!.deliveryAuthPath.certificateAuthorities;
      assert.ok(
        authorities.some((c) => c.isEqual(identity.certificate)),
        "Bob's PDA from Alice chains up to the gateway",
      );
      assert.equal(
        channel!.getOutboundRAMFRecipient().internetAddress,
        "gateway.example.net",
        "Bob addresses Alice through her Internet gateway",
      );

      // Bob's mail under the new authorisation reaches Alice.
      await bob.node.mailbox.send({ to: [alice.node.identity.id], subject: "hi", body: "x" });
      const delivered = await carry(bob.node, alice.node);
      assert.deepEqual(delivered.map((o) => o.status), ["accepted"]);
      assert.equal(alice.node.mailbox.list("inbox").length, 1);
    });

    await t.step("invitations made now carry the chain too", async () => {
      const carol = await makeNode("Carol");
      try {
        await pair(alice, carol);
        const channel = await carol.node.identity.channel(alice.node.identity.id);
        assert.ok(
          channel!.deliveryAuthPath.certificateAuthorities.some((c) =>
            c.isEqual(identity.certificate)
          ),
        );
      } finally {
        await carol.close();
      }
    });

    await t.step(
      "it registers again only when a third of the certificate's life is left",
      async () => {
        assert.equal(await alice.node.gateway.ensureRegistered(server.url), false);
        alice.clock.advance(61 * DAY);
        assert.equal(await alice.node.gateway.ensureRegistered(server.url), true);
        const renewed = alice.node.gateway.registration()!;
        assert.ok(renewed.expiresAt.getTime() > alice.clock.now().getTime() + 80 * DAY);
        // Same gateway, same Internet address: contacts need nothing new.
        await alice.node.flush();
        assert.equal(
          alice.node.outbox.list().filter((p) =>
            p.kind === "connection-params" && p.state === "queued"
          )
            .length,
          0,
        );
      },
    );

    await t.step("an unreachable gateway is a clear error and changes nothing", async () => {
      const before = alice.node.gateway.registration()!;
      await assert.rejects(alice.node.gateway.register("http://127.0.0.1:9"));
      assert.ok(alice.node.gateway.registration()!.certificate.isEqual(before.certificate));
      await assert.rejects(
        alice.node.gateway.ensureRegistered("ftp://example"),
        /PoWeb URL starts with http/,
      );
    });
  } finally {
    await server.stop();
    store.close();
    await alice.close();
    await bob.close();
    await Deno.remove(dir, { recursive: true });
  }
});
