/**
 * The runtime: one writer per data directory, the control API that lets a
 * command reach the writer, and the one table of faults.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ConflictError, NotFoundError, TransientError } from "../app/core/errors.ts";
import { connect, lockForDaemon, readDaemonStatus } from "../app/runtime/client.ts";
import { CONTROL_FILE, CONTROL_SOCKET, ControlClient } from "../app/runtime/control.ts";
import { EXIT_CODES, exitCodeOf, faultOf, httpStatusOf } from "../app/runtime/faults.ts";
import { fromJson, toJson } from "../app/runtime/json.ts";
import { WriterLock } from "../app/runtime/lock.ts";
import { Runtime } from "../app/runtime/runtime.ts";
import { StorageFullError } from "../bindings/durable.ts";
import { ContactLookupError } from "../app/core/contacts.ts";
import { InvalidInvitationError } from "../app/core/protocol/invitation.ts";

const quiet = () => {};

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

Deno.test("WriterLock: one holder at a time; the next waits, or is told who holds it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const first = (await WriterLock.acquire(dir))!;
    await assert.rejects(
      () => WriterLock.acquire(dir),
      (error: Error) =>
        error instanceof ConflictError && error.message.includes(`pid ${Deno.pid}`) &&
        error.message.includes(dir),
    );
    const waiting = WriterLock.acquire(dir, { waitMs: 5_000 });
    setTimeout(() => first.release(), 100); // released while the second waits
    const second = (await waiting)!;
    assert.ok(second instanceof WriterLock);
    // A waiter may give up for something better (a daemon that now answers).
    assert.equal(
      await WriterLock.acquire(dir, { waitMs: 5_000, giveUp: () => Promise.resolve(true) }),
      null,
    );
    second.release();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("WriterLock: a process that dies gives the lock up", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const holder = new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        // A writer locks the data directory itself.
        `const f = await Deno.open(${JSON.stringify(dir)}, { read: true });
         await f.lock(true); console.log("held"); setInterval(() => {}, 60_000);`,
      ],
      stdout: "piped",
    }).spawn();
    const reader = holder.stdout.getReader();
    assert.match(new TextDecoder().decode((await reader.read()).value), /held/);
    await assert.rejects(() => WriterLock.acquire(dir), ConflictError);
    holder.kill("SIGKILL");
    await holder.status;
    reader.releaseLock();
    await holder.stdout.cancel();
    (await WriterLock.acquire(dir, { waitMs: 5_000 }))!.release();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("connect: through the control API while a runtime serves it, else a runtime of its own", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const open = (lock: WriterLock) => Runtime.open(dir, { lock, log: quiet });
    // Nobody holds the directory: the command opens it itself, and leaves nothing behind.
    const local = await connect(dir, { open, waitMs: 0 });
    assert.equal(local.remote, false);
    const alone = await local.call("runtime.status") as { pid: number };
    assert.equal(alone.pid, Deno.pid);
    await local.close();
    assert.equal(await exists(join(dir, CONTROL_FILE)), false);

    // A runtime (the daemon) holds it and serves control: commands go to it.
    const runtime = await Runtime.open(dir, { log: quiet });
    await runtime.serveControl();
    try {
      assert.equal((await Deno.stat(join(dir, CONTROL_FILE))).mode! & 0o777, 0o600);
      assert.equal((await Deno.stat(join(dir, CONTROL_SOCKET))).mode! & 0o777, 0o600);
      const remote = await connect(dir, { open, waitMs: 5_000 });
      assert.equal(remote.remote, true);
      const status = await remote.call("runtime.status") as { dataDir: string };
      assert.equal(status.dataDir, dir);
      // No daemon in this runtime: it says so, rather than saying nothing.
      assert.equal(await readDaemonStatus(dir), null);
      // Errors keep their fault across the trip.
      await assert.rejects(
        () => remote.call("no.such.operation"),
        (error: Error) =>
          faultOf(error) === "input" && /No operation "no.such.operation"/.test(error.message),
      );
      await remote.close();
    } finally {
      await runtime.close();
    }
    assert.equal(await exists(join(dir, CONTROL_FILE)), false, "the address is withdrawn");
    assert.equal(await exists(join(dir, CONTROL_SOCKET)), false, "the socket is removed");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("control API: a long operation's progress reaches the caller as it goes", async () => {
  const dir = await Deno.makeTempDir();
  const stick = await Deno.makeTempDir();
  const runtime = await Runtime.open(dir, { log: quiet });
  try {
    for (let i = 0; i < 3; i++) await Deno.writeTextFile(join(stick, `${i}.parcel`), "junk");
    await runtime.serveControl();
    const client = await connect(dir, {
      open: () => Promise.reject(new Error("the runtime holds the directory")),
      waitMs: 5_000,
    });
    assert.equal(client.remote, true);
    const seen: unknown[] = [];
    const report = await client.call("sneakernet.import", { directory: stick }, {
      onProgress: (progress) => seen.push(progress),
    }) as { refused: unknown[]; unreadable: unknown[] };
    assert.deepEqual(seen, [1, 2, 3].map((done) => ({ done, total: 3 })));
    assert.equal(report.refused.length + report.unreadable.length, 3, "junk taken in");
    // An error after the stream began still comes back with its fault.
    await assert.rejects(
      () => client.call("sneakernet.import", { directory: "relative" }, { onProgress: () => {} }),
      (error: Error) => faultOf(error) === "input" && /absolute path/.test(error.message),
    );
    await client.close();
  } finally {
    await runtime.close();
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(stick, { recursive: true });
  }
});

Deno.test("control API: without the token, nothing", async () => {
  const dir = await Deno.makeTempDir();
  const runtime = await Runtime.open(dir, { log: quiet });
  try {
    await runtime.serveControl();
    const address = JSON.parse(await Deno.readTextFile(join(dir, CONTROL_FILE)));
    const client = Deno.createHttpClient({
      proxy: { transport: "unix", path: join(dir, CONTROL_SOCKET) },
    });
    try {
      for (const authorization of [undefined, "Bearer wrong", `Bearer ${address.token}x`]) {
        const response = await fetch("http://relaymail/v1/operations/runtime.status", {
          client,
          method: "POST",
          headers: authorization ? { authorization } : {},
          body: "{}",
        });
        assert.equal(response.status, 401, String(authorization));
        assert.doesNotMatch(await response.text(), new RegExp(dir));
      }
      const oversized = await fetch("http://relaymail/v1/operations/runtime.status", {
        client,
        method: "POST",
        headers: { authorization: `Bearer ${address.token}` },
        body: "x".repeat(17 * 1024 * 1024),
      });
      assert.equal(oversized.status, 400);
      await oversized.body?.cancel();
    } finally {
      client.close();
    }
  } finally {
    await runtime.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("connect: a control address left by a daemon that was killed is not followed", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // What a killed daemon leaves: its address and socket, and no lock.
    await Deno.writeTextFile(
      join(dir, CONTROL_FILE),
      JSON.stringify({ pid: 1, socket: join(dir, CONTROL_SOCKET), token: "stale" }),
    );
    await Deno.writeTextFile(join(dir, CONTROL_SOCKET), "");
    assert.equal(await ControlClient.connect(dir), null);
    const client = await connect(dir, {
      open: (lock) => Runtime.open(dir, { lock, log: quiet }),
      waitMs: 0,
    });
    assert.equal(client.remote, false);
    await client.close();
    assert.equal(await exists(join(dir, CONTROL_FILE)), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a second runtime on the same directory is refused at once, naming the first", async () => {
  const dir = await Deno.makeTempDir();
  const first = await Runtime.open(dir, { log: quiet });
  try {
    await assert.rejects(
      () => Runtime.open(dir, { log: quiet }),
      (error: Error) => error instanceof ConflictError && error.message.includes(String(Deno.pid)),
    );
  } finally {
    await first.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("lockForDaemon: waits for a command to finish, but not for another daemon", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // A command holds the directory for a moment: the daemon starts after it.
    const command = (await WriterLock.acquire(dir))!;
    setTimeout(() => command.release(), 200);
    (await lockForDaemon(dir, 10_000)).release();

    // A daemon runs: a second one is turned away at once, naming it.
    const runtime = await Runtime.open(dir, { log: quiet });
    await runtime.serveControl();
    try {
      const started = Date.now();
      await assert.rejects(
        () => lockForDaemon(dir, 10_000),
        (error: Error) =>
          error instanceof ConflictError &&
          error.message.includes(`already running for ${dir} (pid ${Deno.pid})`),
      );
      assert.ok(Date.now() - started < 5_000, "at once");
    } finally {
      await runtime.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("faults: one table for exit codes and statuses", () => {
  assert.equal(exitCodeOf(new ContactLookupError("No contact x")), 1);
  assert.equal(httpStatusOf(new ContactLookupError("No contact x")), 404);
  assert.equal(exitCodeOf(new InvalidInvitationError("damaged")), 1);
  assert.equal(httpStatusOf(new InvalidInvitationError("damaged")), 400);
  assert.equal(exitCodeOf(new StorageFullError("/x")), EXIT_CODES.transient);
  assert.equal(httpStatusOf(new StorageFullError("/x")), 507);
  assert.equal(exitCodeOf(new TransientError("down")), 75);
  assert.equal(httpStatusOf(new TransientError("down")), 503);
  assert.equal(exitCodeOf(new ConflictError("running")), 1);
  assert.equal(httpStatusOf(new ConflictError("running")), 409);
  assert.equal(httpStatusOf(new NotFoundError("gone")), 404);
  // RangeError/TypeError are the person's fault only where their input was acted on.
  assert.equal(faultOf(new RangeError("bad port")), "bug");
  assert.equal(faultOf(new RangeError("bad port"), { inputBoundary: true }), "input");
  assert.equal(exitCodeOf(new Error("boom")), 70);
  assert.equal(httpStatusOf(new Error("boom")), 500);
  assert.equal(EXIT_CODES.usage, 2);
  // A path the person named: their mistake at the boundary, ours inside.
  assert.equal(exitCodeOf(new Deno.errors.NotFound("no /media/usb")), 1);
  assert.equal(exitCodeOf(new Deno.errors.PermissionDenied("read-only")), 1);
  assert.equal(faultOf(new Deno.errors.NotFound("relaymail.sqlite")), "bug");
});

Deno.test("control-API JSON keeps dates and bytes", () => {
  const value = {
    at: new Date("2026-11-29T12:00:00Z"),
    nested: [{ bytes: new Uint8Array([0, 255, 7]) }],
    plain: { $date: 1 },
  };
  assert.deepEqual(fromJson(toJson(value)), value);
});
