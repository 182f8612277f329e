import { DeviceLimitsError } from './errors.js';

/** The WebGPU limits webtune reads, asks for and reports in `device.info.limits`. */
export const LIMIT_NAMES = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxUniformBufferBindingSize',
  'maxStorageBuffersPerShaderStage',
  'maxUniformBuffersPerShaderStage',
  'maxBindingsPerBindGroup',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
  'minStorageBufferOffsetAlignment',
  'minUniformBufferOffsetAlignment',
] as const;

export type LimitName = (typeof LIMIT_NAMES)[number];

/**
 * WebGPU's default limits (the spec's "supported limits" defaults): what a device holds when it
 * asks for none, and what many browsers and adapters offer.
 */
export const WEBGPU_DEFAULT_LIMITS: Readonly<Record<LimitName, number>> = {
  maxBufferSize: 268_435_456,
  maxStorageBufferBindingSize: 134_217_728,
  maxUniformBufferBindingSize: 65_536,
  maxStorageBuffersPerShaderStage: 8,
  maxUniformBuffersPerShaderStage: 12,
  maxBindingsPerBindGroup: 1000,
  maxComputeWorkgroupStorageSize: 16_384,
  maxComputeInvocationsPerWorkgroup: 256,
  maxComputeWorkgroupSizeX: 256,
  maxComputeWorkgroupSizeY: 256,
  maxComputeWorkgroupSizeZ: 64,
  maxComputeWorkgroupsPerDimension: 65_535,
  minStorageBufferOffsetAlignment: 256,
  minUniformBufferOffsetAlignment: 256,
};

/**
 * Which limits `createDevice` asks for: 'adapter' every limit the adapter offers; 'default' none
 * (the device holds WebGPU's defaults); an object caps the limits it names at its values (never
 * above the adapter's, never below WebGPU's defaults) and asks for the adapter's for the rest.
 */
export type LimitsRequest = 'adapter' | 'default' | Partial<Record<LimitName, number>>;

const isAlignment = (name: LimitName): boolean => name.startsWith('min');

/**
 * The `requiredLimits` to hand `requestDevice` for a request. Throws DeviceLimitsError, naming
 * the limit and the value, for an unknown name or a value no device could hold. With no adapter
 * limits it only checks the request.
 */
export function requestedLimits(
  adapterLimits: GPUSupportedLimits | Record<string, number | undefined> | undefined,
  request: LimitsRequest,
): Record<string, number> {
  if (request !== 'adapter' && request !== 'default' && (typeof request !== 'object' || request === null)) {
    throw new DeviceLimitsError(
      `createDevice: limits must be 'adapter', 'default' or an object of limit caps, got ${JSON.stringify(request)}`,
    );
  }
  const caps = typeof request === 'object' ? checkedCaps(request) : undefined;
  const required: Record<string, number> = {};
  if (!adapterLimits || request === 'default') return required;
  const offered = adapterLimits as unknown as Record<string, number | undefined>;
  for (const name of LIMIT_NAMES) {
    const value = offered[name];
    if (typeof value !== 'number') continue;
    const cap = caps?.[name];
    if (cap === undefined) required[name] = value;
    // An alignment is better when smaller: a cap asks for no finer alignment than it names.
    else required[name] = isAlignment(name) ? Math.max(cap, value) : Math.min(cap, value);
  }
  return required;
}

function checkedCaps(request: Partial<Record<string, number>>): Partial<Record<LimitName, number>> {
  for (const [name, value] of Object.entries(request)) {
    if (!(LIMIT_NAMES as readonly string[]).includes(name)) {
      throw new DeviceLimitsError(
        `createDevice: limits.${name} is not a limit webtune asks for; known limits: ${LIMIT_NAMES.join(', ')}`,
      );
    }
    const limit = name as LimitName;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
      throw new DeviceLimitsError(
        `createDevice: limits.${name} must be a positive integer, got ${String(value)}`,
      );
    }
    const defaultValue = WEBGPU_DEFAULT_LIMITS[limit];
    if (isAlignment(limit) ? value > defaultValue : value < defaultValue) {
      throw new DeviceLimitsError(
        `createDevice: limits.${name} = ${value} is ${isAlignment(limit) ? 'coarser' : 'lower'} than WebGPU's default ` +
          `(${defaultValue}), which every device holds; use 'default' for the defaults`,
      );
    }
    if (isAlignment(limit) && (value & (value - 1)) !== 0) {
      throw new DeviceLimitsError(`createDevice: limits.${name} must be a power of two, got ${value}`);
    }
  }
  return request as Partial<Record<LimitName, number>>;
}
