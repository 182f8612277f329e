import { describe, expect, it } from 'vitest';
import { createDevice } from './create-device.js';
import { NoAdapterError } from './errors.js';

describe('createDevice without an adapter', () => {
  it('says why and how to fix it', async () => {
    const gpu = { requestAdapter: async () => null } as unknown as GPU;
    const error = await createDevice({ gpu }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NoAdapterError);
    expect((error as Error).message).toMatch(/no WebGPU adapter was found/);
    expect((error as Error).message).toMatch(/Vulkan driver/);
    expect((error as Error).message).toMatch(/mesa-vulkan-drivers/);
  });
});
