import { broadcastShapes, contiguousStrides, type Shape, sizeOf } from '../../tensor/shape.js';

export interface MatmulReferenceOptions {
  transposeA?: boolean;
  transposeB?: boolean;
  /** Added to every output row, length N. */
  bias?: ArrayLike<number>;
  /** The product is multiplied by alpha (default 1) before the bias and residual are added. */
  alpha?: number;
  /** Added to the output, of the output's shape. */
  residual?: ArrayLike<number>;
}

/**
 * Plain TypeScript matmul in float64: a [..., M, K] (or [..., K, M] with transposeA) times
 * b [..., K, N] (or [..., N, K] with transposeB), batch dimensions broadcast NumPy style,
 * times alpha, plus an optional bias [N] and residual (the output's shape). Returns the output [..., M, N].
 */
export function matmulReference(
  a: ArrayLike<number>,
  aShape: Shape,
  b: ArrayLike<number>,
  bShape: Shape,
  options: MatmulReferenceOptions = {},
): { data: Float64Array; shape: number[] } {
  if (aShape.length < 2 || bShape.length < 2) throw new Error('matmulReference needs operands of rank >= 2');
  const [aRows, aCols] = aShape.slice(-2);
  const [bRows, bCols] = bShape.slice(-2);
  const M = options.transposeA ? aCols : aRows;
  const K = options.transposeA ? aRows : aCols;
  const N = options.transposeB ? bRows : bCols;
  const bK = options.transposeB ? bCols : bRows;
  if (K !== bK) throw new Error(`matmulReference: inner dimensions ${K} and ${bK} differ`);
  const aBatch = aShape.slice(0, -2);
  const bBatch = bShape.slice(0, -2);
  const batch = broadcastShapes(aBatch, bBatch);
  const batchStrides = contiguousStrides(batch);
  const aBatchStrides = contiguousStrides(aBatch);
  const bBatchStrides = contiguousStrides(bBatch);
  const batches = sizeOf(batch);
  const out = new Float64Array(batches * M * N);
  for (let index = 0; index < batches; index++) {
    let aOffset = 0;
    let bOffset = 0;
    for (let d = 0; d < batch.length; d++) {
      const coordinate = Math.floor(index / batchStrides[d]) % batch[d];
      const da = d - (batch.length - aBatch.length);
      const db = d - (batch.length - bBatch.length);
      if (da >= 0 && aBatch[da] !== 1) aOffset += coordinate * aBatchStrides[da];
      if (db >= 0 && bBatch[db] !== 1) bOffset += coordinate * bBatchStrides[db];
    }
    aOffset *= M * K;
    bOffset *= K * N;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let sum = 0;
        for (let k = 0; k < K; k++) {
          const x = options.transposeA ? a[aOffset + k * M + m] : a[aOffset + m * K + k];
          const y = options.transposeB ? b[bOffset + n * K + k] : b[bOffset + k * N + n];
          sum += x * y;
        }
        const at = (index * M + m) * N + n;
        out[at] =
          (options.alpha ?? 1) * sum +
          (options.bias ? options.bias[n] : 0) +
          (options.residual ? options.residual[at] : 0);
      }
    }
  }
  return { data: out, shape: [...batch, M, N] };
}
