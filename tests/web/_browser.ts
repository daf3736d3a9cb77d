/**
 * Debian's headless Chromium, driven by playwright-core, as the browser tests
 * run it: whether it is there, how it is launched, where screens are saved, and
 * test steps that save a screenshot of each page when they fail.
 */
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";

/** Where Debian's `chromium` package puts the browser. */
export const CHROMIUM = "/usr/bin/chromium";

/** Whether Chromium is installed here. */
export const haveChromium = (() => {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
})();

/**
 * The `Deno.test` options of a browser test: skipped without Chromium except in
 * CI (where its absence is a failure, see {@linkcode requireChromium}), and
 * without the resource and op sanitizers (playwright keeps processes and timers
 * of its own).
 */
export const BROWSER_TEST = {
  ignore: !haveChromium && Deno.env.get("CI") !== "true",
  sanitizeResources: false,
  sanitizeOps: false,
} as const;

/** Throws unless Chromium is installed, naming where it was looked for. */
export function requireChromium(): void {
  if (!haveChromium) throw new Error(`This test needs Debian's chromium at ${CHROMIUM}`);
}

/** Launches headless Chromium with nothing of its own running in the background. */
export async function launchChromium(): Promise<Browser> {
  return await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** Where the screens checked are saved: `RELAYMAIL_SCREENSHOTS` (default: nowhere). */
const SCREENSHOTS = Deno.env.get("RELAYMAIL_SCREENSHOTS");

/** Saves `page` as `<name>.png` in `RELAYMAIL_SCREENSHOTS`, if that is set. */
export async function saveScreen(page: Page, name: string): Promise<void> {
  if (SCREENSHOTS) await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`) });
}

/** Options for {@linkcode screenshotSteps}. */
export interface ScreenshotStepsOptions {
  /** Where the screenshots of a failing step go, kept after the test. */
  dir: string;
  /** The pages to save, by file name (without `.png`). */
  pages: Record<string, Page>;
  /** What else to print when a step fails (default: nothing). */
  output?: () => string;
}

/**
 * A `step(name, fn)` for `t`: it runs `fn` as a test step and, when the step
 * fails, saves a full-page screenshot of each page, prints where, and stops the
 * test.
 */
export function screenshotSteps(
  t: Deno.TestContext,
  options: ScreenshotStepsOptions,
): (name: string, fn: () => Promise<void>) => Promise<void> {
  return async (name, fn) => {
    const ok = await t.step(name, async () => {
      try {
        await fn();
      } catch (error) {
        await Deno.mkdir(options.dir, { recursive: true });
        const paths = [];
        for (const [file, page] of Object.entries(options.pages)) {
          const path = join(options.dir, `${file}.png`);
          await page.screenshot({ path, fullPage: true }).catch(() => {});
          paths.push(path);
        }
        console.error(`Screenshots of the failure: ${paths.join(", ")}`);
        if (options.output) console.error(options.output());
        throw error;
      }
    });
    if (!ok) throw new Error(`Step failed: ${name}`);
  };
}
