import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { binary } from '../kernels/binary/binary.js';
import { matmul } from '../kernels/matmul/matmul.js';
import { KERNELS } from '../kernels/names.js';
import { createDevice } from './create-device.js';
import type { Device } from './device.js';
import { TensorError } from './errors.js';
import { formatKernelProfile } from './kernel-profiler.js';

let device: Device;
beforeAll(async () => {
  // Few dispatches per submit, so the profile spans several submits (one query set each).
  device = await createDevice({ tuning: { maxDispatchesPerSubmit: 3 } });
});
afterAll(() => device?.destroy());

describe('kernel profile', () => {
  it('counts and times every dispatch per kernel, and the results stay right', async () => {
    const a = device.fromArray([1, 2, 3, 4, 5, 6], [2, 3], 'f32');
    const b = device.fromArray([1, 0, 0, 1, 1, 1], [3, 2], 'f32');
    await device.sync();
    device.startProfile();
    const sums = [];
    for (let i = 0; i < 4; i++) sums.push(binary('add', a, a));
    const product = matmul(a, b);
    const profile = await device.stopProfile();
    expect(Array.from(await sums[3].toArray())).toEqual([2, 4, 6, 8, 10, 12]);
    expect(Array.from(await product.toArray())).toEqual([4, 5, 10, 11]);

    const byName = new Map(profile.kernels.map((k) => [k.name, k]));
    expect(byName.get(KERNELS.binary)?.dispatches).toBe(4);
    expect(byName.get(KERNELS.matmul)?.dispatches).toBeGreaterThanOrEqual(1);
    const counted = profile.kernels.reduce((total, k) => total + k.dispatches, 0);
    expect(counted).toBe(profile.dispatches);
    expect(profile.keys.reduce((total, k) => total + k.dispatches, 0)).toBe(profile.dispatches);
    expect(profile.submits).toBeGreaterThanOrEqual(2);
    expect(profile.readbacks).toBe(0);
    if (device.info.features.includes('timestamp-query')) {
      expect(profile.timed).toBe(true);
      for (const kernel of profile.kernels) expect(kernel.totalMs).toBeGreaterThanOrEqual(0);
      const summed = profile.kernels.reduce((total, k) => total + k.totalMs, 0);
      expect(summed).toBeCloseTo(profile.gpuMs, 6);
      expect(profile.gpuMs).toBeGreaterThan(0);
      // GPU time is measured inside the wall-clock span of the profile.
      expect(profile.gpuMs).toBeLessThanOrEqual(profile.wallMs);
      // One span per dispatch, in submit order: each ends after it begins, after the previous ends
      // (one queue), and the spans' durations sum to the GPU time.
      expect(profile.spans.map((span) => span.key.split(':')[0]).slice(0, 4)).toEqual(
        Array(4).fill(KERNELS.binary),
      );
      expect(profile.spans).toHaveLength(profile.dispatches);
      profile.spans.forEach((span, i) => {
        expect(span.end).toBeGreaterThanOrEqual(span.begin);
        if (i > 0) expect(span.begin).toBeGreaterThanOrEqual(profile.spans[i - 1].end);
      });
      const spanned = profile.spans.reduce((total, span) => total + (span.end - span.begin), 0);
      expect(spanned).toBeCloseTo(profile.gpuMs, 3);
    } else {
      expect(profile.timed).toBe(false);
      expect(Number.isNaN(profile.gpuMs)).toBe(true);
      expect(profile.spans).toEqual([]);
    }
    const table = formatKernelProfile(profile);
    expect(table).toContain(KERNELS.binary);
    expect(table).toContain(`${profile.dispatches} dispatches`);
    for (const t of [a, b, product, ...sums]) t.dispose();
  });

  it('records nothing once stopped, and refuses a stop without a start or a second start', async () => {
    device.startProfile();
    expect(() => device.startProfile()).toThrow(TensorError);
    await device.stopProfile();
    await expect(device.stopProfile()).rejects.toThrow(/no profile is running/);
    const a = device.fromArray([1, 2], [2], 'f32');
    const sum = binary('add', a, a);
    expect(Array.from(await sum.toArray())).toEqual([2, 4]);
    a.dispose();
    sum.dispose();
  });
});
