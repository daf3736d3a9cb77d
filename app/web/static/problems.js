// @ts-check
/// <reference lib="dom" />
// What a failure says to a person. The server answers a person's mistake with a
// sentence they can act on (app/web/errors.ts), but some failures reach it from
// below in the words of a parser or a socket ("Invitation is not a DER
// SEQUENCE", "connect ECONNREFUSED 127.0.0.1:9"): those get a plain sentence
// here, and their own words are kept for a disclosure.

import { ApiError } from "./api.js";
import { formatLimit } from "./format.js";

/**
 * A failure that belongs to one field of a form: it is shown beside that field
 * (see dom.js). `reason` is the failure itself (an error from the server), or
 * the sentence to show.
 */
export class FieldError extends Error {
  /**
   * @param {HTMLElement} field
   * @param {unknown} reason
   */
  constructor(field, reason) {
    super(reason instanceof Error ? reason.message : String(reason), { cause: reason });
    this.name = "FieldError";
    this.field = field;
  }
}

/**
 * Technical messages and the sentence that says the same to a person.
 * @type {readonly [RegExp, string | ((match: RegExpExecArray, message: string) => string)][]}
 */
const PLAIN = [
  // Invitations: a parser's words for a copy cut short or mangled.
  [
    /damaged or forged/i,
    "This invitation was altered: it is not what its sender signed. Ask them for a new one.",
  ],
  [
    /not a DER|damaged or truncated|outside base64url|outside base32|check digits|does not decode|Invalid (?:DER|length)/i,
    "This invitation is damaged or incomplete. Copy it again, all of it: it is one long line that starts with relaymail-invite:",
  ],
  // Sockets: a gateway (or anything else) that does not answer.
  [
    /ECONNREFUSED|connection refused|os error 111/i,
    (_, message) =>
      `Nothing answers at ${
        / at (\S+?):? /.exec(message)?.[1] ?? "that address"
      }. Is the gateway running? (Awala Desktop listens at http://127.0.0.1:13276.)`,
  ],
  [
    /ENOTFOUND (\S+)|EAI_AGAIN|dns error|failed to lookup|name or service not known|no such host/i,
    (match) => `No computer is called ${match[1] ?? "that"} on the network: check the address.`,
  ],
  [
    /ETIMEDOUT|timed out|deadline has elapsed/i,
    "The other side did not answer in time. Try again later.",
  ],
  [/ECONNRESET|connection reset|broken pipe|EPIPE/i, "The connection broke off. Try again."],
  [
    /EHOSTUNREACH|ENETUNREACH|network is unreachable|no route to host/i,
    "That address cannot be reached from here: is this device online?",
  ],
  // Messages over the size limit, as the messenger or the upload limit says it.
  [
    /exceeds (\d+) bytes once encoded|message is over the limit of (\d+) bytes/i,
    (match) =>
      `Too large to send: a message may take at most ${
        formatLimit(Number(match[1] ?? match[2]))
      } once encoded. Leave out an attachment, or send it in a message of its own.`,
  ],
  // Folders (the USB stick) as the file system refuses them.
  [
    /not a directory|os error 20\b/i,
    "That is a file, not a folder: give the folder of the stick.",
  ],
  [
    /read-only file system|os error 30\b/i,
    "The stick is read-only: unlock it (some have a switch), or use another.",
  ],
  [
    /permission denied|os error 13\b|EACCES/i,
    "Relaymail may not use that folder: check that it is yours, and that the stick is not read-only.",
  ],
  [/no space left|os error 28\b|ENOSPC/i, "The disk is full: free some space, then try again."],
];

/**
 * What to tell a person about `error`: a sentence, and the technical words it
 * stands for (the server's own message) when the sentence is not them.
 * @param {unknown} error
 * @returns {{ text: string, detail: string | null }}
 */
export function explain(error) {
  const reason = error instanceof FieldError ? error.cause : error;
  const message = reason instanceof Error ? reason.message : String(reason);
  // fetch() itself failed: the server is not there.
  if (reason instanceof TypeError && /fetch|network|load failed/i.test(message)) {
    return {
      text:
        "Relaymail does not answer: is it still running? Start it again, then reload this page.",
      detail: message,
    };
  }
  if (
    reason instanceof ApiError && reason.status >= 500 && /its log has the details/.test(message)
  ) {
    return {
      text:
        "Relaymail failed to do this: the fault is its own, not yours. Its log has the details.",
      detail: message,
    };
  }
  for (const [pattern, plain] of PLAIN) {
    const match = pattern.exec(message);
    if (match) {
      return { text: typeof plain === "string" ? plain : plain(match, message), detail: message };
    }
  }
  return { text: message, detail: null };
}
