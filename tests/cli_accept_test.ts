/**
 * `relaymail accept` takes an invitation as people paste it: with whitespace
 * around it, or as the parts the web app shows as QR codes, given as arguments.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { splitInvitation } from "../app/core/protocol/invitation.ts";
import { relaymail } from "./_cli.ts";

Deno.test("relaymail accept: an invitation with whitespace around it, and one given as parts", async () => {
  const root = await Deno.makeTempDir({ prefix: "relaymail-accept-" });
  try {
    const [alice, bob, carol] = ["alice", "bob", "carol"].map((n) => join(root, n));
    for (const [dir, name] of [[alice, "Alice"], [bob, "Bob"], [carol, "Carol"]]) {
      assert.equal((await relaymail(dir, ["identity", "create", "--name", name])).code, 0);
    }
    const invite = async (name: string) => {
      const run = await relaymail(alice, ["--json", "invite", "--name", name]);
      assert.equal(run.code, 0, run.stderr);
      return JSON.parse(run.stdout).text as string;
    };

    // Pasted from a mail: a leading space and a line break.
    const forBob = await invite("Bob");
    const pasted = await relaymail(bob, ["accept", ` ${forBob}\n`, "--name", "Alice"]);
    assert.equal(pasted.code, 0, pasted.stderr);
    assert.match(pasted.stdout, /Paired with Alice/);

    // The parts, as separate arguments and out of order.
    const parts = splitInvitation(await invite("Carol"));
    assert.ok(parts.length > 1, "the invitation is split");
    const missing = await relaymail(carol, ["accept", ...parts.slice(1), "--name", "Alice"]);
    assert.notEqual(missing.code, 0);
    assert.equal(missing.stderr.trim().split("\n").length, 1, missing.stderr);
    assert.match(missing.stderr, new RegExp(`missing part 1 of ${parts.length}`));
    const joined = await relaymail(carol, ["accept", ...[...parts].reverse(), "--name", "Alice"]);
    assert.equal(joined.code, 0, joined.stderr);
    assert.match(joined.stdout, /Paired with Alice/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
