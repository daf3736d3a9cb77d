/**
 * Awala interoperability over PoWeb: Relaycorp's own client (`PoWebClient` from
 * `@relaycorp/relaynet-poweb`, keys made by relaynet-core) uses a Relaymail
 * daemon as its private gateway. It registers, delivers a parcel for the node's
 * Relaymail user and collects the parcels she sends back, while the app on top
 * (tests/fixtures/third_party_app.ts) knows nothing of Relaymail's code.
 */
import assert from "node:assert/strict";
import {
  type Certificate,
  ParcelCollectionHandshakeSigner,
  ParcelDeliverySigner,
  PrivateNodeRegistrationRequest,
  type ServiceMessage,
  StreamingMode,
} from "@relaycorp/relaynet-core";
import { PoWebClient, RefusedParcelError } from "@relaycorp/relaynet-poweb";
import { runDaemon } from "../../app/services/daemon.ts";
import { Relaymail } from "../../app/services/relaymail.ts";
import { toArrayBuffer } from "../../bindings/validation.ts";
import {
  CarolApp,
  type CarolMail,
  decodeReceipt,
  encodeMail,
  parseInvitation,
  TYPE_MAIL,
  TYPE_PAIRING_ACCEPT,
  TYPE_RECEIPT,
} from "../fixtures/third_party_app.ts";
import { forgeParcel } from "../fixtures/forge_parcel.ts";
import { waitFor } from "../helpers.ts";

/** Collects from the gateway until `want` messages arrived, acknowledging each. */
async function collect(
  client: PoWebClient,
  carol: CarolApp,
  senderId: string,
  want: number,
): Promise<ServiceMessage[]> {
  const signer = new ParcelCollectionHandshakeSigner(carol.certificate, carol.keyPair.privateKey);
  const messages: ServiceMessage[] = [];
  const deadline = AbortSignal.timeout(20_000);
  for await (const collection of client.collectParcels([signer], StreamingMode.KEEP_ALIVE)) {
    const bytes = new Uint8Array(collection.parcelSerialized);
    messages.push((await carol.open(bytes, senderId)).message);
    await collection.ack();
    if (messages.length === want || deadline.aborted) break;
  }
  return messages;
}

Deno.test("Relaycorp's PoWebClient registers with a Relaymail node, delivers to its user and collects from her", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "relaymail-poweb-interop-" });
  const alice = await Relaymail.open(dir);
  const stop = Promise.withResolvers<void>();
  const logs: string[] = [];
  let daemon: Promise<void> | undefined;
  try {
    await alice.identity.create("Alice");
    const aliceId = alice.identity.id;
    daemon = runDaemon(alice, {
      listen: ["/ip4/127.0.0.1/tcp/0"],
      mdns: false,
      poweb: { hostname: "127.0.0.1", port: 0 },
      log: (line) => logs.push(line),
      until: stop.promise,
    });
    const port = await waitFor("the PoWeb server", () => {
      const line = logs.find((l) => l.startsWith("serving PoWeb on "));
      return line ? Number(/:(\d+) /.exec(line)![1]) : undefined;
    });
    const client = PoWebClient.initLocal(port);
    const carol = await CarolApp.create();
    let gatewayCertificate!: Certificate;

    await t.step("Carol registers with Alice's node as her private gateway", async () => {
      const authorization = await client.preRegisterNode(carol.keyPair.publicKey);
      const request = new PrivateNodeRegistrationRequest(carol.keyPair.publicKey, authorization);
      const registration = await client.registerNode(
        await request.serialize(carol.keyPair.privateKey),
      );
      assert.equal(await registration.privateNodeCertificate.calculateSubjectId(), carol.id);
      const path = await registration.privateNodeCertificate.getCertificationPath(
        [],
        [registration.gatewayCertificate],
      );
      assert.equal(path.length, 2, "Carol's certificate is issued by the node's gateway identity");
      gatewayCertificate = registration.gatewayCertificate;
      carol.useGatewayCertificate(
        registration.privateNodeCertificate,
        registration.gatewayCertificate,
        registration.internetGatewayInternetAddress,
      );
      await waitFor(
        "the registration",
        () => logs.some((l) => l.includes(`${carol.id} registered`)),
      );
    });

    const deliver = (bytes: Uint8Array) =>
      client.deliverParcel(
        toArrayBuffer(bytes),
        new ParcelDeliverySigner(carol.certificate, carol.keyPair.privateKey),
      );

    await t.step("Carol pairs with Alice: request delivered, accept collected", async () => {
      const created = await alice.pairing.createInvitation({ contactName: "Carol" });
      const invitation = await parseInvitation(created.text, new Date());
      await deliver(await carol.makePairingRequest(invitation));
      await waitFor("the pairing", () => alice.contacts.get(carol.id)?.state === "active");

      const [accept] = await collect(client, carol, aliceId, 1);
      assert.equal(accept.type, TYPE_PAIRING_ACCEPT);
      assert.equal(await carol.takePairingAccept(accept, aliceId), "Alice");
      // Alice keeps Carol's PDA path, which runs up to the gateway that certified Carol.
      const channel = await alice.identity.channel(carol.id);
      const chain = channel!.deliveryAuthPath.certificateAuthorities;
      assert.ok(chain.some((c) => c.isEqual(gatewayCertificate)));
    });

    const mail: CarolMail = {
      messageId: crypto.randomUUID(),
      threadId: "",
      inReplyTo: "",
      sentAt: new Date(),
      subject: "Over PoWeb",
      body: "Delivered by Relaycorp's own PoWeb client.",
      recipients: [aliceId],
      attachments: [],
    };
    mail.threadId = mail.messageId;

    await t.step("Carol's mail reaches Alice's inbox; her receipt comes back", async () => {
      await deliver(await carol.makeMailParcel(aliceId, encodeMail(mail)));
      await waitFor("the mail", () => alice.mailbox.list("inbox").length === 1);
      assert.equal(alice.mailbox.read(mail.messageId).body, mail.body);

      const [receipt] = await collect(client, carol, aliceId, 1);
      assert.equal(receipt.type, TYPE_RECEIPT);
      assert.deepEqual(decodeReceipt(new Uint8Array(receipt.content)).messageIds, [mail.messageId]);
    });

    await t.step("Alice's reply is collected by Carol", async () => {
      await alice.mailbox.send({ replyTo: mail.messageId, body: "Got it, over the mesh node." });
      const [reply] = await collect(client, carol, aliceId, 1);
      assert.equal(reply.type, TYPE_MAIL);
      const outgoing = alice.outbox.list().filter((p) => p.recipientId === carol.id);
      await waitFor(
        "the handover",
        () =>
          alice.outbox.list().filter((p) => p.recipientId === carol.id && p.kind === "mail")
            .every((p) => p.state === "delivered"),
      );
      assert.ok(outgoing.length >= 2);
    });

    await t.step("a parcel Alice never authorised is refused with 422 and not stored", async () => {
      const forged = await forgeParcel(aliceId);
      await assert.rejects(deliver(forged), RefusedParcelError);
      assert.equal(alice.mailbox.list("inbox").length, 1);
    });
  } finally {
    stop.resolve();
    await daemon?.catch(() => {});
    alice.close();
    await Deno.remove(dir, { recursive: true });
  }
});
