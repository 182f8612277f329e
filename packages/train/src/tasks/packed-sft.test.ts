import { packSequences } from '@webtune/data';
import { backward, clearTape, createDevice, type Device, gradOf, requiresGrad } from '@webtune/tensors';
import { expectClose } from '@webtune/test-utils';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { SupervisedRow } from '../data/rows.js';
import { trainableCausalLM } from '../model/trainable-model.js';
import { tinyLlama } from '../testing/toy-model.js';
import { supervisedTask } from './sft-task.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());
afterEach(() => clearTape());

/** Three SFT examples of different lengths (prompt tokens masked) over the 16-token vocabulary. */
function examples(): SupervisedRow[] {
  return [
    [7, 2, 3, 9, 4, 4, 1],
    [5, 11, 6, 2, 0, 13, 8, 8, 3, 12],
    [1, 15, 14, 6],
  ].map((inputIds, n) => ({ inputIds, labels: inputIds.map((id, t) => (t < n + 1 ? -100 : id)) }));
}

/** Loss and gradients of one micro-batch through the SFT task, normalised by `normalizer` tokens. */
async function lossAndGradients(rows: SupervisedRow[], normalizer: number) {
  const model = tinyLlama(device, 2);
  const trainable = trainableCausalLM(model);
  const parameters = trainable.trainableParameters();
  for (const [, tensor] of parameters) requiresGrad(tensor);
  const task = supervisedTask();
  const { loss } = task.forward(trainable, { rows, ids: rows.map((_, n) => n) }, normalizer, {});
  const value = (await loss.toArray())[0];
  backward(loss);
  const gradients = await Promise.all(parameters.map(([, tensor]) => gradOf(tensor)!.toArray()));
  model.dispose();
  return { value, gradients };
}

const trainedTokens = (row: SupervisedRow) =>
  Array.from(row.labels).filter((label, t) => t > 0 && label !== -100).length;

describe('SFT packing and neat_packing', () => {
  it('a neat-packed row has the loss and gradients of its examples unpacked (no attention across them)', async () => {
    const rows = examples();
    const total = rows.reduce((sum, row) => sum + trainedTokens(row), 0);
    const [packed] = packSequences(
      rows.map((row) => ({ inputIds: Int32Array.from(row.inputIds), labels: Int32Array.from(row.labels) })),
      { maxLength: 32 },
    );
    expect(packed.members).toHaveLength(3);
    const neatRow = { ...packed, attentionSegmentIds: packed.segmentIds };
    const neat = await lossAndGradients([neatRow], total);
    // Each example alone: the token-weighted mean of their losses is the packed row's loss.
    let weighted = 0;
    for (const row of rows)
      weighted += (await lossAndGradients([row], trainedTokens(row))).value * trainedTokens(row);
    expect(neat.value).toBeCloseTo(weighted / total, 5);
    // The three as one padded batch: the same loss and the same gradients.
    const unpacked = await lossAndGradients(rows, total);
    expect(neat.value).toBeCloseTo(unpacked.value, 5);
    for (const [n, gradient] of neat.gradients.entries()) {
      expectClose(gradient, unpacked.gradients[n], { rtol: 1e-4, atol: 1e-6, label: `gradient ${n}` });
    }
    // Plain packing (positions restart, attention crosses examples) is a different loss.
    const plain = await lossAndGradients(
      [{ inputIds: packed.inputIds, labels: packed.labels, positionIds: packed.positionIds }],
      total,
    );
    expect(Math.abs(plain.value - neat.value)).toBeGreaterThan(1e-3);
  });
});
