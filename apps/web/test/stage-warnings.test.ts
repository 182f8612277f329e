/* The Train tab's warnings about stage metrics (PPO reward and KL, KTO/DPO margins and KL), in Node. */
import { describe, expect, it } from 'vitest';
import { FLAT_WINDOW, StageWarnings } from '../src/tabs/stage-warnings.js';

const run = (warnings: StageWarnings, steps: Record<string, number>[]) =>
  steps.flatMap((metrics, index) => warnings.observe(index + 1, metrics));

describe('stage warnings', () => {
  it('calls a PPO reward flat once it stops moving for the window, and only once', () => {
    const flat = run(new StageWarnings(), [
      { reward: 0.2 },
      { reward: 0.5 },
      { reward: 0.5 },
      { reward: 0.5002 },
      { reward: 0.5001 },
      { reward: 0.5 },
    ]);
    expect(flat.map((warning) => [warning.kind, warning.step])).toEqual([
      ['reward-flat', 2 + FLAT_WINDOW - 1],
    ]);
    expect(flat[0].message).toMatch(/PPO reward flat: 0\.5 to 0\.500\d? over the last 4 steps/);
    expect(flat[0].advice).toMatch(/reward model/);
    // A reward that climbs, however slowly against its size, is not flat.
    const climbing = run(
      new StageWarnings(),
      Array.from({ length: 10 }, (_, i) => ({ reward: 0.1 + 0.01 * i })),
    );
    expect(climbing).toEqual([]);
  });

  it('calls PPO KL exploding above twice ppo_target, reading the target given', () => {
    const steps = [{ 'ppo/kl': 2 }, { 'ppo/kl': 9 }, { 'ppo/kl': 13 }, { 'ppo/kl': 30 }];
    expect(run(new StageWarnings(), steps).map((w) => [w.kind, w.step])).toEqual([['kl-exploding', 3]]);
    expect(run(new StageWarnings({ klTarget: 1 }), steps).map((w) => w.step)).toEqual([2]);
    expect(run(new StageWarnings({ klTarget: 20 }), steps)).toEqual([]);
  });

  it('calls a KTO kl exploding when it more than doubles three steps running, and margins gone negative', () => {
    const kl = run(new StageWarnings(), [{ kl: 0.2 }, { kl: 0.5 }, { kl: 1.2 }, { kl: 3 }, { kl: 7 }]);
    expect(kl.map((w) => [w.kind, w.step])).toEqual([['kl-exploding', 4]]);
    // Doubling from tiny values, or from the 0 of the first step, is not a warning.
    expect(run(new StageWarnings(), [{ kl: 0.01 }, { kl: 0.03 }, { kl: 0.07 }, { kl: 0.2 }])).toEqual([]);
    expect(run(new StageWarnings(), [{ kl: 0 }, { kl: 0.3 }, { kl: 0.7 }, { kl: 1.5 }])).toEqual([]);
    const margins = run(new StageWarnings(), [
      { 'rewards/margins': -0.1 },
      { 'rewards/margins': -0.2 },
      { 'rewards/margins': 0.1 },
      { 'rewards/margins': -0.1 },
      { 'rewards/margins': -0.3 },
      { 'rewards/margins': -0.4 },
    ]);
    expect(margins.map((w) => [w.kind, w.step])).toEqual([['margins-negative', 6]]);
    expect(margins[0].advice).toMatch(/kto_tag/);
  });

  it('ignores non-finite values and stages without these metrics', () => {
    expect(
      run(new StageWarnings(), [{ accuracy: 0.5 }, { reward: Number.NaN }, { 'rewards/chosen': 1 }, {}]),
    ).toEqual([]);
  });
});
