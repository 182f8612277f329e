import { expectClose, Rng } from '@webtune/test-utils';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../device/create-device.js';
import type { Device } from '../device/device.js';
import type { Tensor } from '../tensor/tensor.js';
import type { AutogradBackend } from './backend.js';
import { backward, clearTape, gradOf, requiresGrad, tapeSize } from './engine.js';
import { differentiable } from './functions.js';
import { GPU_BACKEND } from './gpu-backend.js';
import { REFERENCE_BACKEND, ReferenceTensor } from './reference-backend.js';
import { rowGradientWith } from './row-gradient.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterEach(() => clearTape());

const [rows, width, vocab] = [7, 5, 13];
const rng = new Rng(11);
const hiddenValues = rng.uniform(rows * width, -1, 1);
const headValues = rng.uniform(vocab * width, -1, 1);
// Row 3 is ignored (-100): its loss and its gradient are 0.
const targetValues = Array.from({ length: rows }, (_, r) => (r === 3 ? -100 : (r * 5 + 2) % vocab));
// Each row's loss is weighted differently downstream: the row gradient must be scaled per row.
const weightValues = Array.from({ length: rows }, (_, r) => 0.25 + 0.5 * r);

/** sum_r w_r * CE(h_r W^T, t_r), the row losses made by `losses`. */
function weightedLoss<T extends object>(
  backend: AutogradBackend<T>,
  make: (data: ArrayLike<number>, shape: number[], dtype?: 'f32' | 'i32') => T,
  fused: boolean,
  hidden: T,
) {
  const ops = differentiable(backend);
  const head = make(headValues, [vocab, width]);
  const targets = make(targetValues, [rows], 'i32');
  const losses = (h: T) =>
    ops.crossEntropy(ops.matmul(h, head, { transposeB: true }), targets, {
      ignoreIndex: -100,
      reduction: 'none',
    }).loss;
  const values = fused ? rowGradientWith(backend, losses, hidden) : losses(hidden);
  return { values, total: ops.sum(ops.mul(values, make(weightValues, [rows])), null) };
}

const makeReference = (data: ArrayLike<number>, shape: number[], dtype: 'f32' | 'i32' = 'f32') =>
  ReferenceTensor.from(data, shape, dtype);

describe('rowGradient', () => {
  it('float64: the forward-made row gradient times the incoming one equals plain backward and finite differences', () => {
    const results = [false, true].map((fused) => {
      const hidden = requiresGrad(makeReference(hiddenValues, [rows, width]));
      const { values, total } = weightedLoss(REFERENCE_BACKEND, makeReference, fused, hidden);
      backward(total);
      return {
        values: Array.from(values.data),
        grad: Array.from(gradOf(hidden)!.data),
        total: total.data[0],
      };
    });
    expect(tapeSize()).toBe(0);
    expectClose(results[1].values, results[0].values, { rtol: 1e-12, atol: 1e-14 });
    expectClose(results[1].grad, results[0].grad, { rtol: 1e-12, atol: 1e-14 });
    // Central differences of the weighted total in float64.
    const step = 1e-6;
    const numeric = hiddenValues.map((_, i) => {
      const at = (delta: number) => {
        const shifted = Array.from(hiddenValues);
        shifted[i] += delta;
        return weightedLoss(REFERENCE_BACKEND, makeReference, false, makeReference(shifted, [rows, width]))
          .total.data[0];
      };
      return (at(step) - at(-step)) / (2 * step);
    });
    expectClose(results[1].grad, numeric, { rtol: 1e-6, atol: 1e-8 });
    // The ignored row takes no gradient.
    expect(results[1].grad.slice(3 * width, 4 * width).every((x) => x === 0)).toBe(true);
  });

  it('GPU: equals the float64 reference, keeps only the row gradient on the tape, frees everything after backward', async () => {
    const make = (data: ArrayLike<number>, shape: number[], dtype: 'f32' | 'i32' = 'f32') =>
      device.fromArray(data, shape, dtype);
    const reference = (() => {
      const hidden = requiresGrad(makeReference(hiddenValues, [rows, width]));
      const { values, total } = weightedLoss(REFERENCE_BACKEND, makeReference, false, hidden);
      backward(total);
      return { values: Array.from(values.data), grad: Array.from(gradOf(hidden)!.data) };
    })();
    const hidden = requiresGrad(make(hiddenValues, [rows, width]));
    const before = device.memory();
    await device.scope(async () => {
      const { values, total } = weightedLoss(GPU_BACKEND, make, true, hidden);
      // One node for the row gradient, plus the weighting and the sum.
      expect(tapeSize()).toBe(3);
      backward(total);
      expect(tapeSize()).toBe(0);
      expectClose(Array.from(await values.toArray()), reference.values, { rtol: 1e-5, atol: 1e-6 });
    });
    const grad = gradOf(hidden) as Tensor;
    expectClose(Array.from(await grad.toArray()), reference.grad, { rtol: 1e-5, atol: 1e-6 });
    // What is left is the leaf's gradient alone.
    expect(device.memory().liveTensors).toBe(before.liveTensors + 1);
    requiresGrad(hidden, false);
    hidden.dispose();
  });

  it('refuses a function that uses a trained tensor besides its input, or that does not give one value per row', () => {
    const ops = differentiable(GPU_BACKEND);
    device.scope(() => {
      const hidden = requiresGrad(device.fromArray(hiddenValues, [rows, width], 'f32'));
      const head = requiresGrad(device.fromArray(headValues, [vocab, width], 'f32'));
      expect(() =>
        rowGradientWith(GPU_BACKEND, (h) => ops.sum(ops.matmul(h, head, { transposeB: true }), 1), hidden),
      ).toThrow(/besides its input/);
      requiresGrad(head, false);
      expect(() =>
        rowGradientWith(GPU_BACKEND, (h) => ops.matmul(h, head, { transposeB: true }), hidden),
      ).toThrow(/one value per row/);
      // Without grad mode or a tracked input it is the plain function.
      requiresGrad(hidden, false);
      const plain = rowGradientWith(GPU_BACKEND, (h) => ops.sum(h, 1), hidden);
      expect(plain.shape).toEqual([rows]);
      expect(tapeSize()).toBe(0);
    });
  });
});
