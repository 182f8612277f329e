/**
 * Every tensor op the adapter layers of this package call, in one place (like @webtune/nn's
 * functional.ts). They are the autograd-aware ops of @webtune/tensors: a call records onto the
 * tape only when grad mode is on and an input requires grad, otherwise it is the plain op.
 */
import {
  autograd,
  noGrad,
  type PackedWeight,
  packedLinear as packedLinearOp,
  type Tensor,
  unpackWeight,
} from '@webtune/tensors';

export type { Tensor };

/** y = x W^T (+ bias) for x [..., in] and weight [out, in]. */
export function linear(x: Tensor, weight: Tensor, bias: Tensor | null = null): Tensor {
  return autograd.matmul(x, weight, bias ? { transposeB: true, bias } : { transposeB: true });
}

/**
 * residual + alpha (x W^T) for x [..., in], weight [out, in] and residual [..., out] of x's
 * dtype: LoRA's B product added onto the base layer's output, the scale and the add fused into
 * the product's epilogue (one dispatch instead of three).
 */
export function linearOnto(x: Tensor, weight: Tensor, residual: Tensor, alpha: number): Tensor {
  return autograd.matmul(x, weight, { transposeB: true, residual, ...(alpha === 1 ? {} : { alpha }) });
}

/**
 * x W^T + bias + scaling (x A^T) B^T (+ residual) for weight [out, in], a [r, in], b [out, r]:
 * LoRA's forward as one autograd op (the base product adds the low-rank term in its epilogue).
 */
export function lowRankLinear(
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null,
  a: Tensor,
  b: Tensor,
  scaling: number,
  residual: Tensor | null = null,
): Tensor {
  const { output, hidden } = autograd.lowRankLinear(x, weight, a, b, { bias, scaling, residual });
  hidden.dispose();
  return output;
}

/** a @ b for 2-D operands (B A of a LoRA pair). */
export function matmul(a: Tensor, b: Tensor): Tensor {
  return autograd.matmul(a, b);
}

export function add(a: Tensor, b: Tensor | number): Tensor {
  return autograd.add(a, b);
}

export function sub(a: Tensor, b: Tensor | number): Tensor {
  return autograd.sub(a, b);
}

export function mul(a: Tensor, b: Tensor | number): Tensor {
  return autograd.mul(a, b);
}

export function div(a: Tensor, b: Tensor | number): Tensor {
  return autograd.div(a, b);
}

/** x * factor (x itself when the factor is 1). */
export function scale(x: Tensor, factor: number): Tensor {
  return factor === 1 ? x : autograd.scale(x, factor);
}

/** The L2 norm of every row of a matrix [rows, cols]: [rows]. */
export function rowNorm(x: Tensor): Tensor {
  return autograd.sqrt(autograd.sum(autograd.square(x), 1));
}

/** x converted to another float dtype (adapters compute in their own dtype, like PEFT's autocast). */
export function cast(x: Tensor, dtype: 'f32' | 'f16'): Tensor {
  return x.dtype === dtype ? x : autograd.cast(x, dtype);
}

/**
 * Runs `fn` as a constant for autograd (no gradient flows into what it computes, PyTorch's
 * `.detach()` / `torch.no_grad()`): DoRA's weight norm, merges, initialisation. Tensors it makes
 * and does not return are freed.
 */
/** x W^T (+ bias) for a frozen packed weight; x takes the gradient. */
export function packedLinear(x: Tensor, weight: PackedWeight, bias: Tensor | null): Tensor {
  return packedLinearOp(x, weight, bias);
}

/** A frozen packed weight decoded to an f32 tensor (no gradient: the weight is frozen). */
export function unpacked(weight: PackedWeight): Tensor {
  return unpackWeight(weight);
}

export function detached<T>(like: Tensor, fn: () => T): T {
  return like.device.scope(() => noGrad(fn));
}

/** Inverted dropout with a counter-based mask: the same (seed, offset) drop the same elements. */
export function dropout(x: Tensor, p: number, seed: number, offset: number): Tensor {
  // No mask is kept: backward regenerates it from (seed, offset).
  return autograd.dropout(x, p, { seed, offset, returnMask: false } as { seed: number; offset: number })
    .output;
}

/** Nonlinearities a bottleneck adapter may use (config `non_linearity`); `gelu` is the exact (erf) form, as nn.GELU. */
export const ACTIVATIONS = {
  relu: (x: Tensor) => autograd.relu(x),
  silu: (x: Tensor) => autograd.silu(x),
  swish: (x: Tensor) => autograd.silu(x),
  gelu: (x: Tensor) => autograd.geluErf(x),
  gelu_new: (x: Tensor) => autograd.gelu(x),
  tanh: (x: Tensor) => autograd.tanh(x),
  sigmoid: (x: Tensor) => autograd.sigmoid(x),
} as const satisfies Record<string, (x: Tensor) => Tensor>;

export type Activation = keyof typeof ACTIVATIONS;
