/**
 * Every tensor op the modules of this package call, in one place. Modules import ops from here
 * and nowhere else. They are the autograd-aware ops of @webtune/tensors: a call records onto the
 * tape only when grad mode is on and an input requires grad (training); otherwise it is the plain
 * op and keeps nothing (inference, generation under noGrad).
 */
import {
  argmax as argmaxOp,
  autograd,
  isGradEnabled,
  isTracked,
  type PackedWeight,
  packedLinear as packedLinearOp,
  matmul as plainMatmul,
  rotaryTables as rotaryTablesOp,
  type Shape,
  type Tensor,
} from '@webtune/tensors';

const addOp = autograd.add;
const attentionOp = autograd.attention;
const crossEntropyOp = autograd.crossEntropy;
const embeddingOp = autograd.embedding;
const matmulOp = autograd.matmul;
const rmsNormOp = autograd.rmsNorm;
const rotaryOp = autograd.rotary;
const sliceOp = autograd.slice;
const swigluOp = autograd.swiglu;

export type { Tensor };

/** A view of x with another shape (recorded, so gradients flow through it). */
export function reshape(x: Tensor, shape: Shape): Tensor {
  return autograd.reshape(x, shape);
}

/** y = x W^T + b for x [..., in], weight [out, in] (PyTorch's Linear layout), bias [out] or null. */
export function linear(x: Tensor, weight: Tensor, bias: Tensor | null): Tensor {
  return matmulOp(x, weight, bias ? { transposeB: true, bias } : { transposeB: true });
}

/**
 * residual + x W^T + b: with no gradient to record (generation, inference) the residual is added
 * in the matmul's epilogue (one dispatch instead of two); otherwise `linear` then `add`.
 */
export function linearResidual(x: Tensor, weight: Tensor, bias: Tensor | null, residual: Tensor): Tensor {
  const recording =
    isGradEnabled() && [x, weight, bias, residual].some((tensor) => tensor !== null && isTracked(tensor));
  if (recording) return add(residual, linear(x, weight, bias));
  return plainMatmul(x, weight, { transposeB: true, bias, residual });
}

/** y = x W^T + b for a frozen packed weight (half precision or quantized; x takes the gradient). */
export function packedLinear(x: Tensor, weight: PackedWeight, bias: Tensor | null): Tensor {
  return packedLinearOp(x, weight, bias);
}

/** Rows of `table` [vocab, dim] at integer `ids`: [...ids.shape, dim]. */
export function embedding(table: Tensor, ids: Tensor): Tensor {
  return embeddingOp(table, ids);
}

/** x / sqrt(mean(x^2) + eps) * weight over the last axis. */
export function rmsNorm(x: Tensor, weight: Tensor, eps: number): Tensor {
  return rmsNormOp(x, weight, eps);
}

/** Rotary embedding of x [batch, seq, heads, headDim] in Hugging Face's rotate-half layout. */
export function rotary(x: Tensor, cos: Tensor, sin: Tensor): Tensor {
  return rotaryOp(x, cos, sin, { style: 'half' });
}

/**
 * cos and sin tables for `rotary` at the given positions (one list, or one per batch row),
 * computed on the host in float64 with the config's base and rope_scaling. Constants, not
 * parameters: no gradient flows into them.
 */
export const rotaryTables = rotaryTablesOp;

export interface AttentionOptions {
  /** Query i may see keys at positions <= queryOffset + i. */
  causal: boolean;
  /** Position of the first query among the keys (the KV-cache length before this step). */
  queryOffset?: number;
  /** [batch, keys], nonzero where a key is real, zero where it is padding. */
  paddingMask?: Tensor;
  scale?: number;
  /**
   * Sliding window (Mistral's sliding_window): the query at position p = queryOffset + i sees
   * only keys j with p - window < j, the window keys up to itself, as Hugging Face masks them.
   */
  window?: number;
}

/**
 * Scaled dot-product attention of q [batch, seq, heads, headDim] over k, v [batch, keys,
 * kvHeads, headDim] (grouped-query when kvHeads < heads). Returns [batch, seq, heads, headDim].
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions): Tensor {
  const { output, logsumexp } = attentionOp(q, k, v, options);
  logsumexp.dispose();
  return output;
}

/** silu(gate) * up, the SwiGLU gate of the MLP, in one kernel. */
export function swiglu(gate: Tensor, up: Tensor): Tensor {
  return swigluOp(gate, up);
}

export function add(a: Tensor, b: Tensor): Tensor {
  return addOp(a, b);
}

/** A copy of x restricted to [starts, ends) on every axis. */
export function slice(x: Tensor, starts: readonly number[], ends: readonly number[]): Tensor {
  return sliceOp(x, starts, ends);
}

/** Index of the largest value along `axis` (i32). */
export function argmax(x: Tensor, axis: number): Tensor {
  return argmaxOp(x, axis);
}

/** Sum over rows of -log softmax(logits)[target] for logits [rows, vocab], targets [rows] (i32). */
export function crossEntropySum(logits: Tensor, targets: Tensor): Tensor {
  const { loss, logSumExp, tokenCount } = crossEntropyOp(logits, targets, { reduction: 'sum' });
  logSumExp.dispose();
  tokenCount.dispose();
  return loss;
}
