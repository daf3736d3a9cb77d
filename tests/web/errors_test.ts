/**
 * A person's mistake comes back as a 4xx with a sentence to act on, and leaves
 * no trace in the log; a gateway that fails is a 502 in one log line; only the
 * app's own failure is a 500, logged with its stack. Changing or removing the
 * passphrase asks for the current one.
 */
import assert from "node:assert/strict";
import {
  MAX_WRONG_PASSPHRASES,
  passphraseUnlocks,
  WRONG_PASSPHRASE_WINDOW_MS,
} from "../../app/core/passphrase_guard.ts";
import { makeNode, pair, TestClock } from "../helpers.ts";
import { startWeb } from "./_web.ts";

/** A request a person could make by mistake, and the answer it must get. */
interface Mistake {
  readonly what: string;
  readonly method?: string;
  readonly path: string;
  /** JSON (an object is stringified), or a FormData. */
  readonly body?: unknown;
  readonly contentType?: string;
  readonly status: number;
  readonly error: RegExp;
}

const MISTAKES: readonly Mistake[] = [
  // Bodies that are not what the API takes
  ...["/api/identity", "/api/accept", "/api/settings", "/api/passphrase", "/api/session"].flatMap(
    (path) => [
      { what: "not JSON", path, body: "{name: Bob}", status: 400, error: /must be JSON/ },
      { what: "empty", path, body: "", status: 400, error: /must be JSON/ },
      { what: "null", path, body: "null", status: 400, error: /a JSON object, not null/ },
      { what: "a list", path, body: "[]", status: 400, error: /a JSON object, not a list/ },
      { what: "a number", path, body: "42", status: 400, error: /a JSON object, not a number/ },
    ],
  ),
  // Fields of the wrong type, or missing
  {
    what: "a name that is an object",
    path: "/api/contacts/Bob/rename",
    body: { name: { first: "Bob" } },
    status: 400,
    error: /"name" must be text, not an object/,
  },
  {
    what: "no name",
    path: "/api/contacts/Bob/rename",
    body: {},
    status: 400,
    error: /Give "name"/,
  },
  {
    what: "an over-long name",
    path: "/api/contacts/Bob/rename",
    body: { name: "B".repeat(500) },
    status: 400,
    error: /1 to 100 characters/,
  },
  {
    what: "an invitation name that is a number",
    path: "/api/invitations",
    body: { name: 42 },
    status: 400,
    error: /"name" must be text, not a number/,
  },
  {
    what: "a setting value that is an object",
    path: "/api/settings",
    body: { "mesh.quota": {} },
    status: 400,
    error: /Setting "mesh.quota" takes text, not an object/,
  },
  {
    what: "an unknown setting",
    path: "/api/settings",
    body: { "mesh.colour": "blue" },
    status: 400,
    error: /No setting "mesh.colour"/,
  },
  {
    what: "a bad size",
    path: "/api/settings",
    body: { "mesh.quota": "lots" },
    status: 400,
    error: /Setting mesh\.quota takes a size, not "lots"/,
  },
  {
    what: "a passphrase that is a number",
    path: "/api/passphrase",
    body: { passphrase: 12345678 },
    status: 400,
    error: /"passphrase" must be text/,
  },
  {
    what: "a short passphrase",
    path: "/api/passphrase",
    body: { passphrase: "short" },
    status: 400,
    error: /at least 8 characters, not 5/,
  },
  {
    what: "a gateway address that is none",
    path: "/api/gateway",
    body: { url: "not a url" },
    status: 400,
    error: /Not a PoWeb URL/,
  },
  {
    what: "a directory that is a number",
    path: "/api/sneakernet/import",
    body: { directory: 5 },
    status: 400,
    error: /"directory" must be text/,
  },
  // Things that do not exist
  {
    what: "an unknown contact",
    path: "/api/contacts/Nobody/block",
    body: {},
    status: 404,
    error: /No contact named or with fingerprint "Nobody"/,
  },
  {
    what: "an unknown message",
    method: "GET",
    path: "/api/messages/nope",
    status: 404,
    error: /No message "nope"/,
  },
  {
    what: "an unknown attachment",
    method: "GET",
    path: "/api/messages/nope/attachments/x",
    status: 404,
    error: /No such attachment/,
  },
  {
    what: "an unknown folder",
    method: "GET",
    path: "/api/messages?folder=spam",
    status: 400,
    error: /No folder "spam"/,
  },
  {
    what: "an unknown invitation",
    path: "/api/invitations/nope/revoke",
    body: {},
    status: 400,
    error: /No invitation "nope"/,
  },
  {
    what: "an unknown direction",
    path: "/api/sneakernet/sideways",
    body: { directory: "/tmp" },
    status: 404,
    error: /No such direction "sideways"/,
  },
  {
    what: "a stick that is a file",
    path: "/api/sneakernet/import",
    body: { directory: "/etc/hostname" },
    status: 400,
    error: /Cannot use \/etc\/hostname as the stick: Not a directory/,
  },
  {
    what: "a download that is none",
    path: "/api/tickets",
    body: { path: "/api/state" },
    status: 400,
    error: /No download at "\/api\/state"/,
  },
  // Invitations
  {
    what: "a text that is no invitation",
    path: "/api/accept",
    body: { text: "hello" },
    status: 400,
    error: /Not a Relaymail invitation/,
  },
  {
    what: "a damaged invitation",
    path: "/api/accept",
    body: { text: "relaymail-invite:1:AAAA" },
    status: 400,
    error: /damaged or truncated/,
  },
  // Sending
  {
    what: "a message to nobody",
    path: "/api/send",
    body: form({ body: "hi" }),
    status: 400,
    error: /give at least one recipient/,
  },
  {
    what: "a message to a stranger",
    path: "/api/send",
    body: form({ to: "Mallory", body: "hi" }),
    status: 400,
    error: /No contact named or with fingerprint "Mallory"/,
  },
  {
    what: "a reply to nothing",
    path: "/api/send",
    body: form({ to: "Bob", body: "hi", replyTo: "nope" }),
    status: 400,
    error: /No message "nope"/,
  },
  {
    what: "an over-long subject",
    path: "/api/send",
    body: form({ to: "Bob", subject: "s".repeat(2000), body: "hi" }),
    status: 400,
    error: /subject exceeds 998 characters/,
  },
  {
    what: "a message as JSON",
    path: "/api/send",
    body: { to: "Bob", body: "hi" },
    status: 415,
    error: /multipart\/form-data/,
  },
  {
    what: "a form without its boundary",
    path: "/api/send",
    body: "garbage",
    contentType: "multipart/form-data",
    status: 400,
    error: /form is damaged/,
  },
  {
    what: "a form that is damaged",
    path: "/api/send",
    body: "garbage",
    contentType: "multipart/form-data; boundary=zz",
    status: 400,
    error: /form is damaged/,
  },
  {
    what: "an over-large JSON body",
    path: "/api/accept",
    body: { text: "x".repeat(100_000) },
    status: 413,
    error: /over the limit of 65536 bytes/,
  },
];

function form(fields: Record<string, string>): FormData {
  const data = new FormData();
  for (const [name, value] of Object.entries(fields)) data.append(name, value);
  return data;
}

Deno.test("web app: a person's mistakes are 4xx with a sentence, and not logged", async (t) => {
  const alice = await makeNode("Alice");
  const bob = await makeNode("Bob");
  await pair(alice, bob);
  const { web, base, bearer, logs } = await startWeb(alice.node);
  try {
    for (const mistake of MISTAKES) {
      await t.step(`${mistake.path}: ${mistake.what} → ${mistake.status}`, async () => {
        const headers: Record<string, string> = bearer();
        let body: BodyInit | undefined;
        if (mistake.body instanceof FormData) body = mistake.body;
        else if (typeof mistake.body === "string") body = mistake.body;
        else if (mistake.body !== undefined) body = JSON.stringify(mistake.body);
        if (typeof body === "string") {
          headers["content-type"] = mistake.contentType ?? "application/json";
        }
        const response = await fetch(`${base}${mistake.path}`, {
          method: mistake.method ?? "POST",
          headers,
          body,
        });
        const answer = await response.json();
        assert.equal(response.status, mistake.status, answer.error);
        assert.match(answer.error, mistake.error);
        assert.match(answer.error, /^[A-Z"]/, "a sentence");
        assert.doesNotMatch(answer.error, /Cannot (read|destructure)|undefined|\[object/);
      });
    }
    assert.equal(alice.node.contacts.find("Bob").name, "Bob", "nothing was renamed");
    assert.deepEqual(logs.filter((line) => line.startsWith("web:")), [], "no stack in the log");

    await t.step("a gateway that cannot be reached: a 502, logged in one line", async () => {
      const response = await fetch(`${base}/api/gateway`, {
        method: "POST",
        headers: { ...bearer(), "content-type": "application/json" },
        // Port 1 on loopback: nothing listens there.
        body: JSON.stringify({ url: "http://127.0.0.1:1" }),
      });
      assert.equal(response.status, 502);
      assert.match((await response.json()).error, /^Could not register with the gateway at /);
      const logged = logs.filter((line) => line.startsWith("web:"));
      assert.equal(logged.length, 1);
      assert.match(logged[0], /^web: POST \/api\/gateway: Could not register/);
      assert.doesNotMatch(logged[0], /\n/, "no stack");
      logs.length = 0;
    });

    await t.step("the app's own failure: a 500 that says so, logged with its stack", async () => {
      alice.node.ctx.db.exec("DROP TABLE refusals"); // a broken database, not a user's doing
      const response = await fetch(`${base}/api/refused`, { headers: bearer() });
      assert.equal(response.status, 500);
      assert.match((await response.json()).error, /^Relaymail failed to do this \(.+\); its log/);
      const logged = logs.filter((line) => line.startsWith("web: GET /api/refused failed:"));
      assert.equal(logged.length, 1);
      assert.match(logged[0], /\n\s+at /, "with its stack");
    });
  } finally {
    await web.stop();
    await alice.close();
    await bob.close();
  }
});

Deno.test("web app: changing or removing the passphrase asks for the current one", async (t) => {
  const erin = await makeNode("Erin");
  const clock = new TestClock();
  const { web, base, bearer, logs } = await startWeb(erin.node, { now: clock.now });
  const change = async (fields: Record<string, unknown>) => {
    const response = await fetch(`${base}/api/passphrase`, {
      method: "POST",
      headers: { ...bearer(), "content-type": "application/json" },
      body: JSON.stringify(fields),
    });
    return { status: response.status, body: await response.json() };
  };
  const db = erin.node.ctx.db;
  try {
    await t.step("none yet: setting one needs nothing more", async () => {
      assert.equal((await change({ passphrase: "correct horse" })).status, 200);
      assert.equal(erin.node.hasPassphrase, true);
    });

    await t.step("changing it: without the current one 400, a wrong one 403", async () => {
      const missing = await change({ passphrase: "battery staple" });
      assert.equal(missing.status, 400);
      assert.match(missing.body.error, /Give your current passphrase/);
      const wrong = await change({ passphrase: "battery staple", current: "incorrect horse" });
      assert.equal(wrong.status, 403);
      assert.match(wrong.body.error, /current passphrase is wrong: nothing was changed/);
      assert.ok(passphraseUnlocks(db, "correct horse"), "unchanged");
      const right = await change({ passphrase: "battery staple", current: "correct horse" });
      assert.equal(right.status, 200);
      assert.ok(passphraseUnlocks(db, "battery staple"));
      assert.ok(!passphraseUnlocks(db, "correct horse"));
    });

    await t.step("removing it: the same", async () => {
      assert.equal((await change({ passphrase: null })).status, 400);
      assert.equal((await change({ passphrase: null, current: "correct horse" })).status, 403);
      assert.equal(erin.node.hasPassphrase, true);
      const right = await change({ passphrase: null, current: "battery staple" });
      assert.equal(right.status, 200);
      assert.deepEqual(right.body, { passphraseProtected: false });
      assert.equal(erin.node.hasPassphrase, false);
    });

    await t.step("guessing is limited: after 5 wrong ones, 429 for 15 minutes", async () => {
      assert.equal((await change({ passphrase: "tr0ub4dor&3" })).status, 200);
      clock.advance(WRONG_PASSPHRASE_WINDOW_MS); // the wrong ones above are forgotten
      for (let i = 0; i < MAX_WRONG_PASSPHRASES; i++) {
        assert.equal((await change({ passphrase: null, current: `guess ${i}` })).status, 403);
      }
      const locked = await change({ passphrase: null, current: "tr0ub4dor&3" });
      assert.equal(locked.status, 429, "even the right one waits");
      assert.match(locked.body.error, /Too many wrong passphrases \(5 in 15 minutes\): try again/);
      clock.advance(WRONG_PASSPHRASE_WINDOW_MS);
      assert.equal((await change({ passphrase: null, current: "tr0ub4dor&3" })).status, 200);
    });
    assert.deepEqual(logs.filter((line) => line.startsWith("web:")), []);
  } finally {
    await web.stop();
    await erin.close();
  }
});
