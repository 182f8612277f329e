import {
  autograd,
  backward,
  clearTape,
  createDevice,
  type Device,
  gradOf,
  requiresGrad,
  type Tensor,
  tapeSize,
} from '@webtune/tensors';
import { expectClose, Rng } from '@webtune/test-utils';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { causalLmLoss, countTrainedTokens, rowTokenWeights, shiftLabels } from './causal-lm-loss.js';
import { sequenceLogProbs, trainedLengths } from './sequence-log-probs.js';
import { IGNORE_INDEX, tokenCrossEntropy } from './token-cross-entropy.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());
afterEach(() => clearTape());

const read = async (t: Tensor) => Array.from(await t.toArray());

describe('label helpers', () => {
  it('shiftLabels moves labels one left per row and ignores each last position', () => {
    const labels = [5, 6, 7, IGNORE_INDEX, 8, 9];
    expect(Array.from(shiftLabels(labels, 2, 3))).toEqual([6, 7, IGNORE_INDEX, 8, 9, IGNORE_INDEX]);
    expect(() => shiftLabels(labels, 4, 2)).toThrow(/6 labels for 4 rows of 2 tokens/);
    expect(countTrainedTokens(shiftLabels(labels, 2, 3))).toBe(4);
    expect(Array.from(trainedLengths(shiftLabels(labels, 2, 3), 2))).toEqual([2, 2]);
    expect(Array.from(rowTokenWeights([1, IGNORE_INDEX, 2, 3], 2, [0.5, 2]))).toEqual([0.5, 0, 2, 2]);
  });
});

describe('causalLmLoss against closed forms', () => {
  it('uniform logits: ln(vocab) per token, gradient (1/V - onehot) / tokens, ignored rows get none', async () => {
    const vocab = 7;
    const targets = [3, IGNORE_INDEX, 0, 6, IGNORE_INDEX, 2];
    await device.scope(async () => {
      const logits = requiresGrad(device.fromArray(new Array(6 * vocab).fill(0.25), [2, 3, vocab], 'f32'));
      const loss = causalLmLoss(logits, device.fromArray(targets, [2, 3], 'i32'));
      backward(loss);
      expectClose(await read(loss), [Math.log(vocab)], { rtol: 1e-6 });
      const expected = targets.flatMap((target) =>
        Array.from({ length: vocab }, (_, v) =>
          target === IGNORE_INDEX ? 0 : (1 / vocab - (v === target ? 1 : 0)) / 4,
        ),
      );
      expectClose(await read(gradOf(logits)!), expected, { rtol: 1e-5, atol: 1e-7 });
    });
  });

  it("DFT (use_dft_loss): each token's loss times its detached target probability, over the normalizer", async () => {
    const vocab = 5;
    const rng = new Rng(11);
    const values = Array.from(rng.normal(2 * 3 * vocab));
    const targets = [1, 4, IGNORE_INDEX, 0, IGNORE_INDEX, 3];
    await device.scope(async () => {
      const logits = requiresGrad(device.fromArray(values, [2, 3, vocab], 'f32'));
      const loss = causalLmLoss(logits, device.fromArray(targets, [2, 3], 'i32'), {
        dft: true,
        normalizer: 6,
      });
      backward(loss);
      // float64: ce = logsumexp - logit[target]; loss = sum ce e^-ce / 6; the weight is a constant,
      // so d/dlogit = e^-ce (softmax - onehot) / 6.
      let expectedLoss = 0;
      const expectedGrad: number[] = [];
      targets.forEach((target, position) => {
        const row = values.slice(position * vocab, (position + 1) * vocab);
        const top = Math.max(...row);
        const total = row.reduce((sum, x) => sum + Math.exp(x - top), 0);
        const softmax = row.map((x) => Math.exp(x - top) / total);
        if (target === IGNORE_INDEX) {
          expectedGrad.push(...row.map(() => 0));
          return;
        }
        const ce = -Math.log(softmax[target]);
        expectedLoss += (ce * Math.exp(-ce)) / 6;
        expectedGrad.push(...softmax.map((p, v) => (Math.exp(-ce) * (p - (v === target ? 1 : 0))) / 6));
      });
      expectClose(await read(loss), [expectedLoss], { rtol: 1e-5, label: 'loss' });
      expectClose(await read(gradOf(logits)!), expectedGrad, { rtol: 1e-4, atol: 1e-7, label: 'grad' });
    });
  });

  it('weights scale each token; an all-ignored batch gives 0, not NaN', async () => {
    await device.scope(async () => {
      const logits = device.fromArray([0, Math.log(3), 0, 0], [2, 2], 'f32');
      const targets = device.fromArray([1, 0], [2], 'i32');
      // Token 0: -log(3/4); token 1: -log(1/2).
      const weighted = causalLmLoss(logits, targets, { weights: device.fromArray([2, 0.5], [2], 'f32') });
      expectClose(await read(weighted), [(2 * -Math.log(0.75) + 0.5 * Math.LN2) / 2], { rtol: 1e-6 });
      const summed = causalLmLoss(logits, targets, { normalizer: 1 });
      expectClose(await read(summed), [-Math.log(0.75) + Math.LN2], { rtol: 1e-6 });
      const none = causalLmLoss(logits, device.fromArray([IGNORE_INDEX, IGNORE_INDEX], [2], 'i32'));
      expect(await read(none)).toEqual([0]);
      expect(() => causalLmLoss(logits, targets, { normalizer: 0 })).toThrow(/normalizer 0/);
      expect(() => causalLmLoss(logits, targets, { weights: device.fromArray([1], [1], 'f32') })).toThrow(
        /weights/,
      );
    });
  });

  it('the chunked, checkpointed classifier equals the plain one in value and gradients, and keeps no logits on the tape', async () => {
    const rng = new Rng(7);
    const [rows, seq, width, vocab] = [3, 5, 8, 33];
    const hiddenValues = rng.uniform(rows * seq * width, -1, 1);
    const headValues = rng.uniform(vocab * width, -1, 1);
    const targetValues = Array.from({ length: rows * seq }, (_, i) =>
      i % 4 === 3 ? IGNORE_INDEX : (i * 5) % vocab,
    );
    const results: number[][][] = [];
    for (const chunkRows of [undefined, 4, 1]) {
      const result = await device.scope(async () => {
        const hidden = requiresGrad(device.fromArray(hiddenValues, [rows, seq, width], 'f32'));
        const head = requiresGrad(device.fromArray(headValues, [vocab, width], 'f32'));
        const loss = causalLmLoss(
          { hidden, head: (h) => autograd.matmul(h, head, { transposeB: true }), chunkRows },
          device.fromArray(targetValues, [rows, seq], 'i32'),
        );
        const recorded = tapeSize();
        backward(loss);
        expect(tapeSize()).toBe(0);
        return [await read(loss), await read(gradOf(hidden)!), await read(gradOf(head)!), [recorded]];
      });
      results.push(result);
    }
    for (const other of results.slice(1)) {
      for (let i = 0; i < 3; i++) expectClose(other[i], results[0][i], { rtol: 1e-5, atol: 1e-7 });
    }
  });

  it('a frozen chunked classifier (gradient made in forward) equals the plain one, weights, normalizer and ignored tokens included', async () => {
    const rng = new Rng(9);
    const [rows, seq, width, vocab] = [3, 5, 8, 37];
    const hiddenValues = rng.uniform(rows * seq * width, -1, 1);
    const headValues = rng.uniform(vocab * width, -1, 1);
    const weightValues = rng.uniform(rows * seq, 0, 2);
    const targetValues = Array.from({ length: rows * seq }, (_, i) =>
      i % 4 === 1 ? IGNORE_INDEX : (i * 7) % vocab,
    );
    const results: number[][][] = [];
    for (const [chunkRows, frozen] of [
      [undefined, false],
      [4, true],
      [1, true],
    ] as const) {
      const result = await device.scope(async () => {
        const hidden = requiresGrad(device.fromArray(hiddenValues, [rows, seq, width], 'f32'));
        const head = device.fromArray(headValues, [vocab, width], 'f32');
        const loss = causalLmLoss(
          { hidden, head: (h) => autograd.matmul(h, head, { transposeB: true }), chunkRows, frozen },
          device.fromArray(targetValues, [rows, seq], 'i32'),
          { weights: device.fromArray(weightValues, [rows, seq], 'f32'), normalizer: 6.5 },
        );
        backward(loss);
        expect(tapeSize()).toBe(0);
        return [await read(loss), await read(gradOf(hidden)!)];
      });
      results.push(result);
    }
    for (const other of results.slice(1)) {
      for (let i = 0; i < 2; i++) expectClose(other[i], results[0][i], { rtol: 1e-5, atol: 1e-7 });
    }
    // A head that trains cannot be differentiated in forward: refused, not silently wrong.
    await device.scope(async () => {
      const hidden = requiresGrad(device.fromArray(hiddenValues, [rows, seq, width], 'f32'));
      const head = requiresGrad(device.fromArray(headValues, [vocab, width], 'f32'));
      expect(() =>
        causalLmLoss(
          { hidden, head: (h) => autograd.matmul(h, head, { transposeB: true }), chunkRows: 4, frozen: true },
          device.fromArray(targetValues, [rows, seq], 'i32'),
        ),
      ).toThrow(/besides its input/);
    });
  });

  it('sequenceLogProbs sums log p(target) per row', async () => {
    await device.scope(async () => {
      // Row 0: log(3/4) + log(1/2); row 1: only log(1/2) (the other target is ignored).
      const logits = device.fromArray([0, Math.log(3), 0, 0, 0, 0, 5, 1], [2, 2, 2], 'f32');
      const targets = device.fromArray([1, 0, 0, IGNORE_INDEX], [2, 2], 'i32');
      expectClose(await read(sequenceLogProbs(logits, targets)), [Math.log(0.75) - Math.LN2, -Math.LN2], {
        rtol: 1e-6,
      });
      expect(() => sequenceLogProbs(logits, device.fromArray([1, 0, 0, 1], [4], 'i32'))).toThrow(
        /\[rows, seq\]/,
      );
      expect(() => tokenCrossEntropy(logits, device.fromArray([1, 0, 0], [3], 'i32'))).toThrow(/do not fit/);
    });
  });
});
