import { f16Usable } from '@webtune/test-utils';
import { beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../../device/create-device.js';
import type { Device } from '../../device/device.js';
import type { DType } from '../../tensor/dtype.js';
import { fillRange, full } from './fill.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});

describe('fill', () => {
  it('writes constants and ranges in every dtype, vectorised or not', async () => {
    for (const dtype of ['f32', 'f16', 'i32', 'u32'] as DType[]) {
      if (dtype === 'f16' && !f16Usable(device.hasF16)) continue;
      for (const n of [1, 7, 1000, 1001]) {
        expect(Array.from(await full(device, [n], 3, dtype).toArray())).toEqual(new Array(n).fill(3));
        const start = dtype === 'u32' ? 5 : -5;
        const range = await fillRange(device.empty([n], dtype), start, 2).toArray();
        const expected = Array.from({ length: n }, (_, i) => start + 2 * i);
        // f16 holds integers exactly up to 2048.
        expect(Array.from(range), `${dtype} n=${n}`).toEqual(expected);
      }
    }
  });

  it('continues the range across chunks', async () => {
    const small = await createDevice({ maxBindingBytes: 4096 });
    const t = fillRange(small.empty([100, 36], 'f32'), 1, 0.5);
    expect(t.chunked).toBe(true);
    expect(Array.from(await t.toArray())).toEqual(Array.from({ length: 3600 }, (_, i) => 1 + 0.5 * i));
    small.destroy();
  });

  it('spreads more than 65,535 workgroups over two grid dimensions', async () => {
    const n = 65_535 * device.tuning.elementwiseWorkgroup * device.tuning.elementwisePerInvocation + 3;
    const result = await fillRange(device.empty([n], 'i32'), 0, 1).toArray();
    for (const i of [0, 1, n - 1, n - 3, n - 4, 4_000_001]) expect(result[i]).toBe(i);
  });
});
