// What Chromium's WebGPU adapter offers the kernel selection (SwiftShader where there is no GPU):
// the same fields as capabilities.mjs, read through navigator.gpu in a blank page, for Chromium's
// default flags and with --enable-dawn-features=allow_unsafe_apis. One JSON object on stdout.
//
//   node tools/gpu-bench/browser-capabilities.mjs   (needs /usr/bin/chromium or WEBTUNE_CHROMIUM,
//                                                    and apps/web's playwright-core)
import { createServer } from 'node:http';
import { createRequire } from 'node:module';

const { chromium } = createRequire(new URL('../../apps/web/package.json', import.meta.url))(
  'playwright-core',
);
const executablePath = process.env.WEBTUNE_CHROMIUM ?? '/usr/bin/chromium';
const BASE_FLAGS = ['--no-sandbox', '--enable-unsafe-webgpu', '--disable-gpu-sandbox', '--no-first-run'];
const FEATURES = ['shader-f16', 'subgroups', 'chromium-experimental-subgroup-matrix', 'timestamp-query'];
// The limits webtune reads (packages/tensors/src/device/device-limits.ts); WebGPU's defaults in
// brackets: storage buffers per stage (8), workgroup storage (16,384), invocations (256).
const LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupsPerDimension',
];

// navigator.gpu exists only in a secure context: a blank page served from localhost is one.
const server = createServer((_request, response) => response.end('<!doctype html><title>caps</title>'));
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const url = `http://127.0.0.1:${server.address().port}/`;

const report = {};
for (const [name, flags] of [
  ['default', []],
  ['allow_unsafe_apis', ['--enable-dawn-features=allow_unsafe_apis', '--enable-webgpu-developer-features']],
]) {
  const browser = await chromium.launch({ executablePath, headless: true, args: [...BASE_FLAGS, ...flags] });
  try {
    const page = await browser.newPage();
    await page.goto(url);
    report[name] = await page.evaluate(
      async ([features, limits]) => {
        if (!navigator.gpu) return { error: 'no navigator.gpu' };
        const adapter = await navigator.gpu.requestAdapter();
        if (!adapter) return { error: 'no adapter' };
        const info = adapter.info;
        return {
          adapter: {
            vendor: info.vendor,
            architecture: info.architecture,
            description: info.description,
            isFallbackAdapter: Boolean(info.isFallbackAdapter),
            subgroupMinSize: info.subgroupMinSize ?? null,
            subgroupMaxSize: info.subgroupMaxSize ?? null,
            subgroupMatrixConfigs: info.subgroupMatrixConfigs ?? null,
          },
          features: Object.fromEntries(features.map((feature) => [feature, adapter.features.has(feature)])),
          allFeatures: [...adapter.features].sort(),
          limits: Object.fromEntries(limits.map((limit) => [limit, adapter.limits[limit]])),
        };
      },
      [FEATURES, LIMITS],
    );
  } finally {
    await browser.close();
  }
}
server.close();
console.log(JSON.stringify(report, null, 2));
