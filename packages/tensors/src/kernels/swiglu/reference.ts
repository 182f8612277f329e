/** silu(gate) * up in float64 (the SwiGLU gate of Llama's MLP). */
export function swigluReference(gate: ArrayLike<number>, up: ArrayLike<number>): Float64Array {
  const out = new Float64Array(gate.length);
  for (let i = 0; i < gate.length; i++) out[i] = (gate[i] / (1 + Math.exp(-gate[i]))) * up[i];
  return out;
}

/**
 * Gradients of silu(gate) * up: with s = sigmoid(gate),
 *   d/dgate = grad * up * s * (1 + gate (1 - s)),   d/dup = grad * gate * s.
 */
export function swigluBackwardReference(
  gate: ArrayLike<number>,
  up: ArrayLike<number>,
  grad: ArrayLike<number>,
): { gate: Float64Array; up: Float64Array } {
  const dGate = new Float64Array(gate.length);
  const dUp = new Float64Array(gate.length);
  for (let i = 0; i < gate.length; i++) {
    const s = 1 / (1 + Math.exp(-gate[i]));
    dGate[i] = grad[i] * up[i] * s * (1 + gate[i] * (1 - s));
    dUp[i] = grad[i] * gate[i] * s;
  }
  return { gate: dGate, up: dUp };
}
