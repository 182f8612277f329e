import { expectClose, Rng } from '@webtune/test-utils';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../device/create-device.js';
import { type Device, formatBytes } from '../device/device.js';
import type { Tensor } from '../tensor/tensor.js';
import { checkpointWith } from './checkpoint.js';
import { backward, clearTape, gradOf, noGrad, requiresGrad, tapeSize, zeroGrad } from './engine.js';
import { differentiable } from './functions.js';
import { GPU_BACKEND } from './gpu-backend.js';
import { type LlamaParams, type LlamaShape, llamaLoss, ropeTables } from './toy-llama.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterEach(() => clearTape());

const ag = differentiable(GPU_BACKEND);

/** A small Llama stack on the GPU with seeded weights. */
function model(shape: LlamaShape, layers: number, seed: number) {
  const rng = new Rng(seed);
  const { dim, heads, kvHeads, ffn, vocab, batch, seq } = shape;
  const headDim = dim / heads;
  const weight = (rows: number, columns: number) =>
    device.fromArray(rng.normal(rows * columns, 1 / Math.sqrt(columns)), [rows, columns], 'f32');
  const norm = () => device.fromArray(new Float32Array(dim).fill(1), [dim], 'f32');
  const params: LlamaParams<Tensor> = {
    embedding: device.fromArray(rng.normal(vocab * dim, 0.5), [vocab, dim], 'f32'),
    layers: Array.from({ length: layers }, () => ({
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
    lm_head: weight(vocab, dim),
  };
  const list = [
    params.embedding,
    ...params.layers.flatMap((layer) => Object.values(layer) as Tensor[]),
    params.final_norm,
    params.lm_head!,
  ];
  const rope = ropeTables(seq, headDim, 10000);
  const tables = {
    cos: device.fromArray(rope.cos, [seq, headDim / 2], 'f32'),
    sin: device.fromArray(rope.sin, [seq, headDim / 2], 'f32'),
  };
  const ids = device.fromArray(rng.integers(batch * seq, 0, vocab), [batch, seq], 'i32');
  const labels = device.fromArray(rng.integers(batch * seq, 0, vocab), [batch, seq], 'i32');
  const loss = (wrap?: (run: (h: Tensor) => Tensor, h: Tensor) => Tensor) =>
    llamaLoss(ag, params, ids, labels, tables, shape, wrap);
  return { params: list, loss };
}

const SHAPE: LlamaShape = {
  batch: 2,
  seq: 32,
  dim: 64,
  heads: 4,
  kvHeads: 2,
  ffn: 128,
  vocab: 64,
  eps: 1e-5,
};

describe('autograd memory on the GPU', () => {
  it('records and keeps nothing for inference: no tape, the same memory as the plain ops', async () => {
    const { params, loss } = model(SHAPE, 2, 1);
    const before = device.memory();
    device.resetPeak();
    const plain = await device.scope(() => loss().item());
    const plainPeak = device.memory().peakBytes;
    for (const p of params) requiresGrad(p);
    device.resetPeak();
    const inside = await device.scope(() => noGrad(() => loss()).item());
    expect(tapeSize()).toBe(0);
    expect(device.memory().peakBytes).toBe(plainPeak);
    expect(inside).toBe(plain);
    expect(device.memory().liveTensors).toBe(before.liveTensors);
    expect(device.memory().liveBytes).toBe(before.liveBytes);
    for (const p of params) requiresGrad(p, false);
  });

  it('frees every saved tensor and intermediate gradient by the end of backward', async () => {
    const { params, loss } = model(SHAPE, 2, 2);
    for (const p of params) requiresGrad(p);
    const before = device.memory();
    await device.scope(async () => {
      const value = loss();
      expect(tapeSize()).toBeGreaterThan(20);
      backward(value);
      expect(tapeSize()).toBe(0);
      await device.sync();
    });
    const gradBytes = params.reduce((total, p) => total + gradOf(p)!.storage.allocatedBytes, 0);
    expect(device.memory().liveTensors).toBe(before.liveTensors + params.length);
    expect(device.memory().liveBytes).toBe(before.liveBytes + gradBytes);
    zeroGrad(params);
    expect(device.memory().liveBytes).toBe(before.liveBytes);
  });

  it('frees each intermediate gradient as soon as it has been used', async () => {
    const n = 1 << 16;
    const x = requiresGrad(device.fromArray(new Rng(4).uniform(n, -0.1, 0.1), [n], 'f32'));
    const before = device.memory().liveBytes;
    // Eight chained ops; each saves its input and output, which the forward's scope does not keep.
    const loss = device.scope(() => {
      let h: Tensor = x;
      for (let i = 0; i < 8; i++) h = ag.sin(h);
      return ag.sum(h);
    });
    const afterForward = device.memory().liveBytes;
    device.resetPeak();
    backward(loss);
    loss.dispose();
    const tensorBytes = 4 * n;
    // At most the incoming gradient, the outgoing one and the leaf's: never a pile of all eight.
    expect(device.memory().peakBytes - afterForward).toBeLessThanOrEqual(3 * tensorBytes);
    expect(device.memory().liveBytes).toBe(before + gradOf(x)!.storage.allocatedBytes);
    expect(afterForward - before).toBeGreaterThanOrEqual(8 * tensorBytes);
    zeroGrad([x]);
  });

  it('checkpointing gives the same gradients with less activation memory', async () => {
    const shape: LlamaShape = { ...SHAPE, seq: 64 };
    const { params, loss } = model(shape, 4, 3);
    for (const p of params) requiresGrad(p);
    const run = async (wrap?: (run: (h: Tensor) => Tensor, h: Tensor) => Tensor) => {
      const base = device.memory().liveBytes;
      device.resetPeak();
      // The forward runs in its own scope: what backward does not need is freed when it returns.
      const value = device.scope(() => loss(wrap));
      backward(value);
      value.dispose();
      await device.sync();
      const grads = await Promise.all(params.map((p) => gradOf(p)!.toArray()));
      const gradBytes = params.reduce((total, p) => total + gradOf(p)!.storage.allocatedBytes, 0);
      zeroGrad(params);
      return { grads, peak: device.memory().peakBytes - base - gradBytes };
    };
    const plain = await run();
    const checkpointed = await run((block, h) => checkpointWith(GPU_BACKEND, block, [h]));
    plain.grads.forEach((grad, i) => {
      expectClose(checkpointed.grads[i], grad, { rtol: 1e-5, atol: 1e-7, label: `parameter ${i}` });
    });
    console.log(
      `activation memory of forward + backward, 4 layers, batch ${shape.batch}, seq ${shape.seq}, dim ${shape.dim}: ` +
        `${formatBytes(plain.peak)} plain, ${formatBytes(checkpointed.peak)} checkpointed ` +
        `(${(100 * (1 - checkpointed.peak / plain.peak)).toFixed(0)}% less)`,
    );
    expect(checkpointed.peak).toBeLessThan(0.75 * plain.peak);
  });
});
