/** Token-length statistics of encoded examples against `cutoff_len`. */

/** Lengths before truncation, what truncation cut, and how many tokens are trained. */
export interface TokenStatistics {
  examples: number;
  cutoffLen?: number;
  /** Median length before truncation (nearest rank). */
  p50: number;
  /** 95th percentile before truncation (nearest rank). */
  p95: number;
  max: number;
  mean: number;
  /** Examples longer than `cutoffLen`, which were cut. */
  truncated: number;
  /** Tokens the cuts removed. */
  truncatedTokens: number;
  /** Tokens kept. */
  totalTokens: number;
  /** Kept tokens with a label (trained). */
  trainedTokens: number;
}

/** Per example: length before and after truncation, and trained tokens. */
export interface LengthRecord {
  fullLength: number;
  length: number;
  trainedTokens: number;
}

/** The value at a percentile of sorted numbers (nearest rank). */
export function percentile(sorted: readonly number[], fraction: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil(fraction * sorted.length);
  return sorted[Math.min(Math.max(rank - 1, 0), sorted.length - 1)];
}

/** Statistics of length records. */
export function tokenStatistics(records: readonly LengthRecord[], cutoffLen?: number): TokenStatistics {
  const sorted = records.map((record) => record.fullLength).sort((a, b) => a - b);
  let truncated = 0;
  let truncatedTokens = 0;
  let totalTokens = 0;
  let trainedTokens = 0;
  let sum = 0;
  for (const record of records) {
    sum += record.fullLength;
    totalTokens += record.length;
    trainedTokens += record.trainedTokens;
    if (record.length < record.fullLength) {
      truncated++;
      truncatedTokens += record.fullLength - record.length;
    }
  }
  return {
    examples: records.length,
    cutoffLen,
    p50: percentile(sorted, 0.5),
    p95: percentile(sorted, 0.95),
    max: sorted.length > 0 ? sorted[sorted.length - 1] : 0,
    mean: records.length > 0 ? sum / records.length : 0,
    truncated,
    truncatedTokens,
    totalTokens,
    trainedTokens,
  };
}
