import type { UnaryOp } from '../../autograd/backend.js';
import type { Tensor } from '../../tensor/tensor.js';
import { KERNELS } from '../names.js';
import { elementwiseMap } from '../shared/elementwise-map.js';
import { mathHelpers, wgslFloat } from '../shared/wgsl-math.js';

const GELU_TANH_SCALE = 2 * Math.sqrt(2 / Math.PI);

/**
 * grad * op'(x) in WGSL, from x and out = op(x) (values of type T). The same expressions as
 * UNARY_DERIVATIVE in reference.ts; which of x and out each reads decides the bindings.
 */
const DERIVATIVE: Record<UnaryOp, { reads: ('x' | 'out')[]; body: string }> = {
  neg: { reads: [], body: 'let result = -grad;' },
  abs: { reads: ['x'], body: 'let result = grad * sign(x);' },
  exp: { reads: ['out'], body: 'let result = grad * out;' },
  log: { reads: ['x'], body: 'let result = grad / x;' },
  sqrt: { reads: ['out'], body: 'let result = grad * 0.5 / out;' },
  rsqrt: { reads: ['out'], body: 'let result = grad * (-0.5) * out * out * out;' },
  square: { reads: ['x'], body: 'let result = grad * 2.0 * x;' },
  reciprocal: { reads: ['out'], body: 'let result = -grad * out * out;' },
  sin: { reads: ['x'], body: 'let result = grad * cos(x);' },
  cos: { reads: ['x'], body: 'let result = -grad * sin(x);' },
  silu: { reads: ['x'], body: 'let s = webtune_sigmoid(x); let result = grad * s * (1.0 + x * (1.0 - s));' },
  // gelu(x) = x s, s = sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3): gelu' = s + 2 x s (1 - s) u'.
  gelu: {
    reads: ['x'],
    body: `let s = webtune_sigmoid(${wgslFloat(GELU_TANH_SCALE)} * (x + 0.044715 * x * x * x));
    let result = grad * (s + x * s * (1.0 - s) * ${wgslFloat(GELU_TANH_SCALE)} * (1.0 + ${wgslFloat(3 * 0.044715)} * x * x));`,
  },
  'gelu-erf': {
    reads: ['x'],
    body: `let result = grad * (0.5 * webtune_erfc(${wgslFloat(-Math.SQRT1_2)} * x) + x * exp(-0.5 * x * x) * ${wgslFloat(1 / Math.sqrt(2 * Math.PI))});`,
  },
  erf: { reads: ['x'], body: `let result = grad * ${wgslFloat(2 / Math.sqrt(Math.PI))} * exp(-x * x);` },
  relu: { reads: ['x'], body: 'let result = select(T(0.0), grad, x > T(0.0));' },
  tanh: { reads: ['out'], body: 'let result = grad * (1.0 - out * out);' },
  sigmoid: { reads: ['out'], body: 'let result = grad * out * (1.0 - out);' },
};

/**
 * The gradient of a unary op in one fused elementwise kernel: grad * op'(x), reading x or
 * out = op(x), whichever the derivative needs (exp, tanh, sigmoid reuse the forward's output).
 * Memory-bound: cheap to recompute under gradient checkpointing.
 */
export function unaryBackward(op: UnaryOp, x: Tensor, out: Tensor, grad: Tensor): Tensor {
  const { reads, body } = DERIVATIVE[op];
  const inputs: Record<string, Tensor> = { grad };
  if (reads.includes('x')) inputs.x = x;
  if (reads.includes('out')) inputs.out = out;
  return elementwiseMap({
    key: `${KERNELS.unaryBackward}:${op}`,
    op: `${op} backward`,
    inputs,
    outputs: ['result'],
    body,
    helpers: (vector) => mathHelpers(body, vector),
  })[0];
}
