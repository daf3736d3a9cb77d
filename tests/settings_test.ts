/**
 * The user's settings (app/core/settings.ts), kept in a real database in a
 * temporary directory: each kind of setting parses its text form, refuses bad
 * values without touching the stored one, with a message that names the setting
 * and the value, and falls back to its default when unset.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { SqliteDatabase } from "../bindings/durable.ts";
import { parseAddress, parseSize, SETTINGS, Settings } from "../app/core/settings.ts";
import { MIGRATIONS } from "../app/core/store/schema.ts";
import { exitCodeOf, faultOf, httpStatusOf } from "../app/runtime/faults.ts";

const MiB = 1024 ** 2;

/** Opens the settings of a database in a fresh temporary directory. */
async function withSettings(
  fn: (settings: Settings, reopen: () => Settings) => void | Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "relaymail-settings-" });
  const path = join(dir, "relaymail.db");
  let db = SqliteDatabase.open(path, { migrations: MIGRATIONS });
  try {
    await fn(new Settings(db), () => {
      db.close();
      db = SqliteDatabase.open(path, { migrations: MIGRATIONS });
      return new Settings(db);
    });
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** Asserts that `set` refuses `text` with a TypeError matching `message`, keeping the old value. */
function assertRefused(
  settings: Settings,
  name: keyof typeof SETTINGS,
  text: string,
  message: RegExp,
) {
  const before = settings.get(name);
  const wasSet = settings.isSet(name);
  assert.throws(() => settings.set(name, text), (error) => {
    assert.ok(error instanceof TypeError, `not a TypeError: ${error}`);
    assert.match(error.message, message);
    // Every refusal has one shape, naming the setting and the value refused.
    assert.match(error.message, new RegExp(`^Setting ${escape(name)} takes [^"]+, not "`));
    return true;
  });
  assert.deepEqual(settings.get(name), before, `${name} changed after refusing "${text}"`);
  assert.equal(settings.isSet(name), wasSet);
}

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");

/**
 * Asserts that `set` refuses each of `texts` with the one message
 * `Setting <name> takes <kind>, not "<text>": <reason>`.
 */
function assertRefusedEach(
  settings: Settings,
  name: keyof typeof SETTINGS,
  texts: string[],
  kind: string,
  reason: RegExp,
) {
  for (const text of texts) {
    const message = `^Setting ${escape(name)} takes ${escape(kind)}, not "${escape(text)}": `;
    assertRefused(settings, name, text, new RegExp(`${message}${reason.source}$`));
  }
}

/** Asserts that `set` takes each text of `cases` and `get` then returns its value. */
function assertTakes(
  settings: Settings,
  name: keyof typeof SETTINGS,
  cases: readonly (readonly [string, unknown])[],
) {
  for (const [text, value] of cases) {
    settings.set(name, text);
    assert.equal(settings.get(name), value, text);
  }
}

Deno.test("Settings.get() returns each setting's default while it is unset", async () => {
  await withSettings((settings) => {
    for (const name of Object.keys(SETTINGS) as (keyof typeof SETTINGS)[]) {
      assert.deepEqual(settings.get(name), SETTINGS[name].default, name);
      assert.equal(settings.isSet(name), false, name);
    }
    assert.deepEqual(settings.get("mesh.listen"), ["/ip4/0.0.0.0/tcp/4747"]);
    assert.equal(settings.get("mesh.quota"), 512 * MiB);
    assert.equal(settings.get("web.port"), 8473);
  });
});

Deno.test("Settings.set() takes a comma-separated list of multiaddrs", async () => {
  await withSettings((settings) => {
    settings.set("mesh.listen", " /ip4/1.2.3.4/tcp/1 , /dns4/relay.example/tcp/4747,, ");
    assert.deepEqual(settings.get("mesh.listen"), [
      "/ip4/1.2.3.4/tcp/1",
      "/dns4/relay.example/tcp/4747",
    ]);
    settings.set("mesh.peers", "/ip6/::1/tcp/4747");
    assert.deepEqual(settings.get("mesh.peers"), ["/ip6/::1/tcp/4747"]);
    // An empty list is a value of its own, not the default.
    settings.set("mesh.listen", "");
    assert.deepEqual(settings.get("mesh.listen"), []);
    assert.equal(settings.isSet("mesh.listen"), true);
    const bad: [string, string][] = [
      ["nope", "nope"],
      ["/ip4/1.2.3.4/tcp/1, 1.2.3.4:80", "1.2.3.4:80"],
      ["/ip4/999.1.1.1/tcp/1", "/ip4/999.1.1.1/tcp/1"],
      ["/tcp/nope", "/tcp/nope"],
    ];
    for (const [text, culprit] of bad) {
      assertRefused(
        settings,
        "mesh.listen",
        text,
        new RegExp(`^Setting mesh\\.listen takes multiaddrs, not "${escape(culprit)}": \\S`),
      );
    }
  });
});

Deno.test("Settings.set() takes a comma-separated list of interface names", async () => {
  await withSettings((settings) => {
    settings.set("mesh.interfaces", "eth0, wlan0,en0.1,br-lan");
    assert.deepEqual(settings.get("mesh.interfaces"), ["eth0", "wlan0", "en0.1", "br-lan"]);
    for (const bad of ["bad name", "sixteen-letters!", "a/b", "x".repeat(16)]) {
      assertRefused(
        settings,
        "mesh.interfaces",
        `eth0, ${bad}`,
        new RegExp(
          `^Setting mesh\\.interfaces takes interface names, not "${
            escape(bad)
          }": a name is 1 to 15 letters, digits or \\. : @ _ -$`,
        ),
      );
    }
  });
});

Deno.test("Settings.set() takes on/off, true/false or yes/no for a boolean", async () => {
  await withSettings((settings) => {
    const cases: [string, boolean][] = [
      ["on", true],
      ["OFF", false],
      [" true ", true],
      ["False", false],
      ["yes", true],
      ["no", false],
    ];
    assertTakes(settings, "poweb.serve", cases);
    assertRefusedEach(
      settings,
      "mesh.mdns",
      ["maybe", "1", "", "onn"],
      "on or off",
      /use on\/off, true\/false or yes\/no/,
    );
  });
});

Deno.test("Settings.set() takes a size like 512M, 2G, 100K or plain octets", async () => {
  await withSettings((settings) => {
    const cases: [string, number][] = [
      ["512M", 512 * MiB],
      ["2G", 2 * 1024 * MiB],
      ["100K", 100 * 1024],
      ["1.5M", 1.5 * MiB],
      ["1GiB", 1024 * MiB],
      ["64 MB", 64 * MiB],
      ["4096", 4096],
      ["10B", 10],
    ];
    assertTakes(settings, "mesh.quota", cases);
    assertRefusedEach(
      settings,
      "mesh.quota",
      ["12X", "-1M", "M", "lots", "", " 1T "],
      "a size",
      /use a number with K, M or G \(e\.g\. 512M\)/,
    );
    // Past 2^53 a size loses octets (and Infinity was once stored as null).
    assertRefusedEach(
      settings,
      "mesh.quota",
      ["8388608G", "9".repeat(400)],
      "a size",
      /it exceeds 9007199254740991 octets/,
    );
  });
});

Deno.test("Settings.set() takes a duration like 30s, 10m, 2h, 7d or 1w", async () => {
  await withSettings((settings) => {
    const cases: [string, number][] = [
      ["30s", 30_000],
      ["10m", 600_000],
      ["2h", 7_200_000],
      ["7d", 7 * 86_400_000],
      ["1w", 7 * 86_400_000],
      ["0s", 0],
      ["1.5m", 90_000],
    ];
    assertTakes(settings, "gateway.window", cases);
    assertRefusedEach(
      settings,
      "gateway.window",
      ["soon", "10", "10y", ""],
      "a duration",
      /use a number followed by s, m, h, d or w \(e\.g\. 7d\)/,
    );
    assertRefusedEach(
      settings,
      "gateway.window",
      ["-5m", " -0.5s "],
      "a duration",
      /it cannot be negative/,
    );
    assertRefused(
      settings,
      "gateway.window",
      `${"9".repeat(400)}w`,
      /^Setting gateway\.window takes a duration, not "9{400}w": it exceeds 9007199254740991 ms$/,
    );
  });
});

Deno.test("Settings.set() takes a PoWeb URL, kept without its trailing slash, or nothing", async () => {
  await withSettings((settings) => {
    const cases: [string, string][] = [
      ["http://127.0.0.1:13276/", "http://127.0.0.1:13276"],
      [" https://gateway.example ", "https://gateway.example"],
      ["http://[::1]:13276/v1", "http://[::1]:13276"],
      ["", ""],
    ];
    assertTakes(settings, "gateway.url", cases);
    assertRefused(
      settings,
      "gateway.url",
      "not a url",
      /^Setting gateway\.url takes a PoWeb URL, not "not a url": it is not a URL \(e\.g\. http:\/\/127\.0\.0\.1:13276\)$/,
    );
    for (const [bad, scheme] of [["ftp://gateway.example", "ftp:"], [" ws://h:1 ", "ws:"]]) {
      assertRefused(
        settings,
        "gateway.url",
        bad,
        new RegExp(
          `^Setting gateway\\.url takes a PoWeb URL, not "${
            escape(bad)
          }": it starts with ${scheme}//, not http:// or https://$`,
        ),
      );
    }
    assertRefusedEach(
      settings,
      "gateway.url",
      ["http://h/path", "http://h/?q=1", "http://user@h/"],
      "a PoWeb URL",
      /a PoWeb URL has no path, query or credentials/,
    );
  });
});

Deno.test("Settings.set() takes a host:port address, IPv6 hosts in brackets", async () => {
  await withSettings((settings) => {
    const cases: [string, string][] = [
      ["0.0.0.0:13276", "0.0.0.0:13276"],
      [" localhost:80 ", "localhost:80"],
      ["[::1]:13276", "[::1]:13276"],
      ["[fe80::1]:0", "[fe80::1]:0"],
    ];
    assertTakes(settings, "poweb.listen", cases);
    assertRefusedEach(
      settings,
      "poweb.listen",
      ["localhost", "::1:80", ":80", "h:", "h:123456", "[::1]"],
      "a host:port address",
      /use host:port, e\.g\. 127\.0\.0\.1:13276 or \[::1\]:13276/,
    );
    assertRefused(
      settings,
      "poweb.listen",
      "h:70000",
      /^Setting poweb\.listen takes a host:port address, not "h:70000": port 70000 is above 65535$/,
    );
  });
});

Deno.test("Settings.set() takes a port number from 0 to 65535", async () => {
  await withSettings((settings) => {
    assertTakes(settings, "web.port", [["8080", 8080], [" 80 ", 80], ["0", 0], ["65535", 65535]]);
    assertRefusedEach(
      settings,
      "web.port",
      ["65536", "http", "-1", "80.5", "", "123456"],
      "a port number",
      /use a whole number from 0 to 65535/,
    );
  });
});

Deno.test("Settings.set() keeps the shared parser's refusal as the cause, and it is the person's fault", async () => {
  await withSettings((settings) => {
    const refusal = (name: string, text: string) => {
      try {
        settings.set(name, text);
      } catch (error) {
        return error as TypeError;
      }
      assert.fail(`${name} took "${text}"`);
    };
    const url = refusal("gateway.url", "ftp://gateway.example");
    assert.match(String((url.cause as Error).message), /^A PoWeb URL starts with http/);
    const duration = refusal("gateway.window", "soon");
    assert.match(String((duration.cause as Error).message), /^Cannot parse duration "soon"/);
    const list = refusal("mesh.peers", "nope");
    assert.ok(list.cause instanceof Error);
    // At the CLI and web boundary a refused value is input: exit 1, HTTP 400, not a bug.
    for (
      const error of [url, duration, list, refusal("mesh.quota", "lots"), refusal("web.port", "x")]
    ) {
      assert.equal(faultOf(error, { inputBoundary: true }), "input", error.message);
      assert.equal(exitCodeOf(error), 1, error.message);
      assert.equal(httpStatusOf(error, { inputBoundary: true }), 400, error.message);
    }
  });
});

Deno.test("Settings.unset() returns a setting to its default, and isSet() follows", async () => {
  await withSettings((settings) => {
    settings.set("web.port", "9000");
    assert.equal(settings.isSet("web.port"), true);
    assert.equal(settings.get("web.port"), 9000);
    settings.unset("web.port");
    assert.equal(settings.isSet("web.port"), false);
    assert.equal(settings.get("web.port"), 8473);
    // Setting a value equal to the default still counts as set.
    settings.set("mesh.mdns", "on");
    assert.equal(settings.isSet("mesh.mdns"), true);
    settings.unset("mesh.mdns");
    settings.unset("mesh.mdns"); // unsetting twice is harmless
    assert.equal(settings.isSet("mesh.mdns"), false);
  });
});

Deno.test("Settings are kept in the database across reopening", async () => {
  await withSettings((settings, reopen) => {
    settings.set("mesh.quota", "1G");
    settings.set("poweb.serve", "on");
    const reopened = reopen();
    assert.equal(reopened.get("mesh.quota"), 1024 * MiB);
    assert.equal(reopened.get("poweb.serve"), true);
    assert.equal(reopened.isSet("web.port"), false);
  });
});

Deno.test("Settings.all() lists every setting with its value, whether set, and its help", async () => {
  await withSettings((settings) => {
    settings.set("web.port", "9000");
    const all = settings.all();
    assert.deepEqual(all.map((s) => s.name), Object.keys(SETTINGS));
    assert.deepEqual(all.find((s) => s.name === "web.port"), {
      name: "web.port",
      value: 9000,
      set: true,
      help: SETTINGS["web.port"].help,
    });
    assert.ok(all.filter((s) => s.name !== "web.port").every((s) => !s.set));
    assert.ok(all.every((s) => s.help.length > 0));
  });
});

Deno.test("Settings.set() and unset() refuse an unknown setting, listing the known ones", async () => {
  await withSettings((settings) => {
    const message = new RegExp(
      `^No setting "mesh\\.colour": the settings are ${escape(Object.keys(SETTINGS).join(", "))}$`,
    );
    assert.throws(() => settings.set("mesh.colour", "blue"), (error) => {
      assert.ok(error instanceof TypeError);
      assert.match(error.message, message);
      return true;
    });
    assert.throws(() => settings.unset("mesh.colour"), TypeError);
    assert.throws(() => settings.set("", "x"), /^TypeError: No setting "":/);
    // Names are exact: no prefix of the setting's key, and not the stored key.
    assert.throws(() => settings.set("setting.web.port", "80"), TypeError);
    assert.throws(() => settings.set("WEB.PORT", "80"), TypeError);
  });
});

Deno.test("parseSize() reads K, M and G as powers of 1024 and rounds to whole octets", () => {
  assert.equal(parseSize("1K"), 1024);
  assert.equal(parseSize("1k"), 1024);
  assert.equal(parseSize("1KiB"), 1024);
  assert.equal(parseSize("0.001K"), 1);
  assert.equal(parseSize(" 3 G "), 3 * 1024 ** 3);
  assert.throws(
    () => parseSize("1T"),
    /^TypeError: Cannot parse size "1T": use a number with K, M or G \(e\.g\. 512M\)$/,
  );
  assert.throws(
    () => parseSize("9".repeat(400)),
    /^TypeError: Cannot parse size "9{400}": it exceeds 9007199254740991 octets$/,
  );
});

Deno.test("parseAddress() splits host and port, unbracketing IPv6", () => {
  assert.deepEqual(parseAddress("127.0.0.1:13276"), { hostname: "127.0.0.1", port: 13276 });
  assert.deepEqual(parseAddress("[::1]:80"), { hostname: "::1", port: 80 });
  assert.deepEqual(parseAddress("relay.example:4747"), { hostname: "relay.example", port: 4747 });
  assert.throws(() => parseAddress("[::1]"), /^TypeError: Cannot parse address "\[::1\]"/);
  assert.throws(
    () => parseAddress("h:65536"),
    /^TypeError: Cannot parse address "h:65536": port 65536 is above 65535$/,
  );
});
