import type { Tensor } from '../../tensor/tensor.js';
import { KERNELS } from '../names.js';
import { elementwiseMap } from '../shared/elementwise-map.js';
import { mathHelpers } from '../shared/wgsl-math.js';

const FORWARD = 'let out = gate * webtune_sigmoid(gate) * up;';
const BACKWARD = `let s = webtune_sigmoid(gate);
    let silu = gate * s;
    let d_gate = grad * up * s * (1.0 + gate * (1.0 - s));
    let d_up = grad * silu;`;

/**
 * silu(gate) * up in one elementwise kernel (the SwiGLU gate of Llama's MLP), instead of three
 * dispatches and two intermediates. gate and up share one shape and float dtype.
 */
export function swiglu(gate: Tensor, up: Tensor): Tensor {
  return elementwiseMap({
    key: `${KERNELS.swiglu}:forward`,
    op: 'swiglu',
    inputs: { gate, up },
    outputs: ['out'],
    body: FORWARD,
    helpers: (vector) => mathHelpers(FORWARD, vector),
  })[0];
}

/**
 * Both gradients of silu(gate) * up in one kernel: with s = sigmoid(gate),
 * d gate = grad * up * s * (1 + gate (1 - s)) and d up = grad * gate * s. Memory-bound.
 */
export function swigluBackward(gate: Tensor, up: Tensor, grad: Tensor): { gate: Tensor; up: Tensor } {
  const [dGate, dUp] = elementwiseMap({
    key: `${KERNELS.swiglu}:backward`,
    op: 'swiglu backward',
    inputs: { gate, up, grad },
    outputs: ['d_gate', 'd_up'],
    body: BACKWARD,
    helpers: (vector) => mathHelpers(BACKWARD, vector),
  });
  return { gate: dGate, up: dUp };
}
