/**
 * The module graph keeps its shape: no import cycles anywhere in the source,
 * each layer imports only the layers below it (docs/architecture.md), and no
 * source file grows past the size a reader can hold.
 */
import assert from "node:assert/strict";
import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = normalize(join(dirname(fileURLToPath(import.meta.url)), ".."));

/**
 * The layers from the bottom up. A module may import its own layer and those
 * listed before it, never one listed after it.
 */
const LAYERS: readonly { name: string; prefixes: readonly string[] }[] = [
  { name: "bindings", prefixes: ["bindings/"] },
  { name: "mesh", prefixes: ["mesh/"] },
  { name: "core", prefixes: ["app/core/"] },
  { name: "services", prefixes: ["app/services/"] },
  { name: "runtime", prefixes: ["app/runtime/"] },
  { name: "interfaces", prefixes: ["app/cli/", "app/web/", "app/main.ts", "app/_quiet.ts"] },
];

/** Layers a module may not import even though they are below it. */
const FORBIDDEN: Record<string, readonly string[]> = {
  // The transport bindings are the bottom: they know nothing of the mesh.
  bindings: ["mesh"],
};

const SOURCE_DIRS = ["app", "bindings", "mesh"];
const MAX_LINES = 500;

async function sourceFiles(): Promise<string[]> {
  const files: string[] = [];
  async function walk(dir: string) {
    for await (const entry of Deno.readDir(join(ROOT, dir))) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory) await walk(path);
      else if (/\.(ts|js)$/.test(entry.name)) files.push(path);
    }
  }
  for (const dir of SOURCE_DIRS) await walk(dir);
  return files.sort();
}

/** The relative modules a file imports or re-exports, type-only ones included. */
function importsOf(file: string, text: string): string[] {
  const found = new Set<string>();
  // Strip comments so doc examples do not count as imports.
  const code = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  const pattern =
    /(?:^|[;\s])(?:import|export)\s+(?:type\s+)?(?:[\w*{}\s,$]+\s+from\s+)?["'](\.{1,2}\/[^"']+)["']|import\(\s*["'](\.{1,2}\/[^"']+)["']\s*\)/g;
  for (const match of code.matchAll(pattern)) {
    const specifier = match[1] ?? match[2];
    found.add(normalize(join(dirname(file), specifier)));
  }
  return [...found];
}

function layerOf(file: string): string | undefined {
  return LAYERS.find((layer) => layer.prefixes.some((p) => file.startsWith(p)))?.name;
}

async function graph(): Promise<Map<string, string[]>> {
  const edges = new Map<string, string[]>();
  for (const file of await sourceFiles()) {
    const text = await Deno.readTextFile(join(ROOT, file));
    edges.set(file, importsOf(file, text).filter((target) => !target.startsWith("..")));
  }
  return edges;
}

/** Strongly connected components with more than one module, or a module importing itself. */
function cycles(edges: Map<string, string[]>): string[][] {
  let index = 0;
  const indices = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (node: string) => {
    indices.set(node, index);
    low.set(node, index++);
    stack.push(node);
    onStack.add(node);
    for (const next of edges.get(node) ?? []) {
      if (!edges.has(next)) continue;
      if (!indices.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (onStack.has(next)) {
        low.set(node, Math.min(low.get(node)!, indices.get(next)!));
      }
    }
    if (low.get(node) === indices.get(node)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      if (component.length > 1 || (edges.get(node) ?? []).includes(node)) {
        found.push(component.sort());
      }
    }
  };
  for (const node of edges.keys()) if (!indices.has(node)) visit(node);
  return found;
}

Deno.test("the cycle finder finds a cycle, and a chain is not one", () => {
  const cyclic = new Map([["a", ["b"]], ["b", ["c"]], ["c", ["a"]], ["d", ["a"]]]);
  assert.deepEqual(cycles(cyclic), [["a", "b", "c"]]);
  assert.deepEqual(cycles(new Map([["a", ["b"]], ["b", ["c"]], ["c", []]])), []);
  assert.deepEqual(
    importsOf("app/core/x.ts", 'import type { A } from "./y.ts";\nexport * from "../z.ts";'),
    ["app/core/y.ts", "app/z.ts"],
  );
});

Deno.test("no module imports itself back, however indirectly", async () => {
  const edges = await graph();
  assert.ok(edges.size > 50, `only ${edges.size} modules found under ${SOURCE_DIRS}`);
  const found = cycles(edges);
  assert.deepEqual(found, [], `import cycles:\n${found.map((c) => c.join(" ↔ ")).join("\n")}`);
});

Deno.test("each layer imports only the layers below it", async () => {
  const wrong: string[] = [];
  const rank = new Map(LAYERS.map((layer, i) => [layer.name, i]));
  for (const [file, targets] of await graph()) {
    const from = layerOf(file);
    assert.ok(from, `${file} is in no layer: add it to LAYERS and docs/architecture.md`);
    for (const target of targets) {
      const to = layerOf(target);
      if (!to) continue;
      if (rank.get(to)! > rank.get(from)! || FORBIDDEN[from]?.includes(to)) {
        wrong.push(`${file} (${from}) imports ${target} (${to})`);
      }
    }
  }
  assert.deepEqual(wrong, []);
});

Deno.test(`no source file is longer than ${MAX_LINES} lines`, async () => {
  const long: string[] = [];
  for (const file of await sourceFiles()) {
    if (file.includes("/vendor/")) continue;
    const lines = (await Deno.readTextFile(join(ROOT, file))).split("\n").length - 1;
    if (lines > MAX_LINES) long.push(`${relative(ROOT, join(ROOT, file))}: ${lines}`);
  }
  assert.deepEqual(long, []);
});
