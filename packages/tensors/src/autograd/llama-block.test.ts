import { readFileSync } from 'node:fs';
import { expectClose } from '@webtune/test-utils';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../device/create-device.js';
import type { Device } from '../device/device.js';
import type { Tensor } from '../tensor/tensor.js';
import { backward, clearTape, gradOf, requiresGrad, zeroGrad } from './engine.js';
import { differentiable } from './functions.js';
import { GPU_BACKEND } from './gpu-backend.js';
import { REFERENCE_BACKEND, ReferenceTensor } from './reference-backend.js';
import { type LlamaParams, type LlamaShape, llamaLoss, ropeTables } from './toy-llama.js';

/** Written by tools/golden/llama_block.py (PyTorch, float64). */
interface Fixture {
  torch: string;
  config: LlamaShape & { headDim: number; ropeBase: number; ignoreIndex: number };
  ids: number[];
  labels: number[];
  shapes: Record<string, number[]>;
  params: Record<string, number[]>;
  cases: Record<'tied' | 'untied', { loss: number; gradients: Record<string, number[]> }>;
}

const fixture = JSON.parse(
  readFileSync(new URL('../__fixtures__/llama-block.json', import.meta.url), 'utf8'),
) as Fixture;
const LAYER_KEYS = [
  'attention_norm',
  'wq',
  'wk',
  'wv',
  'wo',
  'mlp_norm',
  'w_gate',
  'w_up',
  'w_down',
] as const;

/** The fixture's weights as tensors of some backend, arranged as LlamaParams. */
function fixtureParams<T>(make: (data: number[], shape: number[]) => T, tied: boolean) {
  const all = Object.fromEntries(
    // The generator drew float32 values and wrote 9 digits: fround recovers them exactly.
    Object.entries(fixture.params).map(([key, data]) => [
      key,
      make(data.map(Math.fround), fixture.shapes[key]),
    ]),
  ) as Record<string, T>;
  const params: LlamaParams<T> = {
    embedding: all.embedding,
    layers: [Object.fromEntries(LAYER_KEYS.map((key) => [key, all[key]])) as never],
    final_norm: all.final_norm,
    lm_head: tied ? undefined : all.lm_head,
  };
  const named = Object.entries(all).filter(([key]) => !(tied && key === 'lm_head'));
  return { params, named };
}

afterEach(() => clearTape());

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});

/** f32 against float64: each gradient within 1e-5 of its largest magnitude (seen: under 1e-6). */
function expectF32Close(actual: ArrayLike<number>, expected: ArrayLike<number>, label: string) {
  const largest = Math.max(...Array.from(expected, Math.abs));
  expectClose(actual, expected, { rtol: 1e-4, atol: 1e-5 * largest, label });
}

describe('one Llama decoder block against PyTorch golden values', () => {
  for (const tied of [false, true]) {
    const name = tied ? 'tied' : 'untied';
    it(`float64 reference autodiff, ${name} head: loss and every gradient to 1e-9`, () => {
      const ag = differentiable(REFERENCE_BACKEND);
      const { batch, seq, headDim, ropeBase } = fixture.config;
      const { params, named } = fixtureParams((data, shape) => ReferenceTensor.from(data, shape), tied);
      for (const [, tensor] of named) requiresGrad(tensor);
      const rope = ropeTables(seq, headDim, ropeBase);
      const tables = {
        cos: ReferenceTensor.from(rope.cos, [seq, headDim / 2]),
        sin: ReferenceTensor.from(rope.sin, [seq, headDim / 2]),
      };
      const ids = ReferenceTensor.from(fixture.ids, [batch, seq], 'i32');
      const labels = ReferenceTensor.from(fixture.labels, [batch, seq], 'i32');
      const loss = llamaLoss(ag, params, ids, labels, tables, fixture.config);
      const golden = fixture.cases[name];
      expect(loss.data[0]).toBeCloseTo(golden.loss, 10);
      backward(loss);
      expect(Object.keys(golden.gradients).sort()).toEqual(named.map(([key]) => key).sort());
      for (const [key, tensor] of named) {
        expectClose(gradOf(tensor)!.data, golden.gradients[key], { rtol: 1e-9, atol: 1e-12, label: key });
      }
      zeroGrad(named.map(([, t]) => t));
    });
  }

  for (const tied of [false, true]) {
    const name = tied ? 'tied' : 'untied';
    it(`GPU (f32) autodiff, ${name} head: loss and every gradient`, async () => {
      const ag = differentiable(GPU_BACKEND);
      const { batch, seq, headDim, ropeBase } = fixture.config;
      await device.scope(async () => {
        const { params, named } = fixtureParams((data, shape) => device.fromArray(data, shape, 'f32'), tied);
        for (const [, tensor] of named) requiresGrad(tensor);
        const rope = ropeTables(seq, headDim, ropeBase);
        const tables = {
          cos: device.fromArray(rope.cos, [seq, headDim / 2], 'f32'),
          sin: device.fromArray(rope.sin, [seq, headDim / 2], 'f32'),
        };
        const ids = device.fromArray(fixture.ids, [batch, seq], 'i32');
        const labels = device.fromArray(fixture.labels, [batch, seq], 'i32');
        const loss: Tensor = llamaLoss(ag, params, ids, labels, tables, fixture.config);
        backward(loss);
        const golden = fixture.cases[name];
        expect(Math.abs((await loss.item()) - golden.loss) / golden.loss).toBeLessThan(1e-5);
        for (const [key, tensor] of named)
          expectF32Close(await gradOf(tensor)!.toArray(), golden.gradients[key], key);
        zeroGrad(named.map(([, t]) => t));
      });
    });
  }
});
