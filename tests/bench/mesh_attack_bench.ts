/**
 * The mesh under attack, each figure beside a baseline measured in the same run.
 * Part of `deno task bench`; run alone with
 * `deno run -A tests/bench/mesh_attack_bench.ts [--rounds 3] [--only goodput]`.
 *
 * - goodput: parcels per second an honest sender gets acknowledged by a relay
 *   while it is flooded, against the same with no flood, for two senders:
 *   - saturating: it pushes all its parcels at once, as fast as the relay takes
 *     them. The relay serves busy hosts in turns (mesh/fair.ts), so against a
 *     saturating attacker it gets about half of what it gets alone: ~0.5 is
 *     fair sharing, not a fault;
 *   - paced: its app hands it parcels at a steady rate well under the relay's
 *     capacity (`--pace`, 100 a second). Here the aim is ≥ 0.9 of its goodput
 *     without the flood.
 *
 *   The relay, the honest sender and the attacker are three processes; the
 *   honest sender connects from 127.0.0.1, the attacker from 127.0.0.66 with
 *   many peer ids (distinct parcels; re-encoded parcels; coded symbols), or
 *   from 500 addresses (handshakes that never finish). The Sybil's distinct
 *   parcels (each its own parcel id and signature, from four sender keys with
 *   self-issued PDAs) are made once per run by a child process before anything
 *   is timed;
 * - memory: the relay's peak resident memory during each flood (window-ignoring
 *   parcel pusher, coded-symbol flood, tombstone flood, handshake flood),
 *   against its resident memory idle just before. These floods come from many
 *   loopback addresses, enough to reach the relay's global stream limits;
 * - proofs: parcels per CPU-second a relay validates, stores and forwards when
 *   the recipient's node answers with delivery proofs the relay checks, against
 *   the same stream without proofs, and against relaynet-core validating them;
 * - reconciliation: octets and time of one sync between two nodes holding
 *   10 000 items in common and d differing, against exchanging full lists.
 *
 * Every node runs with mDNS off; all traffic stays on loopback. Speed is
 * measured here only, never asserted in tests. Options:
 *
 * - `--rounds n` (default 1): rounds of the goodput, memory and proofs cases,
 *   interleaved with their baselines; figures are medians;
 * - `--honest n` (default 300): parcels of 1 KiB the saturating honest sender pushes;
 * - `--paced n` (default 300): parcels of 1 KiB the paced honest sender hands in;
 * - `--pace n` (default 100): the paced sender's parcels per second;
 * - `--sybil n` (default 5000): distinct parcels the Sybil holds (it sends each
 *   until the relay stores it; the output says if it ran out);
 * - `--warmup ms` (default 2000): flood before the honest sender starts;
 * - `--flood ms` (default 4000): length of each memory flood;
 * - `--relay n` (default 600): parcels of the proofs case;
 * - `--window-payload octets` (default 1 MiB): parcels of the window-ignoring pusher;
 * - `--victim-rate n`: the flooded relay's per-peer rate limit in the goodput case
 *   (parcels per second; its hosts get twice that), instead of the default 200;
 * - `--only goodput|memory|proofs|reconciliation`.
 */
import "../../app/_quiet.ts";
import { derSerializePrivateKey, Parcel } from "@relaycorp/relaynet-core";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { FastParcelValidator } from "../../bindings/fast_validation.ts";
import { createParcelFixture, type ParcelFixture } from "../../bindings/testing/fixtures.ts";
import { sha256Hex } from "../../bindings/validation.ts";
import { makeDeliveryProof, MeshNode, SignatureVerifier, signerFromPkcs8 } from "../../mesh/mod.ts";
import { type GenerateConfig, signedCopies, writeParcels } from "./_attack_parcels.ts";
import {
  type Child,
  cpuMs,
  cpuSeconds,
  median,
  residentMemory,
  sleep,
  spawn,
  waitingSeconds,
} from "./_attack_procs.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    rounds: { type: "string", default: "1" },
    honest: { type: "string", default: "300" },
    paced: { type: "string", default: "300" },
    pace: { type: "string", default: "100" },
    sybil: { type: "string", default: "5000" },
    warmup: { type: "string", default: "2000" },
    flood: { type: "string", default: "4000" },
    relay: { type: "string", default: "600" },
    "window-payload": { type: "string", default: String(1024 * 1024) },
    "victim-rate": { type: "string" },
    only: { type: "string" },
  },
});
const ROUNDS = Number(flags.rounds);
const HONEST_PARCELS = Number(flags.honest);
const PACED_PARCELS = Number(flags.paced);
const PACE = Number(flags.pace);
const SYBIL_PARCELS = Number(flags.sybil);
const WARMUP_MS = Number(flags.warmup);
const FLOOD_MS = Number(flags.flood);
const RELAY_PARCELS = Math.max(Number(flags.relay), HONEST_PARCELS, PACED_PARCELS);
const WINDOW_PAYLOAD = Number(flags["window-payload"]);
/** The flooded relay's per-peer rate limit, parcels per second (default: the node's default). */
const VICTIM_RATE = flags["victim-rate"] ? Number(flags["victim-rate"]) : undefined;
for (
  const [name, value] of Object.entries({
    ROUNDS,
    HONEST_PARCELS,
    PACED_PARCELS,
    SYBIL_PARCELS,
    WARMUP_MS,
    FLOOD_MS,
  })
) {
  if (!(value >= 0 && Number.isFinite(value))) throw new RangeError(`Bad option ${name}: ${value}`);
}
if (!(PACE > 0 && Number.isFinite(PACE))) throw new RangeError(`Bad option PACE: ${PACE}`);

const NODE = join(import.meta.dirname!, "_attack_node.ts");
const FLOOD = join(import.meta.dirname!, "_attack_flood.ts");
const PARCELS = join(import.meta.dirname!, "_attack_parcels.ts");
/** The attacking host of the goodput case. */
const ATTACKER = "127.0.0.66";
/** Sender keys of the Sybil's distinct parcels. */
const SYBIL_SENDERS = 4;
/** Signed parcels the re-encoding flood re-cuts. */
const VARIANT_BASES = 8;
/** Attacking hosts of the memory case: 8 × 2 peer ids × 2 streams reach every global limit. */
const MEMORY_HOSTS = Array.from({ length: 8 }, (_, i) => `127.0.0.${70 + i}`);
/** Source addresses of the handshake flood. */
const HANDSHAKE_HOSTS = Array.from(
  { length: 500 },
  (_, i) => `127.0.${10 + Math.floor(i / 254)}.${1 + (i % 254)}`,
);
const MIB = 1024 * 1024;

/** A row of the closing table. */
interface Row {
  readonly figure: string;
  readonly value: string;
  readonly baseline: string;
  readonly ratio: number;
}
const table: Row[] = [];

function report(name: string, lines: string[]): void {
  console.log(`\n${name}\n${lines.map((l) => `  ${l}`).join("\n")}`);
}

// Parcels, made once for every case

interface Material {
  readonly dir: string;
  readonly fixture: ParcelFixture;
  /** HONEST_PARCELS parcels of 1 KiB, for the saturating sender. */
  readonly honestFile: string;
  /** PACED_PARCELS parcels of 1 KiB, for the paced sender. */
  readonly pacedFile: string;
  /** RELAY_PARCELS parcels of 1 KiB, the honest ones first. */
  readonly relayFile: string;
  readonly relayParcels: Uint8Array[];
  /** The recipient's identity key, DER PKCS#8. */
  readonly signerFile: string;
  /** SYBIL_PARCELS distinct signed parcels of the Sybil, from SYBIL_SENDERS sender keys. */
  readonly sybilFile: string;
  /** One large signed parcel of the Sybil's, for the window-ignoring pusher. */
  readonly bigFile: string;
  /** Seconds the Sybil's parcels took to make (untimed, before every case). */
  readonly sybilSeconds: number;
}

async function prepare(): Promise<Material> {
  const dir = await Deno.makeTempDir({ prefix: "relaymail-attack-bench-" });
  const sybilFile = join(dir, "sybil.bin");
  const bigFile = join(dir, "big.bin");
  // The Sybil's parcels, in a process of their own while this one makes the honest ones.
  const generate: GenerateConfig = {
    file: sybilFile,
    count: SYBIL_PARCELS,
    senders: SYBIL_SENDERS,
    bigFile,
    bigPayload: WINDOW_PAYLOAD,
  };
  const generating = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", PARCELS, JSON.stringify(generate)],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const fixture = await createParcelFixture();
  const senderKey = new Uint8Array(await derSerializePrivateKey(fixture.senderPrivateKey));
  const relayParcels = await signedCopies(await fixture.makeParcel(), senderKey, RELAY_PARCELS);
  const generated = await generating;
  if (!generated.success) throw new Error(`${PARCELS} failed with code ${generated.code}`);
  const done = JSON.parse(new TextDecoder().decode(generated.stdout).trim().split("\n").at(-1)!);
  const material = {
    dir,
    fixture,
    honestFile: join(dir, "honest.bin"),
    pacedFile: join(dir, "paced.bin"),
    relayFile: join(dir, "relay.bin"),
    relayParcels,
    signerFile: join(dir, "recipient.pkcs8"),
    sybilFile,
    bigFile,
    sybilSeconds: done.ms / 1000,
  };
  await writeParcels(material.honestFile, relayParcels.slice(0, HONEST_PARCELS));
  await writeParcels(material.pacedFile, relayParcels.slice(0, PACED_PARCELS));
  await writeParcels(material.relayFile, relayParcels);
  await Deno.writeFile(material.signerFile, fixture.recipientPrivateKeyDer);
  return material;
}

// 1. Goodput under a flood

type GoodputFlood = "none" | "parcels" | "variants" | "sync" | "handshake";
type Profile = "saturating" | "paced";
type GoodputRun = Awaited<ReturnType<typeof goodputOnce>>;

async function goodputOnce(material: Material, flood: GoodputFlood, profile: Profile) {
  const victim = await spawn(NODE, { parcelsPerSecond: VICTIM_RATE });
  const children = [victim];
  const count = profile === "paced" ? PACED_PARCELS : HONEST_PARCELS;
  const deadlineMs = 30_000 + (profile === "paced" ? (count / PACE) * 1000 : 0);
  try {
    const address = victim.ready.address as string;
    const started = await Promise.allSettled([
      spawn(
        NODE,
        profile === "paced"
          ? { parcelsFile: material.pacedFile, pace: PACE }
          : { parcelsFile: material.honestFile },
      ),
      flood === "none" ? null : spawn(FLOOD, {
        kind: flood,
        target: address,
        sources: flood === "handshake" ? HANDSHAKE_HOSTS : [ATTACKER],
        peersPerSource: 8,
        streamsPerPeer: flood === "parcels" || flood === "variants" ? 2 : 1,
        parcelsFile: material.sybilFile,
        parcelsUsed: flood === "variants" ? VARIANT_BASES : undefined,
      }),
    ]);
    for (const s of started) if (s.status === "fulfilled" && s.value) children.push(s.value);
    const [honest, attacker] = started.map((s) => {
      if (s.status === "rejected") throw s.reason;
      return s.value;
    });
    await sleep(WARMUP_MS);
    const before = attacker && await attacker.ask("stats", "stats");
    const cpuOf = () => Promise.all(children.map((c) => cpuSeconds(c.pid)));
    // Also resets the victim's event-loop lag figures.
    const { arrived: storedBefore } = await victim.ask("stats", "stats");
    const cpuBefore = await cpuOf();
    const waitingBefore = await waitingSeconds(victim.pid);
    const pushed = await honest!.ask(`push ${address} ${count} ${deadlineMs}`, "pushed");
    const [cpu, honestCpu, attackerCpu = 0] = (await cpuOf()).map((c, i) => c - cpuBefore[i]);
    const waiting = await waitingSeconds(victim.pid) - waitingBefore;
    const after = attacker && await attacker.ask("stats", "stats");
    const { lagMs, arrived: storedAfter } = await victim.ask("stats", "stats");
    const seconds = pushed.ms / 1000;
    return {
      rate: pushed.handed / seconds,
      count,
      handed: pushed.handed as number,
      seconds,
      dials: pushed.dials as number,
      connectedMs: pushed.connectedMs as number | null,
      handInMs: pushed.handInMs as number,
      latencyMs: pushed.latencyMs as { p50: number; p95: number; worst: number } | null,
      refused: pushed.refused as Record<string, number>,
      victimCpuShare: cpu / seconds,
      /** Share of the time the relay's event loop was ready to run but had no core. */
      victimWaitingShare: waiting / seconds,
      lagMs: lagMs as { mean: number; worst: number },
      /** Parcels per second the relay stored from everyone while the honest sender pushed. */
      relayStored: (storedAfter - storedBefore) / seconds,
      honestCpuShare: honestCpu / seconds,
      attackerCpuShare: attackerCpu / seconds,
      attacker: before && after ? floodDelta(before, after, seconds) : null,
    };
  } finally {
    await Promise.all(children.map((c) => c.close()));
  }
}

/** What the attacker got done per second while the honest sender pushed. */
function floodDelta(before: Record<string, any>, after: Record<string, any>, seconds: number) {
  const per = (field: string) => ((after[field] ?? 0) - (before[field] ?? 0)) / seconds;
  const refused = Object.keys(after.refused ?? {}).map((code) =>
    `${code} ${
      (((after.refused[code] ?? 0) - (before.refused?.[code] ?? 0)) / seconds).toFixed(0)
    }/s`
  );
  return {
    peers: after.peers as number,
    frames: per("framesSent"),
    octets: per("octetsSent"),
    stored: per("stored"),
    held: per("held"),
    syncRounds: per("syncRounds"),
    busy: per("busy"),
    connects: per("connects"),
    closed: per("closedByTarget"),
    refused: refused.join(", ") || "none",
    /** Over the whole flood, warm-up included. */
    storedInAll: after.stored as number,
    fresh: after.fresh as number,
    passes: after.passes as number,
  };
}

/** Cores each process kept busy while the honest sender pushed. */
function cpuLine(run: GoodputRun): string {
  const pct = (share: number) => `${(share * 100).toFixed(0)} %`;
  const refused = Object.entries(run.refused).map(([code, n]) => `${code} ${n}`).join(", ");
  return `relay stored ${run.relayStored.toFixed(0)} parcels/s from everyone, ${
    pct(Math.min(1, run.rate / run.relayStored))
  } of them honest; CPU: relay ${pct(run.victimCpuShare)}, honest ${
    pct(run.honestCpuShare)
  }, attacker ${pct(run.attackerCpuShare)} of a core; the relay's event loop waited for a core ${
    pct(run.victimWaitingShare)
  } of the time; its lag mean ${run.lagMs.mean.toFixed(1)} ms, worst ${
    run.lagMs.worst.toFixed(0)
  } ms${refused ? `; honest parcels refused: ${refused}` : ""}`;
}

/** How the honest sender fared: parcels, time, dials, and for the paced one its latency. */
function honestLine(run: GoodputRun): string {
  const latency = run.latencyMs
    ? `; hand-in to acknowledgement: median ${run.latencyMs.p50.toFixed(0)} ms, p95 ${
      run.latencyMs.p95.toFixed(0)
    } ms, worst ${run.latencyMs.worst.toFixed(0)} ms; last hand-in at ${
      (run.handInMs / 1000).toFixed(2)
    } s`
    : "";
  const connected = run.connectedMs === null
    ? "NEVER CONNECTED"
    : `connected after ${run.connectedMs.toFixed(0)} ms`;
  return `${run.handed}/${run.count} in ${
    run.seconds.toFixed(2)
  } s, ${connected} (${run.dials} dial(s))${latency}`;
}

const GOODPUT_FLOODS: GoodputFlood[] = ["none", "parcels", "variants", "sync", "handshake"];
const FLOOD_LABELS = {
  parcels: "Sybil parcel flood",
  variants: "re-encoded parcel flood",
  sync: "coded-symbol flood",
  handshake: "handshake flood",
} as const;

async function goodput(material: Material): Promise<void> {
  const profiles: Profile[] = ["saturating", "paced"];
  const runs = new Map<string, GoodputRun[]>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const profile of profiles) {
      for (const flood of GOODPUT_FLOODS) {
        const key = `${profile} ${flood}`;
        runs.set(key, [...(runs.get(key) ?? []), await goodputOnce(material, flood, profile)]);
      }
    }
  }
  const what = {
    parcels:
      `8 peer ids, 2 streams each, ${SYBIL_PARCELS} distinct valid parcels of ${SYBIL_SENDERS} self-authorised senders, each sent until stored`,
    variants:
      `8 peer ids, 2 streams each, re-encodings of ${VARIANT_BASES} signed parcels: validated, then "already held"`,
    sync: "8 peer ids, random symbols in full SYMBOLS frames",
    handshake: `${HANDSHAKE_HOSTS.length} addresses, TCP connects that never finish Noise`,
  };
  const lines = [
    `honest node (127.0.0.1) to a relay with ${
      VICTIM_RATE ? `a limit of ${VICTIM_RATE} parcels/s per peer` : "default limits"
    }; attacker on ${ATTACKER}`,
    `(handshakes: many addresses), flooding ${WARMUP_MS} ms before and during the push; median of ${ROUNDS}`,
    `round(s), details of the last; relay, honest sender and attacker are processes sharing ${navigator.hardwareConcurrency} cores;`,
    `the Sybil's ${SYBIL_PARCELS} distinct parcels took ${
      material.sybilSeconds.toFixed(1)
    } s to make, before any timing`,
  ];
  for (const profile of profiles) {
    const rate = (flood: GoodputFlood) =>
      median(runs.get(`${profile} ${flood}`)!.map((r) => r.rate));
    const baseline = rate("none");
    const none = runs.get(`${profile} none`)!.at(-1)!;
    const saturatingBaseline = median(runs.get("saturating none")!.map((r) => r.rate));
    lines.push(
      "",
      ...(profile === "saturating"
        ? [
          `SATURATING: ${HONEST_PARCELS} parcels of 1 KiB pushed at once, as fast as the relay acknowledges.`,
          `  The relay serves busy hosts in turns, so against a saturating attacker this sender gets`,
          `  about half its no-flood goodput: expect ~0.5 (fair sharing, not a fault).`,
        ]
        : [
          `PACED: ${PACED_PARCELS} parcels of 1 KiB handed in at ${PACE}/s (${
            ((PACE / saturatingBaseline) * 100).toFixed(0)
          } % of the saturating sender's no-flood rate),`,
          `  from the push command on, connected or not; goodput = parcels / time from the first hand-in`,
          `  to the last acknowledgement. The aim: ≥ 0.9 of its no-flood goodput.`,
        ]),
      `no flood: ${baseline.toFixed(0)} parcels/s (${honestLine(none)})`,
      `  ${cpuLine(none)}`,
    );
    for (const flood of GOODPUT_FLOODS.slice(1) as Exclude<GoodputFlood, "none">[]) {
      const last = runs.get(`${profile} ${flood}`)!.at(-1)!;
      const value = rate(flood);
      const a = last.attacker!;
      const done = flood === "parcels"
        ? `${a.frames.toFixed(0)} parcels/s sent, ${a.stored.toFixed(0)}/s stored, ${
          a.held.toFixed(0)
        }/s held, refused: ${a.refused}; ${a.storedInAll} stored in all, ${a.fresh} of ${SYBIL_PARCELS} never stored${
          a.fresh === 0 ? " (THE SYBIL RAN OUT OF PARCELS: raise --sybil)" : ""
        }`
        : flood === "variants"
        ? `${a.frames.toFixed(0)} parcels/s sent, ${a.stored.toFixed(0)}/s stored, ${
          a.held.toFixed(0)
        }/s held, refused: ${a.refused}`
        : flood === "sync"
        ? `${a.syncRounds.toFixed(1)} syncs/s, ${(a.octets / MIB).toFixed(1)} MiB/s of symbols`
        : `${a.connects.toFixed(0)} connects/s, ${a.closed.toFixed(0)}/s closed by the relay`;
      const ratio = value / baseline;
      lines.push(
        `${FLOOD_LABELS[flood]} (${what[flood]}): ${value.toFixed(0)} parcels/s, goodput ratio ${
          ratio.toFixed(2)
        }${profile === "paced" && ratio < 0.9 ? " (UNDER THE AIM OF 0.9)" : ""}`,
        `  honest: ${honestLine(last)}`,
        `  ${cpuLine(last)}`,
        `  attacker: ${a.peers ? `${a.peers} peer ids up, ` : ""}${done}${
          a.busy ? `; streams refused busy ${a.busy.toFixed(0)}/s` : ""
        }`,
      );
      table.push({
        figure: profile === "saturating"
          ? `honest goodput, saturating (fair share ~0.5), under ${FLOOD_LABELS[flood]}`
          : `honest goodput, paced ${PACE}/s (aim ≥ 0.9), under ${FLOOD_LABELS[flood]}`,
        value: `${value.toFixed(0)} parcels/s`,
        baseline: `${baseline.toFixed(0)} parcels/s, no flood`,
        ratio,
      });
    }
  }
  report("goodput under a flood", lines);
}

// 2. Memory of the victim under each flood

type MemoryFlood = "window" | "sync" | "proofs" | "handshake";

async function memoryOnce(material: Material, flood: MemoryFlood) {
  const victim = await spawn(NODE, {});
  let attacker: Child | null = null;
  try {
    await sleep(1000);
    const idle = (await residentMemory(victim.pid)).rss;
    attacker = await spawn(FLOOD, {
      kind: flood,
      target: victim.ready.address as string,
      sources: flood === "handshake" ? HANDSHAKE_HOSTS : MEMORY_HOSTS,
      peersPerSource: 2,
      streamsPerPeer: flood === "window" ? 2 : 1,
      parcelsFile: material.bigFile,
    });
    const start = performance.now();
    let sampled = 0;
    while (performance.now() - start < FLOOD_MS) {
      sampled = Math.max(sampled, (await residentMemory(victim.pid)).rss);
      await sleep(50);
    }
    const stats = await attacker.ask("stats", "stats");
    const { peak } = await residentMemory(victim.pid);
    // The victim must still answer: a node that stopped serving is no defence.
    const answer = await Promise.race([victim.ask("stats", "stats"), sleep(5000)]);
    return {
      idle,
      peak: Math.max(peak, sampled),
      stats,
      alive: !!answer,
      unverified: (answer as Record<string, number> | undefined)?.unverified ?? NaN,
    };
  } finally {
    await attacker?.close();
    await victim.close();
  }
}

async function memory(material: Material): Promise<void> {
  const floods: MemoryFlood[] = ["window", "sync", "proofs", "handshake"];
  const labels: Record<MemoryFlood, string> = {
    window: `window-ignoring parcel pusher (${(WINDOW_PAYLOAD / MIB).toFixed(1)} MiB parcels)`,
    sync: "coded-symbol flood, many streams",
    proofs: "tombstone flood (random proofs)",
    handshake: "handshake flood (never finish Noise)",
  };
  const lines = [
    `fresh relay (default limits) per flood, flooded for ${FLOOD_MS} ms; idle = its resident`,
    `memory just before; peak = VmHWM (and 50 ms samples); the others from ${MEMORY_HOSTS[0]}-${
      MEMORY_HOSTS.at(-1)!.split(".")[3]
    } (2 peer ids each) or, for handshakes, ${HANDSHAKE_HOSTS.length} addresses`,
  ];
  for (const flood of floods) {
    const runs = [];
    for (let round = 0; round < ROUNDS; round++) runs.push(await memoryOnce(material, flood));
    const idle = median(runs.map((r) => r.idle));
    const peak = median(runs.map((r) => r.peak));
    const s = runs.at(-1)!.stats;
    const done = flood === "window"
      ? `${s.framesSent} parcels sent (${(s.octetsSent / MIB).toFixed(0)} MiB), ${s.stored} stored`
      : flood === "sync"
      ? `${s.syncRounds} syncs, ${(s.octetsSent / MIB).toFixed(0)} MiB of symbols`
      : flood === "proofs"
      ? `${s.proofsSent} random proofs in ${s.syncRounds} syncs, ${
        runs.at(-1)!.alive ? runs.at(-1)!.unverified : "?"
      } kept as unverified tombstones`
      : `${s.connects} connects, ${s.closedByTarget} closed by the relay`;
    lines.push(
      `${labels[flood]}: peak ${(peak / MIB).toFixed(0)} MiB, idle ${
        (idle / MIB).toFixed(0)
      } MiB, ${
        (peak / idle).toFixed(2)
      }× (${done}; ${s.peers} peer ids up, ${s.streams} streams, ${s.busy} refused busy${
        runs.every((r) => r.alive) ? "" : "; THE RELAY DID NOT ANSWER WITHIN 5 s"
      })`,
    );
    if (s.refused && Object.keys(s.refused).length > 0) {
      lines.push(`  refusals: ${JSON.stringify(s.refused)}`);
    }
    table.push({
      figure: `relay peak RSS, ${labels[flood]}`,
      value: `${(peak / MIB).toFixed(0)} MiB`,
      baseline: `${(idle / MIB).toFixed(0)} MiB idle`,
      ratio: peak / idle,
    });
  }
  report("memory under a flood", lines);
}

// 3. Relay rate with delivery proofs

async function relayOnce(material: Material, proofs: boolean) {
  const relay = await spawn(NODE, { unlimited: true });
  const children = [relay];
  try {
    const address = relay.ready.address as string;
    const started = await Promise.allSettled([
      spawn(NODE, {
        unlimited: true,
        host: material.fixture.recipientId,
        signerFile: proofs ? material.signerFile : undefined,
        peers: [address],
      }),
      spawn(NODE, { unlimited: true, parcelsFile: material.relayFile }),
    ]);
    for (const s of started) if (s.status === "fulfilled") children.push(s.value);
    const [recipient, sender] = started.map((s) => {
      if (s.status === "rejected") throw s.reason;
      return s.value;
    });
    await sleep(1000); // the recipient's node connects to the relay first
    const cpuBefore = await cpuSeconds(relay.pid);
    const start = performance.now();
    const [pushed, arrived] = await Promise.all([
      sender.ask(`push ${address} ${RELAY_PARCELS} 120000`, "pushed"),
      recipient.ask(`await ${RELAY_PARCELS} 120000`, "arrived"),
    ]);
    const seconds = (performance.now() - start) / 1000;
    if (pushed.handed < RELAY_PARCELS || arrived.count < RELAY_PARCELS) {
      throw new Error(`Relay case fell short: ${JSON.stringify({ pushed, arrived })}`);
    }
    // The relay's work goes on after the last arrival (proofs, tombstones): count it all.
    let cpu = await cpuSeconds(relay.pid);
    for (let quiet = 0; quiet < 2;) {
      await sleep(300);
      const now = await cpuSeconds(relay.pid);
      quiet = now - cpu <= 0.01 ? quiet + 1 : 0;
      cpu = now;
    }
    return { capacity: RELAY_PARCELS / (cpu - cpuBefore), endToEnd: RELAY_PARCELS / seconds };
  } finally {
    await Promise.all(children.map((c) => c.close()));
  }
}

async function proofs(material: Material): Promise<void> {
  const { fixture, relayParcels } = material;
  // relaynet-core's validation, the baseline of the existing relay-rate case. All
  // the figures here are per CPU-second of this process, as the relay's are, so
  // that other work on the machine does not skew them.
  const sample = relayParcels.slice(0, 100);
  let start = cpuMs();
  for (const bytes of sample) {
    const parcel = await Parcel.deserialize(bytes.slice().buffer);
    await parcel.validate([fixture.recipientCertificate]);
  }
  const relaynetCore = sample.length / ((cpuMs() - start) / 1000);

  // The same work in this process, per parcel: validation against proof costs.
  const validator = new FastParcelValidator();
  await validator.validate(relayParcels[0]);
  start = cpuMs();
  for (const bytes of relayParcels) await validator.validate(bytes);
  const validateMs = (cpuMs() - start) / relayParcels.length;
  const signer = signerFromPkcs8(fixture.recipientPrivateKeyDer);
  const keys = await Promise.all(relayParcels.slice(0, 100).map(sha256Hex));
  start = cpuMs();
  const made = keys.map((key) => makeDeliveryProof(signer, key));
  const signMs = (cpuMs() - start) / keys.length;
  const verifier = new SignatureVerifier();
  verifier.verifyProof(made[0], fixture.recipientId);
  start = cpuMs();
  for (const proof of made) {
    if (!verifier.verifyProof(proof, fixture.recipientId)) throw new Error("Proof did not verify");
  }
  const verifyMs = (cpuMs() - start) / made.length;

  const runs = { without: [] as number[], with: [] as number[], e2e: [] as number[] };
  for (let round = 0; round < ROUNDS; round++) {
    runs.without.push((await relayOnce(material, false)).capacity);
    const withProofs = await relayOnce(material, true);
    runs.with.push(withProofs.capacity);
    runs.e2e.push(withProofs.endToEnd);
  }
  const without = median(runs.without);
  const withProofs = median(runs.with);
  report("relay rate with delivery proofs", [
    `${RELAY_PARCELS} parcels of 1 KiB, sender → relay → recipient, each its own process, stores on disk`,
    `relaynet-core deserialize + validate: ${relaynetCore.toFixed(0)} parcels per CPU-second`,
    `relay without proofs (recipient hosts without its key, ACK 0): ${
      without.toFixed(0)
    } parcels per CPU-second of the relay`,
    `relay with proofs (recipient signs, relay checks, tombstone to the sender): ${
      withProofs.toFixed(0)
    } parcels per CPU-second, ${median(runs.e2e).toFixed(0)} parcels/s end to end`,
    `with / without = ${(withProofs / without).toFixed(2)}; against relaynet-core, per core: ${
      (withProofs / relaynetCore).toFixed(2)
    } with proofs, ${(without / relaynetCore).toFixed(2)} without`,
    `in one process, CPU per parcel: fast validation ${validateMs.toFixed(3)} ms, proof signing ${
      signMs.toFixed(3)
    } ms (the recipient's node), proof check ${verifyMs.toFixed(3)} ms (each holder)`,
  ]);
  table.push({
    figure: "relay rate with delivery proofs checked",
    value: `${withProofs.toFixed(0)} parcels/CPU-s`,
    baseline: `${without.toFixed(0)} parcels/CPU-s without proofs`,
    ratio: withProofs / without,
  }, {
    figure: "relay rate with proofs, per core, against relaynet-core",
    value: `${withProofs.toFixed(0)} parcels/CPU-s`,
    baseline: `${relaynetCore.toFixed(0)} parcels/CPU-s relaynet-core validation`,
    ratio: withProofs / relaynetCore,
  }, {
    figure: "proof check cost per parcel, against fast validation",
    value: `${verifyMs.toFixed(3)} ms`,
    baseline: `${validateMs.toFixed(3)} ms validation`,
    ratio: verifyMs / validateMs,
  });
}

// 4. Reconciliation cost in proportion to the difference

const COMMON_ITEMS = 10_000;
const DIFFERENCES = [10, 100, 1000];
/** Syncs measured per case, each with a fresh salt; figures are medians. */
const SYNC_REPEATS = 5;

function randomKey(): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(32)),
    (x) => x.toString(16).padStart(2, "0"),
  )
    .join("");
}

async function syncOnce(mode: "auto" | "full-list", differing: number) {
  const options = {
    storePath: ":memory:",
    listen: ["/ip4/127.0.0.1/tcp/0"],
    mdns: false,
    reconciliation: mode,
  } as const;
  const a = await MeshNode.create(options);
  const b = await MeshNode.create(options);
  const expiresAt = new Date(Date.now() + 86_400_000);
  const filler = new Uint8Array(64);
  const put = (node: MeshNode, key: string) =>
    node.store.put({
      key,
      recipientId: "0shared",
      senderId: "0shared",
      size: filler.length,
      expiresAt,
      origin: "relay",
      copies: 1, // waiting for their recipient: never pushed, only reconciled
      bytes: filler,
    });
  for (let i = 0; i < COMMON_ITEMS; i++) {
    const key = randomKey();
    put(a, key);
    put(b, key);
  }
  for (let i = 0; i < differing; i++) put(i % 2 ? a : b, randomKey());
  await a.start();
  await b.start();
  try {
    // The first sync comes with the connection; the measured ones are the next,
    // each with a fresh salt (the coded symbols needed vary from one to another).
    const first = Promise.withResolvers<void>();
    const stop = [a, b].map((node) => node.on("sync", () => first.resolve()));
    await a.dial(b.addresses[0]);
    await first.promise;
    stop.forEach((s) => s());
    await a.idle();
    await b.idle();
    const octets = () => a.stats.syncBytesSent + a.stats.syncBytesReceived;
    // The responder decodes the whole difference (its DIFF lists only its tombstones).
    let found = -1;
    b.on("sync", (e) => (found = e.theirOnly + e.ourOnly));
    const runs = { octets: [] as number[], ms: [] as number[] };
    for (let i = 0; i < SYNC_REPEATS; i++) {
      const before = octets();
      const start = performance.now();
      await a.syncNow();
      runs.ms.push(performance.now() - start);
      runs.octets.push(octets() - before);
      if (found !== differing) throw new Error(`Sync found ${found} differences, not ${differing}`);
    }
    return {
      octets: median(runs.octets),
      low: Math.min(...runs.octets),
      high: Math.max(...runs.octets),
      ms: median(runs.ms),
    };
  } finally {
    await a.stop();
    await b.stop();
  }
}

async function reconciliation(): Promise<void> {
  const lines = [
    `${COMMON_ITEMS} items in common, d differing (half on each node); octets both ways of one`,
    `sync, median of ${SYNC_REPEATS} (fresh salts), range in brackets; time of one sync`,
  ];
  for (const d of DIFFERENCES) {
    const iblt = await syncOnce("auto", d);
    const full = await syncOnce("full-list", d);
    lines.push(
      `d = ${d}: rateless IBLT ${iblt.octets} octets [${iblt.low}-${iblt.high}] (${
        (iblt.octets / d).toFixed(0)
      } per item), ${iblt.ms.toFixed(0)} ms; full lists ${full.octets} octets (${
        (full.octets / d).toFixed(0)
      } per item), ${full.ms.toFixed(0)} ms; IBLT / full = ${
        (iblt.octets / full.octets).toFixed(3)
      }`,
    );
    table.push({
      figure: `sync octets per differing item, ${COMMON_ITEMS} common + d = ${d}`,
      value: `${(iblt.octets / d).toFixed(0)} octets/item (${iblt.ms.toFixed(0)} ms)`,
      baseline: `${(full.octets / d).toFixed(0)} octets/item full lists (${full.ms.toFixed(0)} ms)`,
      ratio: iblt.octets / full.octets,
    });
  }
  report("reconciliation cost", lines);
}

// Main

if (import.meta.main) {
  const started = performance.now();
  const cases = { goodput, memory, proofs, reconciliation };
  const only = flags.only;
  if (only && !(only in cases)) throw new RangeError(`Unknown case ${only}: ${Object.keys(cases)}`);
  const material = only === "reconciliation" ? null : await prepare();
  if (material) {
    console.log(`parcels made in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  }
  try {
    for (const [name, run] of Object.entries(cases)) {
      if (only && only !== name) continue;
      const start = performance.now();
      await run(material!);
      console.log(`  (${name}: ${((performance.now() - start) / 1000).toFixed(0)} s)`);
    }
  } finally {
    if (material) await Deno.remove(material.dir, { recursive: true });
  }
  console.log(`\n| figure | value | baseline | ratio |\n| --- | --- | --- | --- |`);
  for (const row of table) {
    const ratio = row.ratio.toFixed(row.ratio < 0.1 ? 3 : 2);
    console.log(`| ${row.figure} | ${row.value} | ${row.baseline} | ${ratio} |`);
  }
  console.log(
    `\n${ROUNDS} round(s), ${
      ((performance.now() - started) / 1000).toFixed(0)
    } s in all, on ${navigator.hardwareConcurrency} cores`,
  );
  Deno.exit(0);
}
