import { expectClose, Rng } from '@webtune/test-utils';
import { afterEach, describe, expect, it } from 'vitest';
import { checkpointWith } from './checkpoint.js';
import {
  backward,
  clearTape,
  gradOf,
  isTracked,
  noGrad,
  requiresGrad,
  tapeSize,
  zeroGrad,
} from './engine.js';
import { differentiable } from './functions.js';
import { REFERENCE_BACKEND, ReferenceTensor } from './reference-backend.js';

const ag = differentiable(REFERENCE_BACKEND);
const tensor = (data: number[], shape = [data.length]) => ReferenceTensor.from(data, shape);
const random = (seed: number, shape: number[]) =>
  ReferenceTensor.from(
    new Rng(seed).uniform(
      shape.reduce((p, d) => p * d, 1),
      -1,
      1,
    ),
    shape,
  );

afterEach(() => clearTape());

describe('autograd engine (reference backend)', () => {
  it('accumulates into .grad across backward calls until zeroGrad', () => {
    const w = requiresGrad(tensor([1, 2, 3]));
    const x = tensor([4, 5, 6]);
    backward(ag.sum(ag.mul(w, x)));
    expect(Array.from(gradOf(w)!.data)).toEqual([4, 5, 6]);
    backward(ag.sum(ag.mul(w, x)));
    expect(Array.from(gradOf(w)!.data)).toEqual([8, 10, 12]);
    zeroGrad([w]);
    expect(gradOf(w)).toBeNull();
    expect(gradOf(x)).toBeNull();
  });

  it('adds the gradients of a tensor used twice', () => {
    const x = requiresGrad(tensor([1, -2, 3]));
    const y = ag.add(ag.mul(x, x), ag.scale(x, 3));
    backward(ag.sum(y));
    expect(Array.from(gradOf(x)!.data)).toEqual([5, -1, 9]);
  });

  it('records nothing when no input requires grad or inside noGrad', () => {
    const plain = tensor([1, 2]);
    const out = ag.exp(plain);
    expect(isTracked(out)).toBe(false);
    const w = requiresGrad(tensor([1, 2]));
    const inside = noGrad(() => ag.mul(ag.exp(w), 2));
    expect(isTracked(inside)).toBe(false);
    expect(tapeSize()).toBe(0);
    const recorded = ag.exp(w);
    expect(isTracked(recorded)).toBe(true);
    expect(tapeSize()).toBe(1);
  });

  it('restores grad mode after an async noGrad scope and after a throw', async () => {
    const w = requiresGrad(tensor([1]));
    await noGrad(async () => {
      await Promise.resolve();
      expect(isTracked(ag.exp(w))).toBe(false);
    });
    expect(() =>
      noGrad(() => {
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(isTracked(ag.exp(w))).toBe(true);
  });

  it('frees the graph after backward and refuses a second pass through it', () => {
    const w = requiresGrad(tensor([1, 2]));
    const loss = ag.sum(ag.square(w));
    expect(tapeSize()).toBe(2);
    backward(loss);
    expect(tapeSize()).toBe(0);
    expect(() => backward(loss)).toThrow(/already freed/);
  });

  it('asks for a gradient of a non-scalar root and rejects untracked roots', () => {
    const w = requiresGrad(tensor([1, 2]));
    expect(() => backward(ag.exp(w))).toThrow(/not a scalar/);
    expect(() => backward(tensor([1]))).toThrow(/does not depend/);
  });

  it('skips the gradients of inputs that do not need one', () => {
    const w = requiresGrad(random(1, [4, 3]));
    const x = random(2, [5, 4]);
    backward(ag.sum(ag.matmul(x, w)));
    expect(gradOf(w)!.shape).toEqual([4, 3]);
    expect(gradOf(x)).toBeNull();
  });

  it('differentiates a checkpointed block like the plain one, keeping only its inputs', () => {
    const w1 = requiresGrad(random(3, [6, 6]));
    const w2 = requiresGrad(random(4, [6, 6]));
    const x = requiresGrad(random(5, [4, 6]));
    const block = (h: ReferenceTensor) => ag.add(h, ag.matmul(ag.silu(ag.matmul(h, w1)), w2));

    backward(ag.sum(ag.square(block(block(x)))));
    const plain = [w1, w2, x].map((t) => Float64Array.from(gradOf(t)!.data));
    zeroGrad([w1, w2, x]);

    const h = checkpointWith(REFERENCE_BACKEND, block, [x]);
    const out = checkpointWith(REFERENCE_BACKEND, block, [h]);
    expect(tapeSize()).toBe(2);
    backward(ag.sum(ag.square(out)));
    expect(tapeSize()).toBe(0);
    [w1, w2, x].forEach((t, i) => {
      expectClose(gradOf(t)!.data, plain[i], { rtol: 1e-12, label: `checkpointed gradient ${i}` });
    });
  });

  it('refuses a checkpointed function that captures a non-leaf tensor', () => {
    const w = requiresGrad(random(6, [3]));
    const outside = ag.exp(w);
    const x = requiresGrad(random(7, [3]));
    const out = checkpointWith(REFERENCE_BACKEND, (h) => ag.mul(h, outside), [x]);
    expect(() => backward(ag.sum(out))).toThrow(/pass it in `inputs`/);
  });
});
