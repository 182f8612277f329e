import { describe, expect, it } from 'vitest';
import { generationMetrics, pairMetrics } from './generation-metrics.js';
import { longestCommonSubsequence, rougeL, rougeN } from './rouge.js';
import { segmentText } from './segment.js';

// Known values worked out by hand (counts in the comments).
describe('ROUGE', () => {
  const reference = 'the cat sat on the mat'.split(' ');
  const hypothesis = 'the cat is on the mat'.split(' ');

  it('ROUGE-1: clipped unigram overlap', () => {
    // the x2, cat, on, mat = 5 of 6 on both sides.
    expect(rougeN(reference, hypothesis, 1)).toEqual({ precision: 5 / 6, recall: 5 / 6, f1: 5 / 6 });
  });

  it('ROUGE-2: bigram overlap', () => {
    // "the cat", "on the", "the mat" = 3 of 5 bigrams on both sides.
    const score = rougeN(reference, hypothesis, 2);
    expect(score.precision).toBeCloseTo(3 / 5, 14);
    expect(score.recall).toBeCloseTo(3 / 5, 14);
    expect(score.f1).toBeCloseTo(3 / 5, 14);
  });

  it('ROUGE-L: the longest common subsequence, not necessarily contiguous', () => {
    expect(longestCommonSubsequence(reference, hypothesis)).toBe(5); // the cat on the mat
    expect(rougeL(reference, hypothesis).f1).toBeCloseTo(5 / 6, 14);
    // A C E is common to A B C D E F and A C E G: P = 3/4, R = 3/6, F = 2PR/(P+R) = 0.6; no bigram in common.
    const long = ['A', 'B', 'C', 'D', 'E', 'F'];
    const short = ['A', 'C', 'E', 'G'];
    expect(rougeL(long, short)).toEqual({ precision: 0.75, recall: 0.5, f1: 0.6 });
    expect(rougeN(long, short, 2).f1).toBe(0);
  });

  it('scores Chinese by character', () => {
    // 我爱北京天安门 (7) vs 我爱天安门 (5): unigrams 5 common: P 1, R 5/7, F 10/12;
    // bigrams 我爱 天安 安门 common: P 3/4, R 3/6, F 0.6; LCS 5 -> F 10/12.
    const scores = pairMetrics({ label: '我爱北京天安门', predict: '我爱天安门' });
    expect(scores.rouge1).toBeCloseTo(10 / 12, 14);
    expect(scores.rouge2).toBeCloseTo(0.6, 14);
    expect(scores.rougeL).toBeCloseTo(10 / 12, 14);
    // BLEU-4 by hand: p1 = 5/5, p2 = 3/4, p3 = 1/3 (天安门), p4 = 0 -> 1/(2 x 2); BP = exp(1 - 7/5).
    const bleu =
      Math.exp(1 - 7 / 5) * Math.exp((Math.log(1) + Math.log(3 / 4) + Math.log(1 / 3) + Math.log(1 / 4)) / 4);
    expect(scores.bleu4).toBeCloseTo(bleu, 14);
  });

  it('averages over pairs on the 0-100 scale and scores an empty side 0', () => {
    const metrics = generationMetrics([
      { label: 'the cat sat on the mat', predict: 'the cat is on the mat' },
      { label: '我爱北京天安门', predict: '我爱天安门' },
      { label: 'something', predict: '' },
    ]);
    expect(metrics.samples).toBe(3);
    expect(metrics['rouge-1']).toBeCloseTo((100 * (5 / 6 + 10 / 12 + 0)) / 3, 10);
    expect(metrics['rouge-2']).toBeCloseTo((100 * (0.6 + 0.6 + 0)) / 3, 10);
    expect(metrics['rouge-l']).toBeCloseTo((100 * (5 / 6 + 10 / 12 + 0)) / 3, 10);
    expect(generationMetrics([])['bleu-4']).toBe(0);
  });
});

describe('segmentText', () => {
  it('splits CJK into characters and keeps other words whole, punctuation apart', () => {
    expect(segmentText('我爱北京天安门')).toEqual(['我', '爱', '北', '京', '天', '安', '门']);
    expect(segmentText('Hello, world! 你好GPT-4。')).toEqual([
      'Hello',
      ',',
      'world',
      '!',
      '你',
      '好',
      'GPT',
      '-',
      '4',
      '。',
    ]);
    expect(segmentText('  café   naïve ')).toEqual(['café', 'naïve']);
  });

  it('splits on whitespace, or into dictionary words', () => {
    expect(segmentText(' a  b\tc\n', 'whitespace')).toEqual(['a', 'b', 'c']);
    const words = segmentText('我们经常吃洋葱', 'words');
    expect(words.join('')).toBe('我们经常吃洋葱');
    expect(words).toContain('我们');
    expect(words.length).toBeLessThan(7);
  });
});
