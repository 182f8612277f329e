/*
 * The meaning of a LoRA / DoRA layer in plain float64 TypeScript: forward and the gradients of
 * every input given the gradient of the output, written out by hand from the formulas (no
 * autograd), so the GPU layer and its recorded backward can be checked against them. Matrices are
 * row-major Float64Arrays.
 */

export interface LoraReferenceInput {
  /** x [rows, in]. */
  x: Float64Array;
  rows: number;
  inFeatures: number;
  outFeatures: number;
  r: number;
  /** W [out, in], bias [out] or null. */
  weight: Float64Array;
  bias: Float64Array | null;
  /** A [r, in], B [out, r]. */
  a: Float64Array;
  b: Float64Array;
  scaling: number;
  /** DoRA magnitude [out]; null for plain LoRA. */
  magnitude: Float64Array | null;
  /**
   * DoRA's ||W + s B A|| per row to use instead of computing it: the constant the gradient
   * treats it as (finite differences must hold it fixed to agree with the gradient).
   */
  fixedNorm?: Float64Array;
}

export interface LoraReferenceResult {
  output: Float64Array;
  /** DoRA's row norms ||W + s B A|| (ones' worth of nothing for LoRA). */
  norm: Float64Array;
  /** Gradients given `gradOutput` [rows, out]. */
  grads: { x: Float64Array; a: Float64Array; b: Float64Array; magnitude: Float64Array | null };
}

/** C [m, n] = A [m, k] B [k, n] with optional transposes of the stored operands. */
export function matmulReference(
  left: Float64Array,
  right: Float64Array,
  m: number,
  k: number,
  n: number,
  transposeLeft = false,
  transposeRight = false,
): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let l = 0; l < k; l++) {
        const x = transposeLeft ? left[l * m + i] : left[i * k + l];
        const y = transposeRight ? right[j * k + l] : right[l * n + j];
        sum += x * y;
      }
      out[i * n + j] = sum;
    }
  }
  return out;
}

/**
 * y = x W^T + bias + s (x A^T) B^T, or for DoRA with n = ||W + s B A|| per output row taken
 * as a constant and c = m / n: y = c (x W^T + s (x A^T) B^T) + bias.
 */
export function loraLinearReference(
  input: LoraReferenceInput,
  gradOutput: Float64Array,
): LoraReferenceResult {
  const { x, rows, inFeatures: k, outFeatures: n, r, weight, bias, a, b, scaling, magnitude } = input;
  const base = matmulReference(x, weight, rows, k, n, false, true); // [rows, out]
  const ax = matmulReference(x, a, rows, k, r, false, true); // [rows, r]
  const lora = matmulReference(ax, b, rows, r, n, false, true); // [rows, out]
  const factor = new Float64Array(n).fill(1);
  const norm = new Float64Array(n);
  if (magnitude && input.fixedNorm) {
    norm.set(input.fixedNorm);
    for (let j = 0; j < n; j++) factor[j] = magnitude[j] / norm[j];
  } else if (magnitude) {
    const ba = matmulReference(b, a, n, r, k);
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let c = 0; c < k; c++) sum += (weight[j * k + c] + scaling * ba[j * k + c]) ** 2;
      norm[j] = Math.sqrt(sum);
      factor[j] = magnitude[j] / norm[j];
    }
  }
  const output = new Float64Array(rows * n);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < n; j++) {
      output[i * n + j] = factor[j] * (base[i * n + j] + scaling * lora[i * n + j]) + (bias ? bias[j] : 0);
    }
  }
  // g scaled by the DoRA factor per column (c = 1 for LoRA).
  const scaled = new Float64Array(rows * n);
  for (let i = 0; i < rows; i++)
    for (let j = 0; j < n; j++) scaled[i * n + j] = gradOutput[i * n + j] * factor[j];
  const gradB = matmulReference(scaled, ax, n, rows, r, true, false).map((v) => v * scaling); // [out, r]
  const gb = matmulReference(scaled, b, rows, n, r); // [rows, r]
  const gradA = matmulReference(gb, x, r, rows, k, true, false).map((v) => v * scaling); // [r, in]
  const gradX = matmulReference(scaled, weight, rows, n, k);
  const throughA = matmulReference(gb, a, rows, r, k);
  for (let i = 0; i < gradX.length; i++) gradX[i] += scaling * throughA[i];
  let gradMagnitude: Float64Array | null = null;
  if (magnitude) {
    gradMagnitude = new Float64Array(n);
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let i = 0; i < rows; i++)
        sum += gradOutput[i * n + j] * (base[i * n + j] + scaling * lora[i * n + j]);
      gradMagnitude[j] = sum / norm[j];
    }
  }
  return { output, norm, grads: { x: gradX, a: gradA, b: gradB, magnitude: gradMagnitude } };
}
