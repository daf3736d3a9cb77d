/**
 * Where the CLI gets passphrases: a file named by an option, an environment
 * variable, or a prompt that does not echo when a person is at the terminal.
 *
 * @module
 */
import { UserInputError } from "../core/errors.ts";

/** Reads a passphrase from `file` (first line), else `envVar`, else undefined. */
export async function passphraseFrom(
  file: string | undefined,
  envVar: string,
): Promise<string | undefined> {
  if (file) {
    const text = await Deno.readTextFile(file).catch((error) => {
      throw new UserInputError(`Cannot read passphrase file ${file}: ${error.message}`, {
        cause: error,
      });
    });
    return text.split(/\r?\n/)[0];
  }
  const fromEnv = Deno.env.get(envVar);
  return fromEnv === undefined || fromEnv === "" ? undefined : fromEnv;
}

/** Asks for a passphrase at the terminal without echoing it; undefined when not interactive. */
export async function promptPassphrase(question: string): Promise<string | undefined> {
  if (!Deno.stdin.isTerminal() || !Deno.stderr.isTerminal()) return undefined;
  const encoder = new TextEncoder();
  await Deno.stderr.write(encoder.encode(question));
  Deno.stdin.setRaw(true);
  const chars: string[] = [];
  try {
    const buffer = new Uint8Array(64);
    const decoder = new TextDecoder();
    reading: while (true) {
      const n = await Deno.stdin.read(buffer);
      if (n === null) break;
      for (const ch of decoder.decode(buffer.subarray(0, n))) {
        if (ch === "\r" || ch === "\n") break reading;
        if (ch === "\u0003") throw new UserInputError("Cancelled");
        if (ch === "\u007f" || ch === "\b") chars.pop();
        else chars.push(ch);
      }
    }
  } finally {
    Deno.stdin.setRaw(false);
    await Deno.stderr.write(encoder.encode("\n"));
  }
  return chars.join("");
}
