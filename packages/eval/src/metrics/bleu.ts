/**
 * Sentence-level BLEU (Papineni et al. 2002) with NLTK's conventions, so that numbers agree with
 * `nltk.translate.bleu_score.sentence_bleu` (which LLaMA-Factory's predict metrics call):
 * modified n-gram precisions clipped by the largest count in any reference, the brevity penalty
 * against the reference length closest to the hypothesis (the shorter on a tie), uniform weights,
 * zero when no unigram matches, and smoothing of zero precisions.
 */
import { ngramCounts } from './ngrams.js';

/**
 * Smoothing of n-gram orders with no match:
 * - `nist` (NLTK method3, LLaMA-Factory's choice): the k-th such order gets 1 / (2^k x its n-gram count);
 * - `epsilon` (NLTK method1): numerator 0.1;
 * - `none`: such an order makes the score (practically) 0, as NLTK's default.
 */
export type BleuSmoothing = 'nist' | 'epsilon' | 'none';

/** Options of `sentenceBleu`. */
export interface BleuOptions {
  /** Highest n-gram order. Default 4 (BLEU-4). */
  maxOrder?: number;
  /** Default `nist`. */
  smoothing?: BleuSmoothing;
}

/** BLEU of one hypothesis against one or more references (token lists), in [0, 1]. */
export function sentenceBleu(
  references: readonly (readonly string[])[],
  hypothesis: readonly string[],
  options: BleuOptions = {},
): number {
  const maxOrder = options.maxOrder ?? 4;
  const smoothing = options.smoothing ?? 'nist';
  if (references.length === 0) throw new RangeError('sentenceBleu needs at least one reference');
  const numerators: number[] = [];
  const denominators: number[] = [];
  for (let n = 1; n <= maxOrder; n++) {
    const counts = ngramCounts(hypothesis, n);
    const referenceCounts = references.map((reference) => ngramCounts(reference, n));
    let clipped = 0;
    let total = 0;
    for (const [key, count] of counts) {
      const most = Math.max(0, ...referenceCounts.map((counts) => counts.get(key) ?? 0));
      clipped += Math.min(count, most);
      total += count;
    }
    numerators.push(clipped);
    denominators.push(Math.max(1, total));
  }
  if (numerators[0] === 0) return 0;
  const length = hypothesis.length;
  const closest = references
    .map((reference) => reference.length)
    .reduce((best, value) =>
      Math.abs(value - length) < Math.abs(best - length) ||
      (Math.abs(value - length) === Math.abs(best - length) && value < best)
        ? value
        : best,
    );
  const brevity = length > closest ? 1 : length === 0 ? 0 : Math.exp(1 - closest / length);
  let logSum = 0;
  let zeroOrders = 0;
  for (let i = 0; i < maxOrder; i++) {
    let precision: number;
    if (numerators[i] > 0) precision = numerators[i] / denominators[i];
    else if (smoothing === 'nist') {
      zeroOrders++;
      precision = 1 / (2 ** zeroOrders * denominators[i]);
    } else if (smoothing === 'epsilon') precision = 0.1 / denominators[i];
    else precision = Number.MIN_VALUE;
    logSum += Math.log(precision) / maxOrder;
  }
  return brevity * Math.exp(logSum);
}
