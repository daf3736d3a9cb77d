/**
 * People in the lab: a Relaymail data directory on a namespace host, its daemon,
 * and the ways tests look into it while the daemon runs.
 */
import { join } from "node:path";
import { readDaemonStatus } from "../../app/runtime/client.ts";
import { Relaymail } from "../../app/services/relaymail.ts";
import { MeshStore } from "../../mesh/store.ts";
import { pair } from "../helpers.ts";
import { type Host, type Lab, type LabProcess, waitFor } from "./netns.ts";

export const MAIN = join(import.meta.dirname!, "..", "..", "app", "main.ts");
export const PORT = 4747;

export interface Person {
  readonly name: string;
  readonly dir: string;
  readonly host: Host;
  id: string;
  daemon?: LabProcess;
}

export async function person(lab: Lab, host: Host, name: string): Promise<Person> {
  const dir = join(lab.dir, name.toLowerCase());
  const node = await Relaymail.open(dir);
  const { id } = await node.identity.create(name);
  node.close();
  return { name, dir, host, id };
}

/** Opens a person's data directory (beside a running daemon) for a look or a change. */
export async function withMail<T>(p: Person, fn: (node: Relaymail) => Promise<T> | T): Promise<T> {
  const node = await Relaymail.open(p.dir);
  try {
    return await fn(node);
  } finally {
    node.close();
  }
}

/** Pairs two people directly (as a stick would), before any daemon runs. */
export async function pairOffline(a: Person, b: Person): Promise<void> {
  const nodeA = await Relaymail.open(a.dir);
  const nodeB = await Relaymail.open(b.dir);
  try {
    await pair({ node: nodeA }, { node: nodeB });
  } finally {
    nodeA.close();
    nodeB.close();
  }
}

export interface DaemonOptions {
  peers?: string[];
  mdns?: boolean;
  stallTimeoutMs?: number;
  /** More command-line options of `relaymail daemon`. */
  args?: string[];
}

export function startDaemon(p: Person, options: DaemonOptions = {}): LabProcess {
  const args = ["run", "-A", MAIN, "-d", p.dir, "daemon", "--listen", `/ip4/0.0.0.0/tcp/${PORT}`];
  if (options.mdns) args.push("--mdns-interval", "500");
  else args.push("--no-mdns");
  for (const peer of options.peers ?? []) args.push("--peer", peer);
  if (options.stallTimeoutMs) args.push("--stall-timeout", String(options.stallTimeoutMs));
  args.push(...options.args ?? []);
  p.daemon = p.host.spawn(`daemon-${p.name}`, Deno.execPath(), args, { RELAYMAIL_MESH_DEBUG: "1" });
  return p.daemon;
}

/** The multiaddr at which `p`'s running daemon is reached on `address`. */
export async function addressOf(p: Person, address: string): Promise<string> {
  // readDaemonStatus asks the daemon over its control API: one that is gone answers nothing.
  const status = await waitFor(`${p.name}'s daemon status`, () => readDaemonStatus(p.dir));
  return `/ip4/${address}/tcp/${PORT}/p2p/${status!.peerId}`;
}

/** Opens a person's mesh store (beside a running daemon) for a look. */
export function withMeshStore<T>(p: Person, fn: (store: MeshStore) => T): T {
  const store = MeshStore.open(join(p.dir, "mesh.sqlite"));
  try {
    return fn(store);
  } finally {
    store.close();
  }
}

export function deliveryStates(node: Relaymail): string[] {
  return node.mailbox.list("sent").flatMap((m) => m.deliveries.map((d) => d.state));
}
