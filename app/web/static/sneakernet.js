// @ts-check
/// <reference lib="dom" />
// Carrying parcels on a USB stick: export to it, import from it, with the
// progress the server reports as events.

import { attempt, h } from "./dom.js";
import { sneakernet } from "./endpoints.js";
import { formatSize } from "./format.js";
import { store } from "./store.js";

/** @typedef {import("../api_types.ts").Direction} Direction */
/** @typedef {import("./router.js").View} View */
/** @typedef {import("./router.js").ViewContext} ViewContext */

/**
 * @param {ViewContext} context
 * @returns {View}
 */
export function sneakernetView({ watch }) {
  const directory = h("input", {
    type: "text",
    id: "stick-dir",
    placeholder: "/media/usb",
    required: true,
  });
  const bar = h("progress", { id: "stick-progress", max: 1, value: 0, "aria-label": "Progress" });
  const report = h("div", { id: "stick-report", "aria-live": "polite" });
  watch((state) => state.progress, (progress) => {
    if (!progress) return;
    bar.max = Math.max(1, progress.total);
    bar.value = progress.done;
  });
  /** @param {Direction} direction */
  const run = (direction) =>
    attempt(async () => {
      store.update({ progress: null });
      bar.value = 0;
      report.textContent = direction === "export" ? "Writing…" : "Reading…";
      if (direction === "export") {
        const result = await sneakernet("export", directory.value);
        report.textContent = `Wrote ${result.written} parcel(s) (${
          formatSize(result.bytes)
        }); ${result.alreadyThere} already there.`;
      } else {
        const result = await sneakernet("import", directory.value);
        report.textContent =
          `Took ${result.accepted} new parcel(s); ${result.duplicates} already had; ${result.skipped} for others left on the stick; ${result.refused.length} refused; ${result.unreadable.length} unreadable.`;
      }
      bar.value = bar.max;
    });
  return {
    name: "sneakernet",
    content: [
      h("h1", {}, "USB stick"),
      h(
        "p",
        { class: "hint" },
        "Carry parcels on a stick: export here, import on the other device. Parcels stay encrypted, and nobody you did not authorise can slip one in.",
      ),
      h("label", { for: "stick-dir" }, "Directory of the stick"),
      directory,
      h(
        "div",
        { class: "actions" },
        h(
          "button",
          { type: "button", id: "stick-export", onclick: () => run("export") },
          "Export parcels to the stick",
        ),
        h(
          "button",
          { type: "button", id: "stick-import", onclick: () => run("import") },
          "Import parcels from the stick",
        ),
      ),
      bar,
      report,
    ],
  };
}
