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
  packedGather as packedGatherOp,
  packedLinear as packedLinearOp,
  matmul as plainMatmul,
  rotaryTables as rotaryTablesOp,
  type Shape,
  type Tensor,
} from '@webtune/tensors';
import { ModelError } from './errors.js';

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
 * residual + x W^T + b, the residual added in the matmul's epilogue (one dispatch instead of
 * two); recorded for autograd when a gradient is (the residual's gradient is the output's).
 */
export function linearResidual(x: Tensor, weight: Tensor, bias: Tensor | null, residual: Tensor): Tensor {
  const recording =
    isGradEnabled() && [x, weight, bias, residual].some((tensor) => tensor !== null && isTracked(tensor));
  if (recording) return matmulOp(x, weight, { transposeB: true, bias, residual });
  return plainMatmul(x, weight, { transposeB: true, bias, residual });
}

/** y = x W^T + b for a frozen packed weight (half precision or quantized; x takes the gradient). */
export function packedLinear(x: Tensor, weight: PackedWeight, bias: Tensor | null): Tensor {
  return packedLinearOp(x, weight, bias);
}

/** Rows of a frozen packed table [vocab, dim] at integer `ids`, decoded: [...ids.shape, dim] f32. */
export function packedEmbedding(table: PackedWeight, ids: Tensor): Tensor {
  return packedGatherOp(ids, table);
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
  /** paddingMask holds segment ids of packed examples: a query sees only keys of its own (nonzero) segment. */
  segments?: boolean;
  scale?: number;
  /**
   * Sliding window (Mistral's sliding_window): the query at position p = queryOffset + i sees
   * only keys j with p - window < j, the window keys up to itself, as Hugging Face masks them.
   */
  window?: number;
  /** Gemma 2's logit soft-capping: each score s becomes cap * tanh(s / cap), inside the kernel. */
  softcap?: number;
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

/**
 * Attention with Gemma 2's logit soft-capping, composed from differentiable ops (models use the
 * fused kernel's `softcap` option; this is its independent check): s = cap * tanh(q.k * scale / cap), then the causal, window
 * and padding masks, softmax, and the weighted sum of v. Each key head's query heads are stacked
 * so one batched matmul serves a group. Same shapes as `attention`.
 */
export function softcappedAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  options: AttentionOptions & { softcap: number },
): Tensor {
  if (options.segments) {
    throw new ModelError(
      'attention soft-capping (Gemma 2) does not take segment ids: neat_packing is not supported for this model',
    );
  }
  const [batch, seq, heads, headDim] = q.shape;
  const [, keys, kvHeads] = k.shape;
  const group = heads / kvHeads;
  const scale = options.scale ?? 1 / Math.sqrt(headDim);
  const grouped = reshape(autograd.permute(q, [0, 2, 1, 3]), [batch, kvHeads, group * seq, headDim]);
  const keysByHead = autograd.permute(k, [0, 2, 1, 3]);
  const valuesByHead = autograd.permute(v, [0, 2, 1, 3]);
  let scores = matmulOp(grouped, keysByHead, { transposeB: true });
  scores = autograd.scale(autograd.tanh(autograd.scale(scores, scale / options.softcap)), options.softcap);
  // Causal and window masks: row r of a group is query r % seq at position queryOffset + r % seq.
  const offset = options.queryOffset ?? 0;
  const mask = new Float32Array(group * seq * keys);
  for (let row = 0; row < group * seq; row++) {
    const position = offset + (row % seq);
    for (let key = 0; key < keys; key++) {
      const hidden =
        (options.causal && key > position) ||
        (options.window !== undefined && key <= position - options.window);
      if (hidden) mask[row * keys + key] = MASKED;
    }
  }
  const device = q.device;
  scores = addOp(scores, device.fromArray(mask, [1, 1, group * seq, keys], 'f32'));
  if (options.paddingMask) {
    const padding = reshape(options.paddingMask, [batch, 1, 1, keys]);
    scores = addOp(scores, autograd.where(padding, 0, MASKED));
  }
  const output = matmulOp(autograd.softmax(scores, -1), valuesByHead);
  return autograd.permute(reshape(output, [batch, heads, seq, headDim]), [0, 2, 1, 3]);
}

/** What a masked attention logit becomes: far below any real one, finite so a row never turns NaN. */
const MASKED = -1e30;

/** cap * tanh(x / cap): Gemma 2's soft-capping of logits. */
export function softcap(x: Tensor, cap: number): Tensor {
  return autograd.scale(autograd.tanh(autograd.scale(x, 1 / cap)), cap);
}

/** x * factor. */
export function scale(x: Tensor, factor: number): Tensor {
  return autograd.scale(x, factor);
}

/** gelu_tanh(gate) * up, the GeGLU gate of Gemma's MLP (tanh-approximated GELU, as Hugging Face's gelu_pytorch_tanh). */
export function geglu(gate: Tensor, up: Tensor): Tensor {
  return autograd.mul(autograd.gelu(gate), up);
}

/** The tensors joined along `axis`. */
export function concat(tensors: readonly Tensor[], axis: number): Tensor {
  return autograd.concat(tensors, axis);
}

/** silu(gate) * up, the SwiGLU gate of the MLP, in one kernel. */
export function swiglu(gate: Tensor, up: Tensor): Tensor {
  return swigluOp(gate, up);
}

export function add(a: Tensor, b: Tensor | number): Tensor {
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
