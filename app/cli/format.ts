/**
 * Plain-text output of the CLI: aligned columns, short dates and sizes. `--json`
 * output bypasses all of this.
 *
 * @module
 */

/** Lays rows out in columns under a header, two spaces apart. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join("  ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

/** A date as `2026-11-26 14:05` in UTC, the same on every machine. */
export function shortDate(date: Date | null): string {
  if (!date) return "-";
  return date.toISOString().slice(0, 16).replace("T", " ");
}

/** A size as `512 B`, `3.4 KiB`, `7.9 MiB`. */
export function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** The first characters of a message id: enough to refer to it. */
export function shortId(id: string): string {
  return id.slice(0, 8);
}

/** Truncates text to `max` characters with an ellipsis. */
export function clip(text: string, max: number): string {
  const flat = text.replace(/\s+/g, " ");
  return flat.length <= max ? flat : flat.slice(0, max - 1) + "…";
}
