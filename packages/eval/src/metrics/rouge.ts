/**
 * ROUGE-N and ROUGE-L (Lin 2004) of one hypothesis against one reference, as precision, recall and
 * F1. ROUGE-N counts clipped n-gram overlaps; ROUGE-L uses the longest common subsequence of the
 * two token lists (sentence level).
 */
import { ngramCounts, overlap } from './ngrams.js';

/** Precision, recall and F1, each in [0, 1]. */
export interface RougeScore {
  precision: number;
  recall: number;
  f1: number;
}

function score(matches: number, hypothesisCount: number, referenceCount: number): RougeScore {
  const precision = hypothesisCount > 0 ? matches / hypothesisCount : 0;
  const recall = referenceCount > 0 ? matches / referenceCount : 0;
  const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
  return { precision, recall, f1 };
}

/** ROUGE-N: overlap of n-gram counts. */
export function rougeN(reference: readonly string[], hypothesis: readonly string[], n: number): RougeScore {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`rougeN: n must be a positive integer, got ${n}`);
  const referenceCounts = ngramCounts(reference, n);
  const hypothesisCounts = ngramCounts(hypothesis, n);
  return score(
    overlap(hypothesisCounts, referenceCounts),
    Math.max(0, hypothesis.length - n + 1),
    Math.max(0, reference.length - n + 1),
  );
}

/** Length of the longest common subsequence of two token lists (O(n m) time, O(m) memory). */
export function longestCommonSubsequence(a: readonly string[], b: readonly string[]): number {
  let previous = new Array<number>(b.length + 1).fill(0);
  let current = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      current[j] = a[i - 1] === b[j - 1] ? previous[j - 1] + 1 : Math.max(previous[j], current[j - 1]);
    }
    [previous, current] = [current, previous];
  }
  return previous[b.length];
}

/** ROUGE-L: the longest common subsequence over the hypothesis (precision) and reference (recall) lengths. */
export function rougeL(reference: readonly string[], hypothesis: readonly string[]): RougeScore {
  return score(longestCommonSubsequence(reference, hypothesis), hypothesis.length, reference.length);
}
