import { Rng, requireF16 } from '@webtune/test-utils';
import { beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../../device/create-device.js';
import type { Device } from '../../device/device.js';
import { roundToF16 } from '../../tensor/dtype.js';
import { expectKernel } from '../../testing/expect-kernel.js';
import { rmsNormBackwardReference } from './backward-reference.js';
import { rmsNorm } from './rms-norm.js';
import { rmsNormBackward } from './rms-norm-backward.js';

let device: Device;
/** A workgroup per row (reduction in workgroup memory) whatever the row length. */
let workgroupRows: Device;
beforeAll(async () => {
  device = await createDevice();
  workgroupRows = await createDevice({ tuning: { rowPerInvocationLength: 0 } });
});

async function check(
  shape: number[],
  withWeight: boolean,
  seed: number,
  dtype: 'f32' | 'f16' = 'f32',
  on: Device = device,
) {
  const hidden = shape[shape.length - 1];
  const n = shape.reduce((p, d) => p * d, 1);
  const rng = new Rng(seed);
  const round = (v: Float32Array) => (dtype === 'f16' ? roundToF16(v) : v);
  const x = round(rng.uniform(n, -2, 2));
  const grad = round(rng.uniform(n, -1, 1));
  const weight = withWeight ? round(rng.uniform(hidden, 0.5, 1.5)) : null;
  const result = rmsNormBackward(
    on.fromArray(x, shape, dtype),
    weight ? on.fromArray(weight, [hidden], dtype) : null,
    on.fromArray(grad, shape, dtype),
    1e-5,
  );
  const expected = rmsNormBackwardReference(x, weight, grad, hidden, 1e-5);
  const tolerance = dtype === 'f16' ? { rtol: 5e-3, atol: 5e-3 } : { rtol: 2e-5, atol: 2e-5 };
  // dw sums over every row: scale its tolerance with the row count.
  const rows = n / hidden;
  await expectKernel(
    `rmsNormBackward ${JSON.stringify(shape)}`,
    {
      dx: { actual: result.input, expected: expected.input, shape },
      ...(withWeight
        ? {
            dw: {
              actual: result.weight!,
              expected: expected.weight!,
              shape: [hidden],
              tolerance: { rtol: tolerance.rtol * 4, atol: tolerance.atol * Math.sqrt(rows) },
            },
          }
        : {}),
    },
    tolerance,
  );
  if (!withWeight) expect(result.weight).toBeNull();
}

describe('rms-norm-backward', () => {
  it('matches the reference at rows 1, 7, 130 and hidden 8, 7, 288, 1000, both row layouts', async () => {
    for (const on of [device, workgroupRows]) {
      await check([1, 8], true, 1, 'f32', on);
      await check([7, 7], true, 2, 'f32', on);
      await check([2, 65, 288], true, 3, 'f32', on);
      await check([3, 1000], true, 4, 'f32', on);
      await check([5, 33], false, 5, 'f32', on);
      await check([4, 1001], true, 8, 'f32', on);
    }
  });

  it('gives each invocation a whole row up to rowPerInvocationLength loads, a workgroup per row beyond', async () => {
    const limit = device.tuning.rowPerInvocationLength;
    for (const [on, hidden, perInvocation] of [
      [device, 4 * limit, limit > 0],
      [device, 4 * limit + 4, false],
      [workgroupRows, 8, false],
    ] as const) {
      if (hidden === 0) continue;
      on.startProfile();
      const x = on.fromArray(new Float32Array(3 * hidden).fill(1), [3, hidden], 'f32');
      const weight = on.fromArray(new Float32Array(hidden).fill(1), [hidden], 'f32');
      rmsNormBackward(x, weight, x, 1e-5, { weightGradient: false });
      rmsNorm(x, weight, 1e-5);
      const keys = (await on.stopProfile()).keys.map((key) => key.name);
      expect(keys.some((key) => key.startsWith('rms-norm-backward:rows') && key.endsWith(':lane'))).toBe(
        perInvocation,
      );
      expect(keys.some((key) => key.startsWith('rms-norm:') && key.endsWith(':rows'))).toBe(perInvocation);
    }
  });

  it('spreads more than 65,535 rows over two grid dimensions', async () => {
    await check([66_000, 4], true, 6);
  });

  it('computes f16 in f32', async (context) => {
    requireF16(context, device.hasF16);
    await check([9, 64], true, 7, 'f16');
  });

  it('rejects mismatched shapes', () => {
    const x = device.fromArray([1, 2, 3, 4], [2, 2], 'f32');
    expect(() => rmsNormBackward(x, null, device.fromArray([1, 2], [2], 'f32'), 1e-5)).toThrow(/must match/);
    expect(() => rmsNormBackward(x, device.fromArray([1, 2, 3], [3], 'f32'), x, 1e-5)).toThrow(/weight/);
  });
});

describe('rms-norm-backward options', () => {
  it('adds an earlier gradient into dx and skips dw for a frozen weight (one dispatch)', async () => {
    const shape = [3, 5, 36];
    const hidden = 36;
    const n = 3 * 5 * 36;
    const rng = new Rng(40);
    const x = rng.uniform(n, -2, 2);
    const grad = rng.uniform(n, -1, 1);
    const earlier = rng.uniform(n, -1, 1);
    const weight = rng.uniform(hidden, 0.5, 1.5);
    const expected = rmsNormBackwardReference(x, weight, grad, hidden, 1e-5);
    await device.scope(async () => {
      const inputs = [device.fromArray(x, shape, 'f32'), device.fromArray(weight, [hidden], 'f32')];
      const g = device.fromArray(grad, shape, 'f32');
      const add = device.fromArray(earlier, shape, 'f32');
      const before = device.stats.dispatches;
      const result = rmsNormBackward(inputs[0], inputs[1], g, 1e-5, { weightGradient: false, add });
      expect(device.stats.dispatches - before).toBe(1);
      expect(result.weight).toBeNull();
      await expectKernel(
        'rmsNormBackward + add',
        { dx: { actual: result.input, expected: expected.input.map((v, i) => v + earlier[i]), shape } },
        { rtol: 2e-5, atol: 2e-5 },
      );
      expect(() =>
        rmsNormBackward(inputs[0], null, g, 1e-5, { add: device.fromArray([1], [1], 'f32') }),
      ).toThrow(/add .* must match x/);
    });
  });
});
