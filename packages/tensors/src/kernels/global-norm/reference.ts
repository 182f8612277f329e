/** Plain float64 L2 norm over every element of every array. */
export function globalNormReference(arrays: readonly ArrayLike<number>[]): number {
  let squares = 0;
  for (const values of arrays) for (let i = 0; i < values.length; i++) squares += values[i] * values[i];
  return Math.sqrt(squares);
}

/**
 * Plain float64 clip_grad_norm_: every array scaled by min(1, maxNorm / (norm + 1e-6)). Returns
 * the norm before clipping and the scaled copies.
 */
export function clipByGlobalNormReference(
  arrays: readonly ArrayLike<number>[],
  maxNorm: number,
): { norm: number; clipped: Float64Array[] } {
  const norm = globalNormReference(arrays);
  const factor = Math.min(1, maxNorm / (norm + 1e-6));
  return { norm, clipped: arrays.map((values) => Float64Array.from(values, (v) => v * factor)) };
}
