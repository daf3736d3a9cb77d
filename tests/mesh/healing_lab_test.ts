/**
 * The mesh heals by itself: `relaymail daemon` processes in network namespaces
 * on the line A — B — C (tests/mesh/_healing.ts), mail from Alice (A) to Carol
 * (C) through Bob (B), while links go down, flap and come back, an address
 * changes, and nodes restart. No daemon is restarted to make things work: only
 * the node whose restart is the scenario restarts. Each test asserts that every
 * mail reached Carol exactly once and that every receipt came back (Alice's
 * `sent --json` shows each delivered).
 *
 * Alice finds Bob by mDNS alone; Carol also dials Bob by address (`--peer`),
 * so that both ways a node knows a peer are exercised. The two-segment test
 * runs with no `--peer` at all. Needs root; CI runs as root.
 */
import assert from "node:assert/strict";
import { readDaemonStatus } from "../../app/runtime/client.ts";
import { addressOf } from "../lab/people.ts";
import {
  arrivals,
  assertDeliveredOnce,
  assertStillRunning,
  daemon,
  deliveryStates,
  healingTest,
  type Line,
  line,
  rememberedPeers,
  seconds,
  sendMails,
  sleep,
  waitFor,
  waitForArrivals,
  waitForReceipts,
} from "./_healing.ts";

/** The figure: mail flows within this long of a link coming back. */
const FLOWING_WITHIN_MS = 10_000;
/** Generous bounds for what CI's two cores need (not figures under test). */
const DELIVERY_TIMEOUT_MS = 90_000;
const RECEIPTS_TIMEOUT_MS = 90_000;

/** Starts Bob, then Alice (mDNS only) and Carol (dialling Bob); returns Bob's peer id. */
async function startLine(l: Line): Promise<string> {
  daemon(l.bob);
  const bobFromC = await addressOf(l.bob, l.bc.a.address);
  daemon(l.alice);
  daemon(l.carol, { peers: [bobFromC] });
  return bobFromC.split("/p2p/")[1];
}

/** One mail A → C and its receipt back: the line works before anything breaks. */
async function warmUp(l: Line): Promise<string[]> {
  const ids = await sendMails(l.alice, "Carol", 1, "Before");
  await waitForArrivals(l.carol, ids, DELIVERY_TIMEOUT_MS, "the first mail across the line");
  await waitForReceipts(l.alice, ids, RECEIPTS_TIMEOUT_MS);
  return ids;
}

/** Asserts that Carol never heard Alice directly. */
async function assertNeverDirect(l: Line): Promise<void> {
  const aliceId = (await waitFor("Alice's status", () => readDaemonStatus(l.alice.dir)))!.peerId;
  assert.ok(!(await l.carol.daemon!.log()).includes(aliceId), "Carol heard Alice directly");
}

/**
 * The A — B link down for `downMs`, mail sent meanwhile: the first of it must
 * reach Carol within 10 s of the link coming back.
 */
async function outage(l: Line, downMs: number): Promise<void> {
  await startLine(l);
  const before = await warmUp(l);
  await l.ab.cut();
  const downAt = Date.now();
  const during = await sendMails(l.alice, "Carol", 3, "During the outage");
  await sleep(downAt + downMs - Date.now()); // the outage is the scenario: a duration
  const upAt = await l.ab.restore();
  const arrived = await waitForArrivals(l.carol, during, DELIVERY_TIMEOUT_MS);
  const first = Math.min(...arrived.values()) - upAt;
  const last = Math.max(...arrived.values()) - upAt;
  await waitForReceipts(l.alice, [...before, ...during], RECEIPTS_TIMEOUT_MS);
  const receipts = Date.now() - upAt;
  console.log(
    `link down ${seconds(downMs)}: link up → first mail at C ${seconds(first)}, ` +
      `all 3 at C ${seconds(last)}, all receipts at A within ${seconds(receipts)}`,
  );
  assert.ok(first > 0, "mail reached Carol while the A — B link was down");
  assert.ok(
    first <= FLOWING_WITHIN_MS,
    `The first mail reached Carol ${first} ms after the link came back: more than ${FLOWING_WITHIN_MS} ms`,
  );
  await assertDeliveredOnce(l.alice, l.carol, [...before, ...during]);
  await assertNeverDirect(l);
  assertStillRunning(l.alice, l.bob, l.carol);
}

healingTest(
  "mesh heals: the A — B link down for 5 s, mail flows within 10 s of it coming back",
  async (lab) => await outage(await line(lab), 5_000),
);

healingTest(
  "mesh heals: the A — B link down for 60 s, mail flows within 10 s of it coming back",
  async (lab) => await outage(await line(lab), 60_000),
);

healingTest(
  "mesh heals: a node restarting next to a relay finds it, without --peer",
  async (lab) => {
    const l = await line(lab);
    const bobId = await startLine(l);
    const ids = await warmUp(l);
    // A mail reaches Carol; Alice leaves before (or as) its receipt comes back.
    ids.push(...await sendMails(l.alice, "Carol", 1, "Just before the restart"));
    await waitForArrivals(l.carol, ids, DELIVERY_TIMEOUT_MS);
    const leaving = await l.alice.daemon!.stop();
    assert.equal(leaving.code, 0, "Alice's daemon did not stop cleanly on SIGTERM");
    const whileAway = await sendMails(l.alice, "Carol", 2, "Written while the daemon was off");
    ids.push(...whileAway);
    // Off for a while, a duration: Bob's redials of her back off meanwhile.
    await sleep(3_000);

    const restartedAt = Date.now();
    daemon(l.alice);
    await waitFor(
      "the restarted Alice connected to Bob",
      async () => (await readDaemonStatus(l.alice.dir))?.peers.some((p) => p.id === bobId),
      DELIVERY_TIMEOUT_MS,
    );
    const found = Date.now() - restartedAt;
    const arrived = await waitForArrivals(l.carol, whileAway, DELIVERY_TIMEOUT_MS);
    await waitForReceipts(l.alice, ids, RECEIPTS_TIMEOUT_MS);
    console.log(
      `restart: daemon started → connected to Bob ${seconds(found)} (polled), → first mail at C ` +
        `${seconds(Math.min(...arrived.values()) - restartedAt)}, → all receipts ${
          seconds(Date.now() - restartedAt)
        }`,
    );
    await assertDeliveredOnce(l.alice, l.carol, ids);
    await assertNeverDirect(l);
    assertStillRunning(l.alice, l.bob, l.carol);
  },
);

healingTest(
  "mesh heals: a relay with two interfaces joins two segments by mDNS alone (no --peer)",
  async (lab) => {
    const l = await line(lab, { relayMulticast: "both" });
    daemon(l.alice); // no --peer anywhere: mDNS alone
    daemon(l.carol);
    const ids = await sendMails(l.alice, "Carol", 3, "Across two segments");
    await waitFor(
      "Alice's and Carol's daemons up before the relay",
      async () => (await readDaemonStatus(l.alice.dir)) && (await readDaemonStatus(l.carol.dir)),
      DELIVERY_TIMEOUT_MS,
    );
    const joinedAt = Date.now();
    daemon(l.bob); // the relay arrives
    const arrived = await waitForArrivals(l.carol, ids, 60_000, "mail across both segments");
    await waitForReceipts(l.alice, ids, RECEIPTS_TIMEOUT_MS);
    console.log(
      `two segments: relay started → first mail at C ${
        seconds(Math.min(...arrived.values()) - joinedAt)
      }, → all receipts ${seconds(Date.now() - joinedAt)}`,
    );
    await assertDeliveredOnce(l.alice, l.carol, ids);
    await assertNeverDirect(l);
    assertStillRunning(l.alice, l.bob, l.carol);
  },
);

/**
 * Down and up periods of the flapping link, in seconds (60 s in all): ups
 * shorter than a reconnection, downs longer than the keep-alive's patience.
 */
const FLAPS: readonly [down: number, up: number][] = [
  [2, 3],
  [1, 1],
  [8, 2],
  [3, 1],
  [1, 4],
  [10, 1],
  [2, 2],
  [1, 1],
  [5, 3],
  [2, 7],
];

healingTest("mesh heals: the A — B link flapping for 60 s while 50 mails cross", async (lab) => {
  const l = await line(lab);
  // Slow enough that flaps cut transfers midway (each mail takes ~0.1-0.3 s).
  await lab.throttle(l.ab.a.host, l.ab.a.interface, "2mbit");
  await startLine(l);
  const ids = await warmUp(l);
  const started = Date.now();
  const sending = (async () => {
    for (let i = 0; i < 50; i++) {
      await sleep(started + i * 1_200 - Date.now()); // pacing: a mail every 1.2 s
      ids.push(
        ...await sendMails(l.alice, "Carol", 1, `Flapping ${i + 1}`, 2_000 + (i * 7919) % 60_000),
      );
    }
  })();
  let upAt = 0;
  const ups: number[] = [];
  // The flaps are the scenario: durations, not waits.
  for (const [down, up] of FLAPS) {
    await l.ab.cut();
    await sleep(down * 1_000);
    upAt = await l.ab.restore();
    ups.push(upAt);
    await sleep(up * 1_000);
  }
  await sending;
  const flapped = Date.now() - started;
  const arrived = await waitForArrivals(l.carol, ids, DELIVERY_TIMEOUT_MS);
  await waitForReceipts(l.alice, ids, RECEIPTS_TIMEOUT_MS);
  // Per up period: how soon a mail arrived, for the ones where one did.
  const firstAfterUp = ups.map((u, i) => {
    const next = ups[i + 1] ?? Infinity;
    const times = [...arrived.values()].filter((t) => t >= u && t < next);
    return times.length ? Math.min(...times) - u : null;
  });
  console.log(
    `flapping ${seconds(flapped)}: all 51 at C ${
      seconds(Math.max(...arrived.values()) - upAt)
    } after the last link-up, receipts ${seconds(Date.now() - upAt)}; ` +
      `per link-up → first arrival: ${
        firstAfterUp.map((t) => t === null ? "-" : seconds(t)).join(" ")
      }`,
  );
  await assertDeliveredOnce(l.alice, l.carol, ids);
  await assertNeverDirect(l);
  assertStillRunning(l.alice, l.bob, l.carol);
});

healingTest("mesh heals: a host whose address changes (the sender's, then the relay's)", async (
  lab,
) => {
  const l = await line(lab);
  await startLine(l);
  const ids = await warmUp(l);
  const timings: string[] = [];
  for (const [side, who] of [["a", "Alice"], ["b", "Bob"]] as const) {
    const end = l.ab[side];
    const address = end.address.replace(/\.(\d+)$/, (_, n) => `.${Number(n) + 10}`);
    await l.ab.readdress(side, address);
    const changedAt = Date.now();
    const batch = await sendMails(l.alice, "Carol", 2, `After ${who}'s address changed`);
    ids.push(...batch);
    let arrived;
    try {
      arrived = await waitForArrivals(l.carol, batch, DELIVERY_TIMEOUT_MS);
      await waitForReceipts(l.alice, ids, RECEIPTS_TIMEOUT_MS);
    } catch (error) {
      // Whom each node redials, and where: stale addresses show here.
      for (const p of [l.alice, l.bob]) {
        console.error(`${p.name} redials (known-peers): ${rememberedPeers(p)}`);
      }
      console.error(`Addresses now: Alice ${l.ab.a.address}, Bob ${l.ab.b.address}`);
      throw error;
    }
    timings.push(
      `${who}'s address changed → first mail at C ${
        seconds(Math.min(...arrived.values()) - changedAt)
      }, → receipts ${seconds(Date.now() - changedAt)}`,
    );
  }
  console.log(`address change: ${timings.join("; ")}`);
  await assertDeliveredOnce(l.alice, l.carol, ids);
  await assertNeverDirect(l);
  assertStillRunning(l.alice, l.bob, l.carol);
});

healingTest(
  "mesh heals: a relay killed with SIGKILL mid-batch and restarted (only it restarts)",
  async (lab) => {
    const l = await line(lab);
    await lab.throttle(l.ab.a.host, l.ab.a.interface, "2mbit");
    await startLine(l);
    const ids = await warmUp(l);
    const batch: string[] = [];
    for (let i = 0; i < 10; i++) {
      // ~0.6 s each at 2 Mbit/s
      batch.push(...await sendMails(l.alice, "Carol", 1, `Batch ${i + 1}`, 150_000));
    }
    ids.push(...batch);
    // Handed to Bob (or already delivered through him): Alice's sent folder says.
    const handedOver = () =>
      deliveryStates(l.alice, batch).then((states) =>
        [...states.values()].filter((s) => s !== "queued").length
      );
    const handed = await waitFor(
      "three of the batch handed to Bob",
      async () => {
        const count = await handedOver();
        return count >= 3 ? count : 0;
      },
      DELIVERY_TIMEOUT_MS,
    );
    await l.bob.daemon!.stop("SIGKILL");
    const atKill = (await arrivals(l.carol, batch)).size;
    assert.ok(handed < 10, "the kill came after the whole batch");
    await sleep(2_000); // down a while before it restarts, a duration
    const restartedAt = Date.now();
    daemon(l.bob);
    const arrived = await waitForArrivals(l.carol, batch, DELIVERY_TIMEOUT_MS);
    await waitForReceipts(l.alice, ids, RECEIPTS_TIMEOUT_MS);
    const after = [...arrived.values()].filter((t) => t >= restartedAt);
    console.log(
      `relay SIGKILL after ${handed} of 10 handed to it (${atKill} at C): restart → ` +
        `first mail at C ${after.length ? seconds(Math.min(...after) - restartedAt) : "-"}, ` +
        `all at C ${seconds(Math.max(...arrived.values()) - restartedAt)}, receipts ${
          seconds(Date.now() - restartedAt)
        }`,
    );
    await assertDeliveredOnce(l.alice, l.carol, ids);
    await assertNeverDirect(l);
    assertStillRunning(l.alice, l.bob, l.carol);
  },
);
