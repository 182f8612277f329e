import {
  backward,
  clearTape,
  createDevice,
  type Device,
  gradOf,
  isTracked,
  requiresGrad,
  type Tensor,
} from '@webtune/tensors';
import { expectClose } from '@webtune/test-utils';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { logSigmoid } from './log-sigmoid.js';
import { PreferenceMetrics } from './metrics/preference-metrics.js';
import { type PreferenceLossOptions, preferenceLoss, readPreferenceStatistics } from './preference-loss.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());
afterEach(() => clearTape());

const TOLERANCE = { rtol: 2e-5, atol: 1e-6 };
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const logSigmoidOf = (x: number) => Math.min(x, 0) - Math.log1p(Math.exp(-Math.abs(x)));
const read = async (t: Tensor) => Array.from(await t.toArray());

interface Pair {
  pc: number;
  pr: number;
  rc: number;
  rr: number;
  lc: number;
  lr: number;
}

/** Runs preferenceLoss on one batch of pairs given as numbers; returns values and d loss / d policy logps. */
async function run(pairs: Pair[], options: PreferenceLossOptions) {
  return device.scope(async () => {
    const column = (key: keyof Pair) =>
      device.fromArray(
        pairs.map((p) => p[key]),
        [pairs.length],
        'f32',
      );
    const chosen = requiresGrad(column('pc'));
    const rejected = requiresGrad(column('pr'));
    const { loss, statistics } = preferenceLoss(
      { chosen, rejected, chosenLengths: column('lc'), rejectedLengths: column('lr') },
      { chosen: column('rc'), rejected: column('rr') },
      options,
    );
    expect(isTracked(statistics.chosenRewards)).toBe(false);
    backward(loss);
    return {
      loss: (await read(loss))[0],
      statistics: await readPreferenceStatistics(statistics),
      gradChosen: await read(gradOf(chosen)!),
      gradRejected: await read(gradOf(rejected)!),
    };
  });
}

const PAIRS: Pair[] = [
  { pc: -12.5, pr: -15.25, rc: -13, rr: -14, lc: 5, lr: 7 },
  { pc: -20, pr: -18, rc: -19.5, rr: -18.5, lc: 10, lr: 9 },
  { pc: -3, pr: -9, rc: -4, rr: -6, lc: 2, lr: 4 },
];

describe('DPO family against closed forms', () => {
  it('sigmoid: -log sigmoid(beta x), d/dpc = -beta sigmoid(-beta x) / pairs, rewards beta (policy - reference)', async () => {
    const beta = 0.1;
    const result = await run(PAIRS, { loss: 'sigmoid', beta });
    const xs = PAIRS.map((p) => p.pc - p.pr - (p.rc - p.rr));
    const losses = xs.map((x) => -logSigmoidOf(beta * x));
    expectClose(result.statistics.losses, losses, TOLERANCE);
    expectClose([result.loss], [losses.reduce((a, b) => a + b) / 3], TOLERANCE);
    const grads = xs.map((x) => (-beta * sigmoid(-beta * x)) / 3);
    expectClose(result.gradChosen, grads, TOLERANCE);
    expectClose(
      result.gradRejected,
      grads.map((g) => -g),
      TOLERANCE,
    );
    expectClose(
      result.statistics.chosenRewards,
      PAIRS.map((p) => beta * (p.pc - p.rc)),
      TOLERANCE,
    );
    expectClose(
      result.statistics.rejectedRewards,
      PAIRS.map((p) => beta * (p.pr - p.rr)),
      TOLERANCE,
    );
  });

  it('sigmoid: a policy equal to its reference gives ln 2 at any beta, and no accuracy', async () => {
    const same = PAIRS.map((p) => ({ ...p, rc: p.pc, rr: p.pr }));
    for (const beta of [0.05, 1, 3]) {
      const result = await run(same, { loss: 'sigmoid', beta });
      expectClose([result.loss], [Math.LN2], TOLERANCE);
      const metrics = new PreferenceMetrics({ beta });
      metrics.update(result.statistics);
      expect(metrics.compute()['rewards/accuracies']).toBe(0);
      expect(metrics.compute()['rewards/margins']).toBeCloseTo(0, 6);
    }
  });

  it('sigmoid with label smoothing s: -(1 - s) log sigmoid(bx) - s log sigmoid(-bx); s = 0.5 is flat in x at 0', async () => {
    const beta = 0.5;
    const s = 0.2;
    const result = await run(PAIRS, { loss: 'sigmoid', beta, labelSmoothing: s });
    const xs = PAIRS.map((p) => p.pc - p.pr - (p.rc - p.rr));
    expectClose(
      result.statistics.losses,
      xs.map((x) => -(1 - s) * logSigmoidOf(beta * x) - s * logSigmoidOf(-beta * x)),
      TOLERANCE,
    );
    const grads = xs.map((x) => (-(1 - s) * beta * sigmoid(-beta * x) + s * beta * sigmoid(beta * x)) / 3);
    expectClose(result.gradChosen, grads, TOLERANCE);
    const flat = await run([{ pc: -5, pr: -5, rc: -5, rr: -5, lc: 1, lr: 1 }], {
      loss: 'sigmoid',
      labelSmoothing: 0.5,
    });
    expectClose(flat.gradChosen, [0], TOLERANCE);
  });

  it('hinge: relu(1 - beta x), no gradient once the margin is met', async () => {
    const beta = 1.5;
    const result = await run(PAIRS, { loss: 'hinge', beta });
    const xs = PAIRS.map((p) => p.pc - p.pr - (p.rc - p.rr));
    expectClose(
      result.statistics.losses,
      xs.map((x) => Math.max(0, 1 - beta * x)),
      TOLERANCE,
    );
    expect(1 - beta * xs[0]).toBeLessThan(0);
    expectClose(
      result.gradChosen,
      xs.map((x) => (1 - beta * x > 0 ? -beta / 3 : 0)),
      TOLERANCE,
    );
  });

  it('IPO: (x - 1/(2 beta))^2 on length-averaged log-probs', async () => {
    const beta = 0.25;
    const result = await run(PAIRS, { loss: 'ipo', beta });
    const xs = PAIRS.map((p) => p.pc / p.lc - p.pr / p.lr - (p.rc / p.lc - p.rr / p.lr));
    expectClose(
      result.statistics.losses,
      xs.map((x) => (x - 1 / (2 * beta)) ** 2),
      TOLERANCE,
    );
    expectClose(
      result.gradChosen,
      xs.map((x, i) => (2 * (x - 1 / (2 * beta))) / PAIRS[i].lc / 3),
      TOLERANCE,
    );
    expectClose(
      result.statistics.chosenLogps,
      PAIRS.map((p) => p.pc / p.lc),
      TOLERANCE,
    );
  });

  it('ORPO: -c + beta * -log sigmoid(log odds(c) - log odds(r)) on averages, rewards beta * policy', async () => {
    const beta = 0.1;
    const result = await run(PAIRS, { loss: 'orpo', beta });
    const logOdds = (lp: number) => lp - Math.log1p(-Math.exp(lp));
    const expected = PAIRS.map((p) => {
      const c = p.pc / p.lc;
      const r = p.pr / p.lr;
      return -c - beta * logSigmoidOf(logOdds(c) - logOdds(r));
    });
    expectClose(result.statistics.losses, expected, TOLERANCE);
    expectClose(
      result.statistics.chosenRewards,
      PAIRS.map((p) => (beta * p.pc) / p.lc),
      TOLERANCE,
    );
    const metrics = new PreferenceMetrics({ loss: 'orpo', beta });
    metrics.update(result.statistics);
    const computed = metrics.compute();
    expectClose([computed.sft_loss], [PAIRS.reduce((a, p) => a - p.pc / p.lc, 0) / 3], TOLERANCE);
    const odds = PAIRS.map((p) => -logSigmoidOf(logOdds(p.pc / p.lc) - logOdds(p.pr / p.lr)));
    expectClose([computed.odds_ratio_loss], [odds.reduce((a, b) => a + b) / 3], { rtol: 1e-4 });
  });

  it('SimPO: -log sigmoid(beta (c - r) - gamma) on averages; the reference is not read', async () => {
    const beta = 2;
    const gamma = 0.8;
    const expected = PAIRS.map((p) => -logSigmoidOf(beta * (p.pc / p.lc - p.pr / p.lr) - gamma));
    const withReference = await run(PAIRS, { loss: 'simpo', beta, simpoGamma: gamma });
    expectClose(withReference.statistics.losses, expected, TOLERANCE);
    const other = await run(
      PAIRS.map((p) => ({ ...p, rc: 0, rr: -100 })),
      { loss: 'simpo', beta, simpoGamma: gamma },
    );
    expectClose(other.statistics.losses, expected, TOLERANCE);
  });

  it('pref_ftx adds ftx * (-chosen average log-prob) per pair', async () => {
    const base = await run(PAIRS, { loss: 'sigmoid', beta: 0.1 });
    const ftx = await run(PAIRS, { loss: 'sigmoid', beta: 0.1, ftx: 0.5 });
    expectClose(
      ftx.statistics.losses,
      base.statistics.losses.map((l, i) => l - (0.5 * PAIRS[i].pc) / PAIRS[i].lc),
      TOLERANCE,
    );
    expectClose(
      ftx.gradChosen,
      base.gradChosen.map((g, i) => g - 0.5 / PAIRS[i].lc / 3),
      TOLERANCE,
    );
  });

  it('a normalizer turns the mean into sum / normalizer (accumulated micro-batches)', async () => {
    const mean = await run(PAIRS, { loss: 'hinge', beta: 0.1 });
    const scaled = await run(PAIRS, { loss: 'hinge', beta: 0.1, normalizer: 12 });
    expectClose([scaled.loss], [(mean.loss * 3) / 12], TOLERANCE);
  });

  it('rejects a missing reference, an unknown loss and bad options with a message', async () => {
    await device.scope(async () => {
      const v = device.fromArray([-1, -2], [2], 'f32');
      const policy = { chosen: v, rejected: v, chosenLengths: v, rejectedLengths: v };
      expect(() => preferenceLoss(policy, null, { loss: 'sigmoid' })).toThrow(
        /needs reference log-probabilities/,
      );
      expect(() => preferenceLoss(policy, null, { loss: 'kto' as never })).toThrow(/unknown loss 'kto'/);
      expect(() => preferenceLoss(policy, null, { loss: 'orpo', beta: 0 })).toThrow(/beta 0 must be > 0/);
      expect(() => preferenceLoss(policy, policy, { labelSmoothing: 0.7 })).toThrow(/labelSmoothing/);
      const short = device.fromArray([-1], [1], 'f32');
      expect(() => preferenceLoss({ ...policy, rejected: short }, policy)).toThrow(/policy.rejected/);
      // ORPO and SimPO need no reference.
      expect(() => preferenceLoss(policy, null, { loss: 'simpo' })).not.toThrow();
    });
  });
});

describe('logSigmoid', () => {
  it('is finite and accurate at large |x|, with gradient sigmoid(-x)', async () => {
    const xs = [-200, -30, -1, 0, 0.5, 30, 200];
    await device.scope(async () => {
      const x = requiresGrad(device.fromArray(xs, [xs.length], 'f32'));
      const y = logSigmoid(x);
      backward(y, device.fromArray(new Array(xs.length).fill(1), [xs.length], 'f32'));
      expectClose(await read(y), xs.map(logSigmoidOf), { rtol: 1e-6, atol: 1e-7 });
      expectClose(
        await read(gradOf(x)!),
        xs.map((v) => sigmoid(-v)),
        { rtol: 1e-5, atol: 1e-7 },
      );
    });
  });
});
