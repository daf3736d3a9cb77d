/**
 * `relaymail mesh`: the running daemon's mesh node, its peers, and the path of
 * each message on its way.
 *
 * @module
 */
import type { Command } from "commander";
import { withMessenger } from "../connection.ts";
import { table } from "../format.ts";
import { nameOf, type Output } from "../render.ts";

/** Adds `mesh` to `program`. */
export function addMeshCommand(program: Command, output: Output): void {
  program.command("mesh")
    .description("show the running daemon's mesh node and the peers it is connected to")
    .action(function (this: Command) {
      return withMessenger(this, async (messenger, options) => {
        const shown = await messenger.call("mesh.show");
        if (!shown) {
          output.show(
            options,
            null,
            () => "No daemon runs for this data directory: start one with `relaymail daemon`.",
          );
          return;
        }
        const { status, names } = shown;
        const hosts = (endpoints: readonly string[]) =>
          endpoints.map((id) => nameOf(names, id)).join(", ") || "-";
        output.show(options, status, () =>
          [
            `Mesh node ${status.peerId} (pid ${status.pid}), carrying ${status.parcelsCarried} parcel(s)`,
            ...status.addresses.map((a) => `  listening on ${a}`),
            "",
            table(
              ["PEER", "ADDRESS", "HOSTS"],
              status.peers.map((p) => [
                `…${p.id.slice(-12)}`,
                p.addresses[0] ?? "-",
                hosts(p.endpoints),
              ]),
            ),
            "",
            status.paths.length === 0 ? "Nothing of yours on its way." : table(
              ["MESSAGE", "TO", "PATH"],
              status.paths.map((p) => [
                p.messageId?.slice(0, 8) ?? p.kind,
                p.to,
                p.hops.length === 0
                  ? "queued here"
                  : p.hops.map((h) => `${h.via}${h.toRecipient ? " (their device)" : ""}`)
                    .join(" → "),
              ]),
            ),
          ].join("\n"));
      });
    });
}
