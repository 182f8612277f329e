import { describe, expect, it } from 'vitest';
import {
  applyRepetitionPenalty,
  argmaxOf,
  SeededRandom,
  sampleToken,
  samplingDistribution,
  validateSamplingOptions,
} from './sampling.js';

const softmax = (logits: number[]) => {
  const max = Math.max(...logits);
  const e = logits.map((l) => Math.exp(l - max));
  const total = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / total);
};

describe('SeededRandom', () => {
  it('repeats for a seed, differs across seeds, and is uniform on [0, 1)', () => {
    const a = new SeededRandom(7);
    const b = new SeededRandom(7);
    const c = new SeededRandom(8);
    const first = Array.from({ length: 5 }, () => a.next());
    expect(Array.from({ length: 5 }, () => b.next())).toEqual(first);
    expect(Array.from({ length: 5 }, () => c.next())).not.toEqual(first);
    const random = new SeededRandom(1);
    const buckets = new Array(10).fill(0);
    const n = 100_000;
    let outside = 0;
    for (let i = 0; i < n; i++) {
      const x = random.next();
      if (!(x >= 0 && x < 1)) outside++;
      else buckets[Math.floor(x * 10)]++;
    }
    expect(outside).toBe(0);
    for (const count of buckets) expect(Math.abs(count - n / 10)).toBeLessThan(600);
  });
});

describe('samplingDistribution', () => {
  const logits = [2, 1, 0.5, 0, -1, -3];

  it('is the softmax of logits / temperature without filters', () => {
    const p = samplingDistribution(logits, { temperature: 0.7 });
    const expected = softmax(logits.map((l) => l / 0.7));
    for (const [i, v] of p.entries()) expect(v).toBeCloseTo(expected[i], 12);
  });

  it('top-k keeps the k largest, and ties with the k-th', () => {
    const p = samplingDistribution(logits, { temperature: 1, topK: 2 });
    expect([...p].map((v) => v > 0)).toEqual([true, true, false, false, false, false]);
    const expected = softmax([2, 1]);
    expect(p[0]).toBeCloseTo(expected[0], 12);
    const tied = samplingDistribution([3, 1, 1, 0], { temperature: 1, topK: 2 });
    expect([...tied].map((v) => v > 0)).toEqual([true, true, true, false]);
  });

  it('top-p keeps the smallest head whose mass reaches p', () => {
    const full = softmax(logits);
    // full[0] ~ 0.55, full[0] + full[1] ~ 0.75: p = 0.7 needs two tokens, p = 0.5 one.
    expect(
      [...samplingDistribution(logits, { temperature: 1, topP: 0.7 })].filter((v) => v > 0),
    ).toHaveLength(2);
    expect(
      [...samplingDistribution(logits, { temperature: 1, topP: 0.5 })].filter((v) => v > 0),
    ).toHaveLength(1);
    const p = samplingDistribution(logits, { temperature: 1, topP: 0.7 });
    expect(p[0]).toBeCloseTo(full[0] / (full[0] + full[1]), 12);
  });

  it('min-p drops tokens below minP x the top probability', () => {
    const full = softmax(logits);
    const p = samplingDistribution(logits, { temperature: 1, minP: 0.25 });
    for (const [i, v] of full.entries()) expect(p[i] > 0).toBe(v >= 0.25 * full[0]);
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
  });
});

describe('sampleToken', () => {
  it('is greedy at temperature 0', () => {
    const random = new SeededRandom(3);
    expect(sampleToken(Float32Array.from([0.1, 5, 2]), {}, random)).toBe(1);
  });

  it('draws tokens with the distribution’s frequencies', () => {
    const logits = [1, 0.5, 0, -0.5];
    const expected = softmax(logits);
    const random = new SeededRandom(11);
    const counts = [0, 0, 0, 0];
    const n = 40_000;
    for (let i = 0; i < n; i++) counts[sampleToken(Float32Array.from(logits), { temperature: 1 }, random)]++;
    for (const [i, count] of counts.entries()) expect(Math.abs(count / n - expected[i])).toBeLessThan(0.01);
  });

  it('gives the same draws for the same seed', () => {
    const draw = (seed: number) => {
      const random = new SeededRandom(seed);
      return Array.from({ length: 20 }, () =>
        sampleToken(Float32Array.from([0, 0.1, 0.2, 0.3, 0.4]), { temperature: 1.5, topK: 4 }, random),
      );
    };
    expect(draw(5)).toEqual(draw(5));
    expect(draw(5)).not.toEqual(draw(6));
  });
});

describe('repetition penalty', () => {
  it('divides positive logits and multiplies negative ones of seen tokens only', () => {
    const logits = Float32Array.from([2, -2, 1, 3]);
    applyRepetitionPenalty(logits, [0, 1, 1], 2);
    expect([...logits]).toEqual([1, -4, 1, 3]);
  });

  it('can change the greedy choice', () => {
    const logits = Float32Array.from([3, 2.5]);
    expect(sampleToken(logits, { repetitionPenalty: 1.5 }, new SeededRandom(1), [0])).toBe(1);
  });
});

describe('validateSamplingOptions', () => {
  it('names the bad option', () => {
    expect(() => validateSamplingOptions({ temperature: -1 })).toThrow(/temperature/);
    expect(() => validateSamplingOptions({ topK: 1.5 })).toThrow(/topK/);
    expect(() => validateSamplingOptions({ topP: 0 })).toThrow(/topP/);
    expect(() => validateSamplingOptions({ minP: 2 })).toThrow(/minP/);
    expect(() => validateSamplingOptions({ repetitionPenalty: 0 })).toThrow(/repetitionPenalty/);
    expect(argmaxOf([1, 3, 3])).toBe(1);
  });
});
