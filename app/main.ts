/**
 * Entry point of the `relaymail` command: `deno task relaymail <command>`, or
 * `deno task start` for the messenger on its defaults.
 *
 * @module
 */
import "./_quiet.ts";
import { main } from "./cli/main.ts";

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
