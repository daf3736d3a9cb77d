/**
 * Attachment names chosen by a sender, as `relaymail read --save-attachments`
 * writes them: always inside the directory, under a safe name, never over a file
 * already there.
 */
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { numberedFileName, safeFileName } from "../app/core/eml.ts";
import { relaymail } from "./_cli.ts";
import { carry, makeNode, pair } from "./helpers.ts";

Deno.test("safeFileName() never returns a path, a dot name or nothing", () => {
  const cases: [string, string][] = [
    ["..", "attachment"],
    [".", "attachment"],
    ["...", "attachment"],
    [" . ", "attachment"],
    ["", "attachment"],
    ["a/b", "a_b"],
    ["a\\b", "a_b"],
    ["../../etc/passwd", ".._.._etc_passwd"],
    ["/", "_"],
    ["nul\0byte", "nul_byte"],
    ["bell\x07\x1b[31mred", "bell_[31mred"],
    ["del\x7fc1\x85", "del_c1_"],
    ["evil\u202etxt.exe", "evil_txt.exe"],
    ["trailing dots...", "trailing dots"],
    ["CON", "_CON"],
    ["nul.txt", "_nul.txt"],
    ["console.log", "console.log"],
    [".hidden", ".hidden"],
    ["report.pdf", "report.pdf"],
  ];
  for (const [name, expected] of cases) {
    assert.equal(safeFileName(name, "attachment"), expected, JSON.stringify(name));
  }
  assert.equal(safeFileName(".."), "message", "subjects fall back to 'message'");
});

Deno.test("safeFileName() shortens long names to 80 characters, keeping the extension", () => {
  assert.equal(safeFileName("x".repeat(200) + ".pdf"), "x".repeat(76) + ".pdf");
  const emoji = safeFileName("😀".repeat(100) + ".txt");
  assert.ok(emoji.length <= 80);
  assert.ok(emoji.endsWith("😀.txt"), "no half surrogate pair before the extension");
  assert.equal(safeFileName("y".repeat(100)), "y".repeat(80));
});

Deno.test("numberedFileName() numbers before the extension", () => {
  assert.equal(numberedFileName("report.pdf", 1), "report (1).pdf");
  assert.equal(numberedFileName("attachment", 2), "attachment (2)");
  assert.equal(numberedFileName(".hidden", 3), ".hidden (3)");
});

async function listDir(dir: string): Promise<string[]> {
  const names = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  return names.sort();
}

Deno.test("relaymail read --save-attachments saves every attachment under a safe name, inside the directory, over nothing", async () => {
  const alice = await makeNode("Alice");
  const bob = await makeNode("Bob");
  const root = await Deno.makeTempDir({ prefix: "relaymail-attachments-" });
  try {
    await pair(alice, bob);
    const text = (s: string) => new TextEncoder().encode(s);
    const attachments = [
      { fileName: "..", content: text("dot dot") },
      { fileName: ".", content: text("dot") },
      { fileName: "a/b", content: text("a slash b") },
      { fileName: "report.pdf", content: text("first report") },
      { fileName: "report.pdf", content: text("second report") },
      { fileName: "../escape\x1b[0m.txt", content: text("escape") },
      { fileName: "..\\windows", content: text("backslash") },
    ];
    const sent = await alice.node.mailbox.send({
      to: ["Bob"],
      subject: "Odd names",
      body: "See attached.",
      attachments: attachments.map((a) => ({ ...a, mediaType: "application/octet-stream" })),
    });
    await carry(alice.node, bob.node);
    bob.node.close(); // the command opens the data directory itself

    // The directory is new and already holds a file of the same name as an attachment.
    const outside = join(root, "outside");
    const saveDir = join(outside, "saved");
    await Deno.mkdir(saveDir, { recursive: true });
    await Deno.writeTextFile(join(saveDir, "report.pdf"), "mine");

    const run = await relaymail(bob.dir, [
      "--json",
      "read",
      sent.id.slice(0, 8),
      "--save-attachments",
      saveDir,
    ]);
    assert.equal(run.code, 0, run.stderr);
    const read = JSON.parse(run.stdout);
    assert.equal(read.body, "See attached.");

    assert.deepEqual(await listDir(outside), ["saved"], "nothing written beside the directory");
    assert.deepEqual(await listDir(root), ["outside"]);
    assert.deepEqual(await listDir(saveDir), [
      ".._escape_[0m.txt",
      ".._windows",
      "a_b",
      "attachment",
      "attachment (1)",
      "report (1).pdf",
      "report (2).pdf",
      "report.pdf",
    ]);
    assert.equal(await Deno.readTextFile(join(saveDir, "report.pdf")), "mine", "not overwritten");

    // Each attachment, in order, went to its own file, reported in the output.
    assert.equal(read.savedAttachments.length, attachments.length);
    for (const [i, path] of read.savedAttachments.entries()) {
      assert.equal(dirname(path), saveDir);
      assert.equal(await Deno.readTextFile(path), new TextDecoder().decode(attachments[i].content));
    }
    assert.deepEqual(read.savedAttachments.map((p: string) => p.slice(saveDir.length + 1)), [
      "attachment",
      "attachment (1)",
      "a_b",
      "report (1).pdf",
      "report (2).pdf",
      ".._escape_[0m.txt",
      ".._windows",
    ]);

    // Saving again numbers further rather than overwrite; the text output says where.
    const again = await relaymail(bob.dir, [
      "read",
      sent.id.slice(0, 8),
      "--save-attachments",
      saveDir,
    ]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /^Saved: +.*\/report \(3\)\.pdf$/m);
    assert.equal((await listDir(saveDir)).length, 2 * attachments.length + 1);
  } finally {
    await alice.close();
    await bob.close();
    await Deno.remove(root, { recursive: true });
  }
});
