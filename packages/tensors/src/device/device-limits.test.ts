import { afterAll, describe, expect, it } from 'vitest';
import { createDevice } from './create-device.js';
import type { Device } from './device.js';
import { LIMIT_NAMES, requestedLimits, WEBGPU_DEFAULT_LIMITS } from './device-limits.js';
import { DeviceLimitsError } from './errors.js';

const ADAPTER = {
  maxStorageBuffersPerShaderStage: 16,
  maxComputeWorkgroupStorageSize: 65_536,
  maxComputeInvocationsPerWorkgroup: 1024,
  maxStorageBufferBindingSize: 2 ** 31,
  minStorageBufferOffsetAlignment: 32,
};

describe('requestedLimits', () => {
  it("'adapter' asks for every limit the adapter reports, 'default' for none", () => {
    expect(requestedLimits(ADAPTER, 'adapter')).toEqual(ADAPTER);
    expect(requestedLimits(ADAPTER, 'default')).toEqual({});
  });

  it('caps the named limits at their values, never above the adapter, and takes the adapter for the rest', () => {
    const asked = requestedLimits(ADAPTER, {
      maxStorageBuffersPerShaderStage: 10,
      maxComputeInvocationsPerWorkgroup: 4096,
      minStorageBufferOffsetAlignment: 256,
    });
    expect(asked).toEqual({
      ...ADAPTER,
      maxStorageBuffersPerShaderStage: 10,
      maxComputeInvocationsPerWorkgroup: 1024,
      // An alignment is better when smaller: the cap asks for no finer than 256.
      minStorageBufferOffsetAlignment: 256,
    });
  });

  it('refuses, by name, an unknown limit, a value that is not a positive integer, one below the defaults, a bad request', () => {
    const refused = (request: unknown) => {
      try {
        requestedLimits(ADAPTER, request as never);
      } catch (error) {
        expect(error).toBeInstanceOf(DeviceLimitsError);
        return (error as Error).message;
      }
      throw new Error(`${JSON.stringify(request)} was accepted`);
    };
    expect(refused({ maxStorageBuffers: 8 })).toMatch(/limits\.maxStorageBuffers is not a limit/);
    expect(refused({ maxStorageBuffersPerShaderStage: 8.5 })).toMatch(
      /maxStorageBuffersPerShaderStage must be a positive integer, got 8.5/,
    );
    expect(refused({ maxComputeWorkgroupStorageSize: -1 })).toMatch(/positive integer/);
    expect(refused({ maxStorageBuffersPerShaderStage: 4 })).toMatch(
      /= 4 is lower than WebGPU's default \(8\)/,
    );
    expect(refused({ minStorageBufferOffsetAlignment: 512 })).toMatch(
      /coarser than WebGPU's default \(256\)/,
    );
    expect(refused({ minStorageBufferOffsetAlignment: 96 })).toMatch(/power of two/);
    expect(refused('maximum')).toMatch(/limits must be 'adapter', 'default' or an object/);
  });

  it('knows the default of every limit it asks for', () => {
    for (const name of LIMIT_NAMES) expect(WEBGPU_DEFAULT_LIMITS[name]).toBeGreaterThan(0);
  });
});

describe('createDevice({ limits })', () => {
  const made: Device[] = [];
  afterAll(() => {
    for (const device of made) device.destroy();
  });

  it("'default' gives a device with WebGPU's default limits, and says so in info.limits", async () => {
    const device = await createDevice({ limits: 'default' });
    made.push(device);
    for (const name of LIMIT_NAMES) expect(device.info.limits[name], name).toBe(WEBGPU_DEFAULT_LIMITS[name]);
    expect(device.gpu.limits.maxStorageBuffersPerShaderStage).toBe(8);
  });

  it('caps a limit and keeps the adapter elsewhere; the binding cap still applies', async () => {
    const full = await createDevice();
    const capped = await createDevice({
      limits: { maxStorageBuffersPerShaderStage: 8 },
      maxBindingBytes: 1 << 20,
    });
    made.push(full, capped);
    expect(capped.info.limits.maxStorageBuffersPerShaderStage).toBe(8);
    expect(capped.info.limits.maxComputeWorkgroupStorageSize).toBe(
      full.info.limits.maxComputeWorkgroupStorageSize,
    );
    expect(capped.maxBindingBytes).toBe(1 << 20);
  });

  it('refuses a bad request before asking for an adapter', async () => {
    const gpu = {
      requestAdapter: async () => {
        throw new Error('asked');
      },
    } as unknown as GPU;
    await expect(createDevice({ gpu, limits: { maxStorageBuffersPerShaderStage: 2 } })).rejects.toThrow(
      DeviceLimitsError,
    );
  });
});
