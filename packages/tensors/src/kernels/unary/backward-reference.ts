import type { UnaryOp } from '../../autograd/backend.js';
import { erf } from './special-functions.js';

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const GELU_CUBIC = 0.044715;

/**
 * d op(x) / dx in float64, given x and out = op(x) (each rule reads whichever is cheaper). The
 * fused unary-backward kernel multiplies the incoming gradient by exactly these expressions.
 */
export const UNARY_DERIVATIVE: Record<UnaryOp, (x: number, out: number) => number> = {
  neg: () => -1,
  abs: (x) => Math.sign(x),
  exp: (_x, out) => out,
  log: (x) => 1 / x,
  sqrt: (_x, out) => 0.5 / out,
  rsqrt: (_x, out) => -0.5 * out * out * out,
  square: (x) => 2 * x,
  reciprocal: (_x, out) => -out * out,
  sin: (x) => Math.cos(x),
  cos: (x) => -Math.sin(x),
  silu: (x) => {
    const s = 1 / (1 + Math.exp(-x));
    return s * (1 + x * (1 - s));
  },
  gelu: (x) => {
    const t = Math.tanh(SQRT_2_OVER_PI * (x + GELU_CUBIC * x * x * x));
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * GELU_CUBIC * x * x);
  },
  'gelu-erf': (x) => 0.5 * (1 + erf(x / Math.SQRT2)) + (x * Math.exp(-0.5 * x * x)) / Math.sqrt(2 * Math.PI),
  erf: (x) => (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x),
  relu: (x) => (x > 0 ? 1 : 0),
  tanh: (_x, out) => 1 - out * out,
  sigmoid: (_x, out) => out * (1 - out),
};

/** grad * op'(x) elementwise (x, out and grad share one shape). */
export function unaryBackwardReference(
  op: UnaryOp,
  x: ArrayLike<number>,
  out: ArrayLike<number>,
  grad: ArrayLike<number>,
): Float64Array {
  const derivative = UNARY_DERIVATIVE[op];
  const result = new Float64Array(grad.length);
  for (let i = 0; i < grad.length; i++) result[i] = grad[i] * derivative(x[i], out[i]);
  return result;
}
