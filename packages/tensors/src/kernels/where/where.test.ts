import { f16Usable, Rng } from '@webtune/test-utils';
import { beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../../device/create-device.js';
import type { Device } from '../../device/device.js';
import type { DType } from '../../tensor/dtype.js';
import { roundToF16 } from '../../tensor/dtype.js';
import { whereReference } from './reference.js';
import { where } from './where.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});

const size = (shape: number[]) => shape.reduce((p, d) => p * d, 1);

/** Condition values with zeros, negative zero, NaN and nonzeros (per dtype). */
function conditionValues(n: number, dtype: DType, seed: number): number[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, (_, i) => {
    const pick = Math.floor(rng.next() * 4);
    if (dtype === 'u32') return pick < 2 ? 0 : 1 + Math.floor(rng.next() * 1e9);
    if (dtype === 'i32') return pick < 2 ? 0 : pick === 2 ? -7 : 123456;
    return [0, i % 2 ? -0 : 0, Number.NaN, rng.next() - 0.5][pick];
  });
}

const CASES: [number[], number[], number[]][] = [
  [[1], [1], [1]],
  [[7], [7], [7]],
  [
    [33, 5],
    [33, 5],
    [33, 5],
  ],
  [[1000], [1000], [1000]],
  [[4, 1, 33], [1, 7, 1], [33]],
  [
    [7, 1],
    [1, 6],
    [7, 6],
  ],
  [[2, 3, 4, 5, 6], [3, 1, 5, 1], [6]],
];

describe('where', () => {
  for (const [conditionShape, aShape, bShape] of CASES) {
    it(`selects with broadcasting ${JSON.stringify([conditionShape, aShape, bShape])}`, async () => {
      for (const conditionType of ['f32', 'u32', 'i32', 'f16'] as DType[]) {
        if (conditionType === 'f16' && !f16Usable(device.hasF16)) continue;
        const seed = size(conditionShape) + size(aShape);
        const c = conditionValues(size(conditionShape), conditionType, seed);
        const a = new Rng(seed + 1).uniform(size(aShape), -5, 5);
        const b = new Rng(seed + 2).uniform(size(bShape), -5, 5);
        await device.scope(async () => {
          const out = where(
            device.fromArray(c, conditionShape, conditionType),
            device.fromArray(a, aShape, 'f32'),
            device.fromArray(b, bShape, 'f32'),
          );
          const expected = whereReference(
            { data: c, shape: conditionShape },
            { data: a, shape: aShape },
            {
              data: b,
              shape: bShape,
            },
          );
          expect(out.shape).toEqual(expected.shape);
          expect(Array.from(await out.toArray()), conditionType).toEqual(
            Array.from(expected.data, Math.fround),
          );
        });
      }
    });
  }

  it('takes a number for a or b, and integer and f16 values', async () => {
    const c = conditionValues(1001, 'u32', 5);
    const a = new Rng(6).integers(1001, -100, 100);
    const condition = device.fromArray(c, [1001], 'u32');
    const ints = device.fromArray(a, [1001], 'i32');
    const expected = (x: number | Int32Array, y: number | Int32Array) =>
      Array.from(
        whereReference(
          { data: c, shape: [1001] },
          typeof x === 'number' ? x : { data: x, shape: [1001] },
          typeof y === 'number' ? y : { data: y, shape: [1001] },
        ).data,
      );
    expect(Array.from(await where(condition, ints, -1).toArray())).toEqual(expected(a, -1));
    expect(Array.from(await where(condition, 42, ints).toArray())).toEqual(expected(42, a));
    const rowCondition = device.fromArray([1, 0, 1], [3, 1], 'u32');
    const broadcastOut = where(rowCondition, device.fromArray([1, 2, 3, 4], [4], 'f32'), 0);
    expect(Array.from(await broadcastOut.toArray())).toEqual([1, 2, 3, 4, 0, 0, 0, 0, 1, 2, 3, 4]);
    if (f16Usable(device.hasF16)) {
      const values = roundToF16(new Rng(8).uniform(1000, -3, 3));
      const mask = conditionValues(1000, 'f32', 9);
      const out = where(
        device.fromArray(mask, [10, 100], 'f32'),
        device.fromArray(values, [10, 100], 'f16'),
        0.5,
      );
      expect(out.dtype).toBe('f16');
      expect(Array.from(await out.toArray())).toEqual(
        Array.from(whereReference({ data: mask, shape: [1000] }, { data: values, shape: [1000] }, 0.5).data),
      );
    }
  });

  it('works chunk by chunk when the operands line up', async () => {
    const small = await createDevice({ maxBindingBytes: 4096 });
    const shape = [50, 36];
    const c = conditionValues(1800, 'u32', 11);
    const a = new Rng(12).uniform(1800);
    const b = new Rng(13).uniform(1800);
    const out = where(
      small.fromArray(c, shape, 'u32'),
      small.fromArray(a, shape, 'f32'),
      small.fromArray(b, shape, 'f32'),
    );
    expect(out.chunked).toBe(true);
    expect(Array.from(await out.toArray())).toEqual(Array.from(a, (x, i) => (c[i] ? x : b[i])));
    if (f16Usable(small.hasF16)) {
      const half = small.fromArray(c, shape, 'f16');
      expect(() => where(half, small.fromArray(a, shape, 'f32'), 0)).toThrow(/chunks that do not line up/);
    }
    small.destroy();
  });

  it('spreads more than 65,535 workgroups over two grid dimensions', async () => {
    const n = 65_535 * device.tuning.elementwiseWorkgroup + 8 * 999;
    const a = new Float32Array(n).map((_, i) => i % 1013);
    const c = new Uint32Array(8).map((_, i) => i % 3);
    // [n / 8, 8] against a row of 8: the broadcast (strided) path, one element per invocation.
    const out = await where(
      device.fromArray(c, [8], 'u32'),
      device.fromArray(a, [n / 8, 8], 'f32'),
      -1,
    ).toArray();
    for (const i of [0, 1, 2, n - 1, n - 2, n - 3, n - 8 * 999]) expect(out[i]).toBe(c[i % 8] ? a[i] : -1);
  });

  it('rejects shapes that do not broadcast, mixed dtypes and two numbers', () => {
    const c = device.fromArray([1, 0, 1], [3], 'u32');
    const a = device.fromArray([1, 2, 3], [3], 'f32');
    expect(() => where(c, a, device.fromArray([1, 2], [2], 'f32'))).toThrow(
      /where: condition \[3\], a \[3\] and b \[2\] cannot be broadcast/,
    );
    expect(() => where(c, a, device.fromArray([1, 2, 3], [3], 'i32'))).toThrow(/different dtypes/);
    expect(() => where(c, 1, 2)).toThrow(/must be a tensor/);
    expect(() => where(c, device.fromArray([1, 2, 3], [3], 'i32'), 0.5)).toThrow(/not an integer/);
  });
});
