import type { Device, Shape, Tensor } from '@webtune/tensors';
import type { ModelConfig } from '../config/model-config.js';
import { ModelError } from '../errors.js';
import * as F from '../functional.js';
import type { KVCache } from '../generation/kv-cache.js';
import { Embedding, Linear, type LinearLike, RMSNorm } from '../module/layers.js';
import { Module, ModuleList } from '../module/module.js';

/** What every decoder layer of one forward call shares. */
export interface LayerContext {
  /** Rotary tables for the new positions: [seq, headDim/2] or [batch, seq, headDim/2]. */
  cos: Tensor;
  sin: Tensor;
  cache: KVCache | null;
  /** [batch, keys] (nonzero = attend) or undefined when every key is real. */
  paddingMask?: Tensor;
}

/**
 * Multi-head attention with grouped-query heads, rotary positions in the rotate-half layout,
 * optional q/k/v (and output) bias, and Qwen3's per-head RMSNorm on queries and keys.
 * Children: q_proj, k_proj, v_proj, o_proj (and q_norm, k_norm).
 */
export class Attention extends Module {
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;

  constructor(
    readonly config: ModelConfig,
    readonly layerIndex: number,
  ) {
    super();
    const { hiddenSize, numAttentionHeads, numKeyValueHeads, headDim } = config;
    this.heads = numAttentionHeads;
    this.kvHeads = numKeyValueHeads;
    this.headDim = headDim;
    this.addModule('q_proj', new Linear(hiddenSize, numAttentionHeads * headDim, config.qkvBias));
    this.addModule('k_proj', new Linear(hiddenSize, numKeyValueHeads * headDim, config.qkvBias));
    this.addModule('v_proj', new Linear(hiddenSize, numKeyValueHeads * headDim, config.qkvBias));
    this.addModule('o_proj', new Linear(numAttentionHeads * headDim, hiddenSize, config.outputBias));
    if (config.qkNorm) {
      this.addModule('q_norm', new RMSNorm(headDim, config.rmsNormEps));
      this.addModule('k_norm', new RMSNorm(headDim, config.rmsNormEps));
    }
  }

  /**
   * `residual` (the layer input), when given, is added to the output: inside o_proj's matmul
   * where o_proj is a plain Linear, with an add where it is wrapped (LoRA).
   */
  forward(x: Tensor, context: LayerContext, residual?: Tensor): Tensor {
    const [batch, seq] = x.shape;
    let q = F.reshape(this.child<LinearLike>('q_proj').forward(x), [batch, seq, this.heads, this.headDim]);
    let k = F.reshape(this.child<LinearLike>('k_proj').forward(x), [batch, seq, this.kvHeads, this.headDim]);
    const v = F.reshape(this.child<LinearLike>('v_proj').forward(x), [
      batch,
      seq,
      this.kvHeads,
      this.headDim,
    ]);
    if (this.config.qkNorm) {
      q = this.child<RMSNorm>('q_norm').forward(q);
      k = this.child<RMSNorm>('k_norm').forward(k);
    }
    q = F.rotary(q, context.cos, context.sin);
    k = F.rotary(k, context.cos, context.sin);
    let keys = k;
    let values = v;
    let queryOffset = 0;
    if (context.cache) {
      queryOffset = context.cache.length;
      ({ keys, values } = context.cache.update(this.layerIndex, k, v));
    }
    // Sliding window (Mistral; Qwen2's layers from max_window_layers on): the query at position p
    // sees keys p - window < j <= p. The cache keeps every past key; attention skips the others.
    const output = F.attention(q, keys, values, {
      causal: true,
      queryOffset,
      paddingMask: context.paddingMask,
      window:
        this.layerIndex >= this.config.slidingWindowFromLayer
          ? (this.config.slidingWindow ?? undefined)
          : undefined,
    });
    return linearPlusResidual(
      this.child<LinearLike>('o_proj'),
      F.reshape(output, [batch, seq, this.heads * this.headDim]),
      residual,
    );
  }
}

/** down_proj(silu(gate_proj(x)) * up_proj(x)). */
export class GatedMLP extends Module {
  constructor(config: ModelConfig) {
    super();
    const { hiddenSize, intermediateSize, mlpBias } = config;
    this.addModule('gate_proj', new Linear(hiddenSize, intermediateSize, mlpBias));
    this.addModule('up_proj', new Linear(hiddenSize, intermediateSize, mlpBias));
    this.addModule('down_proj', new Linear(intermediateSize, hiddenSize, mlpBias));
  }

  /** `residual`, when given, is added to the output (in down_proj's matmul where it can). */
  forward(x: Tensor, residual?: Tensor): Tensor {
    const gate = this.child<LinearLike>('gate_proj').forward(x);
    const up = this.child<LinearLike>('up_proj').forward(x);
    return linearPlusResidual(this.child<LinearLike>('down_proj'), F.swiglu(gate, up), residual);
  }
}

/** Pre-norm block: x + attn(norm(x)), then + mlp(norm(...)). */
export class DecoderLayer extends Module {
  constructor(config: ModelConfig, layerIndex: number) {
    super();
    this.addModule('self_attn', new Attention(config, layerIndex));
    this.addModule('mlp', new GatedMLP(config));
    this.addModule('input_layernorm', new RMSNorm(config.hiddenSize, config.rmsNormEps));
    this.addModule('post_attention_layernorm', new RMSNorm(config.hiddenSize, config.rmsNormEps));
  }

  forward(x: Tensor, context: LayerContext): Tensor {
    const h = this.child<Attention>('self_attn').forward(
      this.child<RMSNorm>('input_layernorm').forward(x),
      context,
      x,
    );
    return this.child<GatedMLP>('mlp').forward(this.child<RMSNorm>('post_attention_layernorm').forward(h), h);
  }
}

/** The decoder stack: embed_tokens, layers.{i}, norm. */
export class DecoderModel extends Module {
  constructor(readonly config: ModelConfig) {
    super();
    this.addModule('embed_tokens', new Embedding(config.vocabSize, config.hiddenSize));
    const layers = this.addModule('layers', new ModuleList<DecoderLayer>());
    for (let i = 0; i < config.numHiddenLayers; i++) layers.append(new DecoderLayer(config, i));
    this.addModule('norm', new RMSNorm(config.hiddenSize, config.rmsNormEps));
  }

  get layers(): ModuleList<DecoderLayer> {
    return this.child<ModuleList<DecoderLayer>>('layers');
  }
}

/** Options of one forward call. */
export interface ForwardOptions {
  /** Keys and values of earlier positions; the step's own are appended to it. */
  cache?: KVCache | null;
  /**
   * Position of each token, per batch row ([batch][seq]); default cache length + 0..seq-1 for
   * every row. Left-padded rows start at 0 after their padding.
   */
  positions?: readonly (readonly number[])[];
  /** [batch, keys]: nonzero where a key is a real token. Keys = cache length + seq. */
  paddingMask?: Tensor;
  /** 'all' returns logits at every position; 'last' only at the last one ([batch, 1, vocab]). */
  logits?: 'all' | 'last';
}

/**
 * A decoder-only language model in the Llama family (Llama 2/3, Mistral, Qwen2/2.5, Qwen3) with
 * Hugging Face module names: `model.embed_tokens`, `model.layers.{i}.self_attn.q_proj`, ...,
 * `model.norm`, `lm_head`. With `tie_word_embeddings` the head shares the embedding's tensor.
 *
 * Build it empty with `new CausalLM(device, config)` and fill it with a loader or `initialize()`.
 */
export class CausalLM extends Module {
  constructor(
    readonly device: Device,
    readonly config: ModelConfig,
  ) {
    super();
    this.addModule('model', new DecoderModel(config));
    this.addModule('lm_head', new Linear(config.hiddenSize, config.vocabSize, false));
  }

  get model(): DecoderModel {
    return this.child<DecoderModel>('model');
  }

  /** Points lm_head.weight at the embedding when the config ties them. Loaders call this. */
  tieWeights(): void {
    if (!this.config.tieWordEmbeddings) return;
    const table = this.getParameterByName('model.embed_tokens.weight');
    if (table) this.setParameterByName('lm_head.weight', table);
  }

  /** Throws a ModelError listing the parameters no loader or initialiser filled. */
  assertLoaded(): void {
    const missing = this.missingParameters();
    if (missing.length > 0) {
      const shown = missing.slice(0, 8).join(', ');
      throw new ModelError(
        `${missing.length} parameters are missing: ${shown}${missing.length > 8 ? ', ...' : ''}`,
      );
    }
  }

  /**
   * Hidden states after the final norm for token ids [batch, seq] (i32): [batch, seq, hidden].
   * What a loss that fuses the classifier (or a reward head) starts from.
   */
  hiddenStates(ids: Tensor, options: ForwardOptions = {}): Tensor {
    const [batch, seq] = ids.shape;
    if (ids.rank !== 2)
      throw new ModelError(`CausalLM: ids must be [batch, seq], got [${ids.shape.join(', ')}]`);
    const cache = options.cache ?? null;
    const offset = cache?.length ?? 0;
    if (options.positions && options.positions.length !== batch) {
      throw new ModelError(
        `CausalLM: positions has ${options.positions.length} rows for a batch of ${batch}`,
      );
    }
    const positions = options.positions
      ? options.positions.map((row) => checkRow(row, seq))
      : Array.from({ length: seq }, (_, i) => offset + i);
    const { cos, sin } = F.rotaryTables(this.device, {
      positions,
      dim: this.config.headDim,
      base: this.config.ropeTheta,
      scaling: this.config.ropeScaling ?? undefined,
    });
    const context: LayerContext = { cos, sin, cache, paddingMask: options.paddingMask };
    let h = this.model.child<Embedding>('embed_tokens').forward(ids);
    for (const layer of this.model.layers) h = layer.forward(h, context);
    cache?.advance(seq);
    return this.model.child<RMSNorm>('norm').forward(h);
  }

  /** Logits [batch, seq, vocab] for token ids [batch, seq] (i32); see ForwardOptions. */
  forward(ids: Tensor, options: ForwardOptions = {}): Tensor {
    let h = this.hiddenStates(ids, options);
    if (options.logits === 'last' && h.shape[1] > 1) {
      const [batch, seq, hidden] = h.shape;
      h = F.slice(h, [0, seq - 1, 0], [batch, seq, hidden]);
    }
    return this.child<LinearLike>('lm_head').forward(h);
  }
}

/**
 * layer(x) + residual. A plain Linear (exactly that class, not a subclass or a LoRA wrapper)
 * takes the residual into its matmul; anything else runs its own forward and then an add.
 */
function linearPlusResidual(layer: LinearLike, x: Tensor, residual: Tensor | undefined): Tensor {
  if (!residual) return layer.forward(x);
  if (layer instanceof Linear && layer.constructor === Linear && !layer.packedParameter('weight')) {
    return F.linearResidual(
      x,
      layer.parameter('weight'),
      layer.hasBias ? layer.parameter('bias') : null,
      residual,
    );
  }
  return F.add(residual, layer.forward(x));
}

function checkRow(row: readonly number[], seq: number): readonly number[] {
  if (row.length !== seq)
    throw new ModelError(`CausalLM: a positions row has ${row.length} entries for ${seq} tokens`);
  return row;
}

/** Shapes of every parameter a config's model declares, by Hugging Face name. */
export function parameterShapes(config: ModelConfig): Map<string, Shape> {
  const shapes = new Map<string, Shape>();
  // Shapes only: build a module tree without a device (no tensor is created).
  const model = new CausalLM(undefined as unknown as Device, config);
  for (const [name, slot] of model.namedSlots()) shapes.set(name, slot.shape);
  return shapes;
}
