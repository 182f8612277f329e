import { PeftError } from '../errors.js';

/*
 * Singular value decompositions on the host, in float64, for PiSSA initialisation.
 *
 * `svd` is one-sided Jacobi (Hestenes): it rotates pairs of columns until all are orthogonal,
 * which is simple and accurate to float64 round-off, and costs about 3 * sweeps * rows * cols^2
 * multiply-adds (cols the smaller side): measured 1.5 s for 768 x 288 and 34 s for 1024 x 1024 in
 * Node, so about half an hour for 4096 x 4096. For big layers use `randomizedSvd` (PiSSA's
 * `pissa_niter_<n>`: 66 ms for 768 x 288 at r = 8, n = 4), which costs
 * O(rows * cols * rank * (2 n + 2)) plus an exact SVD of a rank x cols matrix.
 */

/** A thin SVD: matrix = u diag(s) vt, u [rows, k], s [k] descending, vt [k, cols], row-major. */
export interface Svd {
  u: Float64Array;
  s: Float64Array;
  vt: Float64Array;
  k: number;
}

const MAX_SWEEPS = 80;

/** The thin SVD of a row-major matrix [rows, cols] (k = min(rows, cols)). */
export function svd(matrix: ArrayLike<number>, rows: number, cols: number): Svd {
  if (matrix.length !== rows * cols) {
    throw new PeftError(`svd: ${matrix.length} values for a ${rows} x ${cols} matrix`);
  }
  if (rows < cols) {
    // A^T = V S U^T: decompose the transpose, whose columns are fewer.
    const transposed = new Float64Array(rows * cols);
    for (let i = 0; i < rows; i++)
      for (let j = 0; j < cols; j++) transposed[j * rows + i] = matrix[i * cols + j];
    const inner = svd(transposed, cols, rows);
    const k = inner.k;
    // u_T [cols, k] = V, vt_T [k, rows] = U^T.
    const u = new Float64Array(rows * k);
    const vt = new Float64Array(k * cols);
    for (let i = 0; i < rows; i++) for (let j = 0; j < k; j++) u[i * k + j] = inner.vt[j * rows + i];
    for (let j = 0; j < k; j++) for (let c = 0; c < cols; c++) vt[j * cols + c] = inner.u[c * k + j];
    return { u, s: inner.s, vt, k };
  }
  const k = cols;
  // Columns of A (each of length rows), and V accumulating the rotations, column-major.
  const a = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) a[j * rows + i] = matrix[i * cols + j];
  const v = new Float64Array(cols * cols);
  for (let j = 0; j < cols; j++) v[j * cols + j] = 1;
  const epsilon = 1e-15;
  for (let sweep = 0; sweep < MAX_SWEEPS; sweep++) {
    let rotated = false;
    for (let p = 0; p < cols - 1; p++) {
      for (let q = p + 1; q < cols; q++) {
        let alpha = 0;
        let beta = 0;
        let gamma = 0;
        const op = p * rows;
        const oq = q * rows;
        for (let i = 0; i < rows; i++) {
          const x = a[op + i];
          const y = a[oq + i];
          alpha += x * x;
          beta += y * y;
          gamma += x * y;
        }
        if (gamma === 0 || Math.abs(gamma) <= epsilon * Math.sqrt(alpha * beta)) continue;
        rotated = true;
        const zeta = (beta - alpha) / (2 * gamma);
        const t = Math.sign(zeta || 1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + t * t);
        const s = c * t;
        for (let i = 0; i < rows; i++) {
          const x = a[op + i];
          const y = a[oq + i];
          a[op + i] = c * x - s * y;
          a[oq + i] = s * x + c * y;
        }
        const vp = p * cols;
        const vq = q * cols;
        for (let i = 0; i < cols; i++) {
          const x = v[vp + i];
          const y = v[vq + i];
          v[vp + i] = c * x - s * y;
          v[vq + i] = s * x + c * y;
        }
      }
    }
    if (!rotated) break;
  }
  const norms = new Float64Array(cols);
  for (let j = 0; j < cols; j++) {
    let sum = 0;
    for (let i = 0; i < rows; i++) sum += a[j * rows + i] ** 2;
    norms[j] = Math.sqrt(sum);
  }
  const order = [...norms.keys()].sort((x, y) => norms[y] - norms[x]);
  const u = new Float64Array(rows * k);
  const s = new Float64Array(k);
  const vt = new Float64Array(k * cols);
  order.forEach((j, rank) => {
    s[rank] = norms[j];
    const inverse = norms[j] > 0 ? 1 / norms[j] : 0;
    for (let i = 0; i < rows; i++) u[i * k + rank] = a[j * rows + i] * inverse;
    for (let i = 0; i < cols; i++) vt[rank * cols + i] = v[j * cols + i];
  });
  return { u, s, vt, k };
}

/**
 * A rank-`rank` SVD by subspace iteration (Halko, Martinsson and Tropp; what torch.svd_lowrank
 * computes, with q = rank): a Gaussian sketch of the range, `iterations` power iterations,
 * then an exact SVD of the projected matrix. `normal` draws standard normal values.
 */
export function randomizedSvd(
  matrix: ArrayLike<number>,
  rows: number,
  cols: number,
  rank: number,
  iterations: number,
  normal: () => number,
): Svd {
  if (matrix.length !== rows * cols) {
    throw new PeftError(`randomizedSvd: ${matrix.length} values for a ${rows} x ${cols} matrix`);
  }
  const q = Math.min(rank, rows, cols);
  const sketch = new Float64Array(cols * q);
  for (let i = 0; i < sketch.length; i++) sketch[i] = normal();
  // Y = A Omega [rows, q], then power iterations Q <- orth(A orth(A^T Q)).
  let basis = orthonormalColumns(multiply(matrix, rows, cols, sketch, q, false), rows, q);
  for (let i = 0; i < iterations; i++) {
    const back = orthonormalColumns(multiply(matrix, rows, cols, basis, q, true), cols, q);
    basis = orthonormalColumns(multiply(matrix, rows, cols, back, q, false), rows, q);
  }
  // B = Q^T A [q, cols]; A ~ Q B = (Q U_B) S Vt.
  const projected = new Float64Array(q * cols);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < q; j++) {
      const weight = basis[i * q + j];
      if (weight === 0) continue;
      for (let c = 0; c < cols; c++) projected[j * cols + c] += weight * matrix[i * cols + c];
    }
  }
  const small = svd(projected, q, cols);
  const u = new Float64Array(rows * small.k);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < small.k; j++) {
      let sum = 0;
      for (let l = 0; l < q; l++) sum += basis[i * q + l] * small.u[l * small.k + j];
      u[i * small.k + j] = sum;
    }
  }
  return { u, s: small.s, vt: small.vt, k: small.k };
}

/** A [rows, cols] (or its transpose) times X [cols or rows, q], row-major. */
function multiply(
  matrix: ArrayLike<number>,
  rows: number,
  cols: number,
  x: Float64Array,
  q: number,
  transposeMatrix: boolean,
): Float64Array {
  const out = new Float64Array((transposeMatrix ? cols : rows) * q);
  for (let i = 0; i < rows; i++) {
    for (let c = 0; c < cols; c++) {
      const value = matrix[i * cols + c];
      if (value === 0) continue;
      if (transposeMatrix) for (let j = 0; j < q; j++) out[c * q + j] += value * x[i * q + j];
      else for (let j = 0; j < q; j++) out[i * q + j] += value * x[c * q + j];
    }
  }
  return out;
}

/** Orthonormal columns spanning those of Y [rows, q] (Gram-Schmidt, twice for stability). */
function orthonormalColumns(y: Float64Array, rows: number, q: number): Float64Array {
  for (let j = 0; j < q; j++) {
    for (let pass = 0; pass < 2; pass++) {
      for (let l = 0; l < j; l++) {
        let dot = 0;
        for (let i = 0; i < rows; i++) dot += y[i * q + l] * y[i * q + j];
        for (let i = 0; i < rows; i++) y[i * q + j] -= dot * y[i * q + l];
      }
    }
    let norm = 0;
    for (let i = 0; i < rows; i++) norm += y[i * q + j] ** 2;
    norm = Math.sqrt(norm);
    const inverse = norm > 1e-300 ? 1 / norm : 0;
    for (let i = 0; i < rows; i++) y[i * q + j] *= inverse;
  }
  return y;
}
