import { Module } from '@webtune/nn';
import {
  backward,
  clearTape,
  createDevice,
  type Device,
  gradOf,
  requiresGrad,
  type Tensor,
} from '@webtune/tensors';
import { expectClose, Rng } from '@webtune/test-utils';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime } from '../adapter-runtime.js';
import { AdapterBlock } from './adapter-layer.js';
import { type BottleneckReferenceInput, bottleneckReference } from './reference.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());
afterEach(() => clearTape());

/** A block whose output is its input, so the test sees the adapter alone (and d/dh flows through). */
class IdentityBlock extends Module {
  forward(x: Tensor): Tensor {
    return x;
  }
}

const CASES = [
  { activation: 'relu', rows: 5, hidden: 8, size: 3, scaling: 1 },
  { activation: 'silu', rows: 7, hidden: 12, size: 4, scaling: 0.5 },
  { activation: 'gelu', rows: 3, hidden: 33, size: 5, scaling: 2 },
  { activation: 'tanh', rows: 9, hidden: 6, size: 1, scaling: 1 },
] as const;

function referenceInput(c: (typeof CASES)[number], seed: number): BottleneckReferenceInput {
  const rng = new Rng(seed);
  const values = (n: number, scale = 1) =>
    Float64Array.from(Float32Array.from(rng.uniform(n, -scale, scale)));
  return {
    h: values(c.rows * c.hidden),
    rows: c.rows,
    hidden: c.hidden,
    size: c.size,
    down: values(c.size * c.hidden, 0.6),
    downBias: values(c.size, 0.3),
    up: values(c.hidden * c.size, 0.6),
    upBias: values(c.hidden, 0.3),
    activation: c.activation,
    scaling: c.scaling,
  };
}

describe('bottleneck adapter against the float64 reference', () => {
  CASES.forEach((c, index) => {
    it(`${c.activation}: the reference's hand-written gradients match central differences`, () => {
      const input = referenceInput(c, 20 + index);
      const g = Float64Array.from(new Rng(40 + index).uniform(c.rows * c.hidden, -1, 1));
      const { grads } = bottleneckReference(input, g);
      const objective = () => bottleneckReference(input, g).output.reduce((sum, v, i) => sum + v * g[i], 0);
      const pairs: [Float64Array, Float64Array, string][] = [
        [input.h, grads.h, 'h'],
        [input.down, grads.down, 'down'],
        [input.downBias, grads.downBias, 'down bias'],
        [input.up, grads.up, 'up'],
        [input.upBias, grads.upBias, 'up bias'],
      ];
      for (const [values, analytic, label] of pairs) {
        const numeric = new Float64Array(values.length);
        for (let i = 0; i < values.length; i++) {
          const saved = values[i];
          values[i] = saved + 1e-6;
          const plus = objective();
          values[i] = saved - 1e-6;
          const minus = objective();
          values[i] = saved;
          numeric[i] = (plus - minus) / 2e-6;
        }
        // gelu's reference erf is an approximation (1.5e-7): its derivative differs slightly.
        expectClose(analytic, numeric, { rtol: c.activation === 'gelu' ? 1e-5 : 1e-6, atol: 1e-6, label });
      }
    });

    it(`${c.activation}: GPU forward and gradients (input, both projections, biases) match the reference`, async () => {
      const input = referenceInput(c, 20 + index);
      const g = Float64Array.from(new Rng(60 + index).uniform(c.rows * c.hidden, -1, 1));
      const expected = bottleneckReference(input, g);
      const runtime = createRuntime();
      runtime.activeAdapter = 'default';
      const block = new AdapterBlock(new IdentityBlock() as never, c.hidden, runtime, 'block');
      const tensor = (values: Float64Array, shape: number[]) => device.fromArray(values, shape, 'f32').keep();
      block.addAdapter(
        'default',
        { size: c.size, activation: c.activation, dropout: 0, scaling: c.scaling },
        new Map([
          ['adapter.down_proj.weight', tensor(input.down, [c.size, c.hidden])],
          ['adapter.down_proj.bias', tensor(input.downBias, [c.size])],
          ['adapter.up_proj.weight', tensor(input.up, [c.hidden, c.size])],
          ['adapter.up_proj.bias', tensor(input.upBias, [c.hidden])],
        ]),
      );
      const h = requiresGrad(device.fromArray(input.h, [c.rows, c.hidden], 'f32'));
      const trainable = block.adapterTensors('default');
      for (const [, t] of trainable) requiresGrad(t);
      const output = block.forward(h);
      expectClose((await output.toArray()) as Float32Array, expected.output, {
        rtol: 1e-5,
        atol: 1e-5,
        label: 'output',
      });
      backward(output, device.fromArray(g, [c.rows, c.hidden], 'f32'));
      const wanted: Record<string, Float64Array> = {
        'adapter.down_proj.weight': expected.grads.down,
        'adapter.down_proj.bias': expected.grads.downBias,
        'adapter.up_proj.weight': expected.grads.up,
        'adapter.up_proj.bias': expected.grads.upBias,
      };
      for (const [key, t] of trainable) {
        expectClose((await gradOf(t)!.toArray()) as Float32Array, wanted[key], {
          rtol: 1e-4,
          atol: 1e-5,
          label: key,
        });
      }
      expectClose((await gradOf(h)!.toArray()) as Float32Array, expected.grads.h, {
        rtol: 1e-4,
        atol: 1e-5,
        label: 'h',
      });
      // Disabled: the block's output, untouched.
      runtime.disabled = true;
      expect(block.forward(h)).toBe(h);
      requiresGrad(h, false);
      for (const [, t] of trainable) requiresGrad(t, false);
      block.dispose();
    });
  });
});
