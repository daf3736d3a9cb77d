/**
 * `relaymail refused`: the parcels this device refused, with the reasons.
 *
 * @module
 */
import type { Command } from "commander";
import { limit } from "../args.ts";
import { withMessenger } from "../connection.ts";
import { clip, shortDate, table } from "../format.ts";
import { nameOf, type Output } from "../render.ts";

/** Adds `refused` to `program`. */
export function addRefusalsCommand(program: Command, output: Output): void {
  program.command("refused")
    .description("list parcels this device refused, with the reasons")
    .option("--limit <n>", "at most this many", "100")
    .action(function (this: Command, opts: { limit: string }) {
      return withMessenger(this, async (messenger, options) => {
        const { refusals, names } = await messenger.call("refusals.list", {
          limit: limit(opts.limit),
        });
        output.show(options, refusals, () =>
          table(
            ["WHEN", "VIA", "CODE", "FROM", "TIMES", "REASON"],
            refusals.map((r) => [
              shortDate(r.lastAt),
              r.via,
              r.code,
              r.senderId
                ? nameOf(names, r.senderId)
                : r.hop
                ? `${r.via === "mesh" ? "peer " : ""}…${r.hop.slice(-12)}`
                : "-",
              String(r.count),
              clip(r.reason, 100),
            ]),
          ));
      });
    });
}
