/**
 * Gradients of y = x r w over rows of length `dim`, r = 1 / sqrt(mean(x^2) + eps), in float64:
 *   dx_i = r (g w)_i - x_i r^3 / dim * sum_j (g w)_j x_j,     dw_i = sum over rows of g_i x_i r.
 * `weight` null means no weight (w = 1, no weight gradient).
 */
export function rmsNormBackwardReference(
  x: ArrayLike<number>,
  weight: ArrayLike<number> | null,
  grad: ArrayLike<number>,
  dim: number,
  eps: number,
): { input: Float64Array; weight: Float64Array | null } {
  const rows = x.length / dim;
  const dx = new Float64Array(x.length);
  const dw = weight ? new Float64Array(dim) : null;
  for (let row = 0; row < rows; row++) {
    const base = row * dim;
    let squares = 0;
    let dot = 0;
    for (let i = 0; i < dim; i++) {
      squares += x[base + i] * x[base + i];
      dot += grad[base + i] * (weight ? weight[i] : 1) * x[base + i];
    }
    const r = 1 / Math.sqrt(squares / dim + eps);
    const correction = (r * r * r * dot) / dim;
    for (let i = 0; i < dim; i++) {
      const gw = grad[base + i] * (weight ? weight[i] : 1);
      dx[base + i] = r * gw - x[base + i] * correction;
      if (dw) dw[i] += grad[base + i] * x[base + i] * r;
    }
  }
  return { input: dx, weight: dw };
}
