/**
 * Why spray-and-wait: a small simulation of people meeting at random (a camp, a
 * school), comparing the mesh's routing (binary spray-and-wait, mesh/routing.ts,
 * the function the mesh itself calls) with epidemic routing (everyone copies to
 * everyone). Measured: share of messages delivered within the horizon, mean
 * delay, and copies stored per message, which is what fills relays' quotas.
 * Part of `deno task bench`; alone: `deno run tests/bench/routing_sim.ts`.
 */
import { route } from "../../mesh/routing.ts";

interface Result {
  delivered: number;
  meanDelay: number;
  copies: number;
}

/** A seeded generator, so runs are comparable. */
function random(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 4294967296;
  };
}

function simulate(
  policy: "spray-and-wait" | "epidemic",
  nodes: number,
  meetingsPerStep: number,
  seed: number,
): Result {
  const rand = random(seed);
  const MESSAGES = 200;
  const HORIZON = 2000;
  let deliveredCount = 0;
  let delaySum = 0;
  let copySum = 0;
  for (let m = 0; m < MESSAGES; m++) {
    const source = Math.floor(rand() * nodes);
    let target = Math.floor(rand() * (nodes - 1));
    if (target >= source) target++;
    const copies = new Map<number, number>([[source, 8]]); // node → copies held
    let everHeld = 1;
    let deliveredAt = -1;
    for (let step = 0; step < HORIZON && deliveredAt < 0; step++) {
      for (let k = 0; k < meetingsPerStep; k++) {
        const a = Math.floor(rand() * nodes);
        let b = Math.floor(rand() * (nodes - 1));
        if (b >= a) b++;
        for (const [from, to] of [[a, b], [b, a]]) {
          const held = copies.get(from);
          if (held === undefined || copies.has(to)) continue;
          if (to === target) {
            deliveredAt = step;
            break;
          }
          if (policy === "epidemic") {
            copies.set(to, 1);
            everHeld++;
          } else {
            const decision = route(held, false);
            if (decision.send) {
              copies.set(to, decision.give);
              copies.set(from, held - decision.give);
              everHeld++;
            }
          }
        }
        if (deliveredAt >= 0) break;
      }
    }
    if (deliveredAt >= 0) {
      deliveredCount++;
      delaySum += deliveredAt;
    }
    copySum += everHeld;
  }
  return {
    delivered: deliveredCount / MESSAGES,
    meanDelay: delaySum / Math.max(1, deliveredCount),
    copies: copySum / MESSAGES,
  };
}

console.log("\nrouting (simulated random meetings, 200 messages each)");
for (const [nodes, meetings] of [[30, 1], [30, 5], [100, 2]]) {
  const spray = simulate("spray-and-wait", nodes, meetings, 7);
  const epidemic = simulate("epidemic", nodes, meetings, 7);
  console.log(
    `  ${nodes} people, ${meetings} meeting(s) per step: ` +
      `spray-and-wait delivers ${(spray.delivered * 100).toFixed(0)}% in ${
        spray.meanDelay.toFixed(0)
      } steps ` +
      `with ${spray.copies.toFixed(1)} copies; epidemic ${
        (epidemic.delivered * 100).toFixed(0)
      }% in ` +
      `${epidemic.meanDelay.toFixed(0)} steps with ${epidemic.copies.toFixed(1)} copies`,
  );
}
