/**
 * The local web app refuses whoever is not its user: no secret, a foreign Host
 * (DNS rebinding), a foreign Origin or a cross-site fetch (CSRF), an oversized
 * upload; it listens on loopback only and every answer carries a strict CSP.
 */
import assert from "node:assert/strict";
import { CONTENT_SECURITY_POLICY } from "../../app/web/security.ts";
import { WebApp } from "../../app/web/server.ts";
import { MAX_MAIL_LENGTH } from "../../app/mailbox.ts";
import { makeNode, pair } from "../helpers.ts";

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
  const web = await WebApp.start(alice.node, {
    port: 0,
    daemonOptions: () => ({ listen: ["/ip4/127.0.0.1/tcp/0"], mdns: false }),
    log: () => {},
  });
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
      "with the secret: in; the page trades it for an HttpOnly, SameSite=Strict cookie",
      async () => {
        const state = await fetch(`${base}/api/state`, { headers: bearer });
        assert.equal(state.status, 200);
        assert.equal((await state.json()).identity.name, "Alice");

        const refused = await fetch(`${base}/api/session`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ secret: "guess" }),
        });
        assert.equal(refused.status, 401);
        assert.equal(refused.headers.get("set-cookie"), null);
        await refused.body?.cancel();

        const session = await fetch(`${base}/api/session`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ secret }),
        });
        assert.equal(session.status, 200);
        await session.body?.cancel();
        const cookie = session.headers.get("set-cookie")!;
        assert.match(cookie, /HttpOnly/i);
        assert.match(cookie, /SameSite=Strict/i);
        assert.ok(!cookie.includes(secret), "the cookie is not the secret itself");
        const withCookie = await fetch(`${base}/api/contacts`, {
          headers: { cookie: cookie.split(";")[0] },
        });
        assert.equal(withCookie.status, 200);
        assert.equal((await withCookie.json())[0].name, "Bob");
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

Deno.test("web app: stopping is prompt even with a page listening for events", async () => {
  const carol = await makeNode("Carol");
  const web = await WebApp.start(carol.node, {
    port: 0,
    daemonOptions: () => ({ listen: ["/ip4/127.0.0.1/tcp/0"], mdns: false }),
    log: () => {},
  });
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
