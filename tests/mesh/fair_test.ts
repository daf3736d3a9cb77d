/** The round-robin gate (mesh/fair.ts): hosts take turns, whatever their number of streams. */
import assert from "node:assert/strict";
import { FairGate } from "../../mesh/fair.ts";

Deno.test("FairGate serves the least recently served host first: ten waiting streams of one host do not starve another", async () => {
  const gate = new FairGate(1);
  const order: string[] = [];
  const first = await gate.enter("attacker");
  const work = (host: string) =>
    gate.enter(host).then((leave) => {
      order.push(host);
      // Holds the slot a moment (work, a duration), so the others queue behind it.
      return new Promise<void>((r) => setTimeout(r, 1)).then(leave);
    });
  const all = [
    ...Array.from({ length: 10 }, () => work("attacker")),
    work("honest"),
    work("honest"),
  ];
  assert.equal(gate.waiting, 12);
  first();
  await Promise.all(all);
  // The honest host, served less recently, goes first and third, not after the ten.
  assert.deepEqual(order.slice(0, 4), ["honest", "attacker", "honest", "attacker"]);
  assert.equal(order.length, 12);
});

Deno.test("FairGate runs up to its slots at once, and a release is idempotent", async () => {
  const gate = new FairGate(2);
  const a = await gate.enter("a");
  const b = await gate.enter("b");
  let entered = false;
  const c = gate.enter("c").then((leave) => {
    entered = true;
    return leave;
  });
  await new Promise((r) => setTimeout(r, 5)); // a negative check: nothing enters meanwhile
  assert.equal(entered, false, "two slots taken");
  a();
  a(); // twice: still one slot given back
  (await c)();
  b();
  assert.equal(gate.waiting, 0);
});

Deno.test("FairGate gives a host that sends one batch at a time half the turns against one that always has more", async () => {
  const gate = new FairGate(1);
  const order: string[] = [];
  let stop = false;
  // The flood always has its next batch queued before the current one ends.
  const flood = async () => {
    while (!stop) {
      const leave = await gate.enter("flood");
      order.push("flood");
      await new Promise((r) => setTimeout(r, 1)); // a batch's work: a duration
      leave();
    }
  };
  const floods = [flood(), flood(), flood()];
  // The honest host sends its next batch only once the previous one is done.
  for (let i = 0; i < 20; i++) {
    const leave = await gate.enter("honest");
    order.push("honest");
    await new Promise((r) => setTimeout(r, 1)); // a batch's work: a duration
    leave();
  }
  stop = true;
  await Promise.all(floods);
  const turns = order.slice(0, order.lastIndexOf("honest") + 1);
  const honest = turns.filter((h) => h === "honest").length;
  assert.ok(honest / turns.length >= 0.45, `honest got ${honest} of ${turns.length} turns`);
});
