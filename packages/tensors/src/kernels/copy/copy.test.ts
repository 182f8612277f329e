import { f16Usable, Rng } from '@webtune/test-utils';
import { beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../../device/create-device.js';
import type { Device } from '../../device/device.js';
import { concat, contiguousCopy, permute, slice, transpose } from '../../ops/layout.js';
import { type DType, roundToF16 } from '../../tensor/dtype.js';
import { concatReference, permuteReference, sliceReference } from './reference.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});

const size = (shape: readonly number[]) => shape.reduce((p, d) => p * d, 1);

/** Distinct values per dtype (exact in f16 too), so a misplaced element is always seen. */
function valuesFor(shape: readonly number[], dtype: DType, seed: number): number[] {
  const n = size(shape);
  if (dtype === 'f32') return Array.from(new Rng(seed).uniform(n, -100, 100));
  if (dtype === 'f16') return Array.from(roundToF16(new Rng(seed).uniform(n, -100, 100)));
  if (dtype === 'u32') return Array.from({ length: n }, (_, i) => 3_000_000_000 + i);
  return Array.from({ length: n }, (_, i) => i * 7 - 5000);
}

const DTYPES: DType[] = ['f32', 'f16', 'i32', 'u32'];
const usable = (dtype: DType) => dtype !== 'f16' || f16Usable(device.hasF16);

describe('layout ops', () => {
  it('transposes and permutes', async () => {
    const cases: [number[], number[]][] = [
      [
        [1, 1],
        [1, 0],
      ],
      [
        [7, 1],
        [1, 0],
      ],
      [
        [33, 5],
        [1, 0],
      ],
      [
        [2, 7, 33],
        [0, 2, 1],
      ],
      [
        [2, 3, 4, 5],
        [3, 1, 0, 2],
      ],
      [
        [3, 1, 4, 1, 5],
        [4, 3, 2, 1, 0],
      ],
      [
        [2, 3, 4],
        [0, 1, 2],
      ],
    ];
    for (const dtype of DTYPES.filter(usable)) {
      for (const [shape, order] of cases) {
        await device.scope(async () => {
          const values = valuesFor(shape, dtype, size(shape));
          const x = device.fromArray(values, shape, dtype);
          const expected = permuteReference({ data: values, shape }, order);
          const out = permute(x, order);
          expect(out.shape).toEqual(expected.shape);
          expect(Array.from(await out.toArray()), `${dtype} ${shape} ${order}`).toEqual(expected.data);
          const negative = permute(
            x,
            order.map((axis) => axis - shape.length),
          );
          expect(Array.from(await negative.toArray())).toEqual(expected.data);
        });
      }
      await device.scope(async () => {
        const shape = [2, 7, 33];
        const values = valuesFor(shape, dtype, 1);
        const x = device.fromArray(values, shape, dtype);
        const lastTwo = transpose(x);
        expect(Array.from(await lastTwo.toArray())).toEqual(
          permuteReference({ data: values, shape }, [0, 2, 1]).data,
        );
        const outer = transpose(x, 0, -1);
        expect(outer.shape).toEqual([33, 7, 2]);
        expect(Array.from(await outer.toArray())).toEqual(
          permuteReference({ data: values, shape }, [2, 1, 0]).data,
        );
      });
    }
  });

  it('slices with negative indices, partial axes and empty results', async () => {
    const shape = [5, 6, 7];
    const cases: [number[], number[], number[], number[]][] = [
      // starts, ends as given; then resolved
      [[1], [4], [1], [4]],
      [
        [0, 2],
        [5, -1],
        [0, 2],
        [5, 5],
      ],
      [
        [-3, 0, 1],
        [-1, 6, 6],
        [2, 0, 1],
        [4, 6, 6],
      ],
      [
        [0, 0, 3],
        [5, 6, 4],
        [0, 0, 3],
        [5, 6, 4],
      ],
      [
        [4, 5, 6],
        [5, 6, 7],
        [4, 5, 6],
        [5, 6, 7],
      ],
      [[2], [2], [2], [2]],
    ];
    for (const dtype of DTYPES.filter(usable)) {
      const values = valuesFor(shape, dtype, 4);
      const x = device.fromArray(values, shape, dtype);
      for (const [starts, ends, resolvedStarts, resolvedEnds] of cases) {
        const out = slice(x, starts, ends);
        const expected = sliceReference({ data: values, shape }, resolvedStarts, resolvedEnds);
        expect(out.shape).toEqual(expected.shape);
        expect(Array.from(await out.toArray()), `${dtype} ${starts} ${ends}`).toEqual(expected.data);
        out.dispose();
      }
      x.dispose();
    }
  });

  it('concatenates along any axis, skipping empty parts', async () => {
    for (const dtype of DTYPES.filter(usable)) {
      for (const [shapes, axis] of [
        [
          [
            [3, 5],
            [1, 5],
            [0, 5],
            [7, 5],
          ],
          0,
        ],
        [
          [
            [3, 5],
            [3, 1],
            [3, 4],
          ],
          1,
        ],
        [
          [
            [3, 5],
            [3, 1],
            [3, 4],
          ],
          -1,
        ],
        [
          [
            [2, 3, 3],
            [2, 1, 3],
          ],
          1,
        ],
        [[[1], [2], [1]], 0],
        [[[4, 4]], 0],
      ] as [number[][], number][]) {
        await device.scope(async () => {
          const parts = shapes.map((shape, i) => ({ data: valuesFor(shape, dtype, i + 1), shape }));
          const out = concat(
            parts.map((p) => device.fromArray(p.data, p.shape, dtype)),
            axis,
          );
          const expected = concatReference(parts, axis < 0 ? axis + shapes[0].length : axis);
          expect(out.shape).toEqual(expected.shape);
          expect(Array.from(await out.toArray()), `${dtype} ${JSON.stringify(shapes)} ${axis}`).toEqual(
            expected.data,
          );
        });
      }
    }
  });

  it('makes real copies, chunk by chunk', async () => {
    const x = device.fromArray([1, 2, 3, 4, 5], [5], 'f32');
    const copy = contiguousCopy(x);
    device.write(x, [9, 9, 9, 9, 9]);
    expect(Array.from(await copy.toArray())).toEqual([1, 2, 3, 4, 5]);
    expect(copy.storage).not.toBe(x.storage);
    const small = await createDevice({ maxBindingBytes: 4096 });
    const values = new Rng(3).uniform(3000);
    const big = small.fromArray(values, [300, 10], 'f32');
    const bigCopy = contiguousCopy(big);
    expect(bigCopy.chunked).toBe(true);
    expect(Array.from(await bigCopy.toArray())).toEqual(Array.from(values));
    expect(() => transpose(big)).toThrow(/transpose.*needs|permute.*needs/);
    small.destroy();
  });

  it('spreads more than 65,535 workgroups over two grid dimensions', async () => {
    const rows = 2048;
    const cols = 2049; // rows * cols / 64 invocations per workgroup > 65,535
    const values = new Float32Array(rows * cols).map((_, i) => i);
    const out = await transpose(device.fromArray(values, [rows, cols], 'f32')).toArray();
    for (const [r, c] of [
      [0, 0],
      [rows - 1, cols - 1],
      [17, 2000],
      [2047, 3],
      [1000, 2048],
    ]) {
      expect(out[c * rows + r]).toBe(r * cols + c);
    }
  });

  it('names the op and the shapes in its errors', () => {
    const x = device.fromArray(new Float32Array(24), [2, 3, 4], 'f32');
    expect(() => permute(x, [0, 1])).toThrow(/permute: order \[0, 1\] has 2 axes/);
    expect(() => permute(x, [0, 1, 1])).toThrow(/repeats an axis/);
    expect(() => permute(x, [0, 1, 3])).toThrow(/axis 3 .* out of range/);
    expect(() => transpose(device.fromArray([1, 2], [2], 'f32'))).toThrow(
      /transpose: dimension -2 is out of range/,
    );
    expect(() => slice(x, [0, 4], [2, 3])).toThrow(/slice: start 4 of axis 1 is outside \[-3, 3\]/);
    expect(() => slice(x, [0, 2], [2, 1])).toThrow(/axis 1 .* ends .* before it starts/);
    expect(() => slice(x, [0], [1, 2])).toThrow(/same length/);
    expect(() => concat([x, device.fromArray(new Float32Array(6), [2, 3, 1], 'f32')], 0)).toThrow(
      /concat along axis 0: tensor 1 has shape \[2, 3, 1\]/,
    );
    expect(() => concat([x, device.fromArray(new Float32Array(24), [2, 3, 4], 'i32')], 0)).toThrow(
      /tensor 1 is i32/,
    );
    expect(() => concat([x], 3)).toThrow(/concat: axis 3 is out of range/);
    expect(() => concat([], 0)).toThrow(/at least one/);
  });
});
