/**
 * Which test files `deno task test` runs in parallel and which one at a time.
 *
 * Most test files run side by side (`deno test --parallel`, one worker thread per
 * file, `DENO_JOBS` of them at once). A file runs alone, after them, when it cannot
 * share the machine or the process:
 *
 * - it is under `tests/lab/`, or imports (directly or through other local modules)
 *   `tests/lab/netns.ts`: network-namespace labs, whose deadlines assume a quiet
 *   machine;
 * - it imports `tests/web/_browser.ts`: Chromium, which takes both cores;
 * - it changes process-wide state the other workers share (`Deno.chdir`,
 *   `Deno.umask`, `Deno.env.set`, `Deno.env.delete`), itself or in a local module
 *   it imports;
 * - it says so with a line `// test-set: serial` (a test whose deadlines or
 *   memory figures assume a quiet machine), with the reason in a comment above.
 *
 * New files fall into a set by these rules with nothing to register; every test
 * file is in exactly one set (tests/test_sets_test.ts checks it).
 *
 * @module
 */
import { dirname, join, relative, resolve, sep } from "node:path";

/** The directories `deno task test` covers, relative to the repository root. */
export const TEST_ROOTS: readonly string[] = ["tests", "app", "bindings", "mesh"];

/** What `deno test` runs as a test module by default (its `*_test.ts` family). */
const TEST_FILE = /^(?:.*[._])?test\.(?:ts|tsx|mts|js|mjs|jsx)$/;
/** Modules whose importers must run alone. */
const ALONE_MODULES: readonly string[] = ["tests/lab/netns.ts", "tests/web/_browser.ts"];
/** Directories whose test files run alone. */
const ALONE_DIRS: readonly string[] = ["tests/lab/"];
/** Calls that change what every worker thread of the process shares. */
const PROCESS_WIDE = /\bDeno\.(?:chdir|umask|env\.set|env\.delete)\s*\(/;
/** A file's own request to run alone. */
const MARKER = /^\s*\/\/\s*test-set:\s*serial\s*$/m;

/** The two sets, as paths relative to the repository root with `/` separators. */
export interface TestSets {
  /** Run together by `deno test --parallel`. */
  readonly parallel: string[];
  /** Run one at a time afterwards, each with the reason it cannot share. */
  readonly serial: { path: string; reason: string }[];
}

/** Every test file under {@linkcode TEST_ROOTS} of `root`, sorted. */
export async function testFiles(root: string): Promise<string[]> {
  const files: string[] = [];
  async function walk(dir: string) {
    for await (const entry of Deno.readDir(join(root, dir))) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory && !entry.name.startsWith(".") && entry.name !== "node_modules") {
        await walk(path);
      } else if (entry.isFile && TEST_FILE.test(entry.name)) files.push(path);
    }
  }
  for (const dir of TEST_ROOTS) await walk(dir);
  return files.sort();
}

/** Splits the test files of the repository at `root` into the two sets. */
export async function testSets(root: string): Promise<TestSets> {
  const sets: TestSets = { parallel: [], serial: [] };
  const reasons = new Map<string, string | null>();
  for (const path of await testFiles(root)) {
    const reason = await aloneReason(root, path, reasons, new Set());
    if (reason === null) sets.parallel.push(path);
    else sets.serial.push({ path, reason });
  }
  return sets;
}

/** Why the module at `path` (or a local module it imports) must run alone, or null. */
async function aloneReason(
  root: string,
  path: string,
  memo: Map<string, string | null>,
  visiting: Set<string>,
): Promise<string | null> {
  if (memo.has(path)) return memo.get(path)!;
  if (visiting.has(path)) return null;
  visiting.add(path);
  let reason: string | null = null;
  if (ALONE_MODULES.includes(path)) reason = `it is ${path}`;
  else if (ALONE_DIRS.some((dir) => path.startsWith(dir))) reason = `it is in ${dirname(path)}/`;
  const text = await Deno.readTextFile(join(root, path)).catch(() => null);
  if (reason === null && text !== null) {
    if (MARKER.test(text)) reason = "it is marked `// test-set: serial`";
    else if (path.startsWith("tests/") && PROCESS_WIDE.test(text)) {
      reason = `it calls ${text.match(PROCESS_WIDE)![0].replace(/\s*\($/, "()")}`;
    } else {
      for (const imported of localImports(root, path, text)) {
        const inner = await aloneReason(root, imported, memo, visiting);
        if (inner !== null) {
          reason = inner.startsWith("it imports") ? inner : `it imports ${imported}`;
          break;
        }
      }
    }
  }
  visiting.delete(path);
  memo.set(path, reason);
  return reason;
}

/** The repository-relative paths of the relative imports in `text` (a module at `path`). */
function localImports(root: string, path: string, text: string): string[] {
  const specifiers = text.matchAll(
    /\b(?:import|export)\s[^;]*?from\s*["'](\.{1,2}\/[^"']+)["']|\bimport\s*\(?\s*["'](\.{1,2}\/[^"']+)["']/g,
  );
  const absoluteRoot = resolve(root);
  return [...specifiers].map((match) => {
    const absolute = resolve(absoluteRoot, dirname(path), match[1] ?? match[2]);
    return relative(absoluteRoot, absolute).split(sep).join("/");
  }).filter((imported) => !imported.startsWith("..") && /\.(?:ts|js|mts|mjs)$/.test(imported));
}
