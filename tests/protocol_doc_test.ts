/**
 * Keeps docs/protocol.md in step with the code it specifies: the refusal-code table
 * (§1.4) names every `RefusalCode` and no other, the sneakernet table (§9.3) every
 * `IgnoredEntryCode`, every service message type appears, and the `Pairing` ASN.1
 * (§3.2) lists the fields the code writes.
 */
import assert from "node:assert/strict";
import type { RefusalCode } from "../bindings/binding.ts";
import type { IgnoredEntryCode } from "../bindings/sneakernet/sneakernet.ts";
import { MAX_PARCEL_LENGTH } from "../bindings/validation.ts";
import * as asn1js from "asn1js";
import { encodePairing, MessageType } from "../app/core/protocol/messages.ts";

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

Deno.test("docs/protocol.md §3.2 lists every field of Pairing that encodePairing writes, with its tag", () => {
  const block = /```asn1\nPairing ::= SEQUENCE \{\n([\s\S]*?)\n\}\n```/.exec(section("### 3.2 "));
  assert.ok(block, "§3.2 has the ASN.1 of Pairing");
  const documented = [...block[1].matchAll(/^ {2}(\w+) +\[(\d+)\]/gm)].map(([, name, tag]) =>
    `${name} [${tag}]`
  );
  // A request carrying everything, mail included: each field written is documented.
  const encoded = encodePairing({
    connectionParams: new Uint8Array(1),
    nameHint: "",
    authorizations: [new Uint8Array(1)],
    mail: [new Uint8Array(1)],
    proof: new Uint8Array(1),
  });
  const written = (asn1js.fromBER(encoded.slice().buffer).result as asn1js.Sequence).valueBlock
    .value.map((field) => field.idBlock.tagNumber);
  assert.deepEqual(documented.map((field) => Number(/\[(\d+)\]/.exec(field)![1])), written);
  assert.deepEqual(documented, [
    "connectionParams [0]",
    "nameHint [1]",
    "authorizations [2]",
    "mail [3]",
    "proof [4]",
  ]);
});
