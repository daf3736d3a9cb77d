// @ts-check
/// <reference lib="dom" />
// Carrying parcels on a USB stick: export to it, import from it, with the
// progress the server reports as events.
//
// The folder is typed, not picked: a browser's folder picker
// (showDirectoryPicker, <input webkitdirectory>) hands the page a handle or the
// files, never the folder's path, and the server, which does the reading and
// writing, needs the path. So the field says what it wants, and is checked
// before anything is asked of the server.

import { clearProblem, h, showProblem } from "./dom.js";
import { sneakernet } from "./endpoints.js";
import { formatSize } from "./format.js";
import { FieldError } from "./problems.js";
import { store } from "./store.js";

/** @typedef {import("../api_types.ts").Direction} Direction */
/** @typedef {import("./router.js").View} View */
/** @typedef {import("./router.js").ViewContext} ViewContext */

/** Where the folder used last is remembered, for the next visit. */
const LAST_FOLDER = "relaymail.stick";

/**
 * Why `path` cannot be the stick's folder, or null if it may be. The server
 * runs elsewhere than the page (its working directory is its own), so only a
 * full path names the same folder for both.
 * @param {string} path
 * @returns {string | null}
 */
export function folderProblem(path) {
  if (path === "") return "Give the folder of the stick, e.g. /media/usb.";
  const absolute = path.startsWith("/") || /^[A-Za-z]:[\\/]/.test(path) || path.startsWith("\\\\");
  if (!absolute) {
    return `Give the folder's full path, starting with / (or a drive letter such as E:\\ on Windows), not "${path}".`;
  }
  return null;
}

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
    autocomplete: "off",
    spellcheck: "false",
    "aria-describedby": "stick-dir-hint",
    value: localStorage.getItem(LAST_FOLDER) ?? "",
  });
  const bar = h("progress", { id: "stick-progress", max: 1, value: 0, "aria-label": "Progress" });
  const report = h("div", { id: "stick-report", "aria-live": "polite" });
  const buttons = [
    h("button", { type: "button", id: "stick-export", onclick: () => run("export") }, [
      "Export parcels to the stick",
    ]),
    h("button", { type: "button", id: "stick-import", onclick: () => run("import") }, [
      "Import parcels from the stick",
    ]),
  ];
  watch((state) => state.progress, (progress) => {
    if (!progress) return;
    bar.max = Math.max(1, progress.total);
    bar.value = progress.done;
  });

  /** @param {Direction} direction */
  async function run(direction) {
    clearProblem(directory);
    const path = directory.value.trim();
    const problem = folderProblem(path);
    if (problem) {
      showProblem(new FieldError(directory, problem), directory);
      directory.focus();
      return;
    }
    store.update({ progress: null });
    bar.value = 0;
    report.textContent = direction === "export" ? "Writing…" : "Reading…";
    for (const button of buttons) button.disabled = true;
    try {
      report.textContent = direction === "export"
        ? exported(await sneakernet("export", path))
        : imported(await sneakernet("import", path));
      bar.value = bar.max;
      localStorage.setItem(LAST_FOLDER, path);
    } catch (error) {
      // What was under way did not happen: nothing of it stays on screen.
      report.textContent = "";
      bar.value = 0;
      showProblem(new FieldError(directory, error), directory);
    } finally {
      for (const button of buttons) button.disabled = false;
    }
  }

  return {
    name: "sneakernet",
    content: [
      h("h1", {}, "USB stick"),
      h(
        "p",
        { class: "hint" },
        "Carry parcels on a stick: export here, import on the other device. Parcels stay encrypted, and nobody you did not authorise can slip one in.",
      ),
      h("label", { for: "stick-dir" }, "Directory of the stick (its full path)"),
      directory,
      h(
        "p",
        { class: "hint", id: "stick-dir-hint" },
        "Its full path on this computer, as your file manager shows it: e.g. /media/you/STICK on Linux, /Volumes/STICK on a Mac, E:\\ on Windows. The folder must exist: plug the stick in first.",
      ),
      h("div", { class: "actions" }, buttons),
      bar,
      report,
    ],
  };
}

/** @param {import("../api_types.ts").ExportReport} result */
function exported(result) {
  const there = result.alreadyThere ? `; ${result.alreadyThere} already on the stick` : "";
  if (result.written === 0) {
    return result.alreadyThere
      ? `Nothing new to write${there}.`
      : "Nothing to write: no parcel is waiting to leave this device.";
  }
  return `Wrote ${result.written} parcel(s) (${formatSize(result.bytes)})${there}.`;
}

/** @param {import("../api_types.ts").ImportReport} result */
function imported(result) {
  return `Took ${result.accepted} new parcel(s); ${result.duplicates} already had; ${result.skipped} for others left on the stick; ${result.refused.length} refused; ${result.unreadable.length} unreadable.`;
}
