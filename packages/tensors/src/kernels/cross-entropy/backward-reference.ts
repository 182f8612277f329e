export interface CrossEntropyBackwardOptions {
  ignoreIndex?: number;
  reduction?: 'mean' | 'sum' | 'none';
  labelSmoothing?: number;
}

/**
 * Gradient of cross-entropy with respect to logits [rows, vocab] in float64, from the forward's
 * per-row log-sum-exp. With s = labelSmoothing, p = exp(logits - lse):
 *   dlogits[r, v] = (p[r, v] - (1 - s) [v == target[r]] - s / vocab) * scale_r,
 * scale_r = 0 on rows whose target is ignoreIndex, else grad / (rows not ignored) for 'mean'
 * (0 when every row is ignored), grad for 'sum', grad[r] for 'none'.
 */
export function crossEntropyBackwardReference(
  logits: ArrayLike<number>,
  vocab: number,
  targets: ArrayLike<number>,
  logSumExp: ArrayLike<number>,
  grad: ArrayLike<number>,
  options: CrossEntropyBackwardOptions = {},
): Float64Array {
  const ignoreIndex = options.ignoreIndex ?? -100;
  const reduction = options.reduction ?? 'mean';
  const smoothing = options.labelSmoothing ?? 0;
  const rows = targets.length;
  let counted = 0;
  for (let r = 0; r < rows; r++) if (targets[r] !== ignoreIndex) counted++;
  const out = new Float64Array(rows * vocab);
  for (let r = 0; r < rows; r++) {
    if (targets[r] === ignoreIndex) continue;
    const scale = reduction === 'none' ? grad[r] : reduction === 'sum' ? grad[0] : grad[0] / counted;
    for (let v = 0; v < vocab; v++) {
      const p = Math.exp(logits[r * vocab + v] - logSumExp[r]);
      const target = (v === targets[r] ? 1 - smoothing : 0) + smoothing / vocab;
      out[r * vocab + v] = (p - target) * scale;
    }
  }
  return out;
}
