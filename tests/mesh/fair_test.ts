/** The round-robin gate (mesh/fair.ts): hosts take turns, whatever their number of streams. */
import assert from "node:assert/strict";
import { FairGate } from "../../mesh/fair.ts";

Deno.test("FairGate serves hosts round robin: ten waiting streams of one host do not starve another", async () => {
  const gate = new FairGate(1);
  const order: string[] = [];
  const first = await gate.enter("attacker");
  const work = (host: string) =>
    gate.enter(host).then((leave) => {
      order.push(host);
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
  // The honest host's two turns come second and fourth, not after the ten.
  assert.deepEqual(order.slice(0, 4), ["attacker", "honest", "attacker", "honest"]);
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
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(entered, false, "two slots taken");
  a();
  a(); // twice: still one slot given back
  (await c)();
  b();
  assert.equal(gate.waiting, 0);
});
