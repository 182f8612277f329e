import { expectClose, Rng } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../../device/create-device.js';
import type { Device } from '../../device/device.js';
import type { Tensor } from '../../tensor/tensor.js';
import { adamwSteps } from './adamw-multi.js';
import { adamwReference } from './reference.js';

let device: Device;
let smallBindings: Device;
beforeAll(async () => {
  device = await createDevice();
  // 4 KiB per binding: tensors above 1024 f32 values are split into chunks of whole rows.
  smallBindings = await createDevice({ maxBindingBytes: 4096 });
});
afterAll(() => {
  device?.destroy();
  smallBindings?.destroy();
});

/** Three steps of adamwSteps over tensors of these shapes, each against the float64 reference. */
async function run(target: Device, shapes: number[][], seed: number, gradScale: number): Promise<number> {
  const rng = new Rng(seed);
  const state = shapes.map((shape, i) => {
    const n = shape.reduce((p, d) => p * d, 1);
    const param = Float64Array.from(rng.normal(n));
    return {
      shape,
      // Parameter groups: each tensor its own learning rate, some without weight decay.
      lr: 1e-2 * (1 + i),
      weightDecay: i % 3 === 0 ? 0 : 0.1,
      expected: { param, m: new Float64Array(n), v: new Float64Array(n) } as Record<
        'param' | 'm' | 'v',
        Float64Array
      >,
      tensors: {
        param: target.fromArray(param, shape, 'f32'),
        m: target.fromArray(new Float64Array(n), shape, 'f32'),
        v: target.fromArray(new Float64Array(n), shape, 'f32'),
      } as Record<'param' | 'm' | 'v', Tensor>,
    };
  });
  let dispatches = 0;
  for (let step = 1; step <= 3; step++) {
    const grads = state.map((s) => rng.normal(s.expected.param.length, 0.5 * step));
    const gradTensors = state.map((s, i) => target.fromArray(grads[i], s.shape, 'f32'));
    const before = target.stats.dispatches;
    adamwSteps(
      state.map((s, i) => ({ ...s.tensors, grad: gradTensors[i], lr: s.lr, weightDecay: s.weightDecay })),
      { step, beta1: 0.9, beta2: 0.95, eps: 1e-8, gradScale },
    );
    dispatches = target.stats.dispatches - before;
    for (const [i, s] of state.entries()) {
      const scaled = grads[i].map((g) => g * gradScale);
      s.expected = adamwReference(s.expected.param, scaled, s.expected.m, s.expected.v, {
        lr: s.lr,
        weightDecay: s.weightDecay,
        step,
        beta1: 0.9,
        beta2: 0.95,
        eps: 1e-8,
      });
      for (const key of ['param', 'm', 'v'] as const) {
        expectClose(await s.tensors[key].toArray(), s.expected[key], {
          rtol: 1e-5,
          atol: 1e-6,
          label: `tensor ${i} ${JSON.stringify(s.shape)} ${key} step ${step}`,
        });
      }
    }
    for (const t of gradTensors) t.dispose();
  }
  for (const s of state) for (const t of Object.values(s.tensors)) t.dispose();
  return dispatches;
}

describe('adamwSteps (multi-tensor AdamW)', () => {
  it('updates many tensors per dispatch, each with its own lr and decay, gradients scaled', async () => {
    // Nine tensors of 4-wide rows (three dispatches of up to four) and two odd-sized ones (one).
    const shapes = [[8, 4], [3, 16], [64], [5, 8], [2, 2, 4], [12], [4, 4], [7, 4], [1, 4], [3, 3], [5]];
    expect(await run(device, shapes, 1, 0.25)).toBe(4);
  });

  it('updates chunked tensors piece by piece', async () => {
    // [40, 36] f32 (5,760 bytes) lies in two chunks: two pieces.
    expect(
      await run(
        smallBindings,
        [
          [40, 36],
          [6, 4],
        ],
        2,
        1,
      ),
    ).toBe(1);
  });

  it('rejects mismatched tensors and a gradient scale that is not finite', () => {
    device.scope(() => {
      const a = device.fromArray([1, 2, 3, 4], [4], 'f32');
      const b = device.fromArray([1, 2, 3, 4], [4], 'f32');
      const c = device.fromArray([1, 2, 3, 4], [4], 'f32');
      const short = device.fromArray([1, 2], [2], 'f32');
      expect(() => adamwSteps([{ param: a, grad: short, m: b, v: c, lr: 1 }], { step: 1 })).toThrow(
        /adamwSteps \(tensor 0, .*\): grad .* does not have the shape of param/,
      );
      expect(() =>
        adamwSteps([{ param: a, grad: b, m: c, v: device.fromArray([0, 0, 0, 0], [4], 'f32'), lr: 1 }], {
          step: 1,
          gradScale: Number.POSITIVE_INFINITY,
        }),
      ).toThrow(/gradScale Infinity must be finite/);
    });
  });
});
