import { Rng, requireF16 } from '@webtune/test-utils';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../device/create-device.js';
import type { Device } from '../device/device.js';
import type { Tensor } from '../tensor/tensor.js';
import { backward, clearTape, gradOf, requiresGrad, tapeSize, zeroGrad } from './engine.js';
import { differentiable } from './functions.js';
import { GPU_BACKEND } from './gpu-backend.js';
import { HALF_SAVED_POLICY, type SavedTensorContext, withHalfSavedTensors } from './half-saved.js';
import { REFERENCE_BACKEND, ReferenceTensor } from './reference-backend.js';
import { type LlamaParams, type LlamaShape, llamaLoss, ropeTables } from './toy-llama.js';

afterEach(() => clearTape());

const SHAPE: LlamaShape = { batch: 2, seq: 9, dim: 24, heads: 4, kvHeads: 2, ffn: 40, vocab: 19, eps: 1e-5 };

/** A seeded two-layer Llama of any backend, its loss with each layer optionally wrapped. */
function toyModel<T extends object>(
  make: (data: Float64Array, shape: number[], dtype?: 'i32') => T,
  seed: number,
) {
  const rng = new Rng(seed);
  const { dim, heads, kvHeads, ffn, vocab, batch, seq } = SHAPE;
  const headDim = dim / heads;
  const weight = (rows: number, columns: number) =>
    make(Float64Array.from(rng.normal(rows * columns, 1 / Math.sqrt(columns)), Math.fround), [rows, columns]);
  const norm = () => make(Float64Array.from(rng.uniform(dim, 0.5, 1.5), Math.fround), [dim]);
  const params: LlamaParams<T> = {
    embedding: make(Float64Array.from(rng.normal(vocab * dim, 1), Math.fround), [vocab, dim]),
    layers: Array.from({ length: 2 }, () => ({
      attention_norm: norm(),
      wq: weight(dim, dim),
      wk: weight(kvHeads * headDim, dim),
      wv: weight(kvHeads * headDim, dim),
      wo: weight(dim, dim),
      mlp_norm: norm(),
      w_gate: weight(ffn, dim),
      w_up: weight(ffn, dim),
      w_down: weight(dim, ffn),
    })),
    final_norm: norm(),
  };
  const list = [
    params.embedding,
    ...params.layers.flatMap((layer) => Object.values(layer) as T[]),
    params.final_norm,
  ];
  const rope = ropeTables(seq, headDim, 10000);
  const tables = { cos: make(rope.cos, [seq, headDim / 2]), sin: make(rope.sin, [seq, headDim / 2]) };
  const ids = make(Float64Array.from(rng.integers(batch * seq, 0, vocab)), [batch, seq], 'i32');
  const labels = make(Float64Array.from(rng.integers(batch * seq, 0, vocab)), [batch, seq], 'i32');
  return {
    params: list,
    loss: (ag: ReturnType<typeof differentiable<T>>, half: boolean) =>
      llamaLoss(ag, params, ids, labels, tables, SHAPE, (run, h) =>
        half ? withHalfSavedTensors(() => run(h)) : run(h),
      ),
  };
}

describe('activations saved in f16 (float64 reference)', () => {
  const ag = differentiable(REFERENCE_BACKEND);
  const model = toyModel((data, shape, dtype) => new ReferenceTensor(data, shape, dtype ?? 'f32'), 7);

  const gradients = (half: boolean) => {
    for (const p of model.params) requiresGrad(p);
    backward(model.loss(ag, half));
    const grads = model.params.map((p) => Float64Array.from((gradOf(p) as ReferenceTensor).data));
    zeroGrad(model.params);
    return grads;
  };

  it('gives the exact loss and gradients within 2e-3 of the largest (f16 rounding of what backward reads)', () => {
    const exact = gradients(false);
    const half = gradients(true);
    const { largest, worst } = compare(exact, half);
    // Something was stored in f16 (the gradients moved), by no more than f16's rounding allows.
    expect(worst).toBeGreaterThan(1e-9 * largest);
    expect(worst).toBeLessThan(2e-3 * largest);
    expect(tapeSize()).toBe(0);
  });

  it('matches central finite differences of the loss within 2e-3 of the largest gradient', () => {
    const half = gradients(true);
    const largest = Math.max(...half.map((g) => Math.max(...g.map(Math.abs))));
    const rng = new Rng(3);
    for (const index of [1, 2, 5, 8, 10]) {
      const tensor = model.params[index] as ReferenceTensor;
      for (const j of rng.integers(3, 0, tensor.data.length)) {
        const saved = tensor.data[j];
        const h = 1e-5;
        tensor.data[j] = saved + h;
        const plus = (model.loss(ag, false) as ReferenceTensor).data[0];
        tensor.data[j] = saved - h;
        const minus = (model.loss(ag, false) as ReferenceTensor).data[0];
        tensor.data[j] = saved;
        expect(Math.abs((plus - minus) / (2 * h) - half[index][j])).toBeLessThan(2e-3 * largest);
      }
    }
  });

  it('stores what the rule allows: never a norm input, the gated product or a log-sum-exp', () => {
    const seen = new Set<string>();
    for (const p of model.params) requiresGrad(p);
    const recordingPolicy = (context: SavedTensorContext) => {
      seen.add(`${context.saving}<-${context.producer}`);
      return HALF_SAVED_POLICY(context);
    };
    const loss = llamaLossWithPolicy(ag, model, recordingPolicy);
    backward(loss);
    zeroGrad(model.params);
    // Every activation saved inside the scope (here the whole loss), by the op that reads it <-
    // the op that made it; the log-sum-exps are not among them.
    expect([...seen].sort()).toEqual(
      [
        'attention<-attention',
        'attention<-matmul',
        'attention<-rotary',
        'crossEntropy<-matmul',
        'rmsNorm<-embedding',
        'matmul<-attention',
        'matmul<-rmsNorm',
        'matmul<-swiglu',
        'rmsNorm<-add',
        'swiglu<-matmul',
      ].sort(),
    );
    expect(HALF_SAVED_POLICY({ saving: 'rmsNorm', producer: 'add' })).toBe(false);
    expect(HALF_SAVED_POLICY({ saving: 'crossEntropy', producer: 'matmul' })).toBe(false);
    expect(HALF_SAVED_POLICY({ saving: 'matmul', producer: 'swiglu' })).toBe(false);
    expect(HALF_SAVED_POLICY({ saving: 'attention', producer: 'rotary' })).toBe(true);
    expect(HALF_SAVED_POLICY({ saving: 'matmul', producer: 'rmsNorm' })).toBe(true);
    expect(HALF_SAVED_POLICY({ saving: 'matmul', producer: 'dropout' })).toBe(true);
    expect(HALF_SAVED_POLICY({ saving: 'matmul', producer: 'matmul' })).toBe(false);
  });
});

/** The largest gradient entry and the largest difference from it. */
function compare(expected: ArrayLike<number>[], actual: ArrayLike<number>[]) {
  let largest = 0;
  let worst = 0;
  expected.forEach((g, i) => {
    for (let j = 0; j < g.length; j++) {
      largest = Math.max(largest, Math.abs(g[j]));
      worst = Math.max(worst, Math.abs(g[j] - actual[i][j]));
    }
  });
  return { largest, worst };
}

function llamaLossWithPolicy<T extends object>(
  ag: ReturnType<typeof differentiable<T>>,
  model: ReturnType<typeof toyModel<T>>,
  policy: (context: SavedTensorContext) => boolean,
): T {
  return withHalfSavedTensors(() => model.loss(ag, false), policy);
}

describe('activations saved in f16 on the GPU', () => {
  let device: Device;
  beforeAll(async () => {
    device = await createDevice();
  });

  it('keeps less until backward, frees every copy after it, and agrees with f32', async (context) => {
    requireF16(context, device.hasF16);
    const ag = differentiable(GPU_BACKEND);
    const model = toyModel<Tensor>(
      (data, shape, dtype) =>
        device.fromArray(
          dtype === 'i32' ? Int32Array.from(data) : Float32Array.from(data),
          shape,
          dtype ?? 'f32',
        ),
      11,
    );
    for (const p of model.params) requiresGrad(p as Tensor);
    const run = async (half: boolean) => {
      const before = device.memory().liveBytes;
      const loss = device.scope(() => model.loss(ag, half));
      const kept = device.memory().liveBytes - before;
      backward(loss);
      loss.dispose();
      const grads = await Promise.all(model.params.map((p) => gradOf(p as Tensor)!.toArray()));
      zeroGrad(model.params as Tensor[]);
      expect(device.memory().liveBytes).toBe(before);
      return { kept, grads };
    };
    const full = await run(false);
    const half = await run(true);
    expect(half.kept).toBeLessThan(full.kept);
    const { largest, worst } = compare(full.grads, half.grads);
    expect(worst).toBeGreaterThan(0);
    expect(worst).toBeLessThan(2e-3 * largest);
  });
});
