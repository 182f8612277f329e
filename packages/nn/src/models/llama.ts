import type { Device, Shape, Tensor } from '@webtune/tensors';
import { type ModelConfig, rotaryDim } from '../config/model-config.js';
import { ModelError } from '../errors.js';
import * as F from '../functional.js';
import type { KVCache } from '../generation/kv-cache.js';
import { RotaryTableCache } from '../generation/rotary-table-cache.js';
import { Embedding, Linear, type LinearLike, RMSNorm } from '../module/layers.js';
import { Module, ModuleList } from '../module/module.js';
import { Attention, GatedMLP, type LayerContext } from './attention.js';

export { Attention, GatedMLP, type LayerContext } from './attention.js';

/**
 * Pre-norm block: x + attn(norm(x)), then + mlp(norm(...)). Gemma 2/3 also normalise each
 * branch's output before its residual add: x + post_attention_layernorm(attn(input_layernorm(x))),
 * then h + post_feedforward_layernorm(mlp(pre_feedforward_layernorm(h))).
 */
export class DecoderLayer extends Module {
  constructor(
    readonly config: ModelConfig,
    layerIndex: number,
  ) {
    super();
    const norm = () => new RMSNorm(config.hiddenSize, config.rmsNormEps, config.normAddsOne);
    this.addModule('self_attn', new Attention(config, layerIndex));
    this.addModule('mlp', new GatedMLP(config));
    this.addModule('input_layernorm', norm());
    this.addModule('post_attention_layernorm', norm());
    if (config.postNorms) {
      this.addModule('pre_feedforward_layernorm', norm());
      this.addModule('post_feedforward_layernorm', norm());
    }
  }

  forward(x: Tensor, context: LayerContext): Tensor {
    if (this.config.postNorms) {
      const norm = (name: string, y: Tensor) => this.child<RMSNorm>(name).forward(y);
      const attended = this.child<Attention>('self_attn').forward(norm('input_layernorm', x), context);
      const h = F.add(x, norm('post_attention_layernorm', attended));
      const mlp = this.child<GatedMLP>('mlp').forward(norm('pre_feedforward_layernorm', h));
      return F.add(h, norm('post_feedforward_layernorm', mlp));
    }
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
    this.addModule('norm', new RMSNorm(config.hiddenSize, config.rmsNormEps, config.normAddsOne));
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
  /**
   * Packed sequences (LLaMA-Factory's neat_packing): i32 [batch, seq] segment ids, 1, 2, ... for
   * the tokens of each packed example, 0 for padding. A token attends only to earlier tokens of its
   * own example; pass `positions` restarting at 0 per example too. Instead of paddingMask, without
   * a cache.
   */
  segmentIds?: Tensor;
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
  /** Rotary tables of a cache's positions kept between `generate` calls (see RotaryTableCache). */
  readonly rotaryTableCache = new RotaryTableCache();

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

  /** Frees the parameters and the tables kept between calls (releaseCachedTables). */
  override dispose(): void {
    super.dispose();
    this.releaseCachedTables();
  }

  /** Frees the tables `generate` keeps between calls (rotary tables); the next call builds them again. */
  releaseCachedTables(): void {
    this.rotaryTableCache.release();
  }

  /** Points lm_head.weight at the embedding when the config ties them. Loaders call this. */
  tieWeights(): void {
    if (!this.config.tieWordEmbeddings) return;
    const embedding = this.model.child<Embedding>('embed_tokens');
    // A packed table (frozen base) is shared by the head as it is.
    const packed = embedding.packedParameter('weight');
    if (packed) {
      const head = this.child<Linear>('lm_head');
      if (head.packedParameter('weight') !== packed) head.setPackedParameter('weight', packed);
      return;
    }
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
    if (options.segmentIds) checkSegmentIds(options, [batch, seq]);
    const context = this.layerContext(positions, cache, options.paddingMask, options.segmentIds);
    let h = this.embed(ids);
    for (const layer of this.model.layers) h = layer.forward(h, context);
    cache?.advance(seq);
    return this.model.child<RMSNorm>('norm').forward(h);
  }

  /** Token embeddings of ids [batch, seq]: [batch, seq, hidden] (Gemma: times sqrt(hidden)). */
  embed(ids: Tensor): Tensor {
    const embedding = this.model.child<Embedding>('embed_tokens');
    const h = embedding.forward(ids);
    const multiplier = this.config.embeddingMultiplier;
    // Hugging Face multiplies by sqrt(hidden) cast to the embedding's dtype.
    if (multiplier == null) return h;
    const dtype = embedding.packedParameter('weight') ? 'f32' : embedding.parameter('weight').dtype;
    return F.scale(h, roundTo(dtype, multiplier));
  }

  /**
   * What the decoder layers share for tokens at `positions` (one list, or one per batch row):
   * rotary tables (and Gemma 3's local ones), the cache and the padding mask or segment ids.
   */
  layerContext(
    positions: readonly number[] | readonly (readonly number[])[],
    cache: KVCache | null,
    paddingMask?: Tensor,
    segmentIds?: Tensor,
  ): LayerContext {
    const { config } = this;
    const tables = (base: number, scaling: typeof config.ropeScaling) =>
      F.rotaryTables(this.device, { positions, dim: rotaryDim(config), base, scaling: scaling ?? undefined });
    const { cos, sin } = tables(config.ropeTheta, config.ropeScaling);
    const local = config.localRope ? tables(config.localRope.theta, config.localRope.scaling) : undefined;
    return { cos, sin, local, cache, paddingMask, segmentIds };
  }

  /** Logits [batch, seq, vocab] for token ids [batch, seq] (i32); see ForwardOptions. */
  forward(ids: Tensor, options: ForwardOptions = {}): Tensor {
    let h = this.hiddenStates(ids, options);
    if (options.logits === 'last' && h.shape[1] > 1) {
      const [batch, seq, hidden] = h.shape;
      h = F.slice(h, [0, seq - 1, 0], [batch, seq, hidden]);
    }
    return this.logitsFromHidden(h);
  }

  /**
   * Logits [..., vocab] from hidden states [..., hidden]: lm_head, then Gemma 2's final
   * soft-capping where the config has it. Losses that start from `hiddenStates` use this as
   * their head.
   */
  logitsFromHidden(hidden: Tensor): Tensor {
    const logits = this.child<LinearLike>('lm_head').forward(hidden);
    const cap = this.config.finalLogitSoftcapping;
    return cap == null ? logits : F.softcap(logits, cap);
  }
}

/** `value` rounded to a float dtype (f32 or f16), as a tensor of that dtype would hold it. */
function roundTo(dtype: string, value: number): number {
  if (dtype === 'f16') {
    const exponent = Math.floor(Math.log2(Math.abs(value)));
    const step = 2 ** (exponent - 10);
    return Math.round(value / step) * step;
  }
  return Math.fround(value);
}

function checkSegmentIds(options: ForwardOptions, shape: readonly [number, number]): void {
  const ids = options.segmentIds!;
  if (options.paddingMask || options.cache) {
    throw new ModelError(
      'CausalLM: segmentIds replace paddingMask and take no KV cache (packed training rows)',
    );
  }
  if (ids.rank !== 2 || ids.shape[0] !== shape[0] || ids.shape[1] !== shape[1] || ids.dtype !== 'i32') {
    throw new ModelError(
      `CausalLM: segmentIds must be i32 [${shape.join(', ')}], got ${ids.dtype} [${ids.shape.join(', ')}]`,
    );
  }
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
