import type { Shape } from '../../tensor/shape.js';
import { axisViewReference } from '../reduce/reference.js';

/** Plain float64 softmax along `axis` (default the last), stable through max subtraction. */
export function softmaxReference(data: ArrayLike<number>, shape: Shape, axis = -1): Float64Array {
  return softmaxLikeReference(data, shape, axis, false);
}

/** Plain float64 log-softmax along `axis` (default the last). */
export function logSoftmaxReference(data: ArrayLike<number>, shape: Shape, axis = -1): Float64Array {
  return softmaxLikeReference(data, shape, axis, true);
}

function softmaxLikeReference(
  data: ArrayLike<number>,
  shape: Shape,
  axis: number,
  log: boolean,
): Float64Array {
  const { outer, length, inner } = axisViewReference(shape, axis);
  const out = new Float64Array(outer * length * inner);
  for (let o = 0; o < outer; o++) {
    for (let k = 0; k < inner; k++) {
      const at = (j: number) => (o * length + j) * inner + k;
      let max = Number.NEGATIVE_INFINITY;
      for (let j = 0; j < length; j++) max = Math.max(max, data[at(j)]);
      let sum = 0;
      for (let j = 0; j < length; j++) sum += Math.exp(data[at(j)] - max);
      const logSum = Math.log(sum);
      for (let j = 0; j < length; j++) {
        out[at(j)] = log ? data[at(j)] - max - logSum : Math.exp(data[at(j)] - max) / sum;
      }
    }
  }
  return out;
}
