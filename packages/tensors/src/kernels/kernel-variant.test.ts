import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../device/create-device.js';
import type { Device } from '../device/device.js';
import { attention } from './attention/attention.js';
import { countKernelVariants, kernelVariant } from './kernel-variant.js';
import { matmul } from './matmul/matmul.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice({ tuning: { matmulKernel: 'workgroup' } });
});
afterAll(() => device.destroy());

describe('kernelVariant', () => {
  it('names matmul and attention pipelines from their keys, and nothing else', () => {
    expect(kernelVariant('matmul:tiled:workgroup:f16:v4:sr:bias')).toBe('matmul workgroup-tiled');
    expect(kernelVariant('matmul:tiled:subgroup:8x8:f32:v4:v4:nobias')).toBe('matmul subgroup-tiled');
    expect(kernelVariant('matmul:sgmatrix:f16x16x16x16f32:l32:f2x2x1:f16:v4:sk:bias')).toBe(
      'matmul subgroup-matrix',
    );
    expect(kernelVariant('matmul:small:nk:1x8x4:sg:k4:n4:nobias')).toBe('matmul small-rows');
    expect(kernelVariant('matmul:sg:24x4:8x1:nobias:store4:f32')).toBe('matmul register');
    expect(kernelVariant('attention:f32:64:8:32:shared')).toBe('attention subgroup-shared');
    expect(kernelVariant('attention:key-lanes:f32:8:8:2:1')).toBe('attention key-lanes');
    expect(kernelVariant('attention:prompt:8:8:8:4')).toBe('attention prompt-chunked');
    expect(kernelVariant('attention:tiled:f16:128:workgroup')).toBe('attention workgroup-tiled');
    expect(kernelVariant('attention-backward:tiled:dkv:f16:128')).toBe('attention-backward workgroup-tiled');
    expect(kernelVariant('attention-backward:dq:f32:4:16:true:null:padding:8:lanes')).toBe(
      'attention-backward lanes',
    );
    expect(kernelVariant('packed-matmul-input-grad:q4_0:64')).toBe('packed-matmul-input-grad q4_0');
    expect(kernelVariant('decode:matvec:1:f32:norm:none:nobias:4x8:sg')).toBe('decode matvec subgroup');
    expect(kernelVariant('decode:attention:64:qknorm')).toBe('decode attention');
    expect(kernelVariant('rms-norm:f32:64')).toBeNull();
  });

  it('counts the variants a device dispatches until stopped', async () => {
    const plain = device.dispatch;
    const stop = countKernelVariants(device);
    expect(device.dispatch).not.toBe(plain);
    await device.scope(async () => {
      const a = device.fromArray(new Float32Array(40 * 12).fill(0.5), [40, 12], 'f32');
      const b = device.fromArray(new Float32Array(12 * 8).fill(1), [12, 8], 'f32');
      const out = matmul(a, b);
      matmul(device.fromArray([1, 2], [1, 2], 'f32'), device.fromArray([1, 2, 3, 4], [2, 2], 'f32'));
      const q = device.fromArray(new Float32Array(3 * 4), [1, 3, 1, 4], 'f32');
      attention(q, q, q);
      expect((await out.toArray())[0]).toBeCloseTo(6, 5);
    });
    const counts = stop();
    expect(counts['matmul workgroup-tiled']).toBe(1);
    expect(counts['matmul small-rows']).toBe(1);
    expect(Object.keys(counts).some((name) => name.startsWith('attention '))).toBe(true);
    // Stopped: the device dispatches as before.
    expect(device.dispatch).toBe(plain);
  });
});
