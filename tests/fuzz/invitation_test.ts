/**
 * Invitation lines (app/core/protocol/invitation.ts) under fuzzing (targets/invitation.ts),
 * and the reproductions of the bugs it found, kept as regression tests.
 */
import assert from "node:assert/strict";
import {
  decodeInvitation,
  InvalidInvitationError,
  joinInvitationParts,
} from "../../app/core/protocol/invitation.ts";
import { fuzzTests } from "./_testing.ts";
import { targets } from "./targets/invitation.ts";

fuzzTests("fuzz invitation lines (app/core/protocol/invitation.ts)", targets);

const reproductions = JSON.parse(
  await Deno.readTextFile(new URL("./reproductions.json", import.meta.url)),
);

Deno.test("decodeInvitation() refuses a part count of 2^32 at once, naming the limit (invitation-part-count)", async () => {
  const started = performance.now();
  await assert.rejects(
    () => decodeInvitation("relaymail-invite-part:1/4294967296:abc", new Date()),
    (error) => {
      assert.ok(error instanceof InvalidInvitationError, `Threw ${error}`);
      assert.match(error.message, /1\/4294967296.*\b64 parts/);
      return true;
    },
  );
  const ms = performance.now() - started;
  assert.ok(ms < 1_000, `Refusing took ${Math.round(ms)} ms`);
});

Deno.test("joinInvitationParts() refuses a part header outside 1..64 at once, with a short refusal (invitation-part-count)", () => {
  // A count of 200 000 once listed every missing part (a refusal of megabytes);
  // 4 294 967 295 exhausted memory.
  for (
    const header of ["1/200000", "1/4294967295", "1/65", "0/0", "0/1", "2/1", "65/64"]
  ) {
    assert.throws(
      () => joinInvitationParts(`relaymail-invite-part:${header}:abc`),
      (error) => {
        assert.ok(error instanceof InvalidInvitationError, `${header}: threw ${error}`);
        assert.match(error.message, /\b64 parts/);
        assert.ok(error.message.length < 200, `${header}: ${error.message.length} characters`);
        return true;
      },
    );
  }
  // Within the limit, only the missing parts are reported.
  assert.throws(
    () => joinInvitationParts("relaymail-invite-part:1/64:abc"),
    (error) =>
      error instanceof InvalidInvitationError &&
      /missing parts 2, 3, .* 64 of 64/.test(error.message),
  );
  assert.equal(
    joinInvitationParts("relaymail-invite-part:2/2:def relaymail-invite-part:1/2:abc"),
    "abcdef",
  );
});

Deno.test("decodeInvitation() refuses a damaged PDA key with InvalidInvitationError (invitation-unchecked-keys)", async () => {
  const { text, now } = reproductions["invitation-unchecked-keys"];
  await assert.rejects(() => decodeInvitation(text, new Date(now)), InvalidInvitationError);
});
