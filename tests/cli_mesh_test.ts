/**
 * `relaymail mesh` shows the running daemon's live state, and the path of each
 * message on its way by message id.
 */
import assert from "node:assert/strict";
import { DaemonProcess, relaymail } from "./_cli.ts";
import { makeNode, pair, waitFor } from "./helpers.ts";

Deno.test("relaymail mesh shows the daemon's peers and each message's path by message id", async () => {
  const alice = await makeNode("Alice");
  const bob = await makeNode("Bob");
  await pair(alice, bob);
  const sent = await alice.node.mailbox.send({ to: ["Bob"], subject: "Hi", body: "On its way" });
  const messageId = sent.id;
  alice.node.close();
  const daemon = new DaemonProcess(alice.dir);
  try {
    const status = await waitFor("the daemon's status", async () => {
      const run = await relaymail(alice.dir, ["--json", "mesh"]);
      return run.code === 0 && JSON.parse(run.stdout);
    });
    assert.deepEqual(status.peers, []);
    const path = status.paths.find((p: { messageId: string }) => p.messageId === messageId);
    assert.ok(path, JSON.stringify(status.paths));
    assert.equal(path.to, "Bob");
    assert.deepEqual(path.hops, [], "no peer: still here");
    const text = (await relaymail(alice.dir, ["mesh"])).stdout;
    assert.match(text, new RegExp(`${messageId.slice(0, 8)}\\s+Bob\\s+queued here`));
  } finally {
    await daemon.stop();
    await alice.close();
    await bob.close();
  }
});
