/**
 * Plain float64 RMSNorm over the last axis (length `hidden`): x * rsqrt(mean(x^2) + eps) *
 * weight (no weight: scale 1). Returns the output and the per-row inverse RMS.
 */
export function rmsNormReference(
  data: ArrayLike<number>,
  hidden: number,
  weight: ArrayLike<number> | null,
  eps: number,
): { output: Float64Array; inverseRms: Float64Array } {
  const rows = hidden === 0 ? 0 : data.length / hidden;
  const output = new Float64Array(data.length);
  const inverseRms = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let squares = 0;
    for (let j = 0; j < hidden; j++) squares += data[r * hidden + j] ** 2;
    const inverse = 1 / Math.sqrt(squares / hidden + eps);
    inverseRms[r] = inverse;
    for (let j = 0; j < hidden; j++)
      output[r * hidden + j] = data[r * hidden + j] * inverse * (weight ? weight[j] : 1);
  }
  return { output, inverseRms };
}
