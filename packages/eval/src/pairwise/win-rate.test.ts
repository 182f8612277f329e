import { describe, expect, it } from 'vitest';
import {
  bootstrapInterval,
  formatWinRate,
  normalQuantile,
  summarizeOutcomes,
  wilsonInterval,
} from './win-rate.js';

describe('win rates and intervals', () => {
  it('normal quantiles', () => {
    expect(normalQuantile(0.95)).toBeCloseTo(1.959963985, 8);
    expect(normalQuantile(0.9)).toBeCloseTo(1.644853627, 8);
    expect(normalQuantile(0.99)).toBeCloseTo(2.575829304, 8);
  });

  it('Wilson interval, worked by hand for 8 of 10 at 95%', () => {
    // z = 1.959964, z^2 = 3.841459; centre = (0.8 + 0.1920730) / 1.3841459 = 0.7167380;
    // half = 1.959964 x sqrt(0.016 + 0.0096036) / 1.3841459 = 0.2265756 -> [0.490162, 0.943314].
    const [low, high] = wilsonInterval(8, 10);
    expect(low).toBeCloseTo(0.490162, 5);
    expect(high).toBeCloseTo(0.943314, 5);
    const [zeroLow, zeroHigh] = wilsonInterval(0, 10);
    expect(zeroLow).toBe(0);
    expect(zeroHigh).toBeCloseTo(3.841459 / 13.841459, 5); // z^2 / (n + z^2)
    expect(wilsonInterval(0, 0)).toEqual([0, 1]);
  });

  it('bootstrap interval: seeded, around the mean, degenerate for constant scores', () => {
    const scores = [1, 1, 0, 1, 0.5, 1, 0, 1, 1, 0.5, 1, 0, 1, 1, 1, 0.5];
    const first = bootstrapInterval(scores, { seed: 7 });
    expect(bootstrapInterval(scores, { seed: 7 })).toEqual(first);
    const mean = scores.reduce((a, b) => a + b) / scores.length;
    expect(first[0]).toBeLessThan(mean);
    expect(first[1]).toBeGreaterThan(mean);
    expect(first[1] - first[0]).toBeLessThan(0.6);
    expect(bootstrapInterval([1, 1, 1, 1])).toEqual([1, 1]);
  });

  it('summarizes outcomes with ties counting half', () => {
    const outcomes = [
      { id: 0, winner: 1 as const },
      { id: 1, winner: 1 as const },
      { id: 2, winner: 0 as const },
      { id: 3, winner: null },
    ];
    const summary = summarizeOutcomes(['base', 'tuned'], outcomes);
    expect(summary).toMatchObject({ total: 4, wins: [1, 2], ties: 1, winRate: 0.625, method: 'wilson' });
    expect(summary.interval).toEqual(wilsonInterval(2.5, 4));
    expect(formatWinRate(summary)).toMatch(
      /^tuned vs base: win rate 62\.5% \(95% CI \d+\.\d-\d+\.\d%, wilson\): 2 wins, 1 losses, 1 ties of 4$/,
    );
    const boot = summarizeOutcomes(['base', 'tuned'], outcomes, { method: 'bootstrap', seed: 1 });
    expect(boot.method).toBe('bootstrap');
    expect(boot.interval[0]).toBeLessThanOrEqual(0.625);
  });
});
