import type { Tensor } from '@webtune/tensors';
import { rotaryDim } from '../config/model-config.js';
import type { CausalLM } from '../models/llama.js';
import { type Embedding, Linear } from '../module/layers.js';

/*
 * Which models the fused decode kernels can run, and the Linear and LoRA/DoRA term each projection
 * stands for (fused-decoder.ts builds its weight groups from these).
 */

/** A low-rank term the fused kernels add to a projection: scale * B (A x), A [r, in], B [out, r] f32. */
export interface FusedLowRankTerm {
  a: Tensor;
  b: Tensor;
  scale: number;
  /**
   * DoRA: the magnitude m [out] f32 and ||W + s B A|| per output row (computed when the decoder is
   * made, since the weights may have been trained since the last call); the kernels then multiply
   * W x + s B A x by m / ||W + s B A|| before the bias.
   */
  dora?: { magnitude: Tensor; norm: () => Tensor } | null;
}

/**
 * A wrapper of a projection (LoRA) that the fused kernels can apply: its base Linear and the active
 * adapter's low-rank term (null when no adapter is active or it is merged), or null when the
 * kernels cannot reproduce its forward right now (dropout while training, a merged adapter).
 */
export interface FusedLowRankLayer {
  fusedLowRank(): { base: Linear; term: FusedLowRankTerm | null } | null;
}

export type Projection = { base: Linear; term: FusedLowRankTerm | null };

/** The Linear and LoRA term a projection module stands for, or why it cannot be fused. */
export function projectionOf(name: string, child: unknown): Projection | string {
  if (child instanceof Linear && child.constructor === Linear) return { base: child, term: null };
  const wrapper = child as Partial<FusedLowRankLayer>;
  if (name === 'lm_head' || typeof wrapper.fusedLowRank !== 'function')
    return `${name} is wrapped (an adapter)`;
  const resolved = wrapper.fusedLowRank();
  if (!resolved)
    return `${name} holds an adapter the fused kernels cannot apply (dropout while training, merged)`;
  if (!(resolved.base instanceof Linear) || resolved.base.constructor !== Linear)
    return `${name} wraps a wrapped layer`;
  const term = resolved.term;
  if (
    term &&
    (term.a.dtype !== 'f32' ||
      term.b.dtype !== 'f32' ||
      term.a.shape[1] % 4 !== 0 ||
      (term.dora && term.dora.magnitude.dtype !== 'f32'))
  )
    return `${name}'s adapter is not f32 with an input size a multiple of 4`;
  return resolved;
}

/** The fused product a projection's weight goes into (its layer's q/k/v or gate/up), or null. */
function productOf(name: string): string | null {
  const match = /^(.*)\.(q|k|v|qkv|o|gate|up|gate_up|down)_proj$/.exec(name);
  if (!match) return null;
  const kind = match[2];
  const group = ['q', 'k', 'v', 'qkv'].includes(kind)
    ? 'q/k/v'
    : ['gate', 'up', 'gate_up'].includes(kind)
      ? 'gate/up'
      : kind;
  return `${match[1]} ${group}`;
}

/**
 * Why the fused decode path cannot run a model, or null when it can. The fused path covers the
 * Llama-family shape with f32 weights or a frozen packed base read in place (f16/bf16 halves,
 * ggml Q8_0/Q4_0/Q4_K blocks: QLoRA bases and GGUF imports; its token table and head too, split
 * in chunks of rows over several buffers where one binding cannot hold them), with or
 * without LoRA or DoRA adapters (their low-rank terms and DoRA's factors applied in the kernels): separate q/k/v and gate/up
 * projections (with or without bias) or Phi-3's stacked ones, SiLU, full rotary (any scaling but LongRoPE), optional per-head q/k norm (Qwen3),
 * and Gemma 2/3's parts (see fused-decode-gemma.ts). Everything else (adapters in training with dropout, NoPE layers, LongRoPE, partial
 * rotary) decodes through the model's own forward. Sliding windows (Mistral) decode fused; their
 * prompts go through the forward.
 */
export function fusedDecodeUnsupported(model: CausalLM): string | null {
  const c = model.config;
  // Gemma 2/3 decode fused: (1 + w) norms, the embedding scale, GeGLU, post norms,
  // soft-capping and Gemma 3's local rotary tables are in the kernels (fused-decode-gemma.ts).
  if (c.ropeLayers) return 'NoPE layers (rotary switched off per layer)';
  if (c.ropeScaling?.type === 'longrope') return 'LongRoPE';
  if (rotaryDim(c) !== c.headDim) return 'partial rotary';
  if (c.hiddenSize % 4 !== 0 || c.intermediateSize % 4 !== 0 || (c.numAttentionHeads * c.headDim) % 4 !== 0)
    return 'sizes not a multiple of 4';
  const formats = new Map<string, string>();
  const bindings = new Map<string, { count: number; lowRank: boolean }>();
  for (const [name, child] of model.namedModules()) {
    if (!name.endsWith('_proj') && name !== 'lm_head') continue;
    // LoRA wrappers stand for their base Linear plus a low-rank term the kernels add.
    const projection = projectionOf(name, child);
    if (typeof projection === 'string') return projection;
    const linear = projection.base;
    const packed = linear.packedParameter('weight');
    // A vocabulary-wide packed head over one binding is read chunk by chunk (decodeMatvec).
    if (packed && packed.chunks.length > 1 && name !== 'lm_head')
      return `${name} is split over several buffers`;
    if (!packed && linear.parameter('weight').dtype !== 'f32')
      return `${name} holds ${linear.parameter('weight').dtype} weights`;
    // The weights of one product (q/k/v, gate/up) share a format; the products may differ (a
    // quantized base keeps a row that is not whole blocks in f16: stories260K's down_proj).
    const product = productOf(name);
    if (product) {
      const format = packed ? packed.format : 'f32';
      const seen = formats.get(product);
      if (seen && seen !== format) return `${product} in several formats (${seen}, ${format})`;
      formats.set(product, format);
      const { term } = projection;
      const entry = bindings.get(product) ?? { count: 0, lowRank: false };
      // The weight, its bias, its adapter's B and DoRA's factors.
      entry.count += 1 + (linear.hasBias ? 1 : 0) + (term ? 1 : 0) + (term?.dora ? 1 : 0);
      entry.lowRank ||= !!term;
      bindings.set(product, entry);
    }
    // Phi-3's stacked gate_up_proj: its two halves go into one SwiGLU product, without LoRA or bias.
    if (name.endsWith('gate_up_proj') && (projection.term || linear.hasBias))
      return `${name} (stacked gate and up) holds an adapter or a bias`;
  }
  // A product binds x, its norm (or residual), its weights, their biases, u and each adapter's B,
  // DoRA's factors and out (decode/product-inputs.ts). A device with fewer storage buffers per
  // stage (WebGPU's default is 8: Qwen2's q/k/v with biases binds 9, with LoRA 13) decodes and
  // prefills through the forward, whose kernels fit the defaults.
  const limit =
    model.device.info.limits?.maxStorageBuffersPerShaderStage ??
    model.device.gpu.limits.maxStorageBuffersPerShaderStage;
  for (const [product, { count, lowRank }] of bindings) {
    // x, the norm or residual, out; u where an adapter is active.
    const total = count + 3 + (lowRank ? 1 : 0);
    if (total > limit)
      return `${product} binds ${total} storage buffers, over this device's ${limit} per stage`;
  }
  // A packed token table (a half-precision or quantized base) is read by the packed gather, in chunks.
  const table = model.model.child<Embedding>('embed_tokens').packedParameter('weight');
  if (!table && model.getParameterByName('model.embed_tokens.weight')?.dtype !== 'f32')
    return 'a non-f32 embedding';
  // The kernels bind each f32 weight whole: one split over several buffers (over the binding
  // limit, an f32 vocabulary-wide table) stays unfused.
  for (const [name, tensor] of model.namedParameters()) {
    if (tensor.storage.chunks.length > 1) return `${name} is split over several buffers`;
  }
  return null;
}
