/**
 * Local surfaces: a data directory and its databases are readable by their owner
 * only, whatever mode the directory had.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { Relaymail } from "../app/services/relaymail.ts";
import { MeshNode } from "../mesh/mod.ts";

Deno.test("Relaymail.open() makes the data directory 0700 and its databases 0600", async () => {
  const root = await Deno.makeTempDir({ prefix: "relaymail-files-" });
  try {
    const dir = join(root, "data");
    await Deno.mkdir(dir, { mode: 0o755 });
    await Deno.chmod(dir, 0o755);
    const node = await Relaymail.open(dir);
    const mesh = await MeshNode.create({
      storePath: join(dir, "mesh.sqlite"),
      listen: ["/ip4/127.0.0.1/tcp/0"],
      mdns: false,
    });
    try {
      await node.identity.create("Alice");
      assert.equal((await Deno.stat(dir)).mode! & 0o777, 0o700);
      for await (const entry of Deno.readDir(dir)) {
        if (!/\.sqlite(-wal|-shm)?$/.test(entry.name)) continue;
        const mode = (await Deno.stat(join(dir, entry.name))).mode! & 0o777;
        assert.equal(mode, 0o600, `${entry.name} is ${mode.toString(8)}`);
      }
    } finally {
      await mesh.stop();
      node.close();
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
