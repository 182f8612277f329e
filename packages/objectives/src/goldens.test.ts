import { readFileSync } from 'node:fs';
import {
  autograd,
  backward,
  clearTape,
  createDevice,
  type Device,
  gradOf,
  requiresGrad,
  type Tensor,
} from '@webtune/tensors';
import { expectClose } from '@webtune/test-utils';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { causalLmLoss } from './causal-lm-loss.js';
import { PreferenceMetrics } from './metrics/preference-metrics.js';
import { type PreferenceLossType, preferenceLoss, readPreferenceStatistics } from './preference-loss.js';
import { lastTokenPositions, pairwiseRewardLoss, valueHeadScores } from './reward-model-loss.js';
import { sequenceLogProbs, trainedLengths } from './sequence-log-probs.js';

// Golden values from tools/golden/objectives_losses.py (PyTorch, float64 on float32 inputs).
const goldens = JSON.parse(
  readFileSync(new URL('./__fixtures__/objectives-goldens.json', import.meta.url), 'utf8'),
);
const TOLERANCE = { rtol: 1e-4, atol: 1e-6 };

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());
afterEach(() => clearTape());

const tensor = (values: number[], shape: number[], dtype: 'f32' | 'i32' = 'f32') =>
  device.fromArray(values, shape, dtype);
const leaf = (values: number[], shape: number[]) => requiresGrad(tensor(values, shape));
const read = async (t: Tensor) => Array.from(await t.toArray());

describe('SFT loss against PyTorch', () => {
  const { batch, seq, vocab, hidden, targets } = goldens.sft;
  const caseNamed = (name: string) => goldens.sft.cases.find((c: { name: string }) => c.name === name);

  it('mean over trained tokens: loss and gradient of the logits', async () => {
    const golden = caseNamed('mean');
    await device.scope(async () => {
      const logits = leaf(golden.logits, [batch, seq, vocab]);
      const loss = causalLmLoss(logits, tensor(targets, [batch, seq], 'i32'));
      backward(loss);
      expectClose(await read(loss), [golden.loss], { ...TOLERANCE, label: 'loss' });
      expectClose(await read(gradOf(logits)!), golden.grad_logits, { ...TOLERANCE, label: 'grad' });
    });
  });

  it('per-token weights', async () => {
    const golden = caseNamed('weighted');
    await device.scope(async () => {
      const logits = leaf(golden.logits, [batch, seq, vocab]);
      const loss = causalLmLoss(logits, tensor(targets, [batch, seq], 'i32'), {
        weights: tensor(golden.weights, [batch, seq]),
      });
      backward(loss);
      expectClose(await read(loss), [golden.loss], { ...TOLERANCE, label: 'loss' });
      expectClose(await read(gradOf(logits)!), golden.grad_logits, { ...TOLERANCE, label: 'grad' });
    });
  });

  for (const chunkRows of [undefined, 5]) {
    it(`fused classifier (chunkRows ${chunkRows ?? 'all'}), explicit normalizer`, async () => {
      const golden = caseNamed('classifier');
      await device.scope(async () => {
        const states = leaf(golden.hidden, [batch, seq, hidden]);
        const head = leaf(golden.head, [vocab, hidden]);
        const loss = causalLmLoss(
          { hidden: states, head: (h) => autogradLinear(h, head), chunkRows },
          tensor(targets, [batch, seq], 'i32'),
          { normalizer: golden.normalizer },
        );
        backward(loss);
        expectClose(await read(loss), [golden.loss], { ...TOLERANCE, label: 'loss' });
        expectClose(await read(gradOf(states)!), golden.grad_hidden, { ...TOLERANCE, label: 'grad hidden' });
        expectClose(await read(gradOf(head)!), golden.grad_head, { ...TOLERANCE, label: 'grad head' });
      });
    });
  }
  it('fused classifier, frozen head (chunkRows 5, gradient made in forward): loss and hidden gradient', async () => {
    const golden = caseNamed('classifier');
    await device.scope(async () => {
      const states = leaf(golden.hidden, [batch, seq, hidden]);
      const head = tensor(golden.head, [vocab, hidden]);
      const loss = causalLmLoss(
        { hidden: states, head: (h) => autogradLinear(h, head), chunkRows: 5, frozen: true },
        tensor(targets, [batch, seq], 'i32'),
        { normalizer: golden.normalizer },
      );
      backward(loss);
      expectClose(await read(loss), [golden.loss], { ...TOLERANCE, label: 'loss' });
      expectClose(await read(gradOf(states)!), golden.grad_hidden, { ...TOLERANCE, label: 'grad hidden' });
    });
  });
});

describe('preference losses against PyTorch (LLaMA-Factory semantics)', () => {
  const { pairs, seq, vocab, targets } = goldens.preference;
  for (const golden of goldens.preference.cases) {
    const label = `${golden.loss} beta ${golden.beta} smoothing ${golden.label_smoothing} gamma ${golden.simpo_gamma} ftx ${golden.ftx}`;
    it(label, async () => {
      await device.scope(async () => {
        const targetTensor = tensor(targets, [2 * pairs, seq], 'i32');
        const logits = leaf(goldens.preference.policy_logits, [2 * pairs, seq, vocab]);
        const sums = sequenceLogProbs(logits, targetTensor);
        const referenceSums = sequenceLogProbs(
          tensor(goldens.preference.reference_logits, [2 * pairs, seq, vocab]),
          targetTensor,
        );
        const lengths = trainedLengths(targets, 2 * pairs);
        const half = (t: Tensor, which: 0 | 1) => t.device.scope(() => sliceRows(t, which, pairs));
        const { loss, statistics } = preferenceLoss(
          {
            chosen: half(sums, 0),
            rejected: half(sums, 1),
            chosenLengths: tensor(Array.from(lengths.slice(0, pairs)), [pairs]),
            rejectedLengths: tensor(Array.from(lengths.slice(pairs)), [pairs]),
          },
          { chosen: half(referenceSums, 0), rejected: half(referenceSums, 1) },
          {
            loss: golden.loss as PreferenceLossType,
            beta: golden.beta,
            labelSmoothing: golden.label_smoothing,
            simpoGamma: golden.simpo_gamma,
            ftx: golden.ftx,
          },
        );
        backward(loss);
        expectClose(await read(loss), [golden.loss_value], { ...TOLERANCE, label: 'loss' });
        const values = await readPreferenceStatistics(statistics);
        expectClose(values.losses, golden.losses, { ...TOLERANCE, label: 'losses' });
        expectClose(values.chosenRewards, golden.rewards_chosen, { ...TOLERANCE, label: 'rewards/chosen' });
        expectClose(values.rejectedRewards, golden.rewards_rejected, {
          ...TOLERANCE,
          label: 'rewards/rejected',
        });
        expectClose(values.chosenLogps, golden.logps_chosen, { ...TOLERANCE, label: 'logps/chosen' });
        expectClose(values.rejectedLogps, golden.logps_rejected, { ...TOLERANCE, label: 'logps/rejected' });
        const metrics = new PreferenceMetrics({ loss: golden.loss, beta: golden.beta, ftx: golden.ftx });
        metrics.update(values);
        const computed = metrics.compute();
        for (const [name, value] of Object.entries(golden.metrics as Record<string, number>)) {
          expectClose([computed[name]], [value], { ...TOLERANCE, label: name });
        }
        expectClose(await read(gradOf(logits)!), golden.grad_logits, { ...TOLERANCE, label: 'grad logits' });
      });
    });
  }
});

describe('pairwise reward-model loss against PyTorch', () => {
  it('scores at the last real token, loss and gradients of states, weight and bias', async () => {
    const golden = goldens.reward;
    const { pairs, seq, hidden, lengths } = golden;
    await device.scope(async () => {
      const states = leaf(golden.states, [2 * pairs, seq, hidden]);
      const head = { weight: leaf(golden.weight, [1, hidden]), bias: leaf(golden.bias, [1]) };
      const positions = tensor(Array.from(lastTokenPositions(lengths, seq)), [2 * pairs], 'i32');
      const scores = valueHeadScores(states, positions, head);
      const { loss, margins } = pairwiseRewardLoss(sliceRows(scores, 0, pairs), sliceRows(scores, 1, pairs));
      backward(loss);
      expectClose(await read(scores), golden.scores, { ...TOLERANCE, label: 'scores' });
      expectClose(await read(loss), [golden.loss], { ...TOLERANCE, label: 'loss' });
      const expectedMargins = golden.scores
        .slice(0, pairs)
        .map((s: number, i: number) => s - golden.scores[pairs + i]);
      expectClose(await read(margins), expectedMargins, { ...TOLERANCE, label: 'margins' });
      expectClose(await read(gradOf(states)!), golden.grad_states, { ...TOLERANCE, label: 'grad states' });
      expectClose(await read(gradOf(head.weight)!), golden.grad_weight, {
        ...TOLERANCE,
        label: 'grad weight',
      });
      expectClose(await read(gradOf(head.bias)!), golden.grad_bias, { ...TOLERANCE, label: 'grad bias' });
      expect(gradOf(positions)).toBeNull();
    });
  });
});

function autogradLinear(h: Tensor, weight: Tensor): Tensor {
  return autograd.matmul(h, weight, { transposeB: true });
}

/** Rows [which * pairs, (which + 1) * pairs) of a [2 pairs] tensor, differentiably. */
function sliceRows(t: Tensor, which: 0 | 1, pairs: number): Tensor {
  return autograd.slice(t, [which * pairs], [(which + 1) * pairs]);
}
