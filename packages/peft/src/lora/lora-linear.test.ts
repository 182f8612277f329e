import { Linear } from '@webtune/nn';
import {
  backward,
  clearTape,
  createDevice,
  type Device,
  dropoutMask,
  gradOf,
  type PackedFormat,
  packWeight,
  requiresGrad,
  type Tensor,
} from '@webtune/tensors';
import { expectClose, Rng } from '@webtune/test-utils';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime } from '../adapter-runtime.js';
import { loraScaling } from './lora-config.js';
import { LoraLinear } from './lora-linear.js';
import { type LoraReferenceInput, loraLinearReference } from './reference.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());
afterEach(() => clearTape());

interface Case {
  label: string;
  rows: number;
  inFeatures: number;
  outFeatures: number;
  r: number;
  alpha: number;
  rslora?: boolean;
  bias?: boolean;
  dora?: boolean;
}

const CASES: Case[] = [
  { label: 'LoRA', rows: 5, inFeatures: 7, outFeatures: 6, r: 3, alpha: 6 },
  {
    label: 'LoRA with bias, rsLoRA, r = 1',
    rows: 3,
    inFeatures: 33,
    outFeatures: 9,
    r: 1,
    alpha: 4,
    rslora: true,
    bias: true,
  },
  { label: 'DoRA', rows: 4, inFeatures: 8, outFeatures: 5, r: 2, alpha: 4, dora: true },
  {
    label: 'DoRA with bias, rows not a tile multiple',
    rows: 7,
    inFeatures: 17,
    outFeatures: 11,
    r: 4,
    alpha: 8,
    dora: true,
    bias: true,
  },
];

function referenceInput(c: Case, seed: number): LoraReferenceInput {
  const rng = new Rng(seed);
  const values = (n: number, scale = 1) => Float64Array.from(rng.uniform(n, -scale, scale));
  const weight = values(c.outFeatures * c.inFeatures, 0.5);
  const a = values(c.r * c.inFeatures, 0.5);
  const b = values(c.outFeatures * c.r, 0.5);
  const scaling = loraScaling(c.r, c.alpha, c.rslora ?? false);
  let magnitude: Float64Array | null = null;
  if (c.dora) {
    magnitude = new Float64Array(c.outFeatures);
    for (let j = 0; j < c.outFeatures; j++) {
      let sum = 0;
      for (let k = 0; k < c.inFeatures; k++) sum += weight[j * c.inFeatures + k] ** 2;
      magnitude[j] = Math.sqrt(sum) * (0.7 + 0.6 * rng.next());
    }
  }
  // Values rounded to float32, as the GPU holds them.
  const f32 = (x: Float64Array) => Float64Array.from(Float32Array.from(x));
  return {
    x: f32(values(c.rows * c.inFeatures)),
    rows: c.rows,
    inFeatures: c.inFeatures,
    outFeatures: c.outFeatures,
    r: c.r,
    weight: f32(weight),
    bias: c.bias ? f32(values(c.outFeatures)) : null,
    a: f32(a),
    b: f32(b),
    scaling,
    magnitude: magnitude ? f32(magnitude) : null,
  };
}

/**
 * <reference output, g> as a function of one input, for central differences. DoRA's norm is held
 * at its value (PEFT detaches it, DoRA paper section 4.3), and a check shows that letting it vary
 * would give another gradient for A and B: the detachment is real, not a no-op.
 */
function expectReferenceGradients(input: LoraReferenceInput, seed: number): void {
  const g = Float64Array.from(new Rng(seed).uniform(input.rows * input.outFeatures, -1, 1));
  const { grads, norm } = loraLinearReference(input, g);
  const fixed = { ...input, fixedNorm: input.magnitude ? norm : undefined };
  const objective = () => loraLinearReference(fixed, g).output.reduce((sum, v, i) => sum + v * g[i], 0);
  if (input.magnitude) {
    const moving = () => loraLinearReference(input, g).output.reduce((sum, v, i) => sum + v * g[i], 0);
    const saved = input.a[0];
    input.a[0] = saved + 1e-6;
    const plus = moving();
    input.a[0] = saved - 1e-6;
    const minus = moving();
    input.a[0] = saved;
    expect(Math.abs((plus - minus) / 2e-6 - grads.a[0])).toBeGreaterThan(1e-4);
  }
  const check = (values: Float64Array, analytic: Float64Array, label: string) => {
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
    expectClose(analytic, numeric, { rtol: 1e-6, atol: 1e-8, label });
  };
  check(input.x, grads.x, 'x');
  check(input.a, grads.a, 'A');
  check(input.b, grads.b, 'B');
  if (input.magnitude) check(input.magnitude, grads.magnitude!, 'magnitude');
}

function gpu(values: Float64Array, shape: number[]): Tensor {
  return device.fromArray(values, shape, 'f32').keep();
}

function buildLayer(
  c: Case,
  input: LoraReferenceInput,
  path = 'model.layers.0.self_attn.q_proj',
): LoraLinear {
  const base = new Linear(c.inFeatures, c.outFeatures, c.bias ?? false);
  base.setParameter('weight', gpu(input.weight, [c.outFeatures, c.inFeatures]));
  if (input.bias) base.setParameter('bias', gpu(input.bias, [c.outFeatures]));
  const runtime = createRuntime();
  runtime.activeAdapter = 'default';
  const layer = new LoraLinear(base, runtime, path);
  layer.addAdapter(
    'default',
    { r: c.r, alpha: c.alpha, scaling: input.scaling, dropout: 0, useDora: c.dora ?? false },
    {
      a: gpu(input.a, [c.r, c.inFeatures]),
      b: gpu(input.b, [c.outFeatures, c.r]),
      magnitude: input.magnitude ? gpu(input.magnitude, [c.outFeatures]) : null,
    },
  );
  return layer;
}

describe('LoRA and DoRA layers against the float64 reference', () => {
  CASES.forEach((c, index) => {
    it(`${c.label}: the reference's hand-written gradients match central differences`, () => {
      expectReferenceGradients(referenceInput(c, 10 + index), 50 + index);
    });

    it(`${c.label}: GPU forward and recorded gradients of A, B (and magnitude) match the reference`, async () => {
      const input = referenceInput(c, 10 + index);
      const g = Float64Array.from(new Rng(70 + index).uniform(c.rows * c.outFeatures, -1, 1));
      const expected = loraLinearReference(input, g);
      const layer = buildLayer(c, input);
      const trainable = layer.adapterTensors('default');
      for (const [, tensor] of trainable) requiresGrad(tensor);
      const output = layer.forward(device.fromArray(input.x, [c.rows, c.inFeatures], 'f32'));
      expectClose((await output.toArray()) as Float32Array, expected.output, {
        rtol: 1e-5,
        atol: 1e-5,
        label: 'output',
      });
      backward(output, device.fromArray(g, [c.rows, c.outFeatures], 'f32'));
      const gradients: Record<string, Float64Array | null> = {
        'lora_A.weight': expected.grads.a,
        'lora_B.weight': expected.grads.b,
        lora_magnitude_vector: expected.grads.magnitude,
      };
      expect(trainable.map(([key]) => key)).toEqual(
        c.dora
          ? ['lora_A.weight', 'lora_B.weight', 'lora_magnitude_vector']
          : ['lora_A.weight', 'lora_B.weight'],
      );
      for (const [key, tensor] of trainable) {
        const grad = gradOf(tensor);
        expect(grad, key).not.toBeNull();
        expectClose((await grad!.toArray()) as Float32Array, gradients[key]!, {
          rtol: 1e-4,
          atol: 1e-5,
          label: key,
        });
      }
      // The frozen base weight gets no gradient.
      expect(gradOf(layer.baseLayer.parameter('weight'))).toBeNull();
      for (const [, tensor] of trainable) requiresGrad(tensor, false);
      layer.dispose();
    });

    it(`${c.label}: merge gives the unmerged output, unmerge restores the weight`, async () => {
      const input = referenceInput(c, 10 + index);
      const layer = buildLayer(c, input);
      const x = device.fromArray(input.x, [c.rows, c.inFeatures], 'f32');
      const unmerged = (await layer.forward(x).toArray()) as Float32Array;
      layer.merge(['default']);
      expect(layer.merged).toEqual(['default']);
      expectClose((await layer.forward(x).toArray()) as Float32Array, unmerged, { rtol: 1e-5, atol: 1e-5 });
      // The merged weight is W + s B A (LoRA) or (m / ||W + s B A||) (W + s B A) (DoRA).
      const expectedWeight = new Float64Array(c.outFeatures * c.inFeatures);
      for (let j = 0; j < c.outFeatures; j++) {
        let norm = 0;
        const row = new Float64Array(c.inFeatures);
        for (let k = 0; k < c.inFeatures; k++) {
          let ba = 0;
          for (let l = 0; l < c.r; l++) ba += input.b[j * c.r + l] * input.a[l * c.inFeatures + k];
          row[k] = input.weight[j * c.inFeatures + k] + input.scaling * ba;
          norm += row[k] ** 2;
        }
        const factor = input.magnitude ? input.magnitude[j] / Math.sqrt(norm) : 1;
        for (let k = 0; k < c.inFeatures; k++) expectedWeight[j * c.inFeatures + k] = factor * row[k];
      }
      const merged = (await layer.baseLayer.parameter('weight').toArray()) as Float32Array;
      expectClose(merged, expectedWeight, { rtol: 1e-5, atol: 1e-6, label: 'merged weight' });
      layer.unmerge();
      expectClose((await layer.baseLayer.parameter('weight').toArray()) as Float32Array, input.weight, {
        rtol: 1e-5,
        atol: 1e-6,
        label: 'restored weight',
      });
      layer.dispose();
    });
  });

  for (const format of ['q4_0', 'q8_0', 'f16'] as PackedFormat[]) {
    it(`DoRA on a packed ${format} base: the norm is that of the decoded weight; output and gradients match the reference`, async () => {
      const c: Case = {
        label: `DoRA ${format}`,
        rows: 5,
        inFeatures: 64,
        outFeatures: 7,
        r: 2,
        alpha: 4,
        dora: true,
      };
      const input = referenceInput(c, 31);
      const packed = packWeight(
        device,
        Float32Array.from(input.weight),
        [c.outFeatures, c.inFeatures],
        format,
      );
      // The reference runs on the weight the kernels decode.
      const decoded = { ...input, weight: await packed.decode() };
      const g = Float64Array.from(new Rng(32).uniform(c.rows * c.outFeatures, -1, 1));
      const expected = loraLinearReference(decoded, g);
      const layer = buildLayer(c, input);
      layer.baseLayer.setPackedParameter('weight', packed);
      const norm = (await layer.weightNorm('default').toArray()) as Float32Array;
      const wanted = new Float64Array(c.outFeatures);
      for (let j = 0; j < c.outFeatures; j++) {
        let sum = 0;
        for (let k = 0; k < c.inFeatures; k++) {
          let delta = 0;
          for (let t = 0; t < c.r; t++) delta += input.b[j * c.r + t] * input.a[t * c.inFeatures + k];
          sum += (decoded.weight[j * c.inFeatures + k] + input.scaling * delta) ** 2;
        }
        wanted[j] = Math.sqrt(sum);
      }
      expectClose(norm, wanted, { rtol: 1e-5, atol: 1e-5, label: 'weight norm' });
      const trainable = layer.adapterTensors('default');
      for (const [, tensor] of trainable) requiresGrad(tensor);
      const output = layer.forward(device.fromArray(input.x, [c.rows, c.inFeatures], 'f32'));
      expectClose((await output.toArray()) as Float32Array, expected.output, {
        rtol: 1e-5,
        atol: 1e-5,
        label: 'output',
      });
      backward(output, device.fromArray(g, [c.rows, c.outFeatures], 'f32'));
      const grads = [expected.grads.a, expected.grads.b, expected.grads.magnitude!];
      for (const [index, [key, tensor]] of trainable.entries()) {
        expectClose((await gradOf(tensor)!.toArray()) as Float32Array, grads[index], {
          rtol: 1e-4,
          atol: 1e-5,
          label: key,
        });
        requiresGrad(tensor, false);
      }
      layer.dispose();
    });
  }

  it('DoRA with dropout: the base term sees the dropped input too (PEFT), gradients included', async () => {
    const c: Case = {
      label: 'DoRA dropout',
      rows: 6,
      inFeatures: 12,
      outFeatures: 7,
      r: 3,
      alpha: 6,
      dora: true,
      bias: true,
    };
    const input = referenceInput(c, 8);
    const layer = buildLayer(c, input);
    Object.assign(layer.settingsOf('default'), { dropout: 0.3 });
    layer.runtime.training = true;
    const mask = (await dropoutMask(device, [c.rows, c.inFeatures], 0.3, {
      seed: layer.dropoutSeed(),
      offset: 0,
    }).toArray()) as Float32Array;
    expect(mask.some((v) => v === 0)).toBe(true);
    const dropped = { ...input, x: input.x.map((v, i) => Math.fround(v * mask[i])) };
    const g = Float64Array.from(new Rng(81).uniform(c.rows * c.outFeatures, -1, 1));
    const adapted = loraLinearReference(dropped, g);
    const noAdapter = { ...input, b: new Float64Array(input.b.length), magnitude: null };
    const baseDropped = loraLinearReference({ ...noAdapter, x: dropped.x }, g).output;
    const baseFull = loraLinearReference(noAdapter, g).output;
    // y = W x + b + [(m / n)(W x' + s B A x') + b] - (W x' + b)
    const expected = adapted.output.map((v, i) => v - baseDropped[i] + baseFull[i]);
    const trainable = layer.adapterTensors('default');
    for (const [, tensor] of trainable) requiresGrad(tensor);
    const output = layer.forward(device.fromArray(input.x, [c.rows, c.inFeatures], 'f32'));
    expectClose((await output.toArray()) as Float32Array, expected, {
      rtol: 1e-5,
      atol: 1e-5,
      label: 'output',
    });
    backward(output, device.fromArray(g, [c.rows, c.outFeatures], 'f32'));
    const wanted = [adapted.grads.a, adapted.grads.b, adapted.grads.magnitude!];
    for (const [index, [key, tensor]] of trainable.entries()) {
      expectClose((await gradOf(tensor)!.toArray()) as Float32Array, wanted[index], {
        rtol: 1e-4,
        atol: 1e-5,
        label: key,
      });
      requiresGrad(tensor, false);
    }
    layer.dispose();
  });

  it('dropout applies in training only, with masks fixed by the seed', async () => {
    const c: Case = { label: 'dropout', rows: 6, inFeatures: 16, outFeatures: 8, r: 4, alpha: 4 };
    const input = referenceInput(c, 3);
    const layer = buildLayer(c, input);
    // settingsOf returns the stored settings: switch dropout on for this layer.
    Object.assign(layer.settingsOf('default'), { dropout: 0.5 });
    const runtime = layer.runtime;
    const x = device.fromArray(input.x, [c.rows, c.inFeatures], 'f32');
    const evalOutput = (await layer.forward(x).toArray()) as Float32Array;
    const expected = loraLinearReference(input, new Float64Array(c.rows * c.outFeatures)).output;
    expectClose(evalOutput, expected, { rtol: 1e-5, atol: 1e-5, label: 'eval ignores dropout' });
    runtime.training = true;
    runtime.seed = 11;
    const first = (await layer.forward(x).toArray()) as Float32Array;
    const second = (await layer.forward(x).toArray()) as Float32Array;
    runtime.seed = 12;
    const otherSeed = (await layer.forward(x).toArray()) as Float32Array;
    runtime.training = false;
    const largest = (a: Float32Array, b: Float32Array) => Math.max(...a.map((v, i) => Math.abs(v - b[i])));
    expect(largest(first, evalOutput)).toBeGreaterThan(1e-3);
    // The mask is a pure function of (runtime seed, layer path, shape): a second forward with the
    // same seed (gradient checkpointing's recomputation) drops the same elements ...
    expect(second).toEqual(first);
    // ... another seed (the next micro-batch) draws another mask ...
    expect(largest(first, otherSeed)).toBeGreaterThan(1e-3);
    // ... a new layer at the same path repeats it (a resumed run), one at another path does not.
    const again = buildLayer(c, input);
    const elsewhere = buildLayer(c, input, 'model.layers.1.self_attn.q_proj');
    for (const other of [again, elsewhere]) {
      Object.assign(other.settingsOf('default'), { dropout: 0.5 });
      other.runtime.training = true;
      other.runtime.seed = 11;
    }
    expect((await again.forward(x).toArray()) as Float32Array).toEqual(first);
    expect(largest((await elsewhere.forward(x).toArray()) as Float32Array, first)).toBeGreaterThan(1e-3);
    elsewhere.dispose();
    layer.dispose();
    again.dispose();
  });
});
