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
import { tokenCrossEntropy } from '../token-cross-entropy.js';
import { ppoLoss } from './ppo-loss.js';
import {
  AdaptiveKlController,
  generalizedAdvantages,
  RunningMoments,
  tokenRewards,
  whiten,
} from './ppo-math.js';

// tools/golden/ppo_step.py: TRL 0.9's PPO formulas (LLaMA-Factory's PPO) in PyTorch, float64.
const golden = JSON.parse(readFileSync(new URL('../__fixtures__/ppo-goldens.json', import.meta.url), 'utf8'));

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());
afterEach(() => clearTape());

const read = async (t: Tensor) => Array.from(await t.toArray());

describe('PPO arithmetic, closed forms', () => {
  it('token rewards: -kl_coef * kl per token, the score added on the last one', () => {
    const { rewards, kl } = tokenRewards(2, [-1, -2, -3], [-1.5, -2, -2], 0.1);
    expect(Array.from(kl)).toEqual([0.5, 0, -1]);
    expectClose(Array.from(rewards), [-0.05, 0, 0.1 + 2], { rtol: 1e-12 });
  });

  it('GAE with gamma 1, lambda 1 is reward-to-go minus the value; lambda 0 is the one-step TD error', () => {
    const rewards = [1, 0, 2];
    const values = [0.5, 0.25, 1];
    const full = generalizedAdvantages(rewards, values, 1, 1);
    expectClose(Array.from(full.advantages), [3 - 0.5, 2 - 0.25, 2 - 1], { rtol: 1e-12 });
    expectClose(Array.from(full.returns), [3, 2, 2], { rtol: 1e-12 });
    const td = generalizedAdvantages(rewards, values, 0.9, 0);
    expectClose(Array.from(td.advantages), [1 + 0.9 * 0.25 - 0.5, 0 + 0.9 * 1 - 0.25, 2 - 1], {
      rtol: 1e-12,
    });
  });

  it('whiten: mean 0 and unbiased variance 1 over all tokens; shiftMean false keeps the mean', () => {
    const sequences = [Float64Array.from([1, 2, 3]), Float64Array.from([7])];
    whiten(sequences);
    const all = sequences.flatMap((s) => Array.from(s));
    const mean = all.reduce((a, b) => a + b) / all.length;
    const variance = all.reduce((a, b) => a + (b - mean) ** 2, 0) / (all.length - 1);
    expect(mean).toBeCloseTo(0, 12);
    expect(variance).toBeCloseTo(1, 6);
    const kept = [Float64Array.from([1, 3])];
    whiten(kept, false);
    expect((kept[0][0] + kept[0][1]) / 2).toBeCloseTo(2, 12);
  });

  it('the adaptive KL coefficient moves toward the target by at most 20% x n / horizon', () => {
    const controller = new AdaptiveKlController(0.2, 6, 10000);
    controller.update(60, 100);
    expect(controller.value).toBeCloseTo(0.2 * (1 + 0.2 * 0.01), 12);
    controller.update(0, 100);
    expect(controller.value).toBeCloseTo(0.2 * (1 + 0.2 * 0.01) * (1 - 0.2 * 0.01), 12);
    const fixed = new AdaptiveKlController(0.2, null);
    fixed.update(100, 100);
    expect(fixed.value).toBe(0.2);
  });
});

describe('one PPO step against PyTorch (tools/golden/ppo_step.py)', () => {
  const { rows, seq, vocab } = golden;
  const mask: number[] = golden.mask;
  /** The response positions of each row (where the mask is 1). */
  const responses = Array.from({ length: rows }, (_, r) =>
    Array.from({ length: seq }, (_, t) => r * seq + t).filter((i) => mask[i] === 1),
  );

  it("RunningMoments matches TRL 1.13's, ppo_score_norm's scores follow", () => {
    const running = new RunningMoments();
    running.update(golden.earlier_scores);
    const normalized = running.normalize(golden.raw_scores);
    expect(running.mean).toBeCloseTo(golden.running_mean, 5);
    expect(running.std).toBeCloseTo(golden.running_std, 5);
    expectClose(Array.from(normalized), golden.cases[1].scores, { rtol: 1e-5, atol: 1e-6 });
  });

  for (const index of [0, 1]) {
    it(`${index === 0 ? 'plain' : 'score norm + whiten_rewards'}: rewards, advantages, returns, loss and gradients`, async () => {
      const c = golden.cases[index];
      const rewards: Float64Array[] = [];
      const kls: number[] = [];
      responses.forEach((positions, r) => {
        const pick = (values: number[]) => positions.map((i) => values[i]);
        const result = tokenRewards(
          c.scores[r],
          pick(golden.old_logprobs),
          pick(golden.ref_logprobs),
          golden.kl_coef,
        );
        rewards.push(result.rewards);
        kls.push(result.kl.reduce((a, b) => a + b, 0));
      });
      if (c.whiten_rewards) whiten(rewards, false);
      const advantages = new Float32Array(rows * seq);
      const returns = new Float32Array(rows * seq);
      const gae = responses.map((positions, r) =>
        generalizedAdvantages(
          rewards[r],
          positions.map((i) => golden.old_values[i]),
          golden.gamma,
          golden.lam,
        ),
      );
      whiten(gae.map((g) => g.advantages));
      const flatRewards = new Float64Array(rows * seq);
      responses.forEach((positions, r) => {
        positions.forEach((i, k) => {
          advantages[i] = gae[r].advantages[k];
          returns[i] = gae[r].returns[k];
          flatRewards[i] = rewards[r][k];
        });
      });
      expectClose(Array.from(flatRewards), c.rewards, { rtol: 1e-6, atol: 1e-7, label: 'rewards' });
      expectClose(Array.from(advantages), c.advantages, { rtol: 1e-5, atol: 1e-6, label: 'advantages' });
      expectClose(Array.from(returns), c.returns, { rtol: 1e-5, atol: 1e-6, label: 'returns' });
      expect(kls.reduce((a, b) => a + b) / rows).toBeCloseTo(c.mean_kl, 5);

      await device.scope(async () => {
        const logits = requiresGrad(device.fromArray(golden.logits, [rows, seq, vocab], 'f32'));
        const targets = device.fromArray(
          golden.targets.map((id: number, i: number) => (mask[i] ? id : -100)),
          [rows, seq],
          'i32',
        );
        const values = requiresGrad(device.fromArray(golden.vpreds, [rows, seq], 'f32'));
        const f32 = (v: ArrayLike<number>) => device.fromArray(Array.from(v), [rows, seq], 'f32');
        const { loss, statistics } = ppoLoss(
          {
            logprobs: autograd.neg(tokenCrossEntropy(logits, targets)),
            values,
            oldLogprobs: f32(golden.old_logprobs),
            oldValues: f32(golden.old_values),
            advantages: f32(advantages),
            returns: f32(returns),
            mask: f32(mask),
          },
          { clipRange: golden.clip, clipRangeValue: golden.clip_value, valueCoefficient: golden.vf_coef },
        );
        backward(loss);
        expectClose(await read(loss), [c.loss], { rtol: 1e-5, atol: 1e-7, label: 'loss' });
        const stats = await read(statistics);
        expectClose(stats.slice(0, 2), [c.policy_loss, c.value_loss], {
          rtol: 1e-5,
          atol: 1e-7,
          label: 'parts',
        });
        expectClose(await read(gradOf(logits)!), c.grad_logits, {
          rtol: 1e-4,
          atol: 1e-7,
          label: 'd logits',
        });
        expectClose(await read(gradOf(values)!), c.grad_values, {
          rtol: 1e-4,
          atol: 1e-7,
          label: 'd values',
        });
      });
    });
  }

  it('the KL coefficient after the step', () => {
    const controller = new AdaptiveKlController(golden.kl_coef, golden.target);
    controller.update(golden.cases[0].mean_kl, rows);
    expect(controller.value).toBeCloseTo(golden.kl_coef_after, 12);
  });
});
