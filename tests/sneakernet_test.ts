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
import { MAX_PARCEL_LENGTH, sha256Hex } from "../bindings/validation.ts";

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

Deno.test("importParcels() reports an export's temporary file as ignored and a missing directory is a clear error", async () => {
  const stick = await Deno.makeTempDir();
  try {
    await Deno.writeFile(join(stick, `.${crypto.randomUUID()}.tmp`), new Uint8Array([0x41, 0x77]));
    const receiver = new MemoryParcelNode();
    const report = await importParcels(receiver, stick);
    assert.equal(receiver.offers.size, 0);
    assert.deepEqual({ ...report, ignored: report.ignored.map((i) => i.code) }, {
      accepted: 0,
      duplicates: 0,
      skipped: 0,
      refused: [],
      unreadable: [],
      ignored: ["temporary"],
    });
    const absent = join(stick, "absent");
    await assert.rejects(
      importParcels(receiver, absent),
      Deno.errors.NotFound,
      `No folder ${absent}: plug the stick in, or check the path`,
    );
  } finally {
    await Deno.remove(stick, { recursive: true });
  }
});

Deno.test("importParcels() takes .parcel in any case and reports every other entry it ignores, with why", async () => {
  const stick = await Deno.makeTempDir();
  const elsewhere = await Deno.makeTempDir();
  try {
    const fixture = await createParcelFixture();
    const [upper, nested, linked] = [
      await fixture.makeParcel(),
      await fixture.makeParcel(),
      await fixture.makeParcel(),
    ];
    // A name whose case a FAT stick or a copy tool changed is still a parcel file.
    await Deno.writeFile(join(stick, "ABC.PARCEL"), upper);
    await Deno.writeFile(join(stick, "notes.txt"), new TextEncoder().encode("hello"));
    await Deno.writeFile(join(stick, "abc.parcel.bak"), upper);
    // macOS leaves `._` companions of copied files on FAT sticks: not parcels.
    await Deno.writeFile(join(stick, "._abc.parcel"), new Uint8Array([0, 5, 22, 7]));
    const temporary = ".4f1c2b9e-6a7d-4e3b-9c1a-2d5e8f0a7b6c.tmp"; // as an export names them
    await Deno.writeFile(join(stick, temporary), upper.subarray(0, 10));
    await Deno.mkdir(join(stick, "older.parcel"));
    await Deno.writeFile(join(stick, "older.parcel", "nested.parcel"), nested);
    await Deno.writeFile(join(elsewhere, "linked.parcel"), linked);
    await Deno.symlink(join(elsewhere, "linked.parcel"), join(stick, "link.parcel"));
    const receiver = new MemoryParcelNode();

    const report = await importParcels(receiver, stick);

    assert.equal(report.accepted, 1);
    assert.deepEqual([...receiver.stored.keys()], [await sha256Hex(upper)]);
    assert.deepEqual(report.ignored.map((i) => [i.file, i.code]), [
      [join(stick, temporary), "temporary"],
      [join(stick, "._abc.parcel"), "hidden"],
      [join(stick, "abc.parcel.bak"), "not-a-parcel-name"],
      [join(stick, "link.parcel"), "symlink"],
      [join(stick, "notes.txt"), "not-a-parcel-name"],
      [join(stick, "older.parcel"), "directory"],
    ]);
    assert.match(report.ignored[5].reason, /does not look inside subdirectories/);
    assert.deepEqual(report.unreadable, []);
  } finally {
    await Deno.remove(stick, { recursive: true });
    await Deno.remove(elsewhere, { recursive: true });
  }
});

Deno.test("importParcels() reports a parcel file larger than any parcel as unreadable without reading it", async () => {
  const stick = await Deno.makeTempDir();
  try {
    const file = await Deno.create(join(stick, "huge.parcel"));
    await file.truncate(MAX_PARCEL_LENGTH + 1); // sparse: nothing is written
    file.close();
    const receiver = new MemoryParcelNode();

    const report = await importParcels(receiver, stick);

    assert.equal(receiver.offers.size, 0);
    assert.deepEqual(report.unreadable, [{
      file: join(stick, "huge.parcel"),
      error: `file has ${MAX_PARCEL_LENGTH + 1} bytes, more than any parcel (${MAX_PARCEL_LENGTH})`,
    }]);
    assert.deepEqual(report.ignored, []);
  } finally {
    await Deno.remove(stick, { recursive: true });
  }
});

Deno.test("exportParcels() removes its own stale temporary files and never rewrites a parcel already there", async () => {
  const stick = await Deno.makeTempDir();
  try {
    const stale = join(stick, `.${crypto.randomUUID()}.tmp`);
    // The directory may be a whole stick: another program's hidden files stay.
    const foreign = join(stick, ".stale.tmp");
    const old = new Date(Date.now() - 2 * 3_600_000);
    for (const path of [stale, foreign]) {
      await Deno.writeFile(path, new Uint8Array([1, 2, 3]));
      await Deno.utime(path, old, old);
    }
    const fixture = await createParcelFixture();
    const sender = new MemoryParcelNode();
    await sender.enqueue(await fixture.makeParcel(), fixture.recipientId);

    const first = await exportParcels(sender, stick, { includeHandedOver: true });
    const second = await exportParcels(sender, stick, { includeHandedOver: true });

    assert.equal(first.written, 1);
    assert.deepEqual([second.written, second.alreadyThere], [0, 1]);
    await assert.rejects(Deno.stat(stale), Deno.errors.NotFound);
    assert.equal((await Deno.stat(foreign)).size, 3);
  } finally {
    await Deno.remove(stick, { recursive: true });
  }
});

Deno.test("exportParcels() refuses a directory that does not exist, and creates none", async () => {
  const media = await Deno.makeTempDir();
  try {
    const fixture = await createParcelFixture();
    const sender = new MemoryParcelNode();
    const key = await sender.enqueue(await fixture.makeParcel(), fixture.recipientId);
    // A stick not plugged in, or its path mistyped (usbb for usb).
    const mistyped = join(media, "usbb");

    await assert.rejects(
      exportParcels(sender, mistyped),
      Deno.errors.NotFound,
      `No folder ${mistyped}: plug the stick in, or check the path`,
    );

    await assert.rejects(Deno.stat(mistyped), Deno.errors.NotFound);
    assert.deepEqual(
      (await sender.outgoingParcels()).map((p) => p.key),
      [key],
      "still waiting to leave: nothing was handed over",
    );
    await assert.rejects(exportParcels(sender, join(media, "a", "b")), Deno.errors.NotFound);
    await assert.rejects(Deno.stat(join(media, "a")), Deno.errors.NotFound);
  } finally {
    await Deno.remove(media, { recursive: true });
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
