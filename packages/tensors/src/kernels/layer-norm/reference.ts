/**
 * Plain float64 LayerNorm over the last axis (length `hidden`): (x - mean) / sqrt(var + eps) *
 * weight + bias, with the biased variance as in PyTorch. Returns the output and per-row mean
 * and 1 / sqrt(var + eps).
 */
export function layerNormReference(
  data: ArrayLike<number>,
  hidden: number,
  weight: ArrayLike<number> | null,
  bias: ArrayLike<number> | null,
  eps: number,
): { output: Float64Array; mean: Float64Array; rstd: Float64Array } {
  const rows = hidden === 0 ? 0 : data.length / hidden;
  const output = new Float64Array(data.length);
  const mean = new Float64Array(rows);
  const rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let total = 0;
    for (let j = 0; j < hidden; j++) total += data[r * hidden + j];
    const m = total / hidden;
    let squares = 0;
    for (let j = 0; j < hidden; j++) squares += (data[r * hidden + j] - m) ** 2;
    const inverse = 1 / Math.sqrt(squares / hidden + eps);
    mean[r] = m;
    rstd[r] = inverse;
    for (let j = 0; j < hidden; j++) {
      output[r * hidden + j] =
        (data[r * hidden + j] - m) * inverse * (weight ? weight[j] : 1) + (bias ? bias[j] : 0);
    }
  }
  return { output, mean, rstd };
}
