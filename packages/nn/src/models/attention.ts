import type { Tensor } from '@webtune/tensors';
import { type ModelConfig, rotaryDim, usesSlidingWindow } from '../config/model-config.js';
import * as F from '../functional.js';
import type { KVCache } from '../generation/kv-cache.js';
import { Linear, type LinearLike, RMSNorm } from '../module/layers.js';
import { Module } from '../module/module.js';

/** Rotary tables for the new positions: [seq, rotaryDim/2] or [batch, seq, rotaryDim/2]. */
export interface RotaryTables {
  cos: Tensor;
  sin: Tensor;
}

/** What every decoder layer of one forward call shares. */
export interface LayerContext extends RotaryTables {
  /** Tables of the sliding-window layers when their base differs (Gemma 3's local layers). */
  local?: RotaryTables;
  cache: KVCache | null;
  /** [batch, keys] (nonzero = attend) or undefined when every key is real. */
  paddingMask?: Tensor;
  /** [batch, seq] segment ids of packed examples (0 = padding): attention stays inside each. */
  segmentIds?: Tensor;
}

/**
 * Multi-head attention with grouped-query heads and rotary positions in the rotate-half layout,
 * and each family's variations: q/k/v (and output) bias, per-head q/k RMSNorm (Qwen3, Gemma 3),
 * Phi-3's fused `qkv_proj` and partial rotary, SmolLM3's layers without rotary, Gemma's
 * query_pre_attn_scalar, logit soft-capping and alternating local/global layers.
 * Children: q_proj, k_proj, v_proj (or qkv_proj), o_proj (and q_norm, k_norm).
 */
export class Attention extends Module {
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly sliding: boolean;

  constructor(
    readonly config: ModelConfig,
    readonly layerIndex: number,
  ) {
    super();
    const { hiddenSize, numAttentionHeads, numKeyValueHeads, headDim } = config;
    this.heads = numAttentionHeads;
    this.kvHeads = numKeyValueHeads;
    this.headDim = headDim;
    this.sliding = usesSlidingWindow(config, layerIndex);
    if (config.fusedProjections) {
      const width = (numAttentionHeads + 2 * numKeyValueHeads) * headDim;
      this.addModule('qkv_proj', new Linear(hiddenSize, width, config.qkvBias));
    } else {
      this.addModule('q_proj', new Linear(hiddenSize, numAttentionHeads * headDim, config.qkvBias));
      this.addModule('k_proj', new Linear(hiddenSize, numKeyValueHeads * headDim, config.qkvBias));
      this.addModule('v_proj', new Linear(hiddenSize, numKeyValueHeads * headDim, config.qkvBias));
    }
    this.addModule('o_proj', new Linear(numAttentionHeads * headDim, hiddenSize, config.outputBias));
    if (config.qkNorm) {
      this.addModule('q_norm', new RMSNorm(headDim, config.rmsNormEps, config.normAddsOne));
      this.addModule('k_norm', new RMSNorm(headDim, config.rmsNormEps, config.normAddsOne));
    }
  }

  /**
   * `residual` (the layer input), when given, is added to the output: inside o_proj's matmul
   * where o_proj is a plain Linear, with an add where it is wrapped (LoRA).
   */
  forward(x: Tensor, context: LayerContext, residual?: Tensor): Tensor {
    const [batch, seq] = x.shape;
    const { heads, kvHeads, headDim } = this;
    let q: Tensor;
    let k: Tensor;
    let v: Tensor;
    if (this.config.fusedProjections) {
      // qkv_proj's rows are q, then k, then v (Phi-3).
      const qkv = this.child<LinearLike>('qkv_proj').forward(x);
      const qWidth = heads * headDim;
      const kvWidth = kvHeads * headDim;
      const part = (start: number, width: number, count: number) =>
        F.reshape(F.slice(qkv, [0, 0, start], [batch, seq, start + width]), [batch, seq, count, headDim]);
      q = part(0, qWidth, heads);
      k = part(qWidth, kvWidth, kvHeads);
      v = part(qWidth + kvWidth, kvWidth, kvHeads);
    } else {
      q = F.reshape(this.child<LinearLike>('q_proj').forward(x), [batch, seq, heads, headDim]);
      k = F.reshape(this.child<LinearLike>('k_proj').forward(x), [batch, seq, kvHeads, headDim]);
      v = F.reshape(this.child<LinearLike>('v_proj').forward(x), [batch, seq, kvHeads, headDim]);
    }
    if (this.config.qkNorm) {
      q = this.child<RMSNorm>('q_norm').forward(q);
      k = this.child<RMSNorm>('k_norm').forward(k);
    }
    // SmolLM3's NoPE layers take no rotary; Gemma 3's local layers take their own tables.
    if (this.config.ropeLayers?.[this.layerIndex] !== false) {
      const tables = this.sliding && context.local ? context.local : context;
      q = this.rotate(q, tables);
      k = this.rotate(k, tables);
    }
    let keys = k;
    let values = v;
    let queryOffset = 0;
    if (context.cache) {
      queryOffset = context.cache.length;
      ({ keys, values } = context.cache.update(this.layerIndex, k, v));
    }
    // Sliding window: the query at position p sees keys p - window < j <= p. The cache keeps
    // every past key; attention skips the others.
    const options = {
      causal: true,
      queryOffset,
      paddingMask: context.segmentIds ?? context.paddingMask,
      segments: context.segmentIds !== undefined,
      scale: this.config.attentionScale ?? undefined,
      window: this.sliding ? (this.config.slidingWindow ?? undefined) : undefined,
    };
    // Gemma 2's logit soft-capping runs inside the fused kernel (no [seq, seq] scores kept).
    const cap = this.config.attnLogitSoftcapping;
    const output = F.attention(q, keys, values, cap != null ? { ...options, softcap: cap } : options);
    return linearPlusResidual(
      this.child<LinearLike>('o_proj'),
      F.reshape(output, [batch, seq, heads * headDim]),
      residual,
    );
  }

  /** Rotary on the first rotaryDim dims of each head (all of them unless partial_rotary_factor < 1). */
  private rotate(x: Tensor, tables: RotaryTables): Tensor {
    const width = rotaryDim(this.config);
    if (width === this.headDim) return F.rotary(x, tables.cos, tables.sin);
    const [batch, seq, heads] = x.shape;
    const rotated = F.rotary(F.slice(x, [0, 0, 0, 0], [batch, seq, heads, width]), tables.cos, tables.sin);
    const passed = F.slice(x, [0, 0, 0, width], [batch, seq, heads, this.headDim]);
    return F.concat([rotated, passed], 3);
  }
}

/**
 * The gated MLP: down_proj(act(gate_proj(x)) * up_proj(x)) with silu (SwiGLU) or Gemma's
 * tanh GELU (GeGLU); Phi-3 computes gate and up in one `gate_up_proj` (gate first).
 */
export class GatedMLP extends Module {
  constructor(readonly config: ModelConfig) {
    super();
    const { hiddenSize, intermediateSize, mlpBias } = config;
    if (config.fusedProjections) {
      this.addModule('gate_up_proj', new Linear(hiddenSize, 2 * intermediateSize, mlpBias));
    } else {
      this.addModule('gate_proj', new Linear(hiddenSize, intermediateSize, mlpBias));
      this.addModule('up_proj', new Linear(hiddenSize, intermediateSize, mlpBias));
    }
    this.addModule('down_proj', new Linear(intermediateSize, hiddenSize, mlpBias));
  }

  /** `residual`, when given, is added to the output (in down_proj's matmul where it can). */
  forward(x: Tensor, residual?: Tensor): Tensor {
    let gate: Tensor;
    let up: Tensor;
    if (this.config.fusedProjections) {
      const both = this.child<LinearLike>('gate_up_proj').forward(x);
      const width = this.config.intermediateSize;
      const last = both.rank - 1;
      // Fresh index lists per slice: the tape keeps them for backward.
      const bounds = (from: number, to: number) => ({
        starts: both.shape.map((_, axis) => (axis === last ? from : 0)),
        ends: both.shape.map((extent, axis) => (axis === last ? to : extent)),
      });
      const first = bounds(0, width);
      const second = bounds(width, 2 * width);
      gate = F.slice(both, first.starts, first.ends);
      up = F.slice(both, second.starts, second.ends);
    } else {
      gate = this.child<LinearLike>('gate_proj').forward(x);
      up = this.child<LinearLike>('up_proj').forward(x);
    }
    const gated = this.config.hiddenAct === 'gelu_pytorch_tanh' ? F.geglu(gate, up) : F.swiglu(gate, up);
    return linearPlusResidual(this.child<LinearLike>('down_proj'), gated, residual);
  }
}

/**
 * layer(x) + residual. A plain Linear (exactly that class, not a subclass or a LoRA wrapper)
 * takes the residual into its matmul, a layer with `forwardResidual` (LoRA) into its own;
 * anything else runs its own forward and then an add.
 */
export function linearPlusResidual(layer: LinearLike, x: Tensor, residual: Tensor | undefined): Tensor {
  if (!residual) return layer.forward(x);
  if (layer instanceof Linear && layer.constructor === Linear && !layer.packedParameter('weight')) {
    return F.linearResidual(
      x,
      layer.parameter('weight'),
      layer.hasBias ? layer.parameter('bias') : null,
      residual,
    );
  }
  // A layer that can take the residual into its own product (LoRA's fused op) says so.
  const onto = (layer as { forwardResidual?: (x: Tensor, residual: Tensor) => Tensor }).forwardResidual;
  if (typeof onto === 'function') return onto.call(layer, x, residual);
  return F.add(residual, layer.forward(x));
}
