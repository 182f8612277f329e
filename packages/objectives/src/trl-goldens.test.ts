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
import { PreferenceMetrics } from './metrics/preference-metrics.js';
import { type PreferenceLossType, preferenceLoss, readPreferenceStatistics } from './preference-loss.js';
import { sequenceLogProbs, trainedLengths } from './sequence-log-probs.js';

// Losses, metrics and logit gradients from trl 1.13's own code (tools/golden/trl_preference_losses.py).
const goldens = JSON.parse(
  readFileSync(new URL('./__fixtures__/trl-preference-goldens.json', import.meta.url), 'utf8'),
) as {
  trl: string;
  pairs: number;
  seq: number;
  vocab: number;
  targets: number[];
  policy_logits: number[];
  reference_logits: number[];
  cases: {
    loss: PreferenceLossType;
    beta: number;
    simpo_gamma?: number;
    source: string;
    loss_value: number;
    metrics: Record<string, number>;
    grad_logits: number[];
  }[];
};
const TOLERANCE = { rtol: 1e-4, atol: 1e-6 };

/**
 * Metrics trl defines another way than LLaMA-Factory, whose definitions webtune follows:
 * for IPO, trl's rewards and logps are the summed log-probs; LLaMA-Factory's (and webtune's) are
 * the averaged ones its IPO loss uses. The loss itself is the same.
 */
const DEFINED_OTHERWISE: Partial<Record<PreferenceLossType, string[]>> = {
  ipo: ['rewards/chosen', 'rewards/rejected', 'rewards/margins', 'logps/chosen', 'logps/rejected'],
};

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());
afterEach(() => clearTape());

describe(`preference losses against trl ${goldens.trl} itself`, () => {
  const { pairs, seq, vocab, targets } = goldens;
  for (const golden of goldens.cases) {
    it(`${golden.loss} beta ${golden.beta}${golden.simpo_gamma ? ` gamma ${golden.simpo_gamma}` : ''} (${golden.source})`, async () => {
      await device.scope(async () => {
        const targetTensor = device.fromArray(targets, [2 * pairs, seq], 'i32');
        const logits = requiresGrad(device.fromArray(goldens.policy_logits, [2 * pairs, seq, vocab], 'f32'));
        const sums = sequenceLogProbs(logits, targetTensor);
        const referenceSums = sequenceLogProbs(
          device.fromArray(goldens.reference_logits, [2 * pairs, seq, vocab], 'f32'),
          targetTensor,
        );
        const lengths = trainedLengths(targets, 2 * pairs);
        const half = (t: Tensor, which: 0 | 1) => autograd.slice(t, [which * pairs], [(which + 1) * pairs]);
        const { loss, statistics } = preferenceLoss(
          {
            chosen: half(sums, 0),
            rejected: half(sums, 1),
            chosenLengths: device.fromArray(Array.from(lengths.slice(0, pairs)), [pairs], 'f32'),
            rejectedLengths: device.fromArray(Array.from(lengths.slice(pairs)), [pairs], 'f32'),
          },
          { chosen: half(referenceSums, 0), rejected: half(referenceSums, 1) },
          {
            loss: golden.loss,
            beta: golden.beta,
            simpoGamma: golden.simpo_gamma ?? 0,
            labelSmoothing: 0,
            ftx: 0,
          },
        );
        backward(loss);
        expectClose(Array.from(await loss.toArray()), [golden.loss_value], { ...TOLERANCE, label: 'loss' });
        const metrics = new PreferenceMetrics({ loss: golden.loss, beta: golden.beta, ftx: 0 });
        metrics.update(await readPreferenceStatistics(statistics));
        const computed = metrics.compute();
        const skipped = DEFINED_OTHERWISE[golden.loss] ?? [];
        const compared = Object.keys(golden.metrics).filter(
          (name) => name in computed && !skipped.includes(name),
        );
        expect(compared).toContain('rewards/accuracies');
        if (!skipped.length) expect(compared).toContain('rewards/margins');
        for (const name of compared) {
          expectClose([computed[name]], [golden.metrics[name]], { ...TOLERANCE, label: name });
        }
        expectClose(Array.from(await gradOf(logits)!.toArray()), golden.grad_logits, {
          ...TOLERANCE,
          label: 'gradient of the policy logits',
        });
      });
    });
  }
});
