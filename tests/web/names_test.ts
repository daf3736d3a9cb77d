/**
 * File names survive the web app both ways: an upload keeps its name exactly
 * (`=`, `;`, quotes, a backslash, any script), and a download names it in
 * `Content-Disposition` per RFC 6266, `filename*` in UTF-8 beside an ASCII
 * `filename`, for attachments and `.eml` exports alike.
 */
import assert from "node:assert/strict";
import { contentDisposition } from "../../app/web/content_disposition.ts";
import { formDataDisposition } from "../../app/web/multipart.ts";
import { makeNode, pair } from "../helpers.ts";
import { dispositionNames, startWeb } from "./_web.ts";

/** Names that broke a header or a form parser, each with the name a download carries. */
const NAMES: readonly [name: string, downloaded: string][] = [
  ["Plan – final.pdf", "Plan – final.pdf"], // en dash: outside Latin-1
  ["会議の議事録.docx", "会議の議事録.docx"], // CJK
  ["party 🎉.png", "party 🎉.png"], // an emoji: outside the BMP
  ['say "hi".txt', 'say "hi".txt'],
  ["a;b.txt", "a;b.txt"],
  ["x=1; y=2.csv", "x=1; y=2.csv"],
  ["name; filename=evil.exe", "name; filename=evil.exe"],
  ["50% off.txt", "50% off.txt"],
  ["it's (1).txt", "it's (1).txt"],
  // A download names no directory (RFC 6266 §4.3), whatever the sender wrote.
  ["back\\slash.txt", "back_slash.txt"],
  ["../../etc/passwd", ".._.._etc_passwd"],
  ["gpj.\u202eexe", "gpj._exe"], // a right-to-left override would show "exe.jpg"
];

Deno.test("contentDisposition(): filename* in UTF-8, and a plain-ASCII filename", () => {
  for (const [name, downloaded] of NAMES) {
    const header = contentDisposition(name, { fallback: "attachment" });
    // Deno (like every HTTP stack) refuses a header value outside Latin-1: this one is ASCII.
    assert.doesNotThrow(() => new Headers({ "content-disposition": header }), name);
    assert.match(header, /^[\x20-\x7e]+$/, name);
    assert.match(header, /^attachment; filename="/);
    const parsed = dispositionNames(header);
    assert.equal(parsed.extended ?? parsed.filename, downloaded, name);
    // The quoted fallback has no quote, backslash or percent sign to misread.
    assert.match(parsed.filename!, /^[\x20-\x7e]+$/, name);
    assert.doesNotMatch(parsed.filename!, /["\\%/]/, name);
  }
  assert.equal(
    contentDisposition("report.pdf"),
    'attachment; filename="report.pdf"',
    "an ASCII name needs no filename*",
  );
  assert.equal(dispositionNames(contentDisposition("会議.pdf")).filename, "download.pdf");
  assert.equal(dispositionNames(contentDisposition("..", { fallback: "x" })).filename, "x");
});

Deno.test("formDataDisposition() reads names as browsers write them (HTML's form encoding)", () => {
  const read = (value: string) =>
    formDataDisposition(`form-data; name="attachments"; filename="${value}"`).filename;
  // Browsers escape only LF, CR and `"`, as %0A, %0D and %22; nothing else.
  assert.equal(read("a=b;c.txt"), "a=b;c.txt");
  assert.equal(read("say %22hi%22.txt"), 'say "hi".txt');
  assert.equal(read("back\\slash\\"), "back\\slash\\");
  assert.equal(read("name; filename=evil.exe"), "name; filename=evil.exe");
  assert.equal(read("会議 – 🎉.txt"), "会議 – 🎉.txt");
  assert.equal(read("line%0Abreak"), "line\nbreak");
  assert.deepEqual(formDataDisposition('form-data; name="to"'), { name: "to" });
  assert.deepEqual(formDataDisposition("form-data; name=to; filename=x.txt"), {
    name: "to",
    filename: "x.txt",
  });
});

Deno.test("web app: uploads keep their names, downloads carry them (RFC 6266)", async (t) => {
  const alice = await makeNode("Alice");
  const bob = await makeNode("Bob");
  await pair(alice, bob);
  const { web, base, bearer, logs } = await startWeb(alice.node);
  const bytesOf = (i: number) => new Uint8Array(64).map((_, j) => (i * 7 + j) % 256);
  try {
    await t.step("upload → stored → download, each name exactly", async () => {
      // Deno's FormData writes names as browsers do (the test of the browser itself is in
      // browser_test.ts): `"` as %22, UTF-8 as it is, `;` `=` and `\` as they are.
      const form = new FormData();
      form.append("to", "Bob");
      form.append("subject", "Names");
      form.append("body", "See attached.");
      NAMES.forEach(([name], i) => form.append("attachments", new File([bytesOf(i)], name)));
      const response = await fetch(`${base}/api/send`, {
        method: "POST",
        headers: bearer(),
        body: form,
      });
      assert.equal(response.status, 200);
      const sent = await response.json();
      assert.deepEqual(sent.attachments.map((a: { fileName: string }) => a.fileName), [
        ...NAMES.map(([name]) => name),
      ]);
      for (const [i, [name, downloaded]] of NAMES.entries()) {
        const download = await fetch(`${base}/api/messages/${sent.id}/attachments/${i}`, {
          headers: bearer(),
        });
        assert.equal(download.status, 200, name);
        assert.equal(download.headers.get("content-type"), "application/octet-stream");
        assert.deepEqual(new Uint8Array(await download.arrayBuffer()), bytesOf(i), name);
        const names = dispositionNames(download.headers.get("content-disposition")!);
        assert.equal(names.extended ?? names.filename, downloaded, name);
      }
      // What Bob receives is what Alice sent.
      const stored = alice.node.mailbox.attachments(sent.id).map((a) => a.fileName);
      assert.deepEqual(stored, NAMES.map(([name]) => name));
    });

    await t.step(
      "a form as a browser writes it: `;`, `=`, %22 for quotes, a backslash as it is",
      async () => {
        const boundary = "----relaymail-test";
        const part = (headers: string, content: string) =>
          `--${boundary}\r\n${headers}\r\n\r\n${content}\r\n`;
        const body = part('Content-Disposition: form-data; name="to"', "Bob") +
          part('Content-Disposition: form-data; name="body"', "Hand-written") +
          part(
            'Content-Disposition: form-data; name="attachments"; filename="a=b; c=%22d%22 \\ – e.txt"\r\n' +
              "Content-Type: text/plain",
            "hello",
          ) + `--${boundary}--\r\n`;
        const response = await fetch(`${base}/api/send`, {
          method: "POST",
          headers: { ...bearer(), "content-type": `multipart/form-data; boundary=${boundary}` },
          body: new TextEncoder().encode(body),
        });
        assert.equal(response.status, 200);
        const sent = await response.json();
        // Deno's own request.formData() gives `"a` for this name.
        assert.equal(sent.attachments[0].fileName, 'a=b; c="d" \\ – e.txt');
        assert.equal(sent.attachments[0].mediaType, "text/plain");
      },
    );

    await t.step("a .eml export is named after the subject, emoji and all", async () => {
      for (
        const [subject, expected] of [
          ["Party 🎉 on Saturday", "Party 🎉 on Saturday.eml"],
          ['Re: "Quotes"; a=b', 'Re: "Quotes"; a=b.eml'],
          ["Plans – 2026/27", "Plans – 2026_27.eml"],
        ]
      ) {
        const message = await alice.node.mailbox.send({ to: ["Bob"], subject, body: "…" });
        const response = await fetch(`${base}/api/threads/${message.id}/eml`, {
          headers: bearer(),
        });
        assert.equal(response.status, 200, subject);
        assert.equal(response.headers.get("content-type"), "message/rfc822");
        const names = dispositionNames(response.headers.get("content-disposition")!);
        assert.equal(names.extended ?? names.filename, expected);
        assert.match(names.filename!, /\.eml$/);
        assert.match(await response.text(), /Subject: /);
      }
    });

    assert.deepEqual(logs.filter((line) => line.startsWith("web:")), [], "nothing failed");
  } finally {
    await web.stop();
    await alice.close();
    await bob.close();
  }
});
