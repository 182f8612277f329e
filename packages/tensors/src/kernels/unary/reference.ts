import { erf, erfc } from './special-functions.js';
import type { UnaryOp } from './unary.js';

const sigmoid = (x: number) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));

/** What each unary op means, in float64 (`factor` is scale's multiplier). */
export const UNARY_REFERENCE: Record<UnaryOp, (x: number, factor: number) => number> = {
  neg: (x) => -x,
  abs: (x) => Math.abs(x),
  exp: (x) => Math.exp(x),
  log: (x) => Math.log(x),
  sqrt: (x) => Math.sqrt(x),
  rsqrt: (x) => 1 / Math.sqrt(x),
  square: (x) => x * x,
  reciprocal: (x) => 1 / x,
  sin: (x) => Math.sin(x),
  cos: (x) => Math.cos(x),
  silu: (x) => x * sigmoid(x),
  // 0.5 x (1 + tanh(u)) written as x sigmoid(2u), the same function without cancellation for x < 0.
  gelu: (x) => x * sigmoid(2 * Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)),
  'gelu-erf': (x) => 0.5 * x * erfc(-x / Math.SQRT2),
  erf: (x) => erf(x),
  relu: (x) => Math.max(x, 0),
  tanh: (x) => Math.tanh(x),
  sigmoid,
  scale: (x, factor) => x * factor,
};

/** Plain TypeScript unary op over an array, in float64. */
export function unaryReference(op: UnaryOp, x: ArrayLike<number>, factor = 1): Float64Array {
  const f = UNARY_REFERENCE[op];
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = f(x[i], factor);
  return out;
}

export { erf, erfc, erfcx } from './special-functions.js';
