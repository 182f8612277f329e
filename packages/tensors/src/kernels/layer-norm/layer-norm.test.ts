import { expectClose, Rng, requireF16 } from '@webtune/test-utils';
import { beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../../device/create-device.js';
import type { Device } from '../../device/device.js';
import { roundToF16 } from '../../tensor/dtype.js';
import { layerNorm } from './layer-norm.js';
import { layerNormReference } from './reference.js';

let device: Device;
let smallBindings: Device;
beforeAll(async () => {
  device = await createDevice();
  // 4 KiB per binding: tensors above 1024 f32 values are split into chunks of whole rows.
  smallBindings = await createDevice({ maxBindingBytes: 4096 });
});

const SHAPES = [[1], [7], [3, 33], [5, 1000], [2, 3, 288], [33, 1], [4, 1001]];

describe('layerNorm', () => {
  for (const shape of SHAPES) {
    it(`matches the reference on ${JSON.stringify(shape)}, with and without affine terms`, async () => {
      const hidden = shape[shape.length - 1];
      const size = shape.reduce((p, d) => p * d, 1);
      const rng = new Rng(size * 3 + hidden);
      // A large common offset: a one-pass variance (E[x^2] - mean^2) would lose most digits.
      const data = rng.normal(size, 2).map((v) => v + 300);
      const weightData = rng.uniform(hidden, 0.5, 1.5);
      const biasData = rng.uniform(hidden, -1, 1);
      await device.scope(async () => {
        const x = device.fromArray(data, shape, 'f32');
        const weight = device.fromArray(weightData, [hidden], 'f32');
        const bias = device.fromArray(biasData, [hidden], 'f32');
        const expected = layerNormReference(data, hidden, weightData, biasData, 1e-5);
        const result = layerNorm(x, weight, bias, 1e-5, { saveStats: true });
        expect(result.output.shape).toEqual(shape);
        expect(result.mean.shape).toEqual(shape.slice(0, -1));
        expectClose(await result.output.toArray(), expected.output, {
          rtol: 1e-4,
          atol: 2e-4,
          label: 'output',
        });
        expectClose(await result.mean.toArray(), expected.mean, { rtol: 1e-6, label: 'mean' });
        expectClose(await result.rstd.toArray(), expected.rstd, { rtol: 1e-4, label: 'rstd' });
        for (const [w, b, wd, bd] of [
          [weight, null, weightData, null],
          [null, bias, null, biasData],
          [null, null, null, null],
        ] as const) {
          const out = layerNorm(x, w, b);
          expectClose(await out.toArray(), layerNormReference(data, hidden, wd, bd, 1e-5).output, {
            rtol: 1e-4,
            atol: 2e-4,
            label: `weight ${!!w} bias ${!!b}`,
          });
        }
      });
    });
  }

  it('normalises more than 65,535 rows (grid split)', async () => {
    const rng = new Rng(2);
    const data = rng.normal(70_001 * 8);
    const weightData = rng.uniform(8, 0.5, 1.5);
    const biasData = rng.uniform(8, -1, 1);
    const out = layerNorm(
      device.fromArray(data, [70_001, 8], 'f32'),
      device.fromArray(weightData, [8], 'f32'),
      device.fromArray(biasData, [8], 'f32'),
    );
    expectClose(await out.toArray(), layerNormReference(data, 8, weightData, biasData, 1e-5).output, {
      rtol: 1e-5,
      atol: 2e-5,
    });
  });

  it('normalises chunked tensors chunk by chunk', async () => {
    const rng = new Rng(4);
    for (const shape of [
      [100, 33],
      [64, 64],
    ]) {
      const [rows, hidden] = shape;
      const data = rng.normal(rows * hidden, 2);
      const weightData = rng.uniform(hidden, 0.5, 1.5);
      const biasData = rng.uniform(hidden, -1, 1);
      const x = smallBindings.fromArray(data, shape, 'f32');
      expect(x.chunked).toBe(true);
      const result = layerNorm(
        x,
        smallBindings.fromArray(weightData, [hidden], 'f32'),
        smallBindings.fromArray(biasData, [hidden], 'f32'),
        1e-5,
        { saveStats: true },
      );
      const expected = layerNormReference(data, hidden, weightData, biasData, 1e-5);
      expectClose(await result.output.toArray(), expected.output, { rtol: 1e-5, atol: 2e-5 });
      expectClose(await result.mean.toArray(), expected.mean, { rtol: 1e-5, atol: 1e-6 });
      expectClose(await result.rstd.toArray(), expected.rstd, { rtol: 1e-5 });
    }
  });

  it('computes f16 in f32, with f16 or f32 parameters', async (context) => {
    requireF16(context, device.hasF16);
    const rng = new Rng(3);
    const [rows, hidden] = [7, 288];
    const data = roundToF16(rng.normal(rows * hidden, 2));
    const weightData = roundToF16(rng.uniform(hidden, 0.5, 1.5));
    const biasData = roundToF16(rng.uniform(hidden, -1, 1));
    const expected = layerNormReference(data, hidden, weightData, biasData, 1e-5);
    for (const parameterType of ['f16', 'f32'] as const) {
      const { output, mean, rstd } = layerNorm(
        device.fromArray(data, [rows, hidden], 'f16'),
        device.fromArray(weightData, [hidden], parameterType),
        device.fromArray(biasData, [hidden], parameterType),
        1e-5,
        { saveStats: true },
      );
      expect(output.dtype).toBe('f16');
      expectClose(await output.toArray(), roundToF16(expected.output), { rtol: 1e-3, atol: 2e-3 });
      expectClose(await mean.toArray(), expected.mean, { rtol: 1e-5, atol: 1e-6 });
      expectClose(await rstd.toArray(), expected.rstd, { rtol: 1e-5 });
    }
  });

  it('rejects mismatched parameters and integer tensors', () => {
    const x = device.fromArray(new Float32Array(12), [3, 4], 'f32');
    expect(() => layerNorm(x, null, device.fromArray([1, 2, 3], [3], 'f32'))).toThrow(
      /layerNorm: bias \[3\] must have shape \[4\]/,
    );
    expect(() => layerNorm(device.fromArray([1, 2], [2], 'i32'), null, null)).toThrow(
      /layerNorm: input .* must be f32 or f16/,
    );
  });
});
