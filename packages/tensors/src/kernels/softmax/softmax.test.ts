import { expectClose, f16Usable, Rng, requireF16 } from '@webtune/test-utils';
import { beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../../device/create-device.js';
import type { Device } from '../../device/device.js';
import { roundToF16 } from '../../tensor/dtype.js';
import { expectKernel } from '../../testing/expect-kernel.js';
import { logSoftmaxReference, softmaxReference } from './reference.js';
import { logSoftmax, softmax } from './softmax.js';

let device: Device;
let smallBindings: Device;
beforeAll(async () => {
  device = await createDevice();
  // 4 KiB per binding: tensors above 1024 f32 values are split into chunks of whole rows.
  smallBindings = await createDevice({ maxBindingBytes: 4096 });
});

const CASES: [number[], number][] = [
  [[1], -1],
  [[7], -1],
  [[33], 0],
  [[1000], -1],
  [[7, 33], 0],
  [[7, 33], 1],
  [[3, 1001], -1],
  [[33, 1000], -1],
  [[3, 1000, 5], 1],
  [[2, 3, 4, 5], 1],
  [[4, 151_936], -1],
];

async function check(data: Float32Array, shape: number[], axis: number, label: string) {
  await device.scope(async () => {
    const x = device.fromArray(data, shape, 'f32');
    await expectKernel(label, {
      softmax: {
        actual: softmax(x, axis),
        expected: softmaxReference(data, shape, axis),
        shape,
        tolerance: { rtol: 2e-5, atol: 1e-9 },
      },
      logSoftmax: {
        actual: logSoftmax(x, axis),
        expected: logSoftmaxReference(data, shape, axis),
        shape,
        tolerance: { rtol: 1e-5, atol: 2e-5 },
      },
    });
  });
}

describe('softmax and logSoftmax', () => {
  for (const [shape, axis] of CASES) {
    it(`match the reference on ${JSON.stringify(shape)} along axis ${axis}`, async () => {
      const size = shape.reduce((p, d) => p * d, 1);
      const rng = new Rng(size + axis);
      // Large offsets: without the max subtraction exp() overflows to Infinity.
      const data = rng.uniform(size, -8, 8).map((v, i) => v + (i % 3 === 0 ? 1000 : 100));
      await check(data, shape, axis, JSON.stringify(shape));
    });
  }

  it('gives 0 probability to -infinity entries (masks) and NaN to fully masked rows', async () => {
    for (const [shape, axis] of [
      [[6, 100], -1],
      [[6, 7], -1],
      [[6, 7], 0],
    ] as [number[], number][]) {
      const data = new Rng(7).uniform(shape[0] * shape[1], -3, 3);
      // Row 0 masked at its start (the running maximum starts there), row 1 fully masked.
      for (let j = 0; j < shape[1]; j++) {
        if (j < Math.ceil(shape[1] / 2)) data[j] = Number.NEGATIVE_INFINITY;
        data[shape[1] + j] = Number.NEGATIVE_INFINITY;
      }
      for (let i = 2 * shape[1]; i < data.length; i += 3) data[i] = Number.NEGATIVE_INFINITY;
      await check(data, shape, axis, `masked ${JSON.stringify(shape)}`);
    }
  });

  it('rows sum to one', async () => {
    const data = new Rng(3).normal(33 * 1000, 4);
    const out = await softmax(device.fromArray(data, [33, 1000], 'f32')).toArray();
    for (let r = 0; r < 33; r++) {
      let total = 0;
      for (let j = 0; j < 1000; j++) total += out[r * 1000 + j];
      expect(Math.abs(total - 1)).toBeLessThan(1e-5);
    }
  });

  it('spreads more than 65,535 rows and more than 65,535 x WG columns over the grid', async () => {
    const rng = new Rng(4);
    await check(rng.uniform(70_001 * 40, -3, 3), [70_001, 40], -1, 'rows');
    const columns = 65_535 * device.tuning.elementwiseWorkgroup + 7;
    await check(rng.uniform(2 * columns, -3, 3), [2, columns], 0, 'columns');
  });

  it('normalises the rows of chunked tensors', async () => {
    const rng = new Rng(6);
    for (const [shape, dtype] of [
      [[100, 33], 'f32'],
      [[64, 64], 'f32'],
      [[64, 64], 'f16'],
    ] as const) {
      if (dtype === 'f16' && !f16Usable(smallBindings.hasF16)) continue;
      const size = shape[0] * shape[1];
      const data = dtype === 'f16' ? roundToF16(rng.uniform(size, -5, 5)) : rng.uniform(size, -5, 5);
      const x = smallBindings.fromArray(data, shape, dtype);
      expect(x.chunked).toBe(true);
      const round = (values: Float64Array) => (dtype === 'f16' ? roundToF16(values) : values);
      const rtol = dtype === 'f16' ? 1e-3 : 2e-5;
      expectClose(await softmax(x).toArray(), round(softmaxReference(data, [...shape])), {
        rtol,
        atol: 1e-7,
      });
      expectClose(await logSoftmax(x).toArray(), round(logSoftmaxReference(data, [...shape])), {
        rtol,
        atol: 1e-4,
      });
      expect(() => softmax(x, 0)).toThrow(/softmax: .* chunks of whole rows; only its last axis/);
    }
  });

  it('computes f16 in f32 and rounds on store', async (context) => {
    requireF16(context, device.hasF16);
    const rng = new Rng(5);
    for (const [shape, axis] of [
      [[33, 1000], -1],
      [[7, 33], 0],
      [[5, 151_936], -1],
    ] as [number[], number][]) {
      const size = shape.reduce((p, d) => p * d, 1);
      const data = roundToF16(rng.uniform(size, -6, 6));
      const x = device.fromArray(data, shape, 'f16');
      const probabilities = softmax(x, axis);
      expect(probabilities.dtype).toBe('f16');
      expectClose(await probabilities.toArray(), roundToF16(softmaxReference(data, shape, axis)), {
        rtol: 1e-3,
        atol: 1e-7,
        label: `f16 softmax ${JSON.stringify(shape)}`,
      });
      expectClose(await logSoftmax(x, axis).toArray(), roundToF16(logSoftmaxReference(data, shape, axis)), {
        rtol: 1e-3,
        atol: 1e-3,
        label: `f16 logSoftmax ${JSON.stringify(shape)}`,
      });
      x.dispose();
    }
  });

  it('rejects bad axes and integer tensors', () => {
    const x = device.fromArray([1, 2, 3, 4], [2, 2], 'f32');
    expect(() => softmax(x, 2)).toThrow(/softmax: axis 2 is out of range for shape \[2, 2\]/);
    expect(() => logSoftmax(x, -3)).toThrow(/logSoftmax: axis -3 is out of range/);
    expect(() => softmax(device.fromArray([1, 2], [2], 'i32'))).toThrow(
      /softmax: input .* must be f32 or f16/,
    );
  });
});
