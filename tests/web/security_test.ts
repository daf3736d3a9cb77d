/**
 * The local web app refuses whoever is not its user: no secret, a foreign Host
 * (DNS rebinding), a foreign Origin or a cross-site fetch (CSRF), an oversized
 * upload; it listens on loopback only and every answer carries a strict CSP.
 * Its sessions are bearer tokens bound to one instance, never cookies; they
 * expire, and rotating the secret ends them.
 */
import assert from "node:assert/strict";
import { MAX_MAIL_LENGTH } from "../../app/core/mailbox.ts";
import { CONTENT_SECURITY_POLICY } from "../../app/web/security.ts";
import {
  DEFAULT_IDLE_MS,
  DEFAULT_LIFETIME_MS,
  rotateWebSecret,
  TICKET_MS,
} from "../../app/web/sessions.ts";
import { HOUR, makeNode, pair, TestClock } from "../helpers.ts";
import { startWeb } from "./_web.ts";

/** Sends a hand-written HTTP/1.1 request, so that Host and Origin are exactly as given. */
async function raw(
  port: number,
  lines: string[],
  body = "",
): Promise<{ status: number; text: string }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const request = [
    ...lines,
    `content-length: ${new TextEncoder().encode(body).length}`,
    "connection: close",
    "",
    body,
  ]
    .join("\r\n");
  await conn.write(new TextEncoder().encode(request));
  let text = "";
  const buffer = new Uint8Array(65536);
  for (;;) {
    const n = await conn.read(buffer).catch(() => null);
    if (n === null) break;
    text += new TextDecoder().decode(buffer.subarray(0, n));
  }
  conn.close();
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]), text };
}

Deno.test("web app: only its user gets in", async (t) => {
  const alice = await makeNode("Alice");
  const bob = await makeNode("Bob");
  await pair(alice, bob);
  const { web } = await startWeb(alice.node, { log: () => {} });
  const port = web.port;
  const base = `http://127.0.0.1:${port}`;
  const secret = new URL(web.url).hash.replace("#key=", "");
  const bearer = { authorization: `Bearer ${secret}` };
  try {
    await t.step("the printed address carries the secret, on loopback", () => {
      assert.match(web.url, new RegExp(`^http://127\\.0\\.0\\.1:${port}/#key=[A-Za-z0-9_-]{43}$`));
    });

    await t.step("without the secret: 401, with nothing leaked", async () => {
      for (const path of ["/api/state", "/api/messages", "/api/contacts", "/api/events"]) {
        const response = await fetch(`${base}${path}`);
        assert.equal(response.status, 401, path);
        const body = await response.text();
        assert.doesNotMatch(body, /Alice|Bob/);
      }
      const wrong = await fetch(`${base}/api/state`, { headers: { authorization: "Bearer nope" } });
      assert.equal(wrong.status, 401);
      await wrong.body?.cancel();
    });

    await t.step(
      "with the secret: in; the page trades it for a bearer token, and no cookie is ever set",
      async () => {
        const state = await fetch(`${base}/api/state`, { headers: bearer });
        assert.equal(state.status, 200);
        assert.equal(state.headers.get("set-cookie"), null);
        assert.equal((await state.json()).identity.name, "Alice");

        const refused = await fetch(`${base}/api/session`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ secret: "guess" }),
        });
        assert.equal(refused.status, 401);
        await refused.body?.cancel();

        const session = await fetch(`${base}/api/session`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ secret }),
        });
        assert.equal(session.status, 200);
        assert.equal(session.headers.get("set-cookie"), null, "a cookie would reach every port");
        const { token, expiresAt, idleMs } = await session.json();
        assert.match(token, /^[A-Za-z0-9_-]{43}$/);
        assert.notEqual(token, secret, "the token is not the secret itself");
        assert.equal(idleMs, DEFAULT_IDLE_MS);
        assert.ok(Math.abs(Date.parse(expiresAt) - Date.now() - DEFAULT_LIFETIME_MS) < 60_000);
        const withToken = await fetch(`${base}/api/contacts`, {
          headers: { authorization: `Bearer ${token}` },
        });
        assert.equal(withToken.status, 200);
        assert.equal((await withToken.json())[0].name, "Bob");
        // What was a cookie's value in the past opens nothing.
        const cookie = await fetch(`${base}/api/contacts`, {
          headers: { cookie: `relaymail_session=${token}` },
        });
        assert.equal(cookie.status, 401);
        await cookie.body?.cancel();
      },
    );

    await t.step("a foreign Host is refused even with the secret (DNS rebinding)", async () => {
      for (const host of [`evil.example:${port}`, "127.0.0.1", `127.0.0.1:${port + 1}`]) {
        const response = await raw(port, [
          "GET /api/state HTTP/1.1",
          `host: ${host}`,
          `authorization: Bearer ${secret}`,
        ]);
        assert.equal(response.status, 403, host);
        assert.doesNotMatch(response.text, /Alice/);
      }
      const page = await raw(port, ["GET / HTTP/1.1", `host: rebind.example:${port}`]);
      assert.equal(page.status, 403, "not even the page is served under a foreign name");
      const ok = await raw(port, [
        "GET /api/state HTTP/1.1",
        `host: localhost:${port}`,
        `authorization: Bearer ${secret}`,
      ]);
      assert.equal(ok.status, 200);
    });

    await t.step(
      "a foreign Origin or a cross-site fetch is refused even with the secret (CSRF)",
      async () => {
        const send = (headers: Record<string, string>) =>
          fetch(`${base}/api/contacts/Bob/block`, {
            method: "POST",
            headers: { ...bearer, "content-type": "application/json", ...headers },
            body: "{}",
          });
        for (
          const headers of [
            { origin: "http://evil.example" } as Record<string, string>,
            { origin: `http://127.0.0.1:${port + 1}` },
            { origin: "null" },
            { "sec-fetch-site": "cross-site" },
          ]
        ) {
          const response = await send(headers);
          assert.equal(response.status, 403, JSON.stringify(headers));
          await response.body?.cancel();
        }
        assert.equal(alice.node.contacts.find("Bob").state, "active", "nothing was blocked");
        const sameOrigin = await send({ origin: base });
        assert.equal(sameOrigin.status, 200);
        await sameOrigin.body?.cancel();
        assert.equal(alice.node.contacts.find("Bob").state, "blocked");
        alice.node.contacts.unblock("Bob");
      },
    );

    await t.step("every answer carries a strict Content-Security-Policy", async () => {
      for (
        const [path, headers] of [["/", {}], ["/app.js", {}], ["/api/state", bearer], [
          "/api/state",
          {},
        ]] as const
      ) {
        const response = await fetch(`${base}${path}`, { headers });
        await response.body?.cancel();
        assert.equal(
          response.headers.get("content-security-policy"),
          CONTENT_SECURITY_POLICY,
          path,
        );
        assert.equal(response.headers.get("x-content-type-options"), "nosniff");
        assert.equal(response.headers.get("x-frame-options"), "DENY");
      }
      assert.match(CONTENT_SECURITY_POLICY, /default-src 'none'/);
      assert.doesNotMatch(CONTENT_SECURITY_POLICY, /unsafe-inline|unsafe-eval|https?:/);
    });

    await t.step(
      "uploads are bounded: an oversized message is refused before it is read",
      async () => {
        const before = alice.node.outbox.list().length;
        const form = new FormData();
        form.append("to", "Bob");
        form.append("body", "too big");
        form.append(
          "attachments",
          new File([new Uint8Array(MAX_MAIL_LENGTH + 512 * 1024)], "big.bin"),
        );
        const response = await fetch(`${base}/api/send`, {
          method: "POST",
          headers: bearer,
          body: form,
        });
        assert.equal(response.status, 413);
        assert.match((await response.json()).error, /over the limit/);
        assert.equal(alice.node.outbox.list().length, before);
        const json = await fetch(`${base}/api/accept`, {
          method: "POST",
          headers: { ...bearer, "content-type": "application/json" },
          body: JSON.stringify({ text: "x".repeat(100_000) }),
        });
        assert.equal(json.status, 413);
        await json.body?.cancel();
      },
    );

    await t.step("it listens on 127.0.0.1 only", async () => {
      await assert.rejects(Deno.connect({ hostname: "127.0.0.2", port }));
    });
  } finally {
    await web.stop();
    await alice.close();
    await bob.close();
  }
});

/** Opens a session on `base` with `secret`; returns the token. */
async function openSession(base: string, secret: string): Promise<string> {
  const response = await fetch(`${base}/api/session`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ secret }),
  });
  assert.equal(response.status, 200);
  return (await response.json()).token;
}

/** The status of GET `path` with `token`. */
async function statusWith(base: string, token: string, path = "/api/state"): Promise<number> {
  const response = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}` } });
  await response.body?.cancel();
  return response.status;
}

Deno.test("web app: a session is bound to its instance, not to the host", async () => {
  const alice = await makeNode("Alice");
  const bob = await makeNode("Bob");
  const a = await startWeb(alice.node);
  const b = await startWeb(bob.node);
  try {
    const tokenA = await openSession(a.base, a.secret());
    const tokenB = await openSession(b.base, b.secret());
    // Both instances on 127.0.0.1, each with its own session, neither disturbing the other.
    assert.equal(await statusWith(a.base, tokenA), 200);
    assert.equal(await statusWith(b.base, tokenB), 200);
    assert.equal(await statusWith(a.base, tokenB), 401, "Bob's token opens nothing at Alice's");
    assert.equal(await statusWith(b.base, tokenA), 401);
    assert.equal(await statusWith(a.base, tokenA), 200, "Alice is still in after Bob came");
  } finally {
    await a.web.stop();
    await b.web.stop();
    await alice.close();
    await bob.close();
  }
});

Deno.test("web app: sessions expire when unused and after their lifetime", async () => {
  const carol = await makeNode("Carol");
  const clock = new TestClock();
  const { web, base, secret } = await startWeb(carol.node, { now: clock.now });
  try {
    // Unused for the idle limit (12 hours by default): ended.
    const idle = await openSession(base, secret());
    clock.advance(DEFAULT_IDLE_MS - 60_000);
    assert.equal(await statusWith(base, idle), 200, "used just in time");
    clock.advance(DEFAULT_IDLE_MS - 60_000);
    assert.equal(await statusWith(base, idle), 200, "each use restarts the idle time");
    clock.advance(DEFAULT_IDLE_MS);
    assert.equal(await statusWith(base, idle), 401, "unused for 12 hours");
    assert.equal(await statusWith(base, idle), 401, "and it stays ended");

    // Used all along, still ended after its lifetime (7 days by default).
    const busy = await openSession(base, secret());
    for (let at = 0; at < DEFAULT_LIFETIME_MS - 6 * HOUR; at += 6 * HOUR) {
      clock.advance(6 * HOUR);
      assert.equal(await statusWith(base, busy), 200, `${at / HOUR} hours in`);
    }
    clock.advance(6 * HOUR);
    assert.equal(await statusWith(base, busy), 401, "7 days after it was opened");

    // The secret itself (for scripts) does not expire: it is rotated instead.
    assert.equal(await statusWith(base, secret()), 200);
    // A download ticket lasts a minute.
    const token = await openSession(base, secret());
    const ticket = async () => {
      const response = await fetch(`${base}/api/tickets`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ path: "/api/threads/none/eml" }),
      });
      return (await response.json()).url as string;
    };
    const stale = await ticket();
    clock.advance(TICKET_MS + 1);
    assert.equal((await fetch(`${base}${stale}`).then(drain)).status, 401, "a stale ticket");
    const fresh = await ticket();
    assert.equal((await fetch(`${base}${fresh}`).then(drain)).status, 404, "let in, no message");
    assert.equal((await fetch(`${base}${fresh}`).then(drain)).status, 401, "single use");
    const other = (await ticket()).replace("/none/", "/other/");
    assert.equal((await fetch(`${base}${other}`).then(drain)).status, 401, "for its path only");
  } finally {
    await web.stop();
    await carol.close();
  }
});

Deno.test("web app: rotating the secret ends every session, even from another process", async (t) => {
  const dan = await makeNode("Dan");
  const { web, base, secret } = await startWeb(dan.node);
  try {
    await t.step("rotateWebSecret() on the database: old token, old secret refused", async () => {
      const old = secret();
      const token = await openSession(base, old);
      const events = await fetch(`${base}/api/events`, {
        headers: { authorization: `Bearer ${token}` },
      });
      const reader = events.body!.getReader();
      assert.match(new TextDecoder().decode((await reader.read()).value), /^event: hello/);

      // What `relaymail web rotate-secret` does, in another process, to the same database.
      const fresh = rotateWebSecret(dan.node.ctx.db);
      assert.notEqual(fresh, old);
      assert.equal(await statusWith(base, token), 401, "the session ended");
      assert.equal(await statusWith(base, old), 401, "the old secret opens nothing");
      assert.equal(await statusWith(base, fresh), 200);
      assert.equal(web.url, `http://127.0.0.1:${web.port}/#key=${fresh}`);
      // The open page is told, and its stream ends.
      let rest = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        rest += new TextDecoder().decode(value);
      }
      assert.match(rest, /event: session\ndata: \{"ended":true\}/);
      const reopened = await openSession(base, fresh);
      assert.equal(await statusWith(base, reopened), 200);
    });

    await t.step("WebApp.rotateSecret(): the same, and it returns the new address", async () => {
      const token = await openSession(base, secret());
      const url = web.rotateSecret();
      assert.equal(url, web.url);
      assert.equal(await statusWith(base, token), 401);
      assert.equal(await statusWith(base, secret()), 200);
    });
  } finally {
    await web.stop();
    await dan.close();
  }
});

function drain(response: Response): Response {
  response.body?.cancel();
  return response;
}

Deno.test("web app: stopping is prompt even with a page listening for events", async () => {
  const carol = await makeNode("Carol");
  const { web } = await startWeb(carol.node, { log: () => {} });
  try {
    const secret = new URL(web.url).hash.replace("#key=", "");
    const response = await fetch(`http://127.0.0.1:${web.port}/api/events`, {
      headers: { authorization: `Bearer ${secret}` },
    });
    const reader = response.body!.getReader();
    assert.match(new TextDecoder().decode((await reader.read()).value), /^event: hello/);
    const drained = (async () => {
      let text = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return text;
        text += new TextDecoder().decode(value);
      }
    })();
    await web.stop();
    // The stream says the daemon stops, then ends: nothing waits for the page to go.
    assert.match(await drained, /event: daemon\ndata: \{"stopping":true\}/);
  } finally {
    await web.stop();
    await carol.close();
  }
});
