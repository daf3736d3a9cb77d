/**
 * Which test files `deno task test` runs together, which beside them, and which
 * alone.
 *
 * Most test files run side by side (`deno test --parallel`, one worker thread per
 * file, `DENO_JOBS` of them at once) at a lowered CPU priority: they keep both
 * cores busy. At the same time, one at a time in a `deno test` of their own at the
 * normal priority, run the files that cannot share a process with them but can
 * share the machine ("beside"), as the parallel set yields the CPU whenever
 * they need it:
 *
 * - those under `tests/lab/`, or that import (directly or through other local
 *   modules) `tests/lab/netns.ts`: network-namespace labs, which mostly wait on
 *   timers, with their daemons in processes of their own;
 * - those that import `tests/web/_browser.ts`: Chromium, a process of its own;
 * - those that change process-wide state the workers of the parallel set share
 *   (`Deno.chdir`, `Deno.umask`, `Deno.env.set`, `Deno.env.delete`), themselves
 *   or in a local module they import.
 *
 * After both, one at a time on a quiet machine, run the files that say so with a
 * line `// test-set: serial` (deadlines or memory figures that assume a quiet
 * machine), with the reason in a comment above; the marker wins over the rules
 * above.
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
/** Modules whose importers run beside the parallel set. */
const BESIDE_MODULES: readonly string[] = ["tests/lab/netns.ts", "tests/web/_browser.ts"];
/** Directories whose test files run beside the parallel set. */
const BESIDE_DIRS: readonly string[] = ["tests/lab/"];
/** Calls that change what every worker thread of the process shares. */
const PROCESS_WIDE = /\bDeno\.(?:chdir|umask|env\.set|env\.delete)\s*\(/;
/** A file's own request to run alone on a quiet machine. */
const MARKER = /^\s*\/\/\s*test-set:\s*serial\s*$/m;

/** A test file that cannot run in the parallel set, and why. */
export interface SetMember {
  /** Relative to the repository root, with `/` separators. */
  readonly path: string;
  /** Why it cannot run in the parallel set ("it imports tests/lab/netns.ts"). */
  readonly reason: string;
}

/** The three sets, as paths relative to the repository root with `/` separators. */
export interface TestSets {
  /** Run together by `deno test --parallel`, at a lowered CPU priority. */
  readonly parallel: string[];
  /** Run one at a time, in a process of their own, while the parallel set runs. */
  readonly beside: SetMember[];
  /** Run one at a time after the others, on a quiet machine. */
  readonly serial: SetMember[];
}

/** Where a module sends its importers, and why; null for the parallel set. */
type Placement = { set: "beside" | "serial"; reason: string } | null;

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

/** Splits the test files of the repository at `root` into the three sets. */
export async function testSets(root: string): Promise<TestSets> {
  const sets: TestSets = { parallel: [], beside: [], serial: [] };
  const memo = new Map<string, Placement>();
  for (const path of await testFiles(root)) {
    const placement = await place(root, path, memo, new Set());
    if (placement === null) sets.parallel.push(path);
    else sets[placement.set].push({ path, reason: placement.reason });
  }
  return sets;
}

/**
 * Where the module at `path` must run, by its own text and the local modules it
 * imports: "serial" (anywhere) wins over "beside", which wins over the parallel set.
 */
async function place(
  root: string,
  path: string,
  memo: Map<string, Placement>,
  visiting: Set<string>,
): Promise<Placement> {
  if (memo.has(path)) return memo.get(path)!;
  if (visiting.has(path)) return null;
  visiting.add(path);
  const text = await Deno.readTextFile(join(root, path)).catch(() => null);
  let placement: Placement = null;
  if (text !== null && MARKER.test(text)) {
    placement = { set: "serial", reason: "it is marked `// test-set: serial`" };
  } else if (BESIDE_MODULES.includes(path)) {
    placement = { set: "beside", reason: `it is ${path}` };
  } else if (BESIDE_DIRS.some((dir) => path.startsWith(dir))) {
    placement = { set: "beside", reason: `it is in ${dirname(path)}/` };
  } else if (text !== null && path.startsWith("tests/") && PROCESS_WIDE.test(text)) {
    const call = text.match(PROCESS_WIDE)![0].replace(/\s*\($/, "()");
    placement = { set: "beside", reason: `it calls ${call}` };
  }
  if (text !== null && placement?.set !== "serial") {
    for (const imported of localImports(root, path, text)) {
      const inner = await place(root, imported, memo, visiting);
      if (inner === null || (placement !== null && inner.set === "beside")) continue;
      const reason = inner.reason.startsWith("it imports")
        ? inner.reason
        : `it imports ${imported}`;
      placement = { set: inner.set, reason };
      if (inner.set === "serial") break;
    }
  }
  visiting.delete(path);
  memo.set(path, placement);
  return placement;
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
