/**
 * mesh/channel.ts: frames come out whole, in order and unaltered however the
 * octets are cut; bad length prefixes and truncated frames are the peer's
 * errors; and a sender that writes while nobody reads is held back by the
 * muxer's flow control, with nothing lost (docs/mesh-protocol.md §4.3); a stream
 * ended with ERROR while its sender still writes does not leave it waiting.
 */
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import type { Stream } from "@libp2p/interface";
import { tcp } from "@libp2p/tcp";
import { streamPair } from "@libp2p/utils";
import { createLibp2p, type Libp2p } from "libp2p";
import assert from "node:assert/strict";
import { Channel, MAX_STREAM_WINDOW, READ_AHEAD } from "../../mesh/channel.ts";
import { endWithError } from "../../mesh/links.ts";
import { silentLogger } from "../../mesh/mod.ts";
import { ProtocolError } from "../../mesh/wire.ts";
import { waitFor } from "../helpers.ts";
import { varint } from "./_attack_peer.ts";

const PROTOCOL = "/relaymail/test/framing/1.0.0";

function channelOf(stream: Stream, maxFrame = 1 << 20): Channel {
  return new Channel(stream, maxFrame, 60_000, { last: Date.now(), heard: 0 }, () => {});
}

/** A frame whose octets say its index and length: [i, i, …] for frame i. */
function frame(i: number, length: number): Uint8Array {
  return new Uint8Array(length).fill(i % 251);
}

Deno.test("Channel reads frames cut anywhere, several in one chunk, and an empty one", async () => {
  const [a, b] = await streamPair();
  const reader = channelOf(b);
  const frames = [frame(1, 3), frame(2, 0), frame(3, 200), frame(4, 70_000)];
  const wire = frames.flatMap((f) => [...varint(f.length), ...f]);
  // One octet at a time for the first 300 (a prefix split across chunks), then all the rest at once.
  for (let i = 0; i < 300; i++) a.send(new Uint8Array([wire[i]]));
  a.send(new Uint8Array(wire.slice(300)));
  await a.close();
  for (const expected of frames) assert.deepEqual(await reader.read(), expected);
  assert.equal(await reader.read(), null, "closed between frames: the end");
  assert.equal(reader.bytesRead, wire.length);
  reader.dispose();
});

Deno.test("Channel writes frames another Channel reads back", async () => {
  const [a, b] = await streamPair();
  const writer = channelOf(a);
  const reader = channelOf(b);
  await writer.write(frame(7, 130));
  await writer.writeMany([frame(8, 1), frame(9, 0), frame(10, 20_000)]);
  assert.deepEqual(await reader.read(), frame(7, 130));
  assert.deepEqual(await reader.read(), frame(8, 1));
  assert.deepEqual(await reader.read(), frame(9, 0));
  assert.deepEqual(await reader.read(), frame(10, 20_000));
  assert.equal(writer.bytesWritten, reader.bytesRead);
  writer.dispose();
  reader.dispose();
});

Deno.test("Channel refuses a frame over its limit, a prefix too long, and a truncated frame", async (t) => {
  await t.step("a length over the limit is named", async () => {
    const [a, b] = await streamPair();
    const reader = channelOf(b, 1000);
    a.send(new Uint8Array(varint(1001)));
    await assert.rejects(reader.read(), (e: Error) => {
      assert.ok(e instanceof ProtocolError);
      assert.match(e.message, /1001 octets exceeds 1000/);
      return true;
    });
    reader.dispose();
  });
  await t.step("a prefix longer than the limit's", async () => {
    const [a, b] = await streamPair();
    const reader = channelOf(b, 1000);
    a.send(new Uint8Array([0x80, 0x80, 0x80]));
    await assert.rejects(reader.read(), /prefix longer than 2 octets/);
    reader.dispose();
  });
  await t.step("closed inside a frame", async () => {
    const [a, b] = await streamPair();
    const reader = channelOf(b);
    a.send(new Uint8Array([...varint(10), 1, 2, 3]));
    await a.close();
    await assert.rejects(reader.read(), /closed the stream inside a frame \(4 octets/);
    reader.dispose();
  });
});

/** Two libp2p nodes over loopback TCP, with the mesh's muxer window. */
async function nodes(): Promise<[Libp2p, Libp2p]> {
  const make = () =>
    createLibp2p({
      addresses: { listen: ["/ip4/127.0.0.1/tcp/0"] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux({ streamOptions: { maxStreamWindowSize: MAX_STREAM_WINDOW } })],
    });
  return [await make(), await make()];
}

Deno.test({
  name: "Channel holds back a sender nobody reads, and loses nothing when reading resumes",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const [receiver, sender] = await nodes();
    try {
      const accepted = Promise.withResolvers<Channel>();
      await receiver.handle(PROTOCOL, (stream) => accepted.resolve(channelOf(stream)));
      const stream = await sender.dialProtocol(receiver.getMultiaddrs()[0], PROTOCOL);
      // 8 MiB of 4 KiB frames, written as fast as the stream takes them.
      const count = 2048, size = 4096;
      let queued = 0;
      const writing = (async () => {
        for (let i = 0; i < count; i++) {
          const f = new Uint8Array([...varint(size), ...frame(i, size)]);
          queued += f.length;
          if (!stream.send(f)) {
            await new Promise((r) => stream.addEventListener("drain", r, { once: true }));
          }
        }
      })();
      const channel = await accepted.promise;
      // Nobody reads: the sender stalls once the read-ahead and the windows are full.
      const sent = () => queued - stream.writeBufferLength;
      let last = -1;
      await waitFor("the sender to be held back", async () => {
        const now = sent();
        const still = now === last;
        last = now;
        await new Promise((r) => setTimeout(r, 200));
        return still && now > READ_AHEAD;
      }, 20_000);
      const held = channel.unread + channel.stream.readBufferLength;
      assert.ok(sent() < count * (size + 2), "the sender was held back");
      assert.ok(
        sent() <= READ_AHEAD + 2 * MAX_STREAM_WINDOW + size + 2,
        `${sent()} octets left the sender, ${held} held by the receiver`,
      );
      // Reading resumes: every frame arrives, whole and in order.
      for (let i = 0; i < count; i++) {
        const got = await channel.read();
        assert.ok(
          got && got.length === size && got[0] === i % 251 && got[size - 1] === i % 251,
          `frame ${i}`,
        );
      }
      await writing;
      assert.equal(channel.bytesRead, count * (size + 2));
      channel.dispose();
    } finally {
      await sender.stop();
      await receiver.stop();
    }
  },
});

Deno.test({
  name: "endWithError: a sender still writing gets the ERROR, and the stream ends",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const [receiver, sender] = await nodes();
    try {
      const ended = Promise.withResolvers<string>();
      await receiver.handle(PROTOCOL, (stream) => {
        // Refused at once (a Busy refusal), whatever the sender has on its way.
        const channel = channelOf(stream);
        endWithError(channel, new TextEncoder().encode("Busy: try later"), silentLogger)
          .then(() => ended.resolve(stream.status));
      });
      const stream = await sender.dialProtocol(receiver.getMultiaddrs()[0], PROTOCOL);
      const channel = channelOf(stream, 4096);
      const answer = channel.read();
      // 2 MiB: far more than the read-ahead and the windows the receiver grants.
      const writing = channel.write(new Uint8Array(2 * 1024 * 1024));
      const error = await answer;
      assert.equal(new TextDecoder().decode(error!), "Busy: try later");
      // The write is not left waiting for window that never comes: what it sent was dropped.
      await writing;
      // The sender does not close its side: the receiver resets the stream after its grace.
      assert.notEqual(await ended.promise, "open");
      channel.dispose();
    } finally {
      await sender.stop();
      await receiver.stop();
    }
  },
});
