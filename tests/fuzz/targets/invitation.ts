/**
 * Fuzz target for invitation lines (app/core/protocol/invitation.ts): pasted or scanned
 * text, whole or split into `relaymail-invite-part:K/N:` parts. `decodeInvitation`
 * must settle with an invitation or an `InvalidInvitationError`, whatever the text.
 *
 * Inputs are the corpus's valid invitations (corpus.json) mutated as text, as DER
 * under the base64url, and as parts (shuffled, dropped, repeated, renumbered).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import {
  decodeInvitation,
  InvalidInvitationError,
  INVITATION_PART_PREFIX,
  INVITATION_PREFIX,
  splitInvitation,
} from "../../../app/core/protocol/invitation.ts";
import { expectOnlyAsync, type Target } from "../_harness.ts";
import { derNodes, mutate, mutateDer, mutateText, type Rng, TEXT_ALPHABET } from "../_rng.ts";
import type { Corpus } from "../make_corpus.ts";

interface Context {
  readonly now: Date;
  readonly invitations: string[];
}

interface InvitationCase {
  readonly text: string;
  readonly now: Date;
}

const BASE64URL = [..."ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"];

const TOKENS = [
  INVITATION_PREFIX,
  INVITATION_PART_PREFIX,
  "relaymail-invite:2:",
  "relaymail-invite:",
  `${INVITATION_PART_PREFIX}1/1:`,
  `${INVITATION_PART_PREFIX}0/0:`,
  " ",
  "\n",
  "\r\n",
  "\u00a0",
  "=",
  "+",
  "/",
  ":",
];

/**
 * Part counts a part header may claim: around the limit of 64 parts, and far
 * beyond it, up to counts that once made `joinInvitationParts` allocate for each
 * part claimed (`invitation-part-count`, invitation_test.ts).
 */
const PART_COUNTS = [
  0,
  1,
  2,
  3,
  9,
  10,
  63,
  64,
  65,
  99,
  100,
  1_000,
  65_535,
  200_000,
  20_000_000,
  2 ** 32 - 1,
  2 ** 32,
  2 ** 53,
  1e21,
];

async function setup(): Promise<Context> {
  const corpus: Corpus = JSON.parse(
    await Deno.readTextFile(new URL("../corpus.json", import.meta.url)),
  );
  return { now: new Date(corpus.now), invitations: corpus.invitations };
}

/** The invitation's DER (under its base64url) mutated, and written back as a line. */
function mutatedDer(rng: Rng, text: string): string {
  const der = new Uint8Array(Buffer.from(text.slice(INVITATION_PREFIX.length), "base64url"));
  let bytes = rng.chance(0.6)
    ? mutateDer(rng, der, derNodes(der))
    : mutate(rng, der, { maxGrowth: 128 });
  if (rng.chance(0.3)) bytes = mutateDer(rng, bytes);
  return INVITATION_PREFIX + Buffer.from(bytes).toString("base64url");
}

/** Split into parts, then the parts tampered with: order, number, headers, separators. */
function mutatedParts(rng: Rng, text: string): string {
  const parts = splitInvitation(text, rng.range(20, 2500));
  for (let m = rng.int(4); m > 0; m--) {
    const i = rng.int(parts.length);
    switch (rng.int(5)) {
      case 0: // drop one
        if (parts.length > 1) parts.splice(i, 1);
        break;
      case 1: // repeat one
        parts.splice(rng.int(parts.length + 1), 0, parts[i]);
        break;
      case 2: // another count or index in its header
      case 3:
        parts[i] = parts[i].replace(/^(relaymail-invite-part:)(\d+)\/(\d+):/, (_, prefix, k, n) => {
          const count = rng.chance(0.5) ? String(rng.pick(PART_COUNTS)) : n;
          const index = rng.chance(0.5)
            ? String(rng.pick([0, 1, 2, Number(n), Number(n) + 1, ...PART_COUNTS]))
            : k;
          return `${prefix}${index}/${count}:`;
        });
        break;
      default: // its body mutated
        parts[i] = mutateText(rng, parts[i], {
          alphabet: BASE64URL,
          tokens: TOKENS,
          maxMutations: 2,
        });
    }
  }
  // Any order, any whitespace between.
  for (let i = parts.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [parts[i], parts[j]] = [parts[j], parts[i]];
  }
  return parts.join(rng.pick([" ", "\n", "\r\n", "\t", "  \n"]));
}

function generate(rng: Rng, context: Context): InvitationCase {
  const base = rng.pick(context.invitations);
  const now = rng.chance(0.9)
    ? context.now
    : new Date(context.now.getTime() + rng.pick([-1, 1, 8, 100]) * 86_400_000);
  const roll = rng.float();
  let text: string;
  if (roll < 0.05) text = base;
  else if (roll < 0.35) {
    text = mutateText(rng, base, {
      alphabet: rng.chance(0.7) ? BASE64URL : TEXT_ALPHABET,
      tokens: TOKENS,
    });
  } else if (roll < 0.6) text = mutatedDer(rng, base);
  else if (roll < 0.9) text = mutatedParts(rng, rng.chance(0.3) ? mutatedDer(rng, base) : base);
  else {
    text = Array.from(
      { length: rng.size(12) },
      () =>
        rng.chance(0.5)
          ? rng.pick(TOKENS)
          : rng.text(rng.size(40), rng.chance(0.5) ? BASE64URL : TEXT_ALPHABET),
    ).join("");
  }
  return { text, now };
}

async function check(input: InvitationCase): Promise<void> {
  await expectOnlyAsync(() => decodeInvitation(input.text, input.now), [InvalidInvitationError]);
}

export const targets: Target[] = [
  {
    name: "invitation-decode",
    module: import.meta.url,
    property: "decodeInvitation() settles with an invitation or InvalidInvitationError on any text",
    // Most mutants fail in microseconds; one that decodes far costs relaynet-core
    // milliseconds (connection parameters, RSA key, PDA chain): ~11 s on two idle cores.
    cases: 10_000,
    setup,
    generate,
    check,
    show: (input: InvitationCase) => JSON.stringify(input),
  },
];
