import { type AdapterClass, classifyAdapter, type Tuning, tuningFor } from './adapter-class.js';
import { type DawnPolling, installDawnPolling } from './dawn-polling.js';
import { withDefaultDawnToggles } from './dawn-toggles.js';
import { type Device, type DeviceInfo, WebGpuDevice } from './device.js';
import { LIMIT_NAMES, type LimitsRequest, requestedLimits } from './device-limits.js';
import { NoAdapterError, noAdapterAdvice } from './errors.js';

export interface CreateDeviceOptions {
  /** A GPU object to use (navigator.gpu or webgpu's create()); found automatically when omitted. */
  gpu?: GPU;
  powerPreference?: GPUPowerPreference;
  /** Ask for the fallback (software) adapter. */
  forceFallbackAdapter?: boolean;
  /** Override the adapter class used to pick kernel tile sizes. */
  adapterClass?: AdapterClass;
  /** Override individual tuning parameters. */
  tuning?: Partial<Tuning>;
  /**
   * Cap on bytes per storage binding, below the adapter's own limit: simulates a browser's
   * 128 MiB limit on a machine that offers more, so chunked-tensor paths can be tested.
   */
  maxBindingBytes?: number;
  /**
   * Dawn toggles for Node, e.g. ['enable-dawn-features=allow_unsafe_apis']. webtune adds its own
   * (dawn-toggles.ts: no zero-fill of Dawn's mapped staging buffers) unless these disable them.
   */
  dawnOptions?: string[];
  /**
   * How Dawn's Node bindings poll while waiting for the GPU (device/dawn-polling.ts): 'sleep'
   * (default) sleeps between polls, polling densely near the end the same read-back had before;
   * 'sleep-blind' sleeps by the wait's age alone; 'spin' keeps Dawn's busy loop, which holds a CPU
   * core for the whole wait. The environment variable WEBTUNE_DAWN_POLLING overrides it.
   */
  dawnPolling?: DawnPolling;
  /**
   * Which limits the device asks for (device/device-limits.ts): 'adapter' (default) asks for every
   * limit the adapter offers; 'default' asks for none, so the device holds WebGPU's default limits
   * (what many browsers and adapters give: 8 storage buffers per stage, 16 KiB of workgroup
   * storage, 256 invocations per workgroup); an object caps the limits it names at its values
   * (never above the adapter's) and asks for the adapter's maxima for the rest. Kernels then pick
   * the variants that fit (docs/architecture/kernel-selection.md). `device.info.limits` says what
   * the device got.
   */
  limits?: LimitsRequest;
}

// chromium-experimental-subgroup-matrix: Dawn lists it only with allow_unsafe_apis (an
// experimental feature) on adapters with cooperative matrices; its kernel is self-checked below.
const WANTED_FEATURES: GPUFeatureName[] = [
  'shader-f16',
  'subgroups',
  'timestamp-query',
  'chromium-experimental-subgroup-matrix',
] as GPUFeatureName[];

// Dawn crashes the process if the object returned by create() is garbage-collected while a
// device made from it is alive: keep every one for the life of the process.
const nodeGpus: GPU[] = [];

async function findGpu(options: CreateDeviceOptions): Promise<{ gpu: GPU; backend: DeviceInfo['backend'] }> {
  if (options.gpu) return { gpu: options.gpu, backend: isNode() ? 'dawn-node' : 'browser' };
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (!isNode()) {
    if (!nav?.gpu) throw new NoAdapterError(`WebGPU is not available. ${noAdapterAdvice('browser')}`);
    return { gpu: nav.gpu, backend: 'browser' };
  }
  let module: { create: (options: string[]) => GPU };
  try {
    const name = 'webgpu';
    module = (await import(/* @vite-ignore */ name)) as typeof module;
  } catch (error) {
    throw new NoAdapterError(
      `could not load the npm package "webgpu" (Dawn for Node.js): ${(error as Error).message}. Install it with \`pnpm add webgpu\`.`,
    );
  }
  const gpu = module.create(withDefaultDawnToggles(options.dawnOptions));
  nodeGpus.push(gpu);
  return { gpu, backend: 'dawn-node' };
}

function isNode(): boolean {
  return typeof process !== 'undefined' && !!process.versions?.node && typeof window === 'undefined';
}

/**
 * Gets a WebGPU device in Node.js (Dawn, npm `webgpu`) or in a browser (`navigator.gpu`), asks
 * for every limit the adapter offers unless `limits` says otherwise (without them the device gets
 * WebGPU's default limits) and the
 * features kernels can use, and picks kernel tile sizes for the adapter's class.
 */
export async function createDevice(options: CreateDeviceOptions = {}): Promise<Device> {
  // A bad limits request is refused before any adapter is asked for.
  requestedLimits(undefined, options.limits ?? 'adapter');
  if (isNode()) process.env.XDG_RUNTIME_DIR ??= '/tmp';
  const { gpu, backend } = await findGpu(options);
  if (backend === 'dawn-node') installDawnPolling(options.dawnPolling ?? 'sleep');
  const adapter = await gpu.requestAdapter({
    powerPreference: options.powerPreference,
    forceFallbackAdapter: options.forceFallbackAdapter,
  });
  if (!adapter) {
    const platform = backend === 'browser' ? 'browser' : process.platform;
    throw new NoAdapterError(`no WebGPU adapter was found. ${noAdapterAdvice(platform)}`);
  }
  const requiredFeatures = WANTED_FEATURES.filter((f) => adapter.features.has(f));
  const requiredLimits = requestedLimits(adapter.limits, options.limits ?? 'adapter');
  const gpuDevice = await adapter.requestDevice({ requiredFeatures, requiredLimits, label: 'webtune' });
  const adapterInfo = adapter.info ?? ({} as GPUAdapterInfo);
  const description = {
    vendor: adapterInfo.vendor ?? '',
    architecture: adapterInfo.architecture ?? '',
    device: adapterInfo.device ?? '',
    description: adapterInfo.description ?? '',
    isFallbackAdapter: Boolean((adapterInfo as { isFallbackAdapter?: boolean }).isFallbackAdapter),
  };
  const adapterClass = options.adapterClass ?? classifyAdapter(description);
  const limits: Record<string, number> = {};
  for (const key of LIMIT_NAMES) {
    const value = (gpuDevice.limits as unknown as Record<string, number | undefined>)[key];
    if (typeof value === 'number') limits[key] = value;
  }
  const info: DeviceInfo = {
    backend,
    vendor: description.vendor,
    architecture: description.architecture,
    device: description.device,
    description: description.description,
    adapterClass,
    features: [...gpuDevice.features].sort(),
    limits,
  };
  const device = new WebGpuDevice(gpuDevice, info, tuningFor(adapterClass, options.tuning), {
    maxBindingBytes: options.maxBindingBytes,
  });
  if (gpuDevice.features.has('chromium-experimental-subgroup-matrix')) {
    // The subgroup-matrix kernel has run on no adapter where webtune is developed: it is selected
    // only after it reproduces float64 products on this device (kernels/matmul-tiled/).
    const { verifySubgroupMatrix } = await import('../kernels/matmul-tiled/subgroup-matrix-check.js');
    await verifySubgroupMatrix(device);
  }
  return device;
}
