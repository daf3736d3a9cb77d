/**
 * What the app-level channel tests share: an in-process stand-in for the mesh
 * (a published post reaches every other node following its channel, as the
 * mesh's "post" event brings it), parcels carried between two nodes only, and
 * the texts a node shows for a channel.
 *
 * @module
 */
import { parseParcel } from "../bindings/validation.ts";
import type { ChannelMesh } from "../app/core/channels.ts";
import type { Relaymail } from "../app/services/relaymail.ts";
import { statuses, type TestNode } from "./helpers.ts";

/** Stands in for the mesh: a post published reaches every other node following its channel. */
export class TestMesh implements ChannelMesh {
  readonly followed = new Set<string>();
  readonly published: Uint8Array[] = [];
  constructor(private readonly hub: TestMesh[], readonly node: Relaymail) {
    hub.push(this);
  }
  follow(id: string): void {
    this.followed.add(id);
  }
  unfollow(id: string): void {
    this.followed.delete(id);
  }
  async publish(bytes: Uint8Array): Promise<void> {
    this.published.push(bytes);
    const channelId = (await parseParcel(bytes)).recipient.id;
    for (const other of this.hub) {
      if (other !== this && other.followed.has(channelId)) {
        await other.node.channels.receivePost(bytes);
      }
    }
  }
}

/** Every node joined to one in-process mesh. */
export async function meshOf(...nodes: TestNode[]): Promise<TestMesh[]> {
  const hub: TestMesh[] = [];
  for (const n of nodes) await n.node.channels.attach(new TestMesh(hub, n.node));
  return hub;
}

/** Carries the parcels `from` holds for `to`, and only those; their outcomes. */
export async function deliver(from: TestNode, to: TestNode): Promise<string[]> {
  const outcomes = [];
  for (const parcel of await from.node.outgoingParcels()) {
    const bytes = await parcel.read();
    if (!bytes || (await parseParcel(bytes)).recipient.id !== to.node.identity.id) continue;
    outcomes.push(await to.node.receiveParcel(bytes, { binding: "test" }));
    await from.node.parcelHandedOver(parcel.key, { binding: "test", toRecipient: true });
  }
  await to.node.flush();
  return statuses(outcomes);
}

/** The texts `node` shows for `channel`, newest first. */
export const texts = (node: Relaymail, channel: string): (string | null)[] =>
  node.channels.read(channel).posts.map((p) => p.text);
