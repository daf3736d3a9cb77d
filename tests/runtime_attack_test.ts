/**
 * The runtime under attack: a local attacker (another Unix user, a hostile page,
 * a file planted where the user points a command) and a careless user (two
 * commands at once, a daemon killed -9, a full disk, long or odd paths, a
 * directory with loose permissions) against the writer lock, the control API,
 * its client, the control-API JSON and the fault table.
 *
 * Every test asserts the SAFE behaviour: a test that fails shows a hole. The
 * attacker's files are planted as the same user (the tests must run unprivileged);
 * each test says which real attacker it stands for.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { FaultError } from "../app/core/errors.ts";
import { PassphraseRequiredError } from "../app/core/keys/key_stores.ts";
import { connect, readDaemonStatus } from "../app/runtime/client.ts";
import { CONTROL_FILE, CONTROL_SOCKET, ControlClient } from "../app/runtime/control.ts";
import { EXIT_CODES, exitCodeOf, faultOf, httpStatusOf } from "../app/runtime/faults.ts";
import { fromJson } from "../app/runtime/json.ts";
import { LOCK_FILE, WriterLock } from "../app/runtime/lock.ts";
import { Runtime } from "../app/runtime/runtime.ts";
import { DATABASE_FILE, Relaymail } from "../app/services/relaymail.ts";

const quiet = () => {};
const isUnix = Deno.build.os !== "windows";

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

/** Runs `fn` with fresh temporary directories, removed afterwards whatever happens. */
async function withDirs<T>(count: number, fn: (...dirs: string[]) => Promise<T>): Promise<T> {
  const dirs: string[] = [];
  for (let i = 0; i < count; i++) dirs.push(await Deno.makeTempDir({ prefix: "rm-attack-" }));
  try {
    return await fn(...dirs);
  } finally {
    for (const dir of dirs) await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** "done" if `promise` settles within `ms`, else "timeout" (the timer is always cleared). */
async function within(promise: Promise<unknown>, ms: number): Promise<"done" | "timeout"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), ms);
  });
  try {
    return await Promise.race([
      promise.then(() => "done" as const, () => "done" as const),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** A server the attacker runs: it answers like a daemon and records what it is sent. */
function attackerServer(listen: { path: string } | { port: 0 }) {
  const seen: { path: string; authorization: string | null; body: string }[] = [];
  const server = Deno.serve(
    { ...listen, ...("port" in listen ? { hostname: "127.0.0.1" } : {}), onListen: quiet },
    async (request) => {
      seen.push({
        path: new URL(request.url).pathname,
        authorization: request.headers.get("authorization"),
        body: await request.text(),
      });
      return Response.json({ result: { pid: 1, dataDir: "ATTACKER", daemon: null } });
    },
  );
  return { server, seen, port: (server.addr as Deno.NetAddr).port };
}

/** The control address the runtime serving `dir` published. */
async function controlAddress(
  dir: string,
): Promise<{ socket?: string; port?: number; token: string }> {
  return JSON.parse(await Deno.readTextFile(join(dir, CONTROL_FILE)));
}

/** A raw control request over the runtime's socket. */
async function rawControl(
  dir: string,
  name: string,
  init: { body?: BodyInit; headers?: Record<string, string>; token?: string | null } = {},
): Promise<Response> {
  const address = await controlAddress(dir);
  const client = Deno.createHttpClient({
    proxy: { transport: "unix", path: join(dir, CONTROL_SOCKET) },
  });
  try {
    const token = init.token === undefined ? address.token : init.token;
    const response = await fetch(`http://relaymail/v1/operations/${name}`, {
      client,
      method: "POST",
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...init.headers },
      body: init.body ?? "{}",
    });
    const text = await response.text();
    return new Response(text, { status: response.status, headers: response.headers });
  } finally {
    client.close();
  }
}

/**
 * Runs `fn` with a runtime on `dir` serving its control API, closed afterwards
 * whatever happens (default options: nothing logged).
 */
async function withServingRuntime<T>(
  dir: string,
  fn: (runtime: Runtime) => Promise<T>,
  options: { log: (line: string) => void } = { log: quiet },
): Promise<T> {
  const runtime = await Runtime.open(dir, options);
  try {
    await runtime.serveControl();
    return await fn(runtime);
  } finally {
    await runtime.close();
  }
}

/** A client of the process holding `dir`: opening the directory here is an error. */
function connectToHolder(dir: string, waitMs = 2_000) {
  return connect(dir, {
    open: () => Promise.reject(new Error("another process holds the directory")),
    waitMs,
  });
}

/**
 * Serves the control API on `dir`, sends `head` (given the token) over its socket
 * and never the rest, then closes the runtime: "done" if it closed within 5 s.
 */
async function closeBesideStalledClient(
  dir: string,
  head: (token: string) => string,
): Promise<"done" | "timeout"> {
  const runtime = await Runtime.open(dir, { log: quiet });
  await runtime.serveControl();
  const { token } = await controlAddress(dir);
  const conn = await Deno.connect({ transport: "unix", path: join(dir, CONTROL_SOCKET) });
  await conn.write(new TextEncoder().encode(head(token)));
  // Time for the server to take the request in, a duration: a stalled client
  // leaves nothing to wait on.
  await new Promise((resolve) => setTimeout(resolve, 200));
  const closing = runtime.close();
  const outcome = await within(closing, 5_000);
  conn.close();
  await closing;
  return outcome;
}

// ---------------------------------------------------------------------------
// Files planted in the data directory (a malicious data directory, or one that
// another user could write into before Relaymail first tightened it to 0700).
// ---------------------------------------------------------------------------

Deno.test({
  name: "lock: writer.lock planted as a link never truncates or rewrites what it points to",
  ignore: !isUnix,
  fn: () =>
    withDirs(2, async (dir, outside) => {
      const victim = join(outside, "victim.txt");
      await Deno.writeTextFile(victim, "precious\n");
      await Deno.symlink(victim, join(dir, LOCK_FILE));
      const lock = await WriterLock.acquire(dir).catch(() => null);
      lock?.release();
      assert.equal(
        await Deno.readTextFile(victim),
        "precious\n",
        "WriterLock.acquire followed the planted link and truncated its target",
      );
    }),
});

Deno.test({
  name: "control: a link planted at control.json's temporary name does not receive the token",
  ignore: !isUnix,
  fn: () =>
    withDirs(2, async (dir, outside) => {
      const runtime = await Runtime.open(dir, { log: quiet });
      const leak = join(outside, "leak.txt");
      try {
        await Deno.writeTextFile(leak, "");
        // Planted before the directory was tightened (the name is `control.json.<pid>.tmp`:
        // the attacker sees the daemon's pid in /proc as it starts): it survives the chmod.
        await Deno.symlink(leak, join(dir, `${CONTROL_FILE}.${Deno.pid}.tmp`));
        await runtime.serveControl().catch(() => {});
      } finally {
        await runtime.close();
      }
      assert.equal(
        await Deno.readTextFile(leak),
        "",
        "the control token was written through the link",
      );
    }),
});

Deno.test({
  name: "open: a database planted as a link out of the data directory is not written through",
  ignore: !isUnix,
  fn: () =>
    withDirs(2, async (dir, outside) => {
      const stolen = join(outside, "attacker.sqlite");
      await Deno.writeFile(stolen, new Uint8Array());
      await Deno.chmod(stolen, 0o666);
      await Deno.symlink(stolen, join(dir, DATABASE_FILE));
      const runtime = await Runtime.open(dir, { log: quiet }).catch(() => null);
      if (runtime) {
        await runtime.call("identity.create", { name: "victim" }).catch(() => {});
        await runtime.close();
      }
      assert.equal(
        (await Deno.stat(stolen)).size,
        0,
        "keys and mail went into a file outside the 0700 data directory",
      );
    }),
});

Deno.test({
  name: "control: a link planted as control.sock is unlinked, never its target",
  ignore: !isUnix,
  fn: () =>
    withDirs(2, async (dir, outside) => {
      const victim = join(outside, "victim.txt");
      await Deno.writeTextFile(victim, "precious\n");
      await Deno.chmod(victim, 0o644);
      const runtime = await Runtime.open(dir, { log: quiet });
      try {
        await Deno.symlink(victim, join(dir, CONTROL_SOCKET));
        await runtime.serveControl();
        assert.ok((await Deno.lstat(join(dir, CONTROL_SOCKET))).isSocket);
        assert.equal((await Deno.stat(join(dir, CONTROL_SOCKET))).mode! & 0o777, 0o600);
        assert.equal((await Deno.stat(join(dir, CONTROL_FILE))).mode! & 0o777, 0o600);
      } finally {
        await runtime.close();
      }
      assert.equal(await Deno.readTextFile(victim), "precious\n");
      assert.equal((await Deno.stat(victim)).mode! & 0o777, 0o644);
    }),
});

Deno.test({
  name: "open: a data directory that exists with loose permissions is tightened to 0700",
  ignore: !isUnix,
  fn: () =>
    withDirs(1, async (parent) => {
      const dir = join(parent, "data");
      await Deno.mkdir(dir);
      await Deno.chmod(dir, 0o777);
      await withServingRuntime(dir, async () => {
        assert.equal((await Deno.stat(dir)).mode! & 0o777, 0o700);
        for (const name of [CONTROL_FILE, CONTROL_SOCKET, DATABASE_FILE, LOCK_FILE]) {
          assert.equal((await Deno.stat(join(dir, name))).mode! & 0o077, 0, name);
        }
      });
    }),
});

Deno.test({
  name:
    "control: the socket is never group- or world-connectable, even before its chmod (umask 002)",
  ignore: !isUnix,
  fn: () =>
    withDirs(1, async (dir) => {
      const runtime = await Runtime.open(dir, { log: quiet });
      const chmod = Deno.chmod;
      const before: number[] = [];
      const umask = Deno.umask(0o002); // Debian/Ubuntu's default for user-private groups
      Deno.chmod = async (path, mode) => {
        // What anyone racing the chmod sees: the socket as bind() made it.
        if (String(path).endsWith(CONTROL_SOCKET)) before.push((await Deno.lstat(path)).mode!);
        return chmod(path, mode);
      };
      try {
        await runtime.serveControl();
      } finally {
        Deno.chmod = chmod;
        Deno.umask(umask);
        await runtime.close();
      }
      assert.equal(before.length, 1);
      assert.equal(
        before[0] & 0o022,
        0,
        `control.sock was created ${(before[0] & 0o777).toString(8)} and chmod-ed afterwards`,
      );
    }),
});

Deno.test({
  name: "control: control.json is 0600 from the moment it exists, whatever the umask",
  ignore: !isUnix,
  fn: () =>
    withDirs(1, async (dir) => {
      const runtime = await Runtime.open(dir, { log: quiet });
      const rename = Deno.rename;
      const modes: number[] = [];
      const umask = Deno.umask(0o000);
      Deno.rename = async (from, to) => {
        if (String(to).endsWith(CONTROL_FILE)) modes.push((await Deno.lstat(from)).mode!);
        return rename(from, to);
      };
      try {
        await runtime.serveControl();
      } finally {
        Deno.rename = rename;
        Deno.umask(umask);
        await runtime.close();
      }
      assert.deepEqual(modes.map((mode) => mode & 0o777), [0o600]);
    }),
});

// ---------------------------------------------------------------------------
// The client trusts the address in control.json.
// ---------------------------------------------------------------------------

Deno.test({
  name: "client: a relative data dir does not send the live token and inputs to a socket in /tmp",
  ignore: !isUnix,
  fn: () =>
    withDirs(2, async (home, tmp) => {
      // The daemon runs as `relaymail --data-dir data daemon` in `home`; the user
      // then runs a command from `tmp` (world-writable, like /tmp) naming the same
      // directory by its absolute path. Another user made `tmp/data/control.sock`.
      const cwd = Deno.cwd();
      Deno.chdir(home);
      let runtime: Runtime | undefined;
      let attacker: ReturnType<typeof attackerServer> | undefined;
      let status: unknown;
      try {
        runtime = await Runtime.open("data", { log: quiet });
        await runtime.serveControl();
        Deno.chdir(tmp);
        await Deno.mkdir(join(tmp, "data"));
        attacker = attackerServer({ path: join(tmp, "data", CONTROL_SOCKET) });
        const client = await connectToHolder(join(home, "data"));
        try {
          status = await client.call("runtime.status");
          await client.call("passphrase.set", { passphrase: "hunter2-secret" }).catch(() => {});
        } finally {
          await client.close();
        }
      } finally {
        Deno.chdir(cwd);
        await attacker?.server.shutdown();
        await runtime?.close();
      }
      assert.deepEqual(attacker!.seen, [], "the attacker's socket got the token and the inputs");
      assert.equal((status as { pid: number }).pid, Deno.pid);
    }),
});

Deno.test({
  name:
    "client: on 127.0.0.1 (long path), a stale address's port taken by another user is not trusted",
  fn: () =>
    withDirs(1, async (parent) => {
      // Over 100 characters: the control API would fall back to 127.0.0.1.
      const dir = join(parent, "d".repeat(100));
      await Deno.mkdir(dir, { mode: 0o700 });
      // A daemon was killed -9 and left its address; a new one holds the lock but
      // has not published yet (it waits at its passphrase prompt, or migrates).
      // Another user has bound the old port.
      const attacker = attackerServer({ port: 0 });
      const holder = (await WriterLock.acquire(dir))!;
      let remote = false;
      try {
        await Deno.writeTextFile(
          join(dir, CONTROL_FILE),
          JSON.stringify({ pid: 999_999, port: attacker.port, token: "killed-daemon-token" }),
          { mode: 0o600 },
        );
        const client = await connectToHolder(dir, 1_500).catch(() => null);
        if (client) {
          remote = client.remote;
          await client.call("passphrase.set", { passphrase: "hunter2-secret" }).catch(() => {});
          await client.close();
        }
      } finally {
        holder.release();
        await attacker.server.shutdown();
      }
      assert.ok(
        !attacker.seen.some((request) => request.body.includes("hunter2")),
        "the command's input went to whoever listened on the stale port",
      );
      assert.equal(remote, false, "connect() trusted an address no lock holder published");
    }),
});

// ---------------------------------------------------------------------------
// Careless users: odd paths, full disks, killed daemons, stalled clients.
// ---------------------------------------------------------------------------

Deno.test({
  name: "control: a data dir under 100 characters but over 108 bytes (non-ASCII) still serves",
  ignore: !isUnix,
  fn: () =>
    withDirs(1, async (parent) => {
      // 45 "é" are 45 UTF-16 units but 90 bytes: the check counts the former, the kernel the latter.
      const dir = join(parent, "é".repeat(45));
      const socket = join(dir, CONTROL_SOCKET);
      assert.ok(socket.length <= 100 && new TextEncoder().encode(socket).length > 108);
      await withServingRuntime(dir, async () => {
        const client = await connectToHolder(dir);
        assert.equal(client.remote, true);
        await client.close();
      });
    }),
});

Deno.test({
  name: "control: when publishing the address fails (disk full), nothing is left listening",
  ignore: !isUnix,
  // While the hole is there, the sanitizers also report the server start() leaked.
  fn: () =>
    withDirs(1, async (dir) => {
      const runtime = await Runtime.open(dir, { log: quiet });
      let listening = false;
      try {
        // Stands in for ENOSPC / EROFS when control.json is written.
        await Deno.mkdir(join(dir, CONTROL_FILE));
        await assert.rejects(() => runtime.serveControl());
        listening = await Deno.connect({ transport: "unix", path: join(dir, CONTROL_SOCKET) })
          .then((conn) => (conn.close(), true), () => false);
      } finally {
        await runtime.close();
      }
      assert.equal(listening, false, "the control server kept listening after start() failed");
      assert.equal(await exists(join(dir, CONTROL_SOCKET)), false, "the socket was left behind");
      const leftovers = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) =>
        n.endsWith(".tmp")
      );
      assert.deepEqual(leftovers, [], "a temporary file holding the token was left behind");
    }),
});

Deno.test({
  name: "faults: a full disk (ENOSPC) is transient (75), not Relaymail's bug (70)",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const error = await Deno.writeTextFile("/dev/full", "x").then(() => null, (e) => e);
    assert.ok(error, "/dev/full accepted a write");
    assert.equal(exitCodeOf(error), EXIT_CODES.transient, `${error.name}: ${error.message}`);
    assert.notEqual(httpStatusOf(error, { inputBoundary: true }), 500);
  },
});

Deno.test({
  name: "client: an answer with an unknown or missing fault still exits non-zero",
  ignore: !isUnix,
  fn: () =>
    withDirs(1, async (dir) => {
      // A daemon of another version (or anything answering) names a fault this CLI does not know.
      const answers = [{ fault: "throttled", message: "new in 2.0" }, "boom", {}];
      let next = 0;
      const server = Deno.serve(
        { path: join(dir, CONTROL_SOCKET), onListen: quiet },
        async (request) => {
          await request.text();
          if (request.url.endsWith("/runtime.status")) return Response.json({ result: {} });
          return Response.json({ error: answers[next++] }, { status: 500 });
        },
      );
      await Deno.writeTextFile(
        join(dir, CONTROL_FILE),
        JSON.stringify({ pid: 1, socket: join(dir, CONTROL_SOCKET), token: "t" }),
      );
      await Deno.writeTextFile(join(dir, LOCK_FILE), "1\n"); // that daemon holds the directory
      const codes: unknown[] = [];
      const client = (await ControlClient.connect(dir))!;
      try {
        for (const _ of answers) {
          await client.call("mail.send", {}).then(
            () => codes.push("resolved"),
            (error) => codes.push(exitCodeOf(error)),
          );
        }
      } finally {
        client.close();
        await server.shutdown();
      }
      for (const code of codes) {
        assert.ok(typeof code === "number" && code > 0, `exit code ${String(code)}`);
      }
    }),
});

Deno.test({
  name: "control: malformed JSON is the caller's mistake (400), not a bug logged with a stack",
  ignore: !isUnix,
  fn: () =>
    withDirs(1, async (dir) => {
      const logged: string[] = [];
      const answers: { status: number; fault: string }[] = [];
      await withServingRuntime(dir, async () => {
        for (const body of ["{", ""]) {
          const response = await rawControl(dir, "status.show", { body });
          answers.push({ status: response.status, fault: (await response.json()).error?.fault });
        }
      }, { log: (line) => logged.push(line) });
      for (const answer of answers) assert.deepEqual(answer, { status: 400, fault: "input" });
      assert.deepEqual(logged, []);
    }),
});

Deno.test({
  name:
    "operations: invitations.create refuses a ttlMs that is not a number (string, $date object)",
  fn: () =>
    withDirs(1, async (dir) => {
      const runtime = await Runtime.open(dir, { log: quiet });
      const outcomes: unknown[] = [];
      try {
        await runtime.call("identity.create", { name: "Alice" });
        // What a raw control request can send: "3600000" meant one hour.
        for (
          const input of [
            { ttlMs: "3600000" },
            fromJson('{"ttlMs":{"$date":"1970-01-02T00:00:00Z"}}'),
          ]
        ) {
          outcomes.push(
            await runtime.call("invitations.create", input).then(
              (made) => {
                const { createdAt, expiresAt } = made as { createdAt: Date; expiresAt: Date };
                return `made, valid ${Math.round((+expiresAt - +createdAt) / 3_600_000)} h`;
              },
              (error) => faultOf(error, { inputBoundary: true }),
            ),
          );
        }
      } finally {
        await runtime.close();
      }
      assert.deepEqual(outcomes, ["input", "input"]);
    }),
});

Deno.test({
  name: "control: a client that stalls mid-body cannot stop the daemon from stopping",
  ignore: !isUnix,
  fn: () =>
    withDirs(1, async (dir) => {
      // A CLI command suspended (Ctrl-Z) while it uploads a large attachment.
      const outcome = await closeBesideStalledClient(
        dir,
        (token) =>
          `POST /v1/operations/status.show HTTP/1.1\r\nhost: relaymail\r\n` +
          `authorization: Bearer ${token}\r\ncontent-length: 1000\r\n\r\n{"a":`,
      );
      assert.equal(outcome, "done", "runtime.close() (SIGTERM) waited on the stalled client");
    }),
});

Deno.test({
  name: "control: an unauthenticated half-sent request does not hold shutdown",
  ignore: !isUnix,
  fn: () =>
    withDirs(1, async (dir) => {
      const outcome = await closeBesideStalledClient(
        dir,
        () => `POST /v1/operations/status.show HTTP/1.1\r\n`,
      );
      assert.equal(outcome, "done");
    }),
});

Deno.test({
  name: "control: passphrase.remove over the control API asks for the current passphrase",
  ignore: !isUnix,
  fn: () =>
    withDirs(1, async (dir) => {
      // The web app asks for it "so that an unattended open page cannot unseal the keys";
      // `relaymail passphrase remove` at an unattended terminal, or any process of the
      // user, goes through the daemon without it.
      const runtime = await Runtime.open(dir, { log: quiet, passphrase: "correct horse battery" });
      let removed: unknown;
      try {
        await runtime.call("identity.create", { name: "Alice" });
        await runtime.serveControl();
        const client = await connectToHolder(dir);
        try {
          assert.equal(client.remote, true);
          removed = await client.call("passphrase.remove").then(() => "removed", (e) => e);
        } finally {
          await client.close();
        }
      } finally {
        await runtime.close();
      }
      const reopened = await Relaymail.open(dir).then((m) => (m.close(), "opened"), (e) => e);
      assert.ok(reopened instanceof PassphraseRequiredError, "the keys now lie unsealed on disk");
      assert.ok(removed instanceof FaultError);
    }),
});

Deno.test({
  name: "lock: writer.lock deleted under a running writer does not let a second writer in",
  fn: () =>
    withDirs(1, async (dir) => {
      const first = (await WriterLock.acquire(dir))!;
      let second: WriterLock | null = null;
      try {
        // `rm ~/.local/share/relaymail/*.lock` by a tidy user, or a sync tool.
        await Deno.remove(join(dir, LOCK_FILE));
        second = await WriterLock.acquire(dir).catch(() => null);
      } finally {
        second?.release();
        first.release();
      }
      assert.equal(second, null, "two processes now hold 'the' writer lock");
    }),
});

Deno.test({
  name: "client: readDaemonStatus says null when the runtime runs no daemon (not undefined)",
  ignore: !isUnix,
  fn: () =>
    withDirs(1, async (dir) => {
      const status = await withServingRuntime(dir, () => readDaemonStatus(dir));
      assert.strictEqual(status, null);
    }),
});

// ---------------------------------------------------------------------------
// What holds today.
// ---------------------------------------------------------------------------

Deno.test({
  name: "lock: one directory through a symlink and its real path has one writer",
  ignore: !isUnix,
  fn: () =>
    withDirs(1, async (parent) => {
      const real = join(parent, "real");
      const link = join(parent, "link");
      await Deno.mkdir(real, { mode: 0o700 });
      await Deno.symlink(real, link);
      await withServingRuntime(link, async () => {
        await assert.rejects(
          () => WriterLock.acquire(real),
          (e: Error) => faultOf(e) === "conflict",
        );
        const client = await connectToHolder(real);
        assert.equal(client.remote, true);
        await client.close();
      });
    }),
});

Deno.test({
  name: "careless: a daemon killed -9 leaves nothing that stops the next command",
  ignore: !isUnix,
  fn: () =>
    withDirs(1, async (dir) => {
      const script = join(dir, "..", `${dir.split("/").pop()}-daemon.ts`);
      await Deno.writeTextFile(
        script,
        `import { Runtime } from ${
          JSON.stringify(new URL("../app/runtime/runtime.ts", import.meta.url).href)
        };
         const runtime = await Runtime.open(Deno.args[0], { log: () => {} });
         await runtime.serveControl();
         console.log("serving");
         setInterval(() => {}, 60_000);`,
      );
      const daemon = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--config",
          new URL("../deno.json", import.meta.url).pathname,
          script,
          dir,
        ],
        stdout: "piped",
        stderr: "null",
      }).spawn();
      try {
        const reader = daemon.stdout.pipeThrough(new TextDecoderStream()).getReader();
        let text = "";
        while (!text.includes("serving")) {
          const { value, done } = await reader.read();
          if (done) break;
          text += value;
        }
        await reader.cancel();
        assert.match(text, /serving/);
        const through = await connectToHolder(dir, 5_000);
        assert.equal(((await through.call("runtime.status")) as { pid: number }).pid, daemon.pid);
        await through.close();
        daemon.kill("SIGKILL");
        await daemon.status;
        assert.ok(await exists(join(dir, CONTROL_FILE)), "the killed daemon left its address");
        const local = await connect(dir, {
          open: (lock) => Runtime.open(dir, { lock, log: quiet }),
          waitMs: 5_000,
        });
        assert.equal(local.remote, false);
        assert.equal(((await local.call("runtime.status")) as { pid: number }).pid, Deno.pid);
        await local.close();
        assert.equal(await exists(join(dir, CONTROL_FILE)), false);
        assert.equal(await exists(join(dir, CONTROL_SOCKET)), false);
      } finally {
        try {
          daemon.kill("SIGKILL");
        } catch {
          // already gone
        }
        await daemon.status;
        await Deno.remove(script).catch(() => {});
      }
    }),
});

Deno.test({
  name: "control: a streaming client that goes away harms neither the operation nor the daemon",
  ignore: !isUnix,
  fn: () =>
    withDirs(2, async (dir, stick) => {
      for (let i = 0; i < 300; i++) await Deno.writeTextFile(join(stick, `${i}.parcel`), "junk");
      const logged: string[] = [];
      await withServingRuntime(dir, async () => {
        const { token } = await controlAddress(dir);
        const socket = join(dir, CONTROL_SOCKET);
        const client = Deno.createHttpClient({ proxy: { transport: "unix", path: socket! } });
        const abort = new AbortController();
        try {
          const response = await fetch("http://relaymail/v1/operations/sneakernet.import", {
            client,
            method: "POST",
            signal: abort.signal,
            headers: { authorization: `Bearer ${token}`, accept: "application/x-ndjson" },
            body: JSON.stringify({ directory: stick }),
          });
          const reader = response.body!.getReader();
          await reader.read();
          abort.abort();
          await reader.cancel().catch(() => {});
        } finally {
          client.close();
        }
        const status = await rawControl(dir, "runtime.status");
        assert.equal(status.status, 200);
      }, { log: (line) => logged.push(line) });
      assert.deepEqual(logged, []);
    }),
});

Deno.test({
  name:
    "codec: strings that look like {$date}/{$bytes} stay strings; {$bytes} where text goes is refused",
  ignore: !isUnix,
  fn: () =>
    withDirs(1, async (dir) => {
      const runtime = await Runtime.open(dir, { log: quiet });
      try {
        await runtime.call("identity.create", { name: "Alice" });
        await runtime.serveControl();
        const client = await connectToHolder(dir);
        try {
          for (const name of ['{"$date":"2020-01-01T00:00:00.000Z"}', '{"$bytes":"AAAA"}']) {
            await client.call("identity.rename", { name });
            const shown = await client.call("identity.show") as { name: unknown };
            assert.equal(shown.name, name);
          }
        } finally {
          await client.close();
        }
        const injected = await rawControl(dir, "identity.rename", {
          body: JSON.stringify({ name: { $bytes: "AAAA" } }),
        });
        assert.equal(injected.status, 400);
        assert.equal((await injected.json()).error.fault, "input");
      } finally {
        await runtime.close();
      }
    }),
});

Deno.test({
  name: "control: no token, no body read; chunked bodies and prototype names refused",
  ignore: !isUnix,
  fn: () =>
    withDirs(1, async (dir) => {
      await withServingRuntime(dir, async () => {
        const { token } = await controlAddress(dir);
        const denied = await rawControl(dir, "runtime.status", { token: null });
        assert.equal(denied.status, 401);
        const deniedText = await denied.text();
        assert.ok(!deniedText.includes(token) && !deniedText.includes(dir));
        // A body without a length (chunked) is refused before it is read.
        const chunked = await rawControl(dir, "runtime.status", {
          body: new ReadableStream({
            start(controller) {
              controller.enqueue(new TextEncoder().encode("{}"));
              controller.close();
            },
          }),
        });
        assert.equal(chunked.status, 400);
        for (const name of ["__proto__", "constructor", "hasOwnProperty", "toString"]) {
          const response = await rawControl(dir, name);
          assert.equal(response.status, 400, name);
          assert.match((await response.json()).error.message, /No operation/);
        }
      });
    }),
});

Deno.test({
  name: "careless: three `identity create` at once through the daemon make one identity",
  ignore: !isUnix,
  fn: () =>
    withDirs(1, async (dir) => {
      await withServingRuntime(dir, async () => {
        const clients = await Promise.all([0, 1, 2].map(() => connectToHolder(dir)));
        const outcomes = await Promise.allSettled(
          clients.map((client, i) => client.call("identity.create", { name: `n${i}` })),
        );
        for (const client of clients) await client.close();
        assert.equal(outcomes.filter((o) => o.status === "fulfilled").length, 1);
        for (const outcome of outcomes) {
          if (outcome.status === "rejected") assert.equal(faultOf(outcome.reason), "conflict");
        }
      });
    }),
});
