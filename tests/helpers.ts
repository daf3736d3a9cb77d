/**
 * Shared test helpers: messenger nodes in temporary directories with a clock the
 * test controls, and a direct "courier" that moves parcels between two nodes the
 * way any binding would.
 */
import type { ParcelNode, ReceiveOutcome } from "../bindings/binding.ts";
import type { Tunables } from "../app/core/context.ts";
import { Relaymail } from "../app/services/relaymail.ts";

/** A clock a test can move forward or back. */
export class TestClock {
  #offsetMs = 0;
  readonly now = (): Date => new Date(Date.now() + this.#offsetMs);
  advance(ms: number): void {
    this.#offsetMs += ms;
  }
}

export const DAY = 86_400_000;
export const HOUR = 3_600_000;

/** A messenger in a fresh temporary directory, with an identity. */
export interface TestNode {
  readonly node: Relaymail;
  readonly clock: TestClock;
  readonly dir: string;
  close(): Promise<void>;
}

/** Opens a node named `name` in a temporary directory. */
export async function makeNode(
  name: string,
  options: { tunables?: Partial<Tunables>; passphrase?: string; dir?: string } = {},
): Promise<TestNode> {
  const dir = options.dir ?? await Deno.makeTempDir({ prefix: `relaymail-${name}-` });
  const clock = new TestClock();
  const node = await Relaymail.open(dir, {
    now: clock.now,
    tunables: options.tunables,
    passphrase: options.passphrase,
  });
  if (!node.identity.exists()) await node.identity.create(name);
  return {
    node,
    clock,
    dir,
    async close() {
      node.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/**
 * Hands every parcel waiting at `from` to `to`, reporting handovers as a binding
 * would, and returns the outcomes in order.
 */
export async function carry(from: ParcelNode, to: ParcelNode): Promise<ReceiveOutcome[]> {
  const outcomes: ReceiveOutcome[] = [];
  for (const parcel of await from.outgoingParcels()) {
    const bytes = await parcel.read();
    if (!bytes) continue;
    const outcome = await to.receiveParcel(bytes, { binding: "test" });
    outcomes.push(outcome);
    if (outcome.status !== "refused") {
      await from.parcelHandedOver(parcel.key, { binding: "test", toRecipient: true });
    }
  }
  await to.flush?.();
  return outcomes;
}

/** The bytes of every parcel waiting at `node`. */
export async function pendingBytes(node: ParcelNode): Promise<Uint8Array[]> {
  const all = [];
  for (const parcel of await node.outgoingParcels()) {
    const bytes = await parcel.read();
    if (bytes) all.push(bytes);
  }
  return all;
}

/** Pairs two nodes through an invitation `a` made, returning once both are active. */
export async function pair(
  a: Pick<TestNode, "node">,
  b: Pick<TestNode, "node">,
): Promise<void> {
  const invitation = await a.node.pairing.createInvitation({
    contactName: b.node.identity.info().name,
  });
  await b.node.pairing.acceptInvitation(invitation.text, { name: a.node.identity.info().name });
  await carry(b.node, a.node);
  await carry(a.node, b.node);
}

/** Status strings of outcomes, with refusal codes: `["accepted", "refused:expired"]`. */
export function statuses(outcomes: readonly ReceiveOutcome[]): string[] {
  return outcomes.map((o) => o.status === "refused" ? `refused:${o.code}` : o.status);
}

/** `n` random bytes (crypto.getRandomValues fills at most 64 KiB at a time). */
export function randomBytes(n: number): Uint8Array {
  const bytes = new Uint8Array(n);
  for (let offset = 0; offset < n; offset += 65_536) {
    crypto.getRandomValues(bytes.subarray(offset, Math.min(offset + 65_536, n)));
  }
  return bytes;
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor<T>(
  what: string,
  check: () => T | Promise<T>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(
    `Timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${last})` : ""}`,
  );
}

/** Runs `fn` with a node named after each of `names`, closing them all after. */
export async function withNodes(
  names: string[],
  fn: (...nodes: TestNode[]) => Promise<void>,
  tunables = {},
): Promise<void> {
  const nodes = await Promise.all(names.map((name) => makeNode(name, { tunables })));
  try {
    await fn(...nodes);
  } finally {
    for (const node of nodes) await node.close();
  }
}
