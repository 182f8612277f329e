import { expectClose, Rng, requireF16 } from '@webtune/test-utils';
import { beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../../device/create-device.js';
import type { Device } from '../../device/device.js';
import { roundToF16 } from '../../tensor/dtype.js';
import { expectKernel } from '../../testing/expect-kernel.js';
import { swigluBackwardReference, swigluReference } from './reference.js';
import { swiglu, swigluBackward } from './swiglu.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});

async function check(target: Device, shape: number[], seed: number) {
  const n = shape.reduce((p, d) => p * d, 1);
  const rng = new Rng(seed);
  const gate = rng.uniform(n, -8, 8);
  const up = rng.uniform(n, -2, 2);
  const grad = rng.uniform(n, -1, 1);
  const [g, u, d] = [gate, up, grad].map((v) => target.fromArray(v, shape, 'f32'));
  const back = swigluBackward(g, u, d);
  const expected = swigluBackwardReference(gate, up, grad);
  await expectKernel(
    `swiglu ${JSON.stringify(shape)}`,
    {
      forward: { actual: swiglu(g, u), expected: swigluReference(gate, up), shape },
      'd gate': { actual: back.gate, expected: expected.gate, shape },
      'd up': { actual: back.up, expected: expected.up, shape },
    },
    { rtol: 1e-5, atol: 1e-6 },
  );
}

describe('swiglu', () => {
  it('forward and backward at 1, 7, 33 x 5, 1000 elements', async () => {
    for (const [i, shape] of [[1], [7], [33, 5], [4, 250]].entries()) await check(device, shape, i + 1);
  });

  it('handles chunked tensors and more than 65,535 workgroups', async () => {
    const small = await createDevice({ maxBindingBytes: 2048 });
    await check(small, [100, 9], 7);
    const wide = await createDevice({ tuning: { elementwiseWorkgroup: 1, elementwisePerInvocation: 1 } });
    await check(wide, [66_000, 4], 8);
    small.destroy();
    wide.destroy();
  });

  it('computes f16 in f32', async (context) => {
    requireF16(context, device.hasF16);
    const rng = new Rng(9);
    const [gate, up, grad] = [rng.uniform(999, -4, 4), rng.uniform(999), rng.uniform(999)].map((v) =>
      roundToF16(v),
    );
    const back = swigluBackward(
      device.fromArray(gate, [999], 'f16'),
      device.fromArray(up, [999], 'f16'),
      device.fromArray(grad, [999], 'f16'),
    );
    expect(back.gate.dtype).toBe('f16');
    const expected = swigluBackwardReference(gate, up, grad);
    expectClose(await back.gate.toArray(), roundToF16(expected.gate), { rtol: 2e-3, atol: 1e-3 });
    expectClose(await back.up.toArray(), roundToF16(expected.up), { rtol: 2e-3, atol: 1e-3 });
  });

  it('rejects operands of different shapes', () => {
    const a = device.fromArray([1, 2, 3], [3], 'f32');
    expect(() => swiglu(a, device.fromArray([1, 2, 3, 4], [4], 'f32'))).toThrow(/swiglu.*shape/);
  });
});
