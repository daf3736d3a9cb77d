/**
 * Tests of `SqliteDatabase` (bindings/durable.ts): migrations, transactions and
 * savepoints, failures at every step of a transaction, and a real full disk (a
 * small tmpfs) with the mesh store on top.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { SqliteDatabase, StorageFullError } from "../bindings/durable.ts";
import { MeshStore, type ParcelRecord } from "../mesh/store.ts";

const MIGRATIONS = [
  "CREATE TABLE items (id INTEGER PRIMARY KEY, label TEXT NOT NULL UNIQUE)",
  "ALTER TABLE items ADD COLUMN body BLOB",
];

async function withDatabase(
  fn: (db: SqliteDatabase, path: string) => void | Promise<void>,
  migrations: readonly string[] = MIGRATIONS,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "relaymail-durable-" });
  const path = join(dir, "test.db");
  const db = SqliteDatabase.open(path, { migrations, busyTimeoutMs: 50 });
  try {
    await fn(db, path);
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
}

function labels(db: SqliteDatabase): string[] {
  return db.all<{ label: string }>("SELECT label FROM items ORDER BY id").map((r) => r.label);
}

/** Labels as another connection sees them: only what was committed. */
function committedLabels(path: string): string[] {
  const other = new DatabaseSync(path, { readOnly: true });
  try {
    return other.prepare("SELECT label FROM items ORDER BY id").all().map((r) => String(r.label));
  } finally {
    other.close();
  }
}

Deno.test("SqliteDatabase.open() applies migrations once and refuses a newer schema", async () => {
  await withDatabase((db, path) => {
    assert.equal(db.get<{ user_version: number }>("PRAGMA user_version")?.user_version, 2);
    assert.equal(db.get<{ journal_mode: string }>("PRAGMA journal_mode")?.journal_mode, "wal");
    db.run("INSERT INTO items (label, body) VALUES (?, ?)", "a", new Uint8Array([1]));
    db.close();
    // Reopening runs nothing again (a second ALTER TABLE would fail).
    const again = SqliteDatabase.open(path, { migrations: MIGRATIONS });
    assert.deepEqual(labels(again), ["a"]);
    again.close();
    assert.throws(
      () => SqliteDatabase.open(path, { migrations: MIGRATIONS.slice(0, 1) }),
      (error: Error) =>
        error instanceof RangeError && /newer than this program/.test(error.message),
    );
  });
});

Deno.test("SqliteDatabase.transaction() commits what fn did and returns its result", async () => {
  await withDatabase((db, path) => {
    const result = db.transaction(() => {
      db.run("INSERT INTO items (label) VALUES ('a')");
      db.run("INSERT INTO items (label) VALUES ('b')");
      return 42;
    });
    assert.equal(result, 42);
    assert.deepEqual(committedLabels(path), ["a", "b"]);
  });
});

Deno.test("SqliteDatabase.transaction() rolls back everything when fn throws", async () => {
  await withDatabase((db, path) => {
    const failure = new Error("boom");
    assert.throws(
      () =>
        db.transaction(() => {
          db.run("INSERT INTO items (label) VALUES ('a')");
          throw failure;
        }),
      (error) => error === failure,
    );
    assert.deepEqual(labels(db), []);
    db.transaction(() => db.run("INSERT INTO items (label) VALUES ('b')"));
    assert.deepEqual(committedLabels(path), ["b"]);
  });
});

Deno.test("SqliteDatabase.transaction() nests as savepoints: an inner failure undoes only its level", async () => {
  await withDatabase((db, path) => {
    db.transaction(() => {
      db.run("INSERT INTO items (label) VALUES ('outer')");
      assert.throws(() =>
        db.transaction(() => {
          db.run("INSERT INTO items (label) VALUES ('inner')");
          db.run("INSERT INTO items (label) VALUES ('outer')"); // UNIQUE fails
        }), /UNIQUE/);
      db.transaction(() => {
        db.run("INSERT INTO items (label) VALUES ('second')");
        db.transaction(() => db.run("INSERT INTO items (label) VALUES ('third')"));
      });
      // Nothing is committed until the outermost level returns.
      assert.deepEqual(committedLabels(path), []);
    });
    assert.deepEqual(committedLabels(path), ["outer", "second", "third"]);

    // An outer failure undoes inner levels that had returned.
    assert.throws(() =>
      db.transaction(() => {
        db.transaction(() => db.run("INSERT INTO items (label) VALUES ('gone')"));
        throw new Error("outer fails");
      }), /outer fails/);
    assert.deepEqual(committedLabels(path), ["outer", "second", "third"]);
  });
});

Deno.test("SqliteDatabase.transaction() refuses an async fn and rolls back", async () => {
  await withDatabase((db) => {
    assert.throws(
      () =>
        db.transaction(() => {
          db.run("INSERT INTO items (label) VALUES ('a')");
          return Promise.resolve();
        }),
      TypeError,
    );
    assert.deepEqual(labels(db), []);
  });
});

Deno.test("SqliteDatabase.transaction() recovers from a failed COMMIT: rolled back, next one commits", async () => {
  // A deferred foreign key is checked at COMMIT, which then fails with the
  // transaction still open: the way a COMMIT on a full disk may fail.
  const migrations = [
    `CREATE TABLE items (id INTEGER PRIMARY KEY, label TEXT NOT NULL UNIQUE, body BLOB);
     CREATE TABLE links (item INTEGER REFERENCES items (id) DEFERRABLE INITIALLY DEFERRED)`,
  ];
  await withDatabase((db, path) => {
    for (let round = 0; round < 3; round++) {
      assert.throws(
        () =>
          db.transaction(() => {
            db.run("INSERT INTO items (label) VALUES (?)", `lost ${round}`);
            db.transaction(() => db.run("INSERT INTO links (item) VALUES (999)"));
          }),
        /FOREIGN KEY/,
      );
    }
    assert.deepEqual(labels(db), [], "nothing of the failed transactions is kept");
    db.transaction(() => db.run("INSERT INTO items (label) VALUES ('kept')"));
    db.run("INSERT INTO items (label) VALUES ('autocommitted')");
    assert.deepEqual(committedLabels(path), ["kept", "autocommitted"], "committed, not left open");
  }, migrations);
});

Deno.test("SqliteDatabase.transaction() recovers from a failed BEGIN (another writer holds the lock)", async () => {
  await withDatabase((db, path) => {
    const other = SqliteDatabase.open(path, { migrations: MIGRATIONS, busyTimeoutMs: 10 });
    try {
      db.transaction(() => {
        db.run("INSERT INTO items (label) VALUES ('first')");
        assert.throws(
          () => other.transaction(() => other.run("INSERT INTO items (label) VALUES ('x')")),
          /locked|busy/i,
        );
      });
      other.transaction(() => other.run("INSERT INTO items (label) VALUES ('second')"));
      assert.deepEqual(labels(db), ["first", "second"]);
    } finally {
      other.close();
    }
  });
});

Deno.test("SqliteDatabase.transaction() lets nothing run once SQLite has rolled the transaction back", async () => {
  // SQLite ends a transaction by itself after some errors (a full disk, an I/O
  // error). A ROLLBACK issued inside stands in for one here.
  await withDatabase((db, path) => {
    assert.throws(
      () =>
        db.transaction(() => {
          db.run("INSERT INTO items (label) VALUES ('a')");
          db.transaction(() => {
            db.run("INSERT INTO items (label) VALUES ('b')");
            db.exec("ROLLBACK");
          });
        }),
      /an error ended it/,
    );
    assert.throws(
      () =>
        db.transaction(() => {
          db.run("INSERT INTO items (label) VALUES ('a')");
          try {
            db.exec("ROLLBACK");
            throw new Error("the disk is full, say");
          } catch {
            // A caller that swallows the error must not get the rest committed alone.
          }
          db.run("INSERT INTO items (label) VALUES ('half')");
        }),
      /an error ended it/,
    );
    assert.deepEqual(committedLabels(path), []);
    db.transaction(() => db.transaction(() => db.run("INSERT INTO items (label) VALUES ('c')")));
    assert.deepEqual(committedLabels(path), ["c"]);
  });
});

// StorageFullError without root: `PRAGMA max_page_count` makes SQLite answer
// SQLITE_FULL ("database or disk is full") as a full disk does.

/** Limits the database to `pages` pages, for this connection only. */
function capPages(db: SqliteDatabase, pages: number): void {
  db.get(`PRAGMA max_page_count = ${pages}`);
}

Deno.test("SqliteDatabase classifies SQLITE_FULL as StorageFullError, from run() and exec() alike", async () => {
  await withDatabase((db, path) => {
    db.run("INSERT INTO items (label) VALUES ('kept')");
    capPages(db, db.get<{ page_count: number }>("PRAGMA page_count")!.page_count);
    const big = new Uint8Array(64 * 1024);
    // A prepared statement reports SQLite's result code (13)…
    assert.throws(
      () => db.run("INSERT INTO items (label, body) VALUES ('big', ?)", big),
      (error) => {
        assertFull(error, path);
        const cause = (error as Error).cause as { code?: string; errcode?: number };
        assert.equal(cause.code, "ERR_SQLITE_ERROR");
        assert.equal(cause.errcode, 13);
        return true;
      },
    );
    // …`exec()` only SQLite's text for it; both are the same condition.
    assert.throws(
      () => db.exec("INSERT INTO items (label, body) VALUES ('big', zeroblob(65536))"),
      (error) => assertFull(error, path),
    );
    // In a transaction, the whole of it goes and the error keeps its class.
    assert.throws(
      () =>
        db.transaction(() => {
          db.run("INSERT INTO items (label) VALUES ('lost')");
          db.transaction(() => db.run("INSERT INTO items (label, body) VALUES ('big', ?)", big));
        }),
      (error) => assertFull(error, path),
    );
    assert.deepEqual(committedLabels(path), ["kept"]);
    // Transient: once there is room again, the same database takes writes.
    capPages(db, 1_000_000);
    db.transaction(() => db.run("INSERT INTO items (label, body) VALUES ('big', ?)", big));
    assert.deepEqual(committedLabels(path), ["kept", "big"]);
  });
});

Deno.test("SqliteDatabase leaves other SQLite errors as they are, not StorageFullError", async () => {
  await withDatabase((db) => {
    db.run("INSERT INTO items (label) VALUES ('a')");
    for (
      const fail of [
        () => db.run("INSERT INTO items (label) VALUES ('a')"), // UNIQUE
        () => db.exec("INSERT INTO items (label) VALUES ('a')"),
        () => db.run("INSERT INTO nowhere (label) VALUES ('a')"), // no such table
        () => db.transaction(() => db.run("INSERT INTO items (label) VALUES (NULL)")), // NOT NULL
      ]
    ) {
      assert.throws(fail, (error) => {
        assert.ok(!(error instanceof StorageFullError), `misclassified: ${error}`);
        assert.equal((error as { code?: string }).code, "ERR_SQLITE_ERROR");
        return true;
      });
    }
    // An error of the caller's own passes through untouched.
    const own = new RangeError("the caller's");
    assert.throws(() =>
      db.transaction(() => {
        throw own;
      }), (error) => error === own);
  });
});

Deno.test("SqliteDatabase.afterCommit() runs after the outermost COMMIT, in order, and never on rollback", async () => {
  await withDatabase((db, path) => {
    const events: string[] = [];
    /** Records `name` with what another connection sees committed at that moment. */
    const note = (name: string) => () => events.push(`${name}: ${committedLabels(path).join(",")}`);

    db.transaction(() => {
      db.run("INSERT INTO items (label) VALUES ('a')");
      db.afterCommit(note("first"));
      db.transaction(() => {
        db.run("INSERT INTO items (label) VALUES ('b')");
        db.afterCommit(note("inner"));
      });
      // A released savepoint is not a commit: nothing has run yet.
      assert.deepEqual(events, []);
      db.afterCommit(note("last"));
    });
    assert.deepEqual(events, ["first: a,b", "inner: a,b", "last: a,b"]);

    // Rolled back whole: nothing runs, then or at the next commit.
    events.length = 0;
    assert.throws(() =>
      db.transaction(() => {
        db.run("INSERT INTO items (label) VALUES ('c')");
        db.transaction(() => db.afterCommit(note("undone inner")));
        db.afterCommit(note("undone"));
        throw new Error("rollback");
      }), /rollback/);
    db.transaction(() => db.afterCommit(note("next")));
    assert.deepEqual(events, ["next: a,b"]);

    // A savepoint rolled back drops its own listeners only.
    events.length = 0;
    db.transaction(() => {
      db.afterCommit(note("outer"));
      assert.throws(() =>
        db.transaction(() => {
          db.run("INSERT INTO items (label) VALUES ('d')");
          db.afterCommit(note("dropped"));
          throw new Error("inner fails");
        }), /inner fails/);
      db.run("INSERT INTO items (label) VALUES ('e')");
    });
    assert.deepEqual(events, ["outer: a,b,e"]);

    // Outside a transaction there is nothing to wait for.
    events.length = 0;
    db.afterCommit(note("now"));
    assert.deepEqual(events, ["now: a,b,e"]);
  });
});

Deno.test("SqliteDatabase.afterCommit() drops its listeners when the COMMIT itself fails", async () => {
  const migrations = [
    `CREATE TABLE items (id INTEGER PRIMARY KEY, label TEXT NOT NULL UNIQUE, body BLOB);
     CREATE TABLE links (item INTEGER REFERENCES items (id) DEFERRABLE INITIALLY DEFERRED)`,
  ];
  await withDatabase((db, path) => {
    const ran: string[] = [];
    assert.throws(() =>
      db.transaction(() => {
        db.run("INSERT INTO items (label) VALUES ('lost')");
        db.run("INSERT INTO links (item) VALUES (999)"); // fails at COMMIT
        db.afterCommit(() => ran.push("lost"));
      }), /FOREIGN KEY/);
    assert.equal(ran.length, 0);
    db.transaction(() => {
      db.run("INSERT INTO items (label) VALUES ('kept')");
      db.afterCommit(() => ran.push("kept"));
    });
    assert.deepEqual(ran, ["kept"]);
    assert.deepEqual(committedLabels(path), ["kept"]);
  }, migrations);
});

Deno.test("SqliteDatabase.afterCommit(): a failing listener is reported, not thrown, and the rest still run", async () => {
  await withDatabase((db, path) => {
    const reported: unknown[] = [];
    const ran: string[] = [];
    const consoleError = console.error;
    console.error = (...args: unknown[]) => reported.push(args.join(" "));
    try {
      const result = db.transaction(() => {
        db.run("INSERT INTO items (label) VALUES ('a')");
        db.afterCommit(() => {
          throw new Error("listener broke");
        });
        db.afterCommit(() => ran.push("after the broken one"));
        return "done";
      });
      assert.equal(result, "done");
    } finally {
      console.error = consoleError;
    }
    assert.deepEqual(ran, ["after the broken one"]);
    assert.equal(reported.length, 1);
    assert.match(String(reported[0]), /listener broke/);
    assert.deepEqual(committedLabels(path), ["a"]);
  });
});

Deno.test({
  name: "SqliteDatabase.open() makes the database and its WAL files readable by their owner only",
  ignore: Deno.build.os === "windows",
  async fn() {
    const modeOf = (path: string) => Deno.statSync(path).mode! & 0o777;
    await withDatabase((db, path) => {
      db.run("INSERT INTO items (label) VALUES ('a')"); // the WAL files exist once written
      for (const file of [path, `${path}-wal`, `${path}-shm`]) {
        assert.equal(modeOf(file), 0o600, `${file} is ${modeOf(file).toString(8)}`);
      }
      db.close();
      // A file left readable by others (an older version, a copy) is narrowed on open.
      for (const file of [path, `${path}-wal`, `${path}-shm`]) {
        try {
          Deno.chmodSync(file, 0o644);
        } catch (error) {
          if (!(error instanceof Deno.errors.NotFound)) throw error; // checkpointed away
        }
      }
      const again = SqliteDatabase.open(path, { migrations: MIGRATIONS });
      try {
        again.run("INSERT INTO items (label) VALUES ('b')");
        for (const file of [path, `${path}-wal`, `${path}-shm`]) {
          assert.equal(modeOf(file), 0o600, `${file} is ${modeOf(file).toString(8)}`);
        }
      } finally {
        again.close();
      }
    });
  },
});

// A real full disk: a small tmpfs. Mounting needs root.

function canMount(): boolean {
  try {
    return Deno.uid() === 0 &&
      new Deno.Command("mount", { args: ["--version"], stdout: "null", stderr: "null" })
        .outputSync().success;
  } catch {
    return false;
  }
}

async function run(cmd: string, args: string[]): Promise<void> {
  const output = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (!output.success) {
    throw new Error(
      `${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(output.stderr).trim()}`,
    );
  }
}

/** Size of the tmpfs each full-disk test gets. */
const DISK_BYTES = 2 * 1024 * 1024;
/** A file taking room on it, deleted to free space. */
const FILLER_BYTES = 512 * 1024;

/**
 * Registers a test on a fresh small tmpfs holding a filler file. Without root it
 * fails under `CI=true` (CI runs as root, so it must run there) and is skipped,
 * saying why, elsewhere.
 */
function fullDiskTest(name: string, fn: (dir: string, filler: string) => Promise<void>): void {
  const able = canMount();
  const inCi = Deno.env.get("CI") === "true";
  if (!able && !inCi) {
    console.warn(`Skipping "${name}": mounting a tmpfs needs root (and CI=true makes it fail)`);
  }
  Deno.test({
    name,
    ignore: !able && !inCi,
    async fn() {
      if (!able) throw new Error("This test needs root and mount(8) to mount a small tmpfs");
      const dir = await Deno.makeTempDir({ prefix: "relaymail-full-disk-" });
      try {
        await run("mount", ["-t", "tmpfs", "-o", `size=${DISK_BYTES},mode=0700`, "tmpfs", dir]);
        try {
          const filler = join(dir, "filler");
          await Deno.writeFile(filler, new Uint8Array(FILLER_BYTES).fill(1));
          await fn(dir, filler);
        } finally {
          await run("umount", [dir]);
        }
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

/** 20 000 bytes, each `n % 256`. */
function body(n: number): Uint8Array {
  return new Uint8Array(20_000).fill(n % 256);
}

function assertFull(error: unknown, path: string): true {
  assert.ok(error instanceof StorageFullError, `not a StorageFullError: ${error}`);
  assert.equal(error.path, path);
  assert.match(error.message, /disk holding .* is full/);
  return true;
}

fullDiskTest(
  "SqliteDatabase on a full disk: the failing write is rolled back, writes resume once space is freed",
  async (dir, filler) => {
    const path = join(dir, "full.db");
    const db = SqliteDatabase.open(path, { migrations: MIGRATIONS });
    try {
      const insert = (n: number) =>
        db.run("INSERT INTO items (label, body) VALUES (?, ?)", `row ${n}`, body(n));
      let committed = 0;
      let failure: unknown;
      while (failure === undefined) {
        try {
          db.transaction(() => {
            for (let i = 0; i < 3; i++) insert(committed + i);
          });
          committed += 3;
        } catch (error) {
          failure = error;
        }
        assert.ok(committed < 1000, "the disk never filled up");
      }
      assertFull(failure, path);
      assert.ok(committed > 0);

      const intact = () => {
        const rows = db.all<{ label: string; body: Uint8Array }>(
          "SELECT label, body FROM items ORDER BY id",
        );
        assert.equal(rows.length, committed, "the failed transaction left nothing behind");
        rows.forEach((row, n) => {
          assert.equal(row.label, `row ${n}`);
          assert.deepEqual(row.body, body(n));
        });
      };
      intact();

      // Still full: a big transaction fails the same way, and so does one whose
      // inner savepoint fills the disk (SQLite then rolls the whole of it back).
      assert.throws(
        () =>
          db.transaction(() => {
            for (let i = 0; i < 100; i++) insert(10_000 + i);
          }),
        (error) => assertFull(error, path),
      );
      assert.throws(
        () =>
          db.transaction(() => {
            db.run("INSERT INTO items (label) VALUES ('outer')");
            try {
              db.transaction(() => {
                for (let i = 0; i < 150; i++) insert(20_000 + i);
              });
            } catch {
              // Carrying on would commit the outer level alone: it must fail too.
            }
            db.run("INSERT INTO items (label) VALUES ('after')");
          }),
        (error) => assertFull(error, path),
      );
      intact();

      await Deno.remove(filler);
      db.transaction(() => {
        db.transaction(() => insert(committed));
        insert(committed + 1);
      });
      committed += 2;
      insert(committed++);
      intact();
      assert.equal(committedLabels(path).length, committed, "committed, not left open");
    } finally {
      db.close();
    }
  },
);

/** A fake relayed parcel: the store takes any bytes. */
function fakeParcel(n: number): ParcelRecord {
  return {
    key: n.toString(16).padStart(64, "0"),
    recipientId: "0" + "b".repeat(64),
    senderId: "0" + "a".repeat(64),
    size: 16_000,
    expiresAt: new Date(Date.now() + 86_400_000),
    origin: "relay",
    copies: 4,
    fromPeer: "peer",
    bytes: new Uint8Array(16_000).fill(n % 256),
  };
}

fullDiskTest(
  "MeshStore.putMany() on a full disk: the batch is refused whole, and taken once space is freed",
  async (dir, filler) => {
    const path = join(dir, "mesh.db");
    const store = MeshStore.open(path);
    try {
      let stored = 0;
      let failed: ParcelRecord[] = [];
      let failure: unknown;
      while (failure === undefined) {
        const batch = [0, 1, 2, 3].map((i) => fakeParcel(stored + i));
        try {
          store.putMany(batch);
          stored += batch.length;
        } catch (error) {
          failure = error;
          failed = batch;
        }
        assert.ok(stored < 1000, "the disk never filled up");
      }
      assertFull(failure, path);
      assert.ok(stored > 0);
      assert.equal(store.list().length, stored);
      for (const parcel of failed) assert.equal(store.knows(parcel.key), null);
      assert.deepEqual(store.bytes(fakeParcel(0).key), fakeParcel(0).bytes);

      await Deno.remove(filler);
      store.putMany(failed);
      for (const parcel of failed) {
        assert.equal(store.knows(parcel.key), "held");
        assert.deepEqual(store.bytes(parcel.key), parcel.bytes);
      }
      assert.equal(store.list().length, stored + failed.length);
      assert.ok(store.markDelivered(failed[0].key, failed[0].expiresAt));
      assert.equal(store.knows(failed[0].key), "delivered");
    } finally {
      store.close();
    }
  },
);
