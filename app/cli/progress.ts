/**
 * A progress bar on stderr for long operations, shown only when stderr is a
 * terminal so that scripts and logs stay clean.
 *
 * @module
 */
import cliProgress from "cli-progress";
import process from "node:process";
import type { SneakernetProgress } from "../../bindings/sneakernet/sneakernet.ts";

/** A progress callback drawing a bar labelled `label`, and a function to finish it. */
export function progressBar(
  label: string,
): { update: (p: SneakernetProgress) => void; stop: () => void } {
  if (!Deno.stderr.isTerminal()) return { update: () => {}, stop: () => {} };
  const bar = new cliProgress.SingleBar(
    { format: `${label} [{bar}] {value}/{total}`, stream: process.stderr, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update: ({ done, total }) => {
      if (!started) {
        bar.start(total, 0);
        started = true;
      }
      bar.update(done);
    },
    stop: () => {
      if (started) bar.stop();
    },
  };
}
