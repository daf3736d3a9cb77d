/**
 * Two processes on one data directory (the daemon and a CLI command): each job
 * is done once, maintenance runs in one of them at a time, and events are told
 * only what was committed.
 */
import assert from "node:assert/strict";
import { emit } from "../app/core/context.ts";
import { Relaymail } from "../app/services/relaymail.ts";
import { carry, DAY, makeNode, pair } from "./helpers.ts";

Deno.test("Jobs.run() in two openings of one data directory queues each receipt once", async () => {
  // Follow-ups wait for an explicit flush, so both openings find the same jobs.
  const tunables = { followUpDelayMs: DAY };
  const alice = await makeNode("Alice", { tunables });
  const bob = await makeNode("Bob", { tunables });
  try {
    await pair(alice, bob);
    for (let i = 0; i < 5; i++) {
      await alice.node.mailbox.send({ to: ["Bob"], subject: `n${i}`, body: "hi" });
    }
    for (const parcel of await alice.node.outgoingParcels()) {
      const bytes = await parcel.read();
      await bob.node.receiveParcel(bytes!, { binding: "test" });
    }
    const daemon = bob.node;
    const cli = await Relaymail.open(bob.dir, { tunables });
    try {
      const queued = await Promise.all([daemon.jobs.run(), cli.jobs.run(), daemon.jobs.run()]);
      const receipts = daemon.outbox.list().filter((p) => p.kind === "receipt");
      assert.equal(receipts.length, 1, `one receipt parcel for the batch (runs said ${queued})`);
      // (The daemon's two calls share one run.)
      assert.equal(queued[0] + queued[1], 1);
      // And it carries every message: Alice sees all five delivered.
      await carry(bob.node, alice.node);
      const sent = alice.node.mailbox.list("sent");
      assert.equal(sent.length, 5);
      for (const m of sent) {
        assert.equal(alice.node.mailbox.read(m.id).deliveries[0].state, "delivered");
      }
    } finally {
      cli.close();
    }
  } finally {
    await alice.close();
    await bob.close();
  }
});

Deno.test("Relaymail.maintain() runs in one opening at a time; the other leaves it to the first", async () => {
  const bob = await makeNode("Bob");
  try {
    const cli = await Relaymail.open(bob.dir);
    try {
      const [first, second] = await Promise.all([bob.node.maintain(), cli.maintain()]);
      assert.equal([first.skipped, second.skipped].filter(Boolean).length, 1);
      // Once the first is done, the lease is free again.
      assert.notEqual((await cli.maintain()).skipped, true);
    } finally {
      cli.close();
    }
  } finally {
    await bob.close();
  }
});

Deno.test("emit() tells listeners only what was committed, and a throwing listener harms nothing", async () => {
  const bob = await makeNode("Bob");
  try {
    const ctx = bob.node.ctx;
    const seen: string[] = [];
    const listener: EventListener = (event) => {
      seen.push(String((event as CustomEvent).detail));
      throw new Error("a careless listener");
    };
    ctx.events.addEventListener("outbox-changed", listener);
    const errors: string[] = [];
    const original = console.error;
    console.error = (line: string) => errors.push(line);
    try {
      assert.throws(() =>
        ctx.db.transaction(() => {
          emit(ctx, "outbox-changed", "rolled back");
          throw new RangeError("undo");
        }), RangeError);
      ctx.db.transaction(() => {
        emit(ctx, "outbox-changed", "committed");
        assert.deepEqual(seen, [], "not before the commit");
      });
      emit(ctx, "outbox-changed", "outside");
    } finally {
      console.error = original;
      ctx.events.removeEventListener("outbox-changed", listener);
    }
    assert.deepEqual(seen, ["committed", "outside"]);
    assert.equal(errors.length, 2, "each listener failure reported");
  } finally {
    await bob.close();
  }
});
