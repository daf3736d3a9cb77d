/**
 * How long the mesh takes to heal: the time from a link coming back to the
 * first mail delivered over it, p50 and p99 over 20 flaps, beside a baseline
 * measured in the same run, the same delivery over a link that never went
 * down. Two namespace hosts, Alice and Bob, each running `relaymail daemon`
 * with mDNS on (they find each other by mDNS alone); each flap takes the link
 * down for a few seconds (2 to 8: the short ones outlive no connection, the
 * long ones outlive the keep-alive's patience, so the node must dial again),
 * Alice writes to Bob meanwhile, and the link comes back.
 *
 * - healing: link up → the mail in Bob's inbox (its `receivedAt`);
 * - baseline: the parcel in Alice's mesh store → the mail in Bob's inbox,
 *   link up all along (the path a healed link takes from the moment it is up).
 *
 * Part of `deno task bench` (it runs as the module loads); alone:
 * `deno run -A tests/bench/healing_bench.ts`. Needs root for the namespaces:
 * without it, it says why and does nothing.
 */
import { canMakeNamespaces, Lab } from "../lab/netns.ts";
import { pairOffline, person, withMeshStore } from "../lab/people.ts";
import {
  daemon,
  quantile,
  sendMails,
  sleep,
  waitFor,
  waitForArrivals,
  Wire,
} from "../mesh/_healing.ts";

const FLAPS = 20;
/** How long each outage lasts, in turn, in ms. */
const DOWN_MS = [2_000, 4_000, 8_000, 3_000, 5_000];
const BASELINE_SAMPLES = 20;
const TIMEOUT_MS = 60_000;

interface Sample {
  readonly downMs: number;
  readonly healMs: number;
  /** Whether the node had to connect again (the old connection was given up). */
  readonly reconnected: boolean;
}

/** When `check` first held, polling every 10 ms (finer than `waitFor`'s 250). */
async function pollClosely(what: string, check: () => boolean): Promise<number> {
  const deadline = Date.now() + TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (check()) return Date.now();
    await sleep(10);
  }
  throw new Error(`Timed out after ${TIMEOUT_MS} ms waiting for ${what}`);
}

async function healingBench(): Promise<void> {
  if (!canMakeNamespaces()) {
    console.log(
      "healing_bench: skipped: it needs root and iproute2 to create network namespaces",
    );
    return;
  }
  const started = Date.now();
  const lab = await Lab.create();
  try {
    const [a, b] = [await lab.host("a"), await lab.host("b")];
    const wire = await Wire.create(lab, a, b);
    const alice = await person(lab, a, "Alice");
    const bob = await person(lab, b, "Bob");
    await pairOffline(alice, bob);
    daemon(alice);
    daemon(bob);
    await waitForArrivals(
      bob,
      await sendMails(alice, "Bob", 1, "Warm-up"),
      TIMEOUT_MS,
      "the first mail",
    );

    const baseline: number[] = [];
    for (let i = 0; i < BASELINE_SAMPLES; i++) {
      const [id] = await sendMails(alice, "Bob", 1, `Baseline ${i + 1}`);
      const inMesh = await pollClosely(
        "the parcel in Alice's mesh store",
        () => withMeshStore(alice, (s) => s.list().length > 0),
      );
      const arrived = await waitForArrivals(bob, [id], TIMEOUT_MS);
      baseline.push(arrived.get(id)! - inMesh);
      await sleep(300);
    }

    const samples: Sample[] = [];
    const lost = async () => ((await alice.daemon!.log()).match(/peer lost/g) ?? []).length;
    for (let i = 0; i < FLAPS; i++) {
      const downMs = DOWN_MS[i % DOWN_MS.length];
      const lostBefore = await lost();
      await wire.cut();
      const downAt = Date.now();
      const [id] = await sendMails(alice, "Bob", 1, `Flap ${i + 1}`);
      await waitFor(
        "the parcel in Alice's mesh store",
        () => withMeshStore(alice, (s) => s.list().length > 0),
        TIMEOUT_MS,
      );
      await sleep(downAt + downMs - Date.now());
      const upAt = await wire.restore();
      const arrived = await waitForArrivals(bob, [id], TIMEOUT_MS);
      samples.push({
        downMs,
        healMs: arrived.get(id)! - upAt,
        reconnected: (await lost()) > lostBefore,
      });
      await sleep(500);
    }

    const heal = samples.map((s) => s.healMs);
    const ms = (n: number) => `${Math.round(n)} ms`;
    console.log(`healing_bench (${FLAPS} flaps of the A — B link, mDNS, CLI daemons):`);
    for (const downMs of DOWN_MS) {
      const of = samples.filter((s) => s.downMs === downMs);
      console.log(
        `  down ${downMs / 1000} s: link up → mail delivered ${
          of.map((s) => `${ms(s.healMs)}${s.reconnected ? " (reconnected)" : ""}`).join(", ")
        }`,
      );
    }
    const [p50, p99] = [quantile(heal, 0.5), quantile(heal, 0.99)];
    const [b50, b99] = [quantile(baseline, 0.5), quantile(baseline, 0.99)];
    console.log(`  healing:  p50 ${ms(p50)}, p99 ${ms(p99)} (link up → mail in Bob's inbox)`);
    console.log(
      `  baseline: p50 ${ms(b50)}, p99 ${ms(b99)} (parcel in Alice's mesh store → inbox, link up)`,
    );
    console.log(
      `  ratio:    p50 ×${(p50 / b50).toFixed(1)}, p99 ×${(p99 / b99).toFixed(1)}; ` +
        `${
          samples.filter((s) => s.reconnected).length
        } of ${FLAPS} flaps needed a new connection; ` +
        `run took ${Math.round((Date.now() - started) / 1000)} s`,
    );
  } catch (error) {
    await lab.dumpLogs();
    throw error;
  } finally {
    await lab.destroy();
  }
}

await healingBench();
