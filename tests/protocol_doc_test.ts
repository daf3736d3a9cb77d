/**
 * Keeps docs/protocol.md in step with the code it specifies: the refusal-code table
 * (§1.4) names every `RefusalCode` and no other, the sneakernet table (§9.3) every
 * `IgnoredEntryCode`, and every service message type appears.
 */
import assert from "node:assert/strict";
import type { RefusalCode } from "../bindings/binding.ts";
import type { IgnoredEntryCode } from "../bindings/sneakernet/sneakernet.ts";
import { MAX_PARCEL_LENGTH } from "../bindings/validation.ts";
import { MessageType } from "../app/core/protocol/messages.ts";

const doc = await Deno.readTextFile(new URL("../docs/protocol.md", import.meta.url));

// A Record over a union must list every member and nothing else, so a code added to
// the union fails type-checking here until it is listed (and so documented).
const REFUSAL_CODES: Record<RefusalCode, true> = {
  "too-large": true,
  "malformed": true,
  "bad-signature": true,
  "expired": true,
  "future-dated": true,
  "unauthorized": true,
  "blocked": true,
  "duplicate": true,
  "invitation-used": true,
  "invitation-expired": true,
  "undecryptable": true,
  "bad-content": true,
  "quota": true,
  "rate-limited": true,
};

const IGNORED_ENTRY_CODES: Record<IgnoredEntryCode, true> = {
  "temporary": true,
  "directory": true,
  "symlink": true,
  "not-a-file": true,
  "hidden": true,
  "not-a-parcel-name": true,
};

/** The text of the section whose heading starts with `heading`, up to the next heading. */
function section(heading: string): string {
  const lines = doc.split("\n");
  const start = lines.findIndex((line) => line.startsWith(heading));
  assert.notEqual(start, -1, `docs/protocol.md has no section "${heading}"`);
  const end = lines.findIndex((line, i) => i > start && /^#{1,3} /.test(line));
  return lines.slice(start + 1, end === -1 ? undefined : end).join("\n");
}

/** The codes in backquotes in the last column of every table row of `text`. */
function lastColumnCodes(text: string): Set<string> {
  const codes = new Set<string>();
  for (const line of text.split("\n")) {
    if (!line.startsWith("|") || /^\|[\s|:-]+\|$/.test(line)) continue;
    const cells = line.split("|").slice(1, -1);
    for (const [, code] of cells.at(-1)!.matchAll(/`([^`]+)`/g)) codes.add(code);
  }
  return codes;
}

Deno.test("docs/protocol.md §1.4 maps checks to every RefusalCode and to no other code", () => {
  const documented = lastColumnCodes(section("### 1.4 "));
  assert.deepEqual([...documented].sort(), Object.keys(REFUSAL_CODES).sort());
});

Deno.test("docs/protocol.md §9.3 lists every IgnoredEntryCode of a sneakernet import", () => {
  const documented = lastColumnCodes(section("### 9.3 "));
  assert.deepEqual([...documented].sort(), Object.keys(IGNORED_ENTRY_CODES).sort());
});

Deno.test("docs/protocol.md names every service message type and the parcel size limit", () => {
  for (const type of Object.values(MessageType)) {
    assert.ok(doc.includes(`\`${type}\``), `docs/protocol.md does not mention ${type}`);
  }
  const spaced = MAX_PARCEL_LENGTH.toLocaleString("en").replaceAll(",", " ");
  assert.ok(doc.includes(spaced), `docs/protocol.md does not give the limit ${spaced}`);
});
