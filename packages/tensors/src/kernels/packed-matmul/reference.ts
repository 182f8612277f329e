/**
 * Float64 references of the packed matmul kernels, over the decoded weight values (decodeRows
 * gives exactly what the kernels decode, so the only difference is f32 accumulation).
 */

/** x [M, K] times W^T, W [N, K] decoded: [M, N]. */
export function packedMatmulReference(
  x: ArrayLike<number>,
  weight: Float64Array,
  M: number,
  N: number,
  K: number,
): Float64Array {
  const out = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let sum = 0;
      for (let k = 0; k < K; k++) sum += x[m * K + k] * weight[n * K + k];
      out[m * N + n] = sum;
    }
  }
  return out;
}

/** dy [M, N] times W [N, K] decoded: [M, K]. */
export function packedInputGradReference(
  dy: ArrayLike<number>,
  weight: Float64Array,
  M: number,
  N: number,
  K: number,
): Float64Array {
  const out = new Float64Array(M * K);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      const g = dy[m * N + n];
      for (let k = 0; k < K; k++) out[m * K + k] += g * weight[n * K + k];
    }
  }
  return out;
}
