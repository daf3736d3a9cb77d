// @ts-check
/// <reference lib="dom" />
// The parcels that were not let in, and why. A new refusal adds or updates its
// row only. The table keeps to the page's width: the reasons wrap (they may
// hold a 65-digit id), the columns around them are sized in content.css.

import { badge, h, liveTable } from "./dom.js";
import { listRefused } from "./endpoints.js";
import { shortId } from "./format.js";

/** @typedef {import("../api_types.ts").Refusal} Refusal */
/** @typedef {import("./router.js").View} View */

/** @returns {Promise<View>} */
export async function refusedView() {
  const table = liveTable({
    id: "refused-table",
    headers: ["When", "Why", "Details", "Sender", "Came by", "Times"],
    empty: "Nothing refused.",
    key: (refusal) => String(refusal.id),
    row: refusalRow,
  });
  // A second copy of a parcel already received is normal when mail travels several
  // ways at once: counted, not listed among the refusals.
  const copies = h("p", { class: "hint", id: "copies" });
  const refresh = async () => {
    const refused = await listRefused();
    table.update(refused.refusals);
    const n = refused.copies;
    copies.hidden = n === 0;
    copies.textContent = `Also ${n} extra cop${
      n === 1 ? "y" : "ies"
    } of parcels already received (another path, or a replay) dropped.`;
  };
  await refresh();
  return {
    name: "refused",
    content: [
      h("h1", {}, "Refused parcels"),
      h(
        "p",
        { class: "hint" },
        "Parcels that were not let in, and why: strangers without your authorisation, forgeries, expired or damaged parcels.",
      ),
      table.node,
      copies,
    ],
    live: ["parcel-refused"],
    refresh,
  };
}

/** @param {Refusal} r */
function refusalRow(r) {
  return h(
    "tr",
    { dataset: { code: r.code } },
    h("td", {}, new Date(r.lastAt).toLocaleString()),
    h("td", {}, badge(r.code, "blocked")),
    h("td", { class: "reason" }, r.reason),
    h("td", { class: "mono", title: r.senderId ?? null }, r.senderId ? shortId(r.senderId) : "—"),
    h(
      "td",
      {},
      r.via,
      r.hop ? h("div", { class: "mono hint", title: r.hop }, shortId(r.hop)) : null,
    ),
    h("td", { class: "number" }, String(r.count)),
  );
}
