/**
 * Benchmark helper: a mesh node in a process of its own (so that sender and
 * receiver each get a core). It also serves a raw protocol, the baseline: a plain
 * libp2p stream on the same stack (TCP, Noise, Yamux) that reads length-prefixed
 * frames and acknowledges each with one octet.
 *
 * Usage: deno run -A mesh_peer.ts '{"host": "<endpoint id>", "peers": ["<multiaddr>"]}'
 * Prints one line of JSON with its multiaddrs, then `{"delivered": n}` every 100
 * parcels handed to its hosted endpoint, and runs until stdin closes.
 */
import "../../app/_quiet.ts";
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import { tcp } from "@libp2p/tcp";
import { lpStream } from "@libp2p/utils";
import { createLibp2p } from "libp2p";
import { fromHex } from "../../bindings/validation.ts";
import { MeshNode, signerFromPkcs8 } from "../../mesh/mod.ts";
import { MAX_FRAME_LENGTH } from "../../mesh/wire.ts";

import { RAW_PROTOCOL } from "./_raw.ts";

const { host, hostKey, peers } = JSON.parse(Deno.args[0] ?? "{}") as {
  host?: string;
  /** The hosted endpoint's private key (hex PKCS#8), to sign delivery proofs. */
  hostKey?: string;
  peers?: string[];
};
// A real file, committed like a daemon's store: storing means on disk.
const dir = await Deno.makeTempDir({ prefix: "relaymail-bench-peer-" });
const node = await MeshNode.create({
  storePath: `${dir}/mesh.sqlite`,
  listen: ["/ip4/127.0.0.1/tcp/0"],
  mdns: false,
  peers,
  rateLimit: { parcelsPerSecond: 1e9, bytesPerSecond: 1e12 },
  quotaBytes: 8 * 1024 ** 3,
  senderShare: 1,
});
let delivered = 0;
if (host) {
  node.host(host, () => {
    if (++delivered % 100 === 0) console.log(JSON.stringify({ delivered }));
    return Promise.resolve({ status: "accepted" });
  }, { signer: hostKey ? signerFromPkcs8(fromHex(hostKey)) : undefined });
}
await node.start();

// The baseline: a bare libp2p node built from the same transport, encryption and muxer.
const raw = await createLibp2p({
  addresses: { listen: ["/ip4/127.0.0.1/tcp/0"] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
});
await raw.handle(RAW_PROTOCOL, async (stream) => {
  const lp = lpStream(stream, {
    maxDataLength: MAX_FRAME_LENGTH,
    maxBufferSize: MAX_FRAME_LENGTH * 6,
  });
  try {
    for (;;) {
      await lp.read();
      stream.send(new Uint8Array([1]));
    }
  } catch {
    // the sender closed its side
  }
  await stream.close().catch(() => {});
});
console.log(
  JSON.stringify({
    address: node.addresses[0],
    raw: raw.getMultiaddrs()[0].toString(),
    pid: Deno.pid,
  }),
);
for await (const _ of Deno.stdin.readable) { /* run until the parent closes stdin */ }
await node.stop();
await raw.stop();
await Deno.remove(dir, { recursive: true });
Deno.exit(0);
