/**
 * Win rates with confidence intervals. A tie counts half a win, so the win rate of model 1 is
 * (wins + ties / 2) / decided-or-tied pairs; 0.5 means no difference.
 */
import { SeededRandom } from '@webtune/data';
import type { PairOutcome } from './comparison.js';

/** The two-sided normal quantile for a confidence level (0.95 -> 1.959964). */
export function normalQuantile(confidence: number): number {
  if (!(confidence > 0 && confidence < 1))
    throw new RangeError(`confidence must be in (0, 1), got ${confidence}`);
  // Acklam's rational approximation of the inverse normal CDF (relative error below 1.2e-9).
  const p = 1 - (1 - confidence) / 2;
  const a = [
    -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716,
    2.506628277459239,
  ];
  const b = [
    -54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572,
  ];
  const c = [
    -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968,
    2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const low = 0.02425;
  if (p > 1 - low) {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    return (
      -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
      ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
    );
  }
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) /
    (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
  );
}

/** Wilson score interval of a proportion `successes / trials` (successes may be fractional: ties). */
export function wilsonInterval(successes: number, trials: number, confidence = 0.95): [number, number] {
  if (trials <= 0) return [0, 1];
  const z = normalQuantile(confidence);
  const p = successes / trials;
  const z2 = z * z;
  const denominator = 1 + z2 / trials;
  const center = (p + z2 / (2 * trials)) / denominator;
  const half = (z * Math.sqrt((p * (1 - p)) / trials + z2 / (4 * trials * trials))) / denominator;
  return [Math.max(0, center - half), Math.min(1, center + half)];
}

/** Percentile bootstrap interval of the mean of `scores` (seeded, reproducible). */
export function bootstrapInterval(
  scores: readonly number[],
  options: { confidence?: number; resamples?: number; seed?: number } = {},
): [number, number] {
  const confidence = options.confidence ?? 0.95;
  const resamples = options.resamples ?? 2000;
  if (scores.length === 0) return [0, 1];
  const random = new SeededRandom(options.seed ?? 42);
  const means = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    let sum = 0;
    for (let i = 0; i < scores.length; i++) sum += scores[random.nextInt(scores.length)];
    means[r] = sum / scores.length;
  }
  means.sort();
  const tail = (1 - confidence) / 2;
  const at = (q: number) => means[Math.min(resamples - 1, Math.max(0, Math.round(q * (resamples - 1))))];
  return [at(tail), at(1 - tail)];
}

/** Counts and the win rate of `models[1]`. */
export interface WinRateSummary {
  models: [string, string];
  /** Pairs with a verdict (invalid verdicts and unvoted pairs are left out). */
  total: number;
  /** wins[i]: pairs model i won. */
  wins: [number, number];
  ties: number;
  /** (wins[1] + ties / 2) / total. */
  winRate: number;
  /** Confidence interval of winRate. */
  interval: [number, number];
  confidence: number;
  method: 'wilson' | 'bootstrap';
}

/** Options of `summarizeOutcomes`. */
export interface WinRateOptions {
  confidence?: number;
  /** `wilson` (default) or a seeded percentile `bootstrap`. */
  method?: 'wilson' | 'bootstrap';
  seed?: number;
}

/** Tallies outcomes into wins, ties and the challenger's win rate with its interval. */
export function summarizeOutcomes(
  models: [string, string],
  outcomes: readonly PairOutcome[],
  options: WinRateOptions = {},
): WinRateSummary {
  const confidence = options.confidence ?? 0.95;
  const method = options.method ?? 'wilson';
  const wins: [number, number] = [0, 0];
  let ties = 0;
  for (const outcome of outcomes) {
    if (outcome.winner === null) ties++;
    else wins[outcome.winner]++;
  }
  const total = outcomes.length;
  const score = wins[1] + ties / 2;
  const winRate = total > 0 ? score / total : 0.5;
  const interval =
    method === 'wilson'
      ? wilsonInterval(score, total, confidence)
      : bootstrapInterval(
          outcomes.map((outcome) => (outcome.winner === null ? 0.5 : outcome.winner)),
          { confidence, seed: options.seed },
        );
  return { models, total, wins, ties, winRate, interval, confidence, method };
}

/** One line: `tuned beats base 62.5% (95% CI 48.1-75.1%, wilson): 12 wins, 7 losses, 5 ties of 24`. */
export function formatWinRate(summary: WinRateSummary): string {
  const percent = (value: number) => `${(value * 100).toFixed(1)}`;
  const [low, high] = summary.interval;
  return (
    `${summary.models[1]} vs ${summary.models[0]}: win rate ${percent(summary.winRate)}% ` +
    `(${Math.round(summary.confidence * 100)}% CI ${percent(low)}-${percent(high)}%, ${summary.method}): ` +
    `${summary.wins[1]} wins, ${summary.wins[0]} losses, ${summary.ties} ties of ${summary.total}`
  );
}
