/**
 * `relaymail sneakernet …`: parcels carried on a USB stick or any directory.
 * The directory is resolved here, against the command's working directory,
 * since the daemon that may do the work has its own.
 *
 * @module
 */
import { basename, resolve } from "node:path";
import type { Command } from "commander";
import type { SneakernetProgress } from "../../../bindings/sneakernet/sneakernet.ts";
import { withMessenger } from "../connection.ts";
import { progressBar } from "../progress.ts";
import { size } from "../format.ts";
import type { Output } from "../render.ts";

/** Ignored entries an import lists in text; `--json` has them all. */
const IGNORED_SHOWN = 20;

/** Adds `sneakernet` and its subcommands to `program`. */
export function addSneakernetCommands(program: Command, output: Output): void {
  const sneakernet = program.command("sneakernet").description(
    "carry parcels on a USB stick or any directory",
  );
  sneakernet.command("export <dir>")
    .description("write every parcel waiting to leave this device into <dir>")
    .option("--resend", "also write parcels that left before but are not delivered yet")
    .action(function (this: Command, dir: string, opts: { resend?: boolean }) {
      return withMessenger(this, async (messenger, options) => {
        const bar = progressBar("Exporting");
        const report = await messenger.track("sneakernet.export", {
          directory: resolve(dir),
          resend: opts.resend === true,
        }, (progress) => bar.update(progress as SneakernetProgress)).finally(bar.stop);
        output.show(
          options,
          report,
          () =>
            `Exported ${report.written} parcel(s) (${size(report.bytes)}) to ${dir}` +
            (report.alreadyThere ? `; ${report.alreadyThere} already there` : ""),
        );
      });
    });
  sneakernet.command("import <dir>")
    .description("take in every parcel file found in <dir>")
    .action(function (this: Command, dir: string) {
      return withMessenger(this, async (messenger, options) => {
        const bar = progressBar("Importing");
        const report = await messenger.track(
          "sneakernet.import",
          { directory: resolve(dir) },
          (progress) => bar.update(progress as SneakernetProgress),
        ).finally(bar.stop);
        output.show(options, report, () =>
          [
            `Imported ${report.accepted} new parcel(s); ${report.duplicates} already had; ` +
            `${report.skipped} for others left on the medium; ${report.refused.length} refused; ` +
            `${report.unreadable.length} unreadable; ${report.ignored.length} other entries ignored`,
            ...report.refused.map((r) => `  refused ${basename(r.file)}: ${r.code}: ${r.reason}`),
            ...report.unreadable.map((r) => `  unreadable ${basename(r.file)}: ${r.error}`),
            ...report.ignored.slice(0, IGNORED_SHOWN).map((i) =>
              `  ignored ${basename(i.file)}: ${i.reason}`
            ),
            ...(report.ignored.length > IGNORED_SHOWN
              ? [`  and ${report.ignored.length - IGNORED_SHOWN} more ignored (see --json)`]
              : []),
          ].join("\n"));
      });
    });
}
