import type { Shape } from '../../tensor/shape.js';
import type { ReduceOp } from './reduce.js';

/** The [outer, length, inner] view of `shape` around `axis` (all elements when axis is null). */
export function axisViewReference(
  shape: Shape,
  axis: number | null | undefined,
): { outer: number; length: number; inner: number; axis: number } {
  const size = shape.reduce((p, d) => p * d, 1);
  if (axis === null || axis === undefined) return { outer: 1, length: size, inner: 1, axis: -1 };
  const rank = Math.max(shape.length, 1);
  const a = axis < 0 ? axis + rank : axis;
  const dims = shape.length ? shape : [1];
  const outer = dims.slice(0, a).reduce((p, d) => p * d, 1);
  const inner = dims.slice(a + 1).reduce((p, d) => p * d, 1);
  return { outer, length: dims[a], inner, axis: a };
}

/**
 * Plain float64 reduction over one axis (or all elements when axis is null/undefined): sum,
 * mean, max, or argmax (the first index of the maximum).
 */
export function reduceReference(
  op: ReduceOp,
  data: ArrayLike<number>,
  shape: Shape,
  axis?: number | null,
  options: { keepDims?: boolean } = {},
): { data: Float64Array; shape: number[] } {
  const view = axisViewReference(shape, axis);
  const all = axis === null || axis === undefined;
  const outShape = shape.flatMap((d, i) => (!all && i !== view.axis ? [d] : options.keepDims ? [1] : []));
  const out = new Float64Array(view.outer * view.inner);
  for (let o = 0; o < view.outer; o++) {
    for (let k = 0; k < view.inner; k++) {
      let total = 0;
      let best = Number.NEGATIVE_INFINITY;
      let bestIndex = 0;
      for (let j = 0; j < view.length; j++) {
        const value = data[(o * view.length + j) * view.inner + k];
        total += value;
        if (value > best) {
          best = value;
          bestIndex = j;
        }
      }
      out[o * view.inner + k] =
        op === 'sum' ? total : op === 'mean' ? total / view.length : op === 'max' ? best : bestIndex;
    }
  }
  return { data: out, shape: outShape };
}
