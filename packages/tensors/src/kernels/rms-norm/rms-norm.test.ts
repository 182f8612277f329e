import { expectClose, Rng, requireF16 } from '@webtune/test-utils';
import { beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../../device/create-device.js';
import type { Device } from '../../device/device.js';
import { roundToF16 } from '../../tensor/dtype.js';
import { rmsNormReference } from './reference.js';
import { rmsNorm } from './rms-norm.js';

let device: Device;
let smallBindings: Device;
/** A workgroup per row (reduction in workgroup memory) whatever the row length. */
let workgroupRows: Device;
beforeAll(async () => {
  device = await createDevice();
  workgroupRows = await createDevice({ tuning: { rowPerInvocationLength: 0 } });
  // 4 KiB per binding: tensors above 1024 f32 values are split into chunks of whole rows.
  smallBindings = await createDevice({ maxBindingBytes: 4096 });
});

const SHAPES = [[1], [7], [3, 33], [5, 1000], [2, 3, 288], [33, 1], [4, 1001]];

describe('rmsNorm', () => {
  for (const shape of SHAPES) {
    it(`matches the reference on ${JSON.stringify(shape)}, with and without weight, both row layouts`, async () => {
      const hidden = shape[shape.length - 1];
      const size = shape.reduce((p, d) => p * d, 1);
      const rng = new Rng(size + hidden);
      const data = rng.normal(size, 3);
      const weightData = rng.uniform(hidden, 0.5, 1.5);
      for (const on of [device, workgroupRows]) {
        await on.scope(async () => {
          const x = on.fromArray(data, shape, 'f32');
          const weight = on.fromArray(weightData, [hidden], 'f32');
          const expected = rmsNormReference(data, hidden, weightData, 1e-5);
          const { output, inverseRms } = rmsNorm(x, weight, 1e-5, { saveStats: true });
          expect(output.shape).toEqual(shape);
          expect(inverseRms.shape).toEqual(shape.slice(0, -1));
          expectClose(await output.toArray(), expected.output, { rtol: 1e-5, atol: 1e-6, label: 'output' });
          expectClose(await inverseRms.toArray(), expected.inverseRms, { rtol: 1e-5, label: 'inverse RMS' });
          const plain = rmsNorm(x, null, 1e-6);
          expectClose(await plain.toArray(), rmsNormReference(data, hidden, null, 1e-6).output, {
            rtol: 1e-5,
            atol: 1e-6,
            label: 'no weight',
          });
        });
      }
    });
  }

  it('normalises more than 65,535 rows (grid split)', async () => {
    const rng = new Rng(2);
    const data = rng.normal(70_001 * 8);
    const weightData = rng.uniform(8, 0.5, 1.5);
    const out = rmsNorm(
      device.fromArray(data, [70_001, 8], 'f32'),
      device.fromArray(weightData, [8], 'f32'),
      1e-6,
    );
    expectClose(await out.toArray(), rmsNormReference(data, 8, weightData, 1e-6).output, {
      rtol: 1e-5,
      atol: 1e-6,
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
      const x = smallBindings.fromArray(data, shape, 'f32');
      expect(x.chunked).toBe(true);
      const { output, inverseRms } = rmsNorm(x, smallBindings.fromArray(weightData, [hidden], 'f32'), 1e-5, {
        saveStats: true,
      });
      expect(output.chunked).toBe(true);
      const expected = rmsNormReference(data, hidden, weightData, 1e-5);
      expectClose(await output.toArray(), expected.output, { rtol: 1e-5, atol: 1e-6 });
      expectClose(await inverseRms.toArray(), expected.inverseRms, { rtol: 1e-5 });
    }
  });

  it('computes f16 in f32, with f16 or f32 weights', async (context) => {
    requireF16(context, device.hasF16);
    const rng = new Rng(3);
    for (const [rows, hidden] of [
      [7, 288],
      [33, 33],
    ]) {
      const data = roundToF16(rng.normal(rows * hidden, 2));
      const weightData = roundToF16(rng.uniform(hidden, 0.5, 1.5));
      const expected = rmsNormReference(data, hidden, weightData, 1e-5);
      for (const weightType of ['f16', 'f32'] as const) {
        const { output, inverseRms } = rmsNorm(
          device.fromArray(data, [rows, hidden], 'f16'),
          device.fromArray(weightData, [hidden], weightType),
          1e-5,
          { saveStats: true },
        );
        expect(output.dtype).toBe('f16');
        expectClose(await output.toArray(), roundToF16(expected.output), { rtol: 1e-3, atol: 1e-4 });
        expectClose(await inverseRms.toArray(), expected.inverseRms, { rtol: 1e-5 });
      }
    }
  });

  it('rejects mismatched weights and integer tensors', () => {
    const x = device.fromArray(new Float32Array(12), [3, 4], 'f32');
    expect(() => rmsNorm(x, device.fromArray([1, 2, 3], [3], 'f32'))).toThrow(
      /rmsNorm: weight \[3\] must have shape \[4\]/,
    );
    expect(() => rmsNorm(device.fromArray([1, 2], [2], 'i32'), null)).toThrow(
      /rmsNorm: input .* must be f32 or f16/,
    );
  });
});
