import { readFileSync } from 'node:fs';
import {
  backward,
  clearTape,
  createDevice,
  type Device,
  gradOf,
  isTracked,
  noGrad,
  requiresGrad,
  type Tensor,
} from '@webtune/tensors';
import { expectClose } from '@webtune/test-utils';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ktoLoss, packKtoStatistics, unpackKtoStatistics } from './kto-loss.js';
import { KtoMetrics } from './metrics/kto-metrics.js';
import { sequenceLogProbs } from './sequence-log-probs.js';

// From tools/golden/trl_kto.py: TRL 1.13's KTOTrainer._compute_loss on fixed logits.
const goldens = JSON.parse(readFileSync(new URL('./__fixtures__/kto-goldens.json', import.meta.url), 'utf8'));

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());
afterEach(() => clearTape());

const read = async (t: Tensor) => Array.from(await t.toArray());
const f32 = (values: number[]) => device.fromArray(values, [values.length], 'f32');
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** TRL's completion mask as next-token targets: target t is token t + 1 when that token is trained. */
function targetsOf(ids: number[], mask: number[], rows: number, seq: number): Tensor {
  const targets = new Int32Array(rows * seq).fill(-100);
  for (let r = 0; r < rows; r++) {
    for (let t = 0; t + 1 < seq; t++) if (mask[r * seq + t + 1]) targets[r * seq + t] = ids[r * seq + t + 1];
  }
  return device.fromArray(targets, [rows, seq], 'i32');
}

describe('ktoLoss against TRL 1.13', () => {
  for (const golden of goldens.cases) {
    it(`${golden.name}: loss, gradient of the logits, logged metrics`, async () => {
      const { rows, seq, vocab } = goldens;
      await device.scope(async () => {
        const logits = requiresGrad(device.fromArray(golden.logits, [rows, seq, vocab], 'f32'));
        const policy = sequenceLogProbs(
          logits,
          targetsOf(golden.input_ids, golden.completion_mask, rows, seq),
        );
        const policyKl = noGrad(() =>
          sequenceLogProbs(
            device.fromArray(golden.kl_logits, [rows, seq, vocab], 'f32'),
            targetsOf(golden.kl_input_ids, golden.kl_completion_mask, rows, seq),
          ),
        );
        const { loss, statistics } = ktoLoss(
          {
            policy,
            reference: f32(golden.ref_logps),
            policyKl,
            referenceKl: f32(golden.ref_kl_logps),
            desirable: f32(golden.labels.map((label: boolean) => (label ? 1 : 0))),
          },
          {
            beta: golden.beta,
            desirableWeight: golden.desirable_weight,
            undesirableWeight: golden.undesirable_weight,
          },
        );
        expect(isTracked(statistics.rewards)).toBe(false);
        backward(loss);
        expectClose(await read(loss), [golden.loss], { rtol: 2e-5, atol: 1e-6, label: 'loss' });
        expectClose(await read(gradOf(logits)!), golden.grad_logits, {
          rtol: 1e-4,
          atol: 1e-7,
          label: 'grad',
        });
        const metrics = new KtoMetrics();
        metrics.update(unpackKtoStatistics((await packKtoStatistics(statistics).toArray()) as Float32Array));
        const computed = metrics.compute();
        for (const [name, value] of Object.entries(golden.metrics as Record<string, number>)) {
          expectClose([computed[name]], [value], { rtol: 1e-4, atol: 1e-5, label: name });
        }
        expect(Object.keys(computed).sort()).toEqual(Object.keys(golden.metrics).sort());
      });
    });
  }
});

describe('ktoLoss closed forms', () => {
  it('weights, signs, the clamped KL estimate, and d loss / d policy', async () => {
    const policy = [-5, -7, -4, -9];
    const reference = [-6, -6, -6, -6];
    const desirable = [1, 0, 1, 0];
    const beta = 0.3;
    const [wd, wu] = [2, 0.5];
    const klPolicy = [-3, -2, -4, -1];
    const klReference = [-3.5, -2.5, -4.5, -1.5];
    const kl = Math.max(0, 0.5);
    await device.scope(async () => {
      const leaf = requiresGrad(f32(policy));
      const { loss, statistics } = ktoLoss(
        {
          policy: leaf,
          reference: f32(reference),
          policyKl: f32(klPolicy),
          referenceKl: f32(klReference),
          desirable: f32(desirable),
        },
        { beta, desirableWeight: wd, undesirableWeight: wu, normalizer: 8 },
      );
      backward(loss);
      let expected = 0;
      const grads: number[] = [];
      policy.forEach((p, i) => {
        const sign = desirable[i] ? 1 : -1;
        const weight = desirable[i] ? wd : wu;
        const z = beta * sign * (p - reference[i] - kl);
        expected += weight * (1 - sigmoid(z));
        // d/dp w (1 - sigmoid(z)) = -w sigmoid(z) (1 - sigmoid(z)) beta sign
        grads.push((-weight * sigmoid(z) * (1 - sigmoid(z)) * beta * sign) / 8);
      });
      expectClose(await read(loss), [expected / 8], { rtol: 1e-5, label: 'loss' });
      expectClose(await read(gradOf(leaf)!), grads, { rtol: 1e-4, atol: 1e-8, label: 'grad' });
      expectClose(await read(statistics.kl), [kl, kl, kl, kl], { rtol: 1e-6, label: 'kl' });
      expectClose(
        await read(statistics.rewards),
        policy.map((p, i) => beta * (p - reference[i])),
        { rtol: 1e-5, label: 'rewards' },
      );
    });
  });

  it('ftx adds the SFT loss of desirable answers only', async () => {
    await device.scope(async () => {
      const inputs = {
        policy: f32([-4, -6]),
        reference: f32([-4, -6]),
        policyKl: f32([0, 0]),
        referenceKl: f32([0, 0]),
        desirable: f32([1, 0]),
        lengths: f32([2, 3]),
      };
      const plain = await read(ktoLoss(inputs).loss);
      const withFtx = await read(ktoLoss(inputs, { ftx: 0.5 }).loss);
      // Both losses are 1 - sigmoid(0) = 0.5 at r = z = 0; ftx adds 0.5 * (4 / 2) to the first.
      expectClose(plain, [0.5], { rtol: 1e-6 });
      expectClose(withFtx, [0.5 + (0.5 * 2) / 2], { rtol: 1e-6 });
    });
  });

  it('refuses bad options and mismatched inputs', () => {
    device.scope(() => {
      const one = f32([1]);
      const base = { policy: one, reference: one, policyKl: one, referenceKl: one, desirable: one };
      expect(() => ktoLoss(base, { beta: 0 })).toThrow(/beta 0 must be > 0/);
      expect(() => ktoLoss(base, { desirableWeight: -1 })).toThrow(/kto_chosen_weight/);
      expect(() => ktoLoss({ ...base, reference: f32([1, 2]) })).toThrow(/reference .* must have 1 values/);
      expect(() => ktoLoss(base, { ftx: 1 })).toThrow(/needs the answer lengths/);
    });
  });

  it('metrics leave out a side with no example', () => {
    const metrics = new KtoMetrics();
    const values = (n: number[]) => Float32Array.from(n);
    metrics.update({
      losses: values([0.5]),
      rewards: values([0.2]),
      logps: values([-3]),
      desirable: values([1]),
      kl: values([0.1]),
    });
    expect(metrics.compute('eval_')).toEqual({
      'eval_rewards/chosen': expect.closeTo(0.2, 6),
      'eval_logps/chosen': -3,
      eval_kl: expect.closeTo(0.1, 6),
    });
  });
});
