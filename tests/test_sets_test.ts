/**
 * `deno task test` (tests/run.ts) leaves no test file out: each is in exactly one
 * of its three sets, the files that cannot share a process run beside the parallel
 * set, and those that need a quiet machine run alone.
 */
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { testFiles, testSets } from "./_test_sets.ts";

const ROOT = join(import.meta.dirname!, "..");
// Spelt apart, so that the calls named here do not make this file run alone.
const DENO = "Deno";

Deno.test("testSets() puts every test file in exactly one set", async () => {
  const files = await testFiles(ROOT);
  const sets = await testSets(ROOT);
  const all = [
    ...sets.parallel,
    ...sets.beside.map((file) => file.path),
    ...sets.serial.map((file) => file.path),
  ];
  assert.deepEqual(all.toSorted(), files);
  assert.equal(new Set(all).size, files.length);
  // The walk finds test files in every directory the task covers, and only them.
  for (const path of ["tests/cli_test.ts", "tests/mesh/node_test.ts", "tests/fuzz/riblt_test.ts"]) {
    assert.ok(files.includes(path), `${path} is found`);
  }
  for (const path of ["tests/helpers.ts", "tests/run.ts", "tests/_test_sets.ts"]) {
    assert.ok(!files.includes(path), `${path} is not a test file`);
  }
});

Deno.test("testSets() runs labs, Chromium and process-wide changes beside, marked files alone", async () => {
  const sets = await testSets(ROOT);
  const besideReason = (path: string) => sets.beside.find((file) => file.path === path)?.reason;
  const aloneReason = (path: string) => sets.serial.find((file) => file.path === path)?.reason;
  assert.equal(besideReason("tests/mesh/lab_test.ts"), "it imports tests/lab/netns.ts");
  assert.equal(besideReason("tests/gateway/fallback_lab_test.ts"), "it imports tests/lab/netns.ts");
  assert.equal(besideReason("tests/lab/channels_lab_test.ts"), "it is in tests/lab/");
  // Through a helper of its own directory that imports the lab.
  assert.match(besideReason("tests/mesh/healing_lab_test.ts") ?? "", /^it imports tests\/lab\//);
  assert.equal(besideReason("tests/web/browser_test.ts"), "it imports tests/web/_browser.ts");
  assert.equal(besideReason("tests/runtime_attack_test.ts"), `it calls ${DENO}.umask()`);
  // Deadlines and memory figures that assume a quiet machine.
  assert.equal(
    aloneReason("tests/gateway/poweb_node_interop_test.ts"),
    "it is marked `// test-set: serial`",
  );
  for (const path of ["tests/mesh/admission_test.ts", "tests/mesh/attack_test.ts"]) {
    assert.equal(aloneReason(path), "it is marked `// test-set: serial`");
  }
  const shared = ["tests/cli_test.ts", "tests/web/errors_test.ts", "tests/test_sets_test.ts"];
  for (const path of shared) {
    assert.ok(sets.parallel.includes(path), `${path} runs in parallel`);
  }
});

Deno.test("testSets() places a new file by its directory, imports, calls and marker", async () => {
  const root = await Deno.makeTempDir({ prefix: "relaymail-test-sets-" });
  try {
    const files: Record<string, string> = {
      "tests/lab/netns.ts": "export const lab = 1;\n",
      "tests/web/_browser.ts": "export const browser = 1;\n",
      "tests/lab/new_lab_test.ts": "Deno.test('x', () => {});\n",
      "tests/mesh/_helper.ts": 'export { lab } from "../lab/netns.ts";\n',
      "tests/mesh/through_helper_test.ts": 'import { lab } from "./_helper.ts";\n',
      "tests/web/page_test.ts": 'import {\n  browser,\n} from "./_browser.ts";\n',
      "tests/web/api_test.ts": 'import { lab } from "../mesh/plain.ts";\n',
      "tests/mesh/plain.ts": "export const lab = 1;\n",
      "tests/cwd_test.ts": `${DENO}.chdir(dir);\n`,
      "tests/env_test.ts": `${DENO}.env.set("A", "b");\n`,
      "tests/marked_test.ts": "// test-set: serial\nDeno.test('x', () => {});\n",
      "tests/plain_test.ts": "Deno.test('x', () => {});\n",
      // The marker wins over a lab, in the file or in a module it imports.
      "tests/lab/quiet_lab_test.ts": "// test-set: serial\nDeno.test('x', () => {});\n",
      "tests/mesh/_quiet.ts": "// test-set: serial\nexport const quiet = 1;\n",
      "tests/mesh/quiet_helper_lab_test.ts":
        'import { lab } from "./_helper.ts";\nimport { quiet } from "./_quiet.ts";\n',
      "mesh/node_test.ts": "Deno.test('x', () => {});\n",
      "app/core/x.test.ts": "Deno.test('x', () => {});\n",
      "bindings/helper.ts": `${DENO}.chdir(dir);\n`,
    };
    for (const [path, text] of Object.entries(files)) {
      await Deno.mkdir(join(root, dirname(path)), { recursive: true });
      await Deno.writeTextFile(join(root, path), text);
    }
    const sets = await testSets(root);
    assert.deepEqual(sets.parallel, [
      "app/core/x.test.ts",
      "mesh/node_test.ts",
      "tests/plain_test.ts",
      "tests/web/api_test.ts",
    ]);
    assert.deepEqual(sets.beside, [
      { path: "tests/cwd_test.ts", reason: `it calls ${DENO}.chdir()` },
      { path: "tests/env_test.ts", reason: `it calls ${DENO}.env.set()` },
      { path: "tests/lab/new_lab_test.ts", reason: "it is in tests/lab/" },
      { path: "tests/mesh/through_helper_test.ts", reason: "it imports tests/lab/netns.ts" },
      { path: "tests/web/page_test.ts", reason: "it imports tests/web/_browser.ts" },
    ]);
    assert.deepEqual(sets.serial, [
      { path: "tests/lab/quiet_lab_test.ts", reason: "it is marked `// test-set: serial`" },
      { path: "tests/marked_test.ts", reason: "it is marked `// test-set: serial`" },
      { path: "tests/mesh/quiet_helper_lab_test.ts", reason: "it imports tests/mesh/_quiet.ts" },
    ]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
