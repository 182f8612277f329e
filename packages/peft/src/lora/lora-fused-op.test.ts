import { Linear } from '@webtune/nn';
import {
  backward,
  clearTape,
  createDevice,
  type Device,
  gradOf,
  requiresGrad,
  type Tensor,
  zeroGrad,
} from '@webtune/tensors';
import { expectClose, Rng } from '@webtune/test-utils';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime } from '../adapter-runtime.js';
import { LoraLinear } from './lora-linear.js';
import { type LoraReferenceInput, loraLinearReference } from './reference.js';

/*
 * Plain LoRA as one autograd op (lowRankLinear): the forward adds s B (A x) in the base product's
 * epilogue (2 products instead of 3), the input gradient dy W + dh A is one product (4 backward
 * products instead of 5), and o_proj/down_proj take the residual stream in the same epilogue
 * (no separate add). Checked against the float64 reference and counted against the separate
 * products (a device with tuning.lowRankEpilogue false).
 */

let fused: Device;
let separate: Device;
beforeAll(async () => {
  fused = await createDevice();
  separate = await createDevice({ tuning: { lowRankEpilogue: false } });
});
afterAll(() => {
  fused?.destroy();
  separate?.destroy();
});
afterEach(() => clearTape());

interface Shape {
  rows: number;
  inFeatures: number;
  outFeatures: number;
  r: number;
  bias: boolean;
}

function input(shape: Shape, seed: number): LoraReferenceInput {
  const rng = new Rng(seed);
  const f32 = (n: number, scale = 0.5) => Float64Array.from(Float32Array.from(rng.uniform(n, -scale, scale)));
  return {
    x: f32(shape.rows * shape.inFeatures, 1),
    rows: shape.rows,
    inFeatures: shape.inFeatures,
    outFeatures: shape.outFeatures,
    r: shape.r,
    weight: f32(shape.outFeatures * shape.inFeatures),
    bias: shape.bias ? f32(shape.outFeatures) : null,
    a: f32(shape.r * shape.inFeatures),
    b: f32(shape.outFeatures * shape.r),
    scaling: 16 / shape.r,
    magnitude: null,
  };
}

function layerOn(device: Device, shape: Shape, data: LoraReferenceInput, dropout = 0): LoraLinear {
  const keep = (values: Float64Array, dims: number[]) => device.fromArray(values, dims, 'f32').keep();
  const base = new Linear(shape.inFeatures, shape.outFeatures, shape.bias);
  base.setParameter('weight', keep(data.weight, [shape.outFeatures, shape.inFeatures]));
  if (data.bias) base.setParameter('bias', keep(data.bias, [shape.outFeatures]));
  const runtime = createRuntime();
  runtime.activeAdapter = 'default';
  runtime.training = true;
  const layer = new LoraLinear(base, runtime, 'model.layers.0.mlp.down_proj');
  layer.addAdapter(
    'default',
    { r: shape.r, alpha: 16, scaling: data.scaling, dropout, useDora: false },
    { a: keep(data.a, [shape.r, shape.inFeatures]), b: keep(data.b, [shape.outFeatures, shape.r]) },
  );
  return layer;
}

interface Run {
  forward: number;
  backward: number;
  adds: number;
  output: Float32Array;
  grads: Float32Array[];
}

/** Forward (onto a residual when given) and backward on `device`, counting dispatches. */
async function run(
  device: Device,
  shape: Shape,
  data: LoraReferenceInput,
  g: Float64Array,
  residual?: Float64Array,
) {
  const layer = layerOn(device, shape, data);
  try {
    return await device.scope(async (): Promise<Run> => {
      const x = requiresGrad(device.fromArray(data.x, [shape.rows, shape.inFeatures], 'f32'));
      const r = residual
        ? requiresGrad(device.fromArray(residual, [shape.rows, shape.outFeatures], 'f32'))
        : null;
      const leaves: Tensor[] = [
        x,
        ...layer.adapterTensors('default').map(([, t]) => requiresGrad(t)),
        ...(r ? [r] : []),
      ];
      const gradient = device.fromArray(g, [shape.rows, shape.outFeatures], 'f32');
      device.startProfile();
      const start = device.stats.dispatches;
      const output = r ? layer.forwardResidual(x, r) : layer.forward(x);
      const forward = device.stats.dispatches - start;
      backward(output, gradient);
      const profile = await device.stopProfile();
      const result = {
        forward,
        // Backward's products (packing copies of operands not stored along K, and the leaf
        // gradients' own copies and adds aside).
        backward:
          profile.keys
            .filter((k) => k.name.startsWith('matmul') && !k.name.includes(':pack:'))
            .reduce((sum, k) => sum + k.dispatches, 0) - forward,
        adds: profile.keys
          .filter((k) => k.name.startsWith('binary:') && k.name.includes(':add:'))
          .reduce((sum, k) => sum + k.dispatches, 0),
        output: (await output.toArray()) as Float32Array,
        grads: [] as Float32Array[],
      };
      for (const leaf of leaves) result.grads.push((await gradOf(leaf)!.toArray()) as Float32Array);
      zeroGrad(leaves);
      return result;
    });
  } finally {
    layer.dispose();
  }
}

describe('LoRA as one fused op (lowRankLinear)', () => {
  const shapes: [string, Shape][] = [
    ['rank 8, bias, rows past a tile', { rows: 29, inFeatures: 36, outFeatures: 20, r: 8, bias: true }],
    [
      'rank 3 (the kernel adds the term as a second product)',
      { rows: 7, inFeatures: 12, outFeatures: 9, r: 3, bias: false },
    ],
  ];
  shapes.forEach(([label, shape], index) => {
    it(`${label}: output and the gradients of x, A and B match float64`, async () => {
      const data = input(shape, 10 + index);
      const g = Float64Array.from(new Rng(20 + index).uniform(shape.rows * shape.outFeatures, -1, 1));
      const expected = loraLinearReference(data, g);
      const got = await run(fused, shape, data, g);
      expectClose(got.output, expected.output, { rtol: 1e-5, atol: 1e-5, label: 'output' });
      const names = ['x', 'A', 'B'];
      [expected.grads.x, expected.grads.a, expected.grads.b].forEach((want, i) => {
        expectClose(got.grads[i], want, { rtol: 1e-4, atol: 1e-5, label: names[i] });
      });
    });
  });

  it('takes 2 products forward and 4 backward where the separate products take 3 and 5', async () => {
    const shape = shapes[0][1];
    const data = input(shape, 30);
    const g = Float64Array.from(new Rng(31).uniform(shape.rows * shape.outFeatures, -1, 1));
    const one = await run(fused, shape, data, g);
    const three = await run(separate, shape, data, g);
    // Forward: x A^T, then x W^T + bias + s h B^T. Backward: dh = s g B, dB, dA, dx = g W + dh A.
    expect([one.forward, one.backward]).toEqual([2, 4]);
    expect([three.forward, three.backward]).toEqual([3, 5]);
    expectClose(one.output, three.output, { rtol: 1e-5, atol: 1e-6, label: 'output' });
    one.grads.forEach((grad, i) => {
      expectClose(grad, three.grads[i], { rtol: 1e-5, atol: 1e-6, label: `grad ${i}` });
    });
  });

  it('adds the residual stream in the same epilogue (forwardResidual): no add, its gradient passed on', async () => {
    const shape = shapes[0][1];
    const data = input(shape, 40);
    const rng = new Rng(41);
    const g = Float64Array.from(rng.uniform(shape.rows * shape.outFeatures, -1, 1));
    const residual = Float64Array.from(Float32Array.from(rng.uniform(shape.rows * shape.outFeatures, -1, 1)));
    const expected = loraLinearReference(data, g);
    const got = await run(fused, shape, data, g, residual);
    const apart = await run(separate, shape, data, g, residual);
    expect(got.forward).toBe(2);
    expect(got.adds).toBe(0);
    expect(apart.forward).toBe(4);
    expectClose(
      got.output,
      expected.output.map((v, i) => v + residual[i]),
      { rtol: 1e-5, atol: 1e-5, label: 'output' },
    );
    expectClose(got.grads[3], g, { rtol: 0, atol: 1e-7, label: 'residual gradient' });
    expectClose(got.grads[0], expected.grads.x, { rtol: 1e-4, atol: 1e-5, label: 'x' });
  });

  it('keeps the separate products under dropout while training (the base sees the undropped input)', async () => {
    const shape = shapes[0][1];
    const data = input(shape, 50);
    const layer = layerOn(fused, shape, data, 0.25);
    try {
      fused.scope(() => {
        const x = fused.fromArray(data.x, [shape.rows, shape.inFeatures], 'f32');
        const start = fused.stats.dispatches;
        layer.forward(x);
        // Base product, the dropout mask and its product, x A^T, the B product onto the base.
        expect(fused.stats.dispatches - start).toBeGreaterThan(2);
      });
    } finally {
      layer.dispose();
    }
  });
});
