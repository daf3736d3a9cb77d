/**
 * Every fuzz target, for tests/fuzz/run.ts. Each module's `targets` is also what its
 * `*_test.ts` runs in CI.
 *
 * @module
 */
import type { Target } from "../_harness.ts";

/** Target modules, loaded on demand (some load relaynet-core and make RSA keys). */
export const TARGET_MODULES: Record<string, () => Promise<{ targets: Target[] }>> = {
  mesh_frames: () => import("./mesh_frames.ts"),
  riblt: () => import("./riblt.ts"),
  parcel: () => import("./parcel.ts"),
  invitation: () => import("./invitation.ts"),
  service_message: () => import("./service_message.ts"),
  poweb: () => import("./poweb.ts"),
};

/** Every target, module by module, and the modules that failed to load. */
export async function allTargets(): Promise<
  { targets: Target[]; broken: Record<string, unknown> }
> {
  const targets: Target[] = [];
  const broken: Record<string, unknown> = {};
  for (const [name, load] of Object.entries(TARGET_MODULES)) {
    try {
      targets.push(...(await load()).targets);
    } catch (error) {
      broken[name] = error;
    }
  }
  return { targets, broken };
}
