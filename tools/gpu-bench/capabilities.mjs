// Prints what the machine's WebGPU adapter offers the kernel selection: the adapter's class
// inputs (vendor, architecture, description, fallback), the features kernels use (shader-f16,
// subgroups, chromium-experimental-subgroup-matrix, timestamp-query), subgroup sizes, subgroup
// matrix configurations and the limits the selection reads. One JSON object on stdout, for Dawn
// without toggles and with allow_unsafe_apis (experimental features appear only there).
//
//   node tools/gpu-bench/capabilities.mjs      (a checkout: webgpu from packages/tensors)
//   bin/node capabilities.mjs                  (inside the bundle: its node_modules/webgpu)
import { createRequire } from 'node:module';

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
const LIMITS = [
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxStorageBufferBindingSize',
];
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
}
console.log(JSON.stringify(report, null, 2));
process.exit(0);
