/**
 * Silences Node's deprecation warnings before any npm module loads: relaynet-core
 * pulls in `dohdec`, which requires the deprecated `punycode` module and would
 * print a warning on every command.
 *
 * @module
 */
import process from "node:process";

(process as { noDeprecation?: boolean }).noDeprecation = true;
