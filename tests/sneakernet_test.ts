import assert from "node:assert/strict";
import { join } from "node:path";
import {
  exportParcels,
  importParcels,
  PARCEL_FILE_EXTENSION,
} from "../bindings/sneakernet/sneakernet.ts";
import { testBindingContract } from "../bindings/testing/contract.ts";
import { createParcelFixture } from "../bindings/testing/fixtures.ts";
import { MemoryParcelNode } from "../bindings/testing/memory_node.ts";
import { sha256Hex } from "../bindings/validation.ts";

testBindingContract({
  name: "sneakernet",
  async setup() {
    const stick = await Deno.makeTempDir({ prefix: "relaymail-stick-" });
    return {
      async transfer(from, to) {
        await exportParcels(from, stick);
        await importParcels(to, stick);
      },
      async nextHopHolds(key) {
        try {
          const bytes = await Deno.readFile(join(stick, key + PARCEL_FILE_EXTENSION));
          return await sha256Hex(bytes) === key;
        } catch {
          return false;
        }
      },
      close: () => Deno.remove(stick, { recursive: true }),
    };
  },
});

Deno.test("importParcels() reports corrupt files, skips them and takes the rest", async () => {
  const stick = await Deno.makeTempDir();
  try {
    const fixture = await createParcelFixture();
    const sender = new MemoryParcelNode("sender");
    const good = await fixture.makeParcel();
    const goodKey = await sender.enqueue(good, fixture.recipientId);
    await exportParcels(sender, stick);
    // A parcel cut short (as a non-atomic copy would leave it), garbage, and an empty file.
    await Deno.writeFile(join(stick, "truncated.parcel"), good.subarray(0, good.length / 2));
    await Deno.writeFile(join(stick, "garbage.parcel"), new TextEncoder().encode("not a parcel"));
    await Deno.writeFile(join(stick, "empty.parcel"), new Uint8Array());
    const receiver = new MemoryParcelNode("receiver");
    receiver.refuse = (bytes) =>
      bytes.length === good.length && bytes.every((b, i) => b === good[i])
        ? null
        : { code: "malformed", reason: "not a parcel" };

    const report = await importParcels(receiver, stick);

    assert.equal(report.accepted, 1);
    assert.deepEqual([...receiver.stored.keys()], [goodKey]);
    assert.deepEqual(report.refused.map((r) => r.file.split("/").pop()).sort(), [
      "garbage.parcel",
      "truncated.parcel",
    ]);
    assert.deepEqual(report.unreadable.map((r) => [r.file.split("/").pop(), r.error]), [[
      "empty.parcel",
      "empty file",
    ]]);
  } finally {
    await Deno.remove(stick, { recursive: true });
  }
});

Deno.test("importParcels() ignores an export's temporary files and a missing directory is a clear error", async () => {
  const stick = await Deno.makeTempDir();
  try {
    await Deno.writeFile(join(stick, ".0b1c.tmp"), new Uint8Array([0x41, 0x77]));
    const receiver = new MemoryParcelNode();
    const report = await importParcels(receiver, stick);
    assert.equal(receiver.offers.size, 0);
    assert.deepEqual(report, {
      accepted: 0,
      duplicates: 0,
      skipped: 0,
      refused: [],
      unreadable: [],
    });
    await assert.rejects(
      importParcels(receiver, join(stick, "absent")),
      (error: Error) => error.message.includes("does not exist"),
    );
  } finally {
    await Deno.remove(stick, { recursive: true });
  }
});

Deno.test("exportParcels() removes stale temporary files and never rewrites a parcel already there", async () => {
  const stick = await Deno.makeTempDir();
  try {
    const stale = join(stick, ".stale.tmp");
    await Deno.writeFile(stale, new Uint8Array([1, 2, 3]));
    const old = new Date(Date.now() - 2 * 3_600_000);
    await Deno.utime(stale, old, old);
    const fixture = await createParcelFixture();
    const sender = new MemoryParcelNode();
    await sender.enqueue(await fixture.makeParcel(), fixture.recipientId);

    const first = await exportParcels(sender, stick, { includeHandedOver: true });
    const second = await exportParcels(sender, stick, { includeHandedOver: true });

    assert.equal(first.written, 1);
    assert.deepEqual([second.written, second.alreadyThere], [0, 1]);
    await assert.rejects(Deno.stat(stale), Deno.errors.NotFound);
  } finally {
    await Deno.remove(stick, { recursive: true });
  }
});

Deno.test("exportParcels() killed mid-export leaves only whole parcel files", async () => {
  const stick = await Deno.makeTempDir();
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", join(import.meta.dirname!, "fixtures", "export_forever.ts"), stick],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    // Wait until the child has written a few files, then pull the plug.
    const reader = child.stdout.getReader();
    let seen = "";
    while (!seen.includes("written 3")) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += new TextDecoder().decode(value);
    }
    child.kill("SIGKILL");
    await child.status;
    reader.releaseLock();
    await child.stdout.cancel().catch(() => {});

    const names = [];
    for await (const entry of Deno.readDir(stick)) names.push(entry.name);
    const parcels = names.filter((n) => n.endsWith(PARCEL_FILE_EXTENSION));
    assert.ok(parcels.length >= 3, `expected at least 3 parcel files, found ${names.join(", ")}`);
    for (const name of parcels) {
      const bytes = await Deno.readFile(join(stick, name));
      assert.equal(await sha256Hex(bytes) + PARCEL_FILE_EXTENSION, name, `${name} is not whole`);
    }
  } finally {
    await Deno.remove(stick, { recursive: true });
  }
});
