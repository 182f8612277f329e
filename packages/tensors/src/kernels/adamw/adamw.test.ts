import { expectClose, Rng, requireF16 } from '@webtune/test-utils';
import { beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../../device/create-device.js';
import type { Device } from '../../device/device.js';
import { roundToF16 } from '../../tensor/dtype.js';
import { type AdamWOptions, adamwStep } from './adamw.js';
import { adamwReference } from './reference.js';

let device: Device;
let smallBindings: Device;
beforeAll(async () => {
  device = await createDevice();
  // 4 KiB per binding: tensors above 1024 f32 values are split into chunks of whole rows.
  smallBindings = await createDevice({ maxBindingBytes: 4096 });
});

const HYPER: Omit<AdamWOptions, 'step'> = { lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };

/** Runs `steps` updates on the GPU and in float64, comparing param, m and v after every step. */
async function run(
  target: Device,
  shape: number[],
  steps: number,
  seed: number,
  paramType: 'f32' | 'f16' = 'f32',
) {
  const n = shape.reduce((p, d) => p * d, 1);
  const rng = new Rng(seed);
  let expected: { param: Float64Array; m: Float64Array; v: Float64Array } = {
    param: Float64Array.from(paramType === 'f16' ? roundToF16(rng.normal(n)) : rng.normal(n)),
    m: new Float64Array(n),
    v: new Float64Array(n),
  };
  const param = target.fromArray(expected.param, shape, paramType);
  const m = target.fromArray(expected.m, shape, 'f32');
  const v = target.fromArray(expected.v, shape, 'f32');
  for (let step = 1; step <= steps; step++) {
    const gradData = rng.normal(n, 0.5 * step);
    const grad = target.fromArray(gradData, shape, paramType);
    const gradValues = paramType === 'f16' ? roundToF16(gradData) : gradData;
    const options = { ...HYPER, step };
    adamwStep(param, grad, m, v, options);
    expected = adamwReference(expected.param, gradValues, expected.m, expected.v, options);
    if (paramType === 'f16') expected.param = Float64Array.from(roundToF16(expected.param));
    const label = `${JSON.stringify(shape)} step ${step}`;
    const rtol = paramType === 'f16' ? 2e-3 : 1e-5;
    expectClose(await param.toArray(), expected.param, { rtol, atol: 1e-6, label: `param ${label}` });
    expectClose(await m.toArray(), expected.m, { rtol: 1e-5, atol: 1e-7, label: `m ${label}` });
    expectClose(await v.toArray(), expected.v, { rtol: 1e-5, atol: 1e-9, label: `v ${label}` });
    grad.dispose();
  }
  return { param, m, v };
}

describe('adamwStep', () => {
  for (const shape of [[1], [7], [33, 33], [1000], [4, 1001]]) {
    it(`matches torch.optim.AdamW's formula over 5 steps on ${JSON.stringify(shape)}`, async () => {
      await device.scope(() => run(device, shape, 5, shape[0] * 13 + shape.length));
    });
  }

  it('updates chunked tensors chunk by chunk', async () => {
    for (const shape of [
      [100, 33],
      [64, 64],
    ]) {
      await smallBindings.scope(async () => {
        const { param } = await run(smallBindings, shape, 3, shape[0] + shape[1]);
        expect(param.chunked).toBe(true);
      });
    }
  });

  it('updates f16 parameters with f32 moments', async (context) => {
    requireF16(context, device.hasF16);
    await device.scope(() => run(device, [33, 36], 3, 5, 'f16'));
  });

  it('spreads more than 65,535 workgroups over the grid', async () => {
    await device.scope(() => run(device, [65_535 * device.tuning.elementwiseWorkgroup + 7], 1, 6));
  });

  it('rejects mismatched shapes, bad steps and aliased tensors', () => {
    const a = device.fromArray([1, 2, 3], [3], 'f32');
    const b = device.fromArray([1, 2, 3], [3], 'f32');
    const c = device.fromArray([1, 2, 3], [3], 'f32');
    const short = device.fromArray([1, 2], [2], 'f32');
    expect(() => adamwStep(a, short, b, c, { lr: 1, step: 1 })).toThrow(
      /adamwStep: grad .* does not have the shape/,
    );
    expect(() => adamwStep(a, short.reshape([2]), b, c, { lr: 1, step: 1 })).toThrow(/shape/);
    expect(() => adamwStep(a, b, c, device.fromArray([0, 0, 0], [3], 'f32'), { lr: 1, step: 0 })).toThrow(
      /step 0 must be an integer >= 1/,
    );
    expect(() => adamwStep(a, b, c, c, { lr: 1, step: 1 })).toThrow(/m and v share one buffer/);
  });
});
