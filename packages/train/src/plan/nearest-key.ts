import { CONFIG_KEYS } from './config-keys.js';

/** Levenshtein distance (insertions, deletions, substitutions). */
export function editDistance(a: string, b: string): number {
  const previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = previous[0];
    previous[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const saved = previous[j];
      previous[j] = Math.min(
        previous[j] + 1,
        previous[j - 1] + 1,
        diagonal + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      diagonal = saved;
    }
  }
  return previous[b.length];
}

/**
 * The known key an unknown `key` was probably meant to be, or null when none is close: a known
 * key holding every word of `key` (`num_epochs` -> `num_train_epochs`), else the one at the
 * smallest edit distance (at most a third of the key's length, at least 2); keys webtune uses win
 * ties over keys it only accepts. A key that is known is never "corrected" into another one.
 */
export function nearestKey(key: string): string | null {
  const normalized = key.toLowerCase().replace(/-/g, '_');
  if (Object.hasOwn(CONFIG_KEYS, normalized)) return normalized;
  const words = normalized.split('_').filter(Boolean);
  const limit = Math.max(2, Math.floor(normalized.length / 3));
  let best: string | null = null;
  let bestScore = Number.POSITIVE_INFINITY;
  for (const known of Object.keys(CONFIG_KEYS)) {
    const knownWords = known.split('_');
    const containsAll = words.length > 1 && words.every((word) => knownWords.includes(word));
    const distance = editDistance(normalized, known);
    if (!containsAll && distance > limit) continue;
    const score =
      (containsAll ? knownWords.length / 10 : distance) +
      (CONFIG_KEYS[known].status === 'supported' ? 0 : 0.5);
    if (score < bestScore) {
      best = known;
      bestScore = score;
    }
  }
  return best;
}
