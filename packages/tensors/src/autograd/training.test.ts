import { Rng } from '@webtune/test-utils';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../device/create-device.js';
import type { Device } from '../device/device.js';
import { adamwStep } from '../kernels/adamw/adamw.js';
import { adamwReference } from '../kernels/adamw/reference.js';
import type { DType } from '../tensor/dtype.js';
import type { Tensor } from '../tensor/tensor.js';
import type { AutogradBackend } from './backend.js';
import { backward, clearTape, gradOf, noGrad, requiresGrad, zeroGrad } from './engine.js';
import { type DifferentiableFunctions, differentiable } from './functions.js';
import { GPU_BACKEND } from './gpu-backend.js';
import { REFERENCE_BACKEND, ReferenceTensor } from './reference-backend.js';
import { type LlamaParams, type LlamaShape, llamaLoss, ropeTables } from './toy-llama.js';

/*
 * End to end: the same model trained 20 steps with AdamW on the GPU (f32 kernels, fused adamw)
 * and on the float64 reference (the same rules, adamwReference). Losses must agree step by step
 * to 1e-4 relative, and fall.
 */

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterEach(() => clearTape());

const STEPS = 20;
const ADAMW = { lr: 1e-2, weightDecay: 0.01 };

/** What a training run needs from one backend: tensors from host data, and an optimizer step. */
interface Side<T extends object> {
  ag: DifferentiableFunctions<T>;
  tensor(data: ArrayLike<number>, shape: number[], dtype?: DType): T;
  /** Runs `fn` freeing what it creates (device.scope on the GPU). */
  scope<R>(fn: () => Promise<R>): Promise<R>;
  update(param: T, state: { m: T; v: T }, step: number): void;
  moments(param: T): { m: T; v: T };
  value(loss: T): Promise<number>;
}

const gpuSide = (): Side<Tensor> => ({
  ag: differentiable(GPU_BACKEND),
  tensor: (data, shape, dtype = 'f32') => device.fromArray(data, shape, dtype),
  scope: (fn) => device.scope(fn),
  moments: (param) => ({
    m: device.fromArray(new Float32Array(param.size), param.shape, 'f32'),
    v: device.fromArray(new Float32Array(param.size), param.shape, 'f32'),
  }),
  update: (param, { m, v }, step) => adamwStep(param, gradOf(param)!, m, v, { ...ADAMW, step }),
  // Reading the loss is a sync point: once per step, as a training loop that logs every step.
  value: (loss) => loss.item(),
});

const referenceSide = (): Side<ReferenceTensor> => ({
  ag: differentiable(REFERENCE_BACKEND),
  tensor: (data, shape, dtype = 'f32') => ReferenceTensor.from(data, shape, dtype),
  scope: (fn) => fn(),
  moments: (param) => ({
    m: ReferenceTensor.from(new Float64Array(param.data.length), param.shape),
    v: ReferenceTensor.from(new Float64Array(param.data.length), param.shape),
  }),
  update: (param, state, step) => {
    const next = adamwReference(param.data, gradOf(param)!.data, state.m.data, state.v.data, {
      ...ADAMW,
      step,
    });
    param.data.set(next.param);
    state.m.data.set(next.m);
    state.v.data.set(next.v);
  },
  value: async (loss) => loss.data[0],
});

/** Trains `params` for STEPS steps of `lossOf` and returns the loss of every step. */
async function train<T extends object>(side: Side<T>, params: T[], lossOf: () => T): Promise<number[]> {
  for (const p of params) requiresGrad(p);
  const states = params.map((p) => side.moments(p));
  const losses: number[] = [];
  for (let step = 1; step <= STEPS; step++) {
    losses.push(
      await side.scope(async () => {
        const loss = lossOf();
        backward(loss);
        noGrad(() => {
          for (const [i, p] of params.entries()) side.update(p, states[i], step);
        });
        zeroGrad(params);
        return side.value(loss);
      }),
    );
  }
  return losses;
}

function expectSameLosses(gpuLosses: number[], referenceLosses: number[]) {
  gpuLosses.forEach((loss, step) => {
    const difference = Math.abs(loss - referenceLosses[step]) / Math.abs(referenceLosses[step]);
    expect(difference, `step ${step + 1}: GPU ${loss}, reference ${referenceLosses[step]}`).toBeLessThan(
      1e-4,
    );
  });
}

/** Seeded f32 values shared by both sides. */
const draw = (rng: Rng, n: number, std: number) => Float32Array.from(rng.normal(n, std), Math.fround);

describe('training end to end: GPU losses equal the float64 reference step by step', () => {
  it('a two-layer MLP classifier, 20 AdamW steps', async () => {
    const rng = new Rng(42);
    const [batch, inputs, hidden, classes] = [32, 8, 24, 4];
    const x = draw(rng, batch * inputs, 1);
    const teacher = draw(rng, inputs * classes, 1);
    const labels = Array.from({ length: batch }, (_, r) => {
      let best = 0;
      for (let c = 1; c < classes; c++) {
        const score = (k: number) =>
          teacher.reduce(
            (p, w, i) => (i % classes === k ? p + w * x[r * inputs + Math.floor(i / classes)] : p),
            0,
          );
        if (score(c) > score(best)) best = c;
      }
      return best;
    });
    const init = [
      [draw(rng, inputs * hidden, 0.4), [inputs, hidden]],
      [draw(rng, hidden, 0.1), [hidden]],
      [draw(rng, hidden * classes, 0.3), [hidden, classes]],
      [draw(rng, classes, 0.1), [classes]],
    ] as const;

    const run = <T extends object>(side: Side<T>) => {
      const [w1, b1, w2, b2] = init.map(([data, shape]) => side.tensor(data, [...shape]));
      const input = side.tensor(x, [batch, inputs]);
      const targets = side.tensor(labels, [batch], 'i32');
      const { ag } = side;
      return train(side, [w1, b1, w2, b2], () => {
        const h = ag.gelu(ag.matmul(input, w1, { bias: b1 }));
        return ag.crossEntropy(ag.matmul(h, w2, { bias: b2 }), targets).loss;
      });
    };
    const referenceLosses = await run(referenceSide());
    const gpuLosses = await run(gpuSide());
    expectSameLosses(gpuLosses, referenceLosses);
    expect(gpuLosses[STEPS - 1]).toBeLessThan(0.6 * gpuLosses[0]);
  });

  it('a two-layer Llama transformer on next-token prediction, 20 AdamW steps', async () => {
    const rng = new Rng(7);
    const shape: LlamaShape = {
      batch: 4,
      seq: 12,
      dim: 32,
      heads: 4,
      kvHeads: 2,
      ffn: 48,
      vocab: 16,
      eps: 1e-5,
    };
    const { batch, seq, dim, heads, kvHeads, ffn, vocab } = shape;
    const headDim = dim / heads;
    // Each sequence counts up by 3 modulo the vocabulary from a random start; the label is the next token.
    const ids: number[] = [];
    const labels: number[] = [];
    for (let b = 0; b < batch; b++) {
      const start = Math.floor(rng.next() * vocab);
      for (let t = 0; t < seq; t++) {
        ids.push((start + 3 * t) % vocab);
        labels.push(t === seq - 1 ? -100 : (start + 3 * (t + 1)) % vocab);
      }
    }
    const layerShapes = {
      attention_norm: [dim],
      wq: [dim, dim],
      wk: [kvHeads * headDim, dim],
      wv: [kvHeads * headDim, dim],
      wo: [dim, dim],
      mlp_norm: [dim],
      w_gate: [ffn, dim],
      w_up: [ffn, dim],
      w_down: [dim, ffn],
    };
    const weight = (key: string, s: number[]) =>
      key.endsWith('norm')
        ? new Float32Array(s[0]).fill(1)
        : draw(rng, s[0] * (s[1] ?? 1), 1 / Math.sqrt(s[1]));
    const layers = [0, 1].map(() =>
      Object.fromEntries(
        Object.entries(layerShapes).map(([key, s]) => [key, { data: weight(key, s), shape: s }]),
      ),
    );
    const embedding = draw(rng, vocab * dim, 0.5);
    const head = draw(rng, vocab * dim, 1 / Math.sqrt(dim));
    const rope = ropeTables(seq, headDim, 10000);

    const run = <T extends object>(side: Side<T>) => {
      const params: LlamaParams<T> = {
        embedding: side.tensor(embedding, [vocab, dim]),
        layers: layers.map(
          (layer) =>
            Object.fromEntries(
              Object.entries(layer).map(([key, { data, shape: s }]) => [key, side.tensor(data, s)]),
            ) as never,
        ),
        final_norm: side.tensor(new Float32Array(dim).fill(1), [dim]),
        lm_head: side.tensor(head, [vocab, dim]),
      };
      const list = [
        params.embedding,
        ...params.layers.flatMap((layer) => Object.values(layer) as T[]),
        params.final_norm,
        params.lm_head!,
      ];
      const tables = {
        cos: side.tensor(rope.cos, [seq, headDim / 2]),
        sin: side.tensor(rope.sin, [seq, headDim / 2]),
      };
      const idTensor = side.tensor(ids, [batch, seq], 'i32');
      const labelTensor = side.tensor(labels, [batch, seq], 'i32');
      return train(side, list, () => llamaLoss(side.ag, params, idTensor, labelTensor, tables, shape));
    };
    const referenceLosses = await run(referenceSide());
    const gpuLosses = await run(gpuSide());
    expectSameLosses(gpuLosses, referenceLosses);
    expect(gpuLosses[STEPS - 1]).toBeLessThan(0.6 * gpuLosses[0]);
  });
});

// Keep the backend type in the file's vocabulary: both sides run the same rules.
export type { AutogradBackend };
