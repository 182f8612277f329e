// Prints what the machine's WebGPU adapter offers the kernel selection: the adapter's class
// inputs (vendor, architecture, description, fallback), the features kernels use (shader-f16,
// subgroups, chromium-experimental-subgroup-matrix, timestamp-query), subgroup sizes, subgroup
// matrix configurations and the limits the selection reads. One JSON object on stdout, for Dawn
// without toggles and with allow_unsafe_apis (experimental features appear only there).
//
//   node tools/gpu-bench/capabilities.mjs      (a built checkout: webgpu from packages/tensors)
//   bin/node capabilities.mjs                  (inside the bundle: its node_modules/webgpu)
import { createRequire } from 'node:module';
// Built by `pnpm build` in a checkout; bundle.mjs bundles it into the archive's copy.
import { WEBGPU_DEFAULT_LIMITS } from '../../packages/tensors/dist/index.js';

/** npm `webgpu` beside this file (the bundle), else the one @webtune/tensors depends on. */
function loadWebgpu() {
  try {
    return createRequire(import.meta.url)('webgpu');
  } catch {
    return createRequire(new URL('../../packages/tensors/package.json', import.meta.url))('webgpu');
  }
}
const { create, globals } = loadWebgpu();
Object.assign(globalThis, globals);
process.env.XDG_RUNTIME_DIR ??= '/tmp';

const FEATURES = ['shader-f16', 'subgroups', 'chromium-experimental-subgroup-matrix', 'timestamp-query'];
// WebGPU's default limits (what a device holds when it asks for none, as many browsers give):
// webtune's kernels fit them on every adapter class (createDevice({ limits: 'default' }) tests it).
const DEFAULT_LIMITS = WEBGPU_DEFAULT_LIMITS;
const LIMITS = Object.keys(DEFAULT_LIMITS);

/**
 * The adapter's limits against WebGPU's defaults: those it offers above them, those below (a
 * conformant adapter has none), and whether webtune runs on a device holding only the defaults.
 */
function againstDefaults(limits) {
  const better = (name, value) =>
    name.startsWith('min') ? value < DEFAULT_LIMITS[name] : value > DEFAULT_LIMITS[name];
  const worse = (name, value) =>
    name.startsWith('min') ? value > DEFAULT_LIMITS[name] : value < DEFAULT_LIMITS[name];
  const below = LIMITS.filter((name) => typeof limits[name] === 'number' && worse(name, limits[name]));
  return {
    aboveDefaults: LIMITS.filter((name) => typeof limits[name] === 'number' && better(name, limits[name])),
    belowDefaults: below,
    // webtune's kernels select variants that fit the defaults (docs/architecture/kernel-selection.md).
    runsUnderDefaults: below.length === 0,
  };
}
const report = {};
for (const [name, options] of [
  ['default', []],
  ['allow_unsafe_apis', ['enable-dawn-features=allow_unsafe_apis']],
]) {
  const adapter = await create(options).requestAdapter();
  if (!adapter) {
    report[name] = { error: 'no adapter' };
    continue;
  }
  const info = adapter.info;
  report[name] = {
    adapter: {
      vendor: info.vendor,
      architecture: info.architecture,
      device: info.device,
      description: info.description,
      isFallbackAdapter: Boolean(info.isFallbackAdapter),
      subgroupMinSize: info.subgroupMinSize ?? null,
      subgroupMaxSize: info.subgroupMaxSize ?? null,
      subgroupMatrixConfigs: info.subgroupMatrixConfigs ?? null,
    },
    features: Object.fromEntries(FEATURES.map((feature) => [feature, adapter.features.has(feature)])),
    limits: Object.fromEntries(LIMITS.map((limit) => [limit, adapter.limits[limit]])),
  };
  report[name].defaultLimits = againstDefaults(report[name].limits);
}
console.log(JSON.stringify(report, null, 2));
process.exit(0);
