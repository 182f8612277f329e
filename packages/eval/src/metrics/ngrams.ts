/** n-gram counts shared by BLEU and ROUGE. */

/** Counts of the n-grams of `tokens` (keys join tokens with U+0001, which no token holds). */
export function ngramCounts(tokens: readonly string[], n: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i + n <= tokens.length; i++) {
    const key = tokens.slice(i, i + n).join('\u0001');
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

/** Sum over n-grams of min(count in a, count in b): the clipped overlap. */
export function overlap(a: Map<string, number>, b: Map<string, number>): number {
  let total = 0;
  for (const [key, count] of a) total += Math.min(count, b.get(key) ?? 0);
  return total;
}
