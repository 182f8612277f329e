/** BLEU-4 and ROUGE-1/2/L over a set of predictions, averaged per sample and reported x 100. */
import { type BleuSmoothing, sentenceBleu } from './bleu.js';
import { rougeL, rougeN } from './rouge.js';
import { type Segmentation, segmentText } from './segment.js';

/** A prediction and its reference text. */
export interface PredictionPair {
  predict: string;
  label: string;
}

/** Options of `generationMetrics`. */
export interface GenerationMetricOptions {
  /** How texts become tokens. Default `characters` (Chinese by character, other scripts by word). */
  segmentation?: Segmentation;
  /** Locale of the `words` segmenter. Default `zh`. */
  locale?: string;
  /** BLEU smoothing. Default `nist` (NLTK method3, as LLaMA-Factory). */
  smoothing?: BleuSmoothing;
}

/** Means over samples, each x 100 (LLaMA-Factory's scale). ROUGE values are F1. */
export interface GenerationMetrics {
  'bleu-4': number;
  'rouge-1': number;
  'rouge-2': number;
  'rouge-l': number;
  samples: number;
}

/** Scores of one pair, each in [0, 1]. */
export function pairMetrics(
  pair: PredictionPair,
  options: GenerationMetricOptions = {},
): { bleu4: number; rouge1: number; rouge2: number; rougeL: number } {
  const hypothesis = segmentText(pair.predict, options.segmentation, options.locale);
  const reference = segmentText(pair.label, options.segmentation, options.locale);
  if (hypothesis.length === 0 || reference.length === 0) return { bleu4: 0, rouge1: 0, rouge2: 0, rougeL: 0 };
  return {
    bleu4: sentenceBleu([reference], hypothesis, { smoothing: options.smoothing }),
    rouge1: rougeN(reference, hypothesis, 1).f1,
    rouge2: rougeN(reference, hypothesis, 2).f1,
    rougeL: rougeL(reference, hypothesis).f1,
  };
}

/** BLEU-4 and ROUGE-1/2/L F1, each the mean over pairs x 100. An empty side scores 0. */
export function generationMetrics(
  pairs: readonly PredictionPair[],
  options: GenerationMetricOptions = {},
): GenerationMetrics {
  const totals = { bleu4: 0, rouge1: 0, rouge2: 0, rougeL: 0 };
  for (const pair of pairs) {
    const scores = pairMetrics(pair, options);
    totals.bleu4 += scores.bleu4;
    totals.rouge1 += scores.rouge1;
    totals.rouge2 += scores.rouge2;
    totals.rougeL += scores.rougeL;
  }
  const mean = (value: number) => (pairs.length > 0 ? (100 * value) / pairs.length : 0);
  return {
    'bleu-4': mean(totals.bleu4),
    'rouge-1': mean(totals.rouge1),
    'rouge-2': mean(totals.rouge2),
    'rouge-l': mean(totals.rougeL),
    samples: pairs.length,
  };
}
