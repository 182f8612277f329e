import type { CrossEntropyOptions } from './cross-entropy.js';

/**
 * Plain float64 cross-entropy of rows of `logits` (length `vocab` each) against integer
 * `targets`, as PyTorch's F.cross_entropy with ignore_index and label_smoothing. A target out
 * of range gives NaN for its row. 'mean' over zero counted rows is 0.
 */
export function crossEntropyReference(
  logits: ArrayLike<number>,
  vocab: number,
  targets: ArrayLike<number>,
  options: CrossEntropyOptions = {},
): { loss: Float64Array; rowLoss: Float64Array; logSumExp: Float64Array; tokenCount: number } {
  const ignoreIndex = options.ignoreIndex ?? -100;
  const smoothing = options.labelSmoothing ?? 0;
  const rows = targets.length;
  const rowLoss = new Float64Array(rows);
  const logSumExp = new Float64Array(rows);
  let tokenCount = 0;
  let total = 0;
  for (let r = 0; r < rows; r++) {
    let max = Number.NEGATIVE_INFINITY;
    let sum = 0;
    for (let j = 0; j < vocab; j++) max = Math.max(max, logits[r * vocab + j]);
    for (let j = 0; j < vocab; j++) sum += Math.exp(logits[r * vocab + j] - max);
    const lse = max + Math.log(sum);
    logSumExp[r] = lse;
    const target = targets[r];
    if (target === ignoreIndex) continue;
    tokenCount++;
    if (target < 0 || target >= vocab) {
      rowLoss[r] = Number.NaN;
    } else {
      let logitSum = 0;
      for (let j = 0; j < vocab; j++) logitSum += logits[r * vocab + j];
      rowLoss[r] =
        (1 - smoothing) * (lse - logits[r * vocab + target]) + smoothing * (lse - logitSum / vocab);
    }
    total += rowLoss[r];
  }
  const reduction = options.reduction ?? 'mean';
  const loss =
    reduction === 'none'
      ? rowLoss
      : Float64Array.of(reduction === 'sum' ? total : tokenCount > 0 ? total / tokenCount : 0);
  return { loss, rowLoss, logSumExp, tokenCount };
}
