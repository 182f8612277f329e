import {
  DECODE_LAYER_MAX_WEIGHTS,
  type DecodeEpilogue,
  type Device,
  decodeArgmax,
  decodeAttention,
  decodeEmbed,
  decodeLayer,
  decodeMatvec,
  decodeNormAdd,
  decodeSample,
  div,
  PackedWeight,
  prefillAttention,
  prefillProduct,
  streamingHeadUnsupported,
  type Tensor,
} from '@webtune/tensors';
import { usesSlidingWindow } from '../config/model-config.js';
import type { CausalLM } from '../models/llama.js';
import type { Embedding, Linear, RMSNorm } from '../module/layers.js';
import {
  type Group,
  type LayerWeights,
  type PackedLayers,
  packDecodeLayers,
  prefillUnsupportedOf,
  tiledPrefillUnsupportedOf,
  type Weight,
} from './decode-layer-weights.js';
import { type DecodeFeatures, decodeFeaturesOf, normWeightOf } from './fused-decode-gemma.js';
import {
  type FusedLowRankTerm,
  fusedDecodeUnsupported,
  type Projection,
  projectionOf,
} from './fused-decode-support.js';
import type { KVCache } from './kv-cache.js';
import type { SamplingOptions } from './sampling.js';

export {
  type FusedLowRankLayer,
  type FusedLowRankTerm,
  fusedDecodeUnsupported,
} from './fused-decode-support.js';

import { encodeFusedHead } from './fused-decode-head.js';
import { leftPaddingMask, modelHead, tiledPrefillAttention } from './tiled-prefill.js';

/**
 * Batch decoding in a handful of dispatches per layer and no host round trip between steps:
 * per layer RMSNorm + q/k/v products (one dispatch), q/k norm + rotary + KV append + attention
 * over the cache (one), o_proj + residual (one), RMSNorm + gate/up + SiLU gate (one) and
 * down_proj + residual (one); then the final norm + head, and the argmax, which writes the next
 * step's ids on the device. Several steps go into one command buffer; the host reads back the
 * token log once per `encodeGreedy` call.
 *
 * It decodes on the KVCache the model's prefill filled (same layout), for the rows' left padding.
 */
export class FusedDecoder {
  private readonly layers: LayerWeights[];
  /** The token table: f32, or packed (a half-precision or quantized base), read by a gather. */
  private readonly embedTable: Tensor | PackedWeight;
  private readonly finalNorm: Tensor;
  private readonly head: Weight;
  private readonly cos: Tensor;
  private readonly sin: Tensor;
  /** Gemma 3's rotary tables of its sliding (local) layers, or null. */
  private readonly local: { cos: Tensor; sin: Tensor } | null;
  /** Gemma's parts (neutral for the Llama family). */
  private readonly features: DecodeFeatures;
  /** [batch, hidden]: o_proj's and down_proj's outputs before their post norms (Gemma 2/3). */
  private readonly projected: Tensor | null;
  private readonly padding: Tensor;
  private readonly paddingAmounts: number[];
  private readonly hidden: Tensor;
  private readonly qkv: Tensor;
  private readonly attended: Tensor;
  private readonly activation: Tensor;
  readonly logits: Tensor;
  readonly ids: Tensor;
  private readonly tokens: Tensor;
  /** Small layers in one dispatch each (`decodeLayer`): see packedLayers. */
  private packed: PackedLayers | null | undefined = undefined;
  private readonly layerKernel: boolean;
  private seen: Tensor | null = null;
  private draws: Tensor | null = null;
  private readonly owned: Tensor[] = [];

  constructor(
    private readonly model: CausalLM,
    private readonly cache: KVCache,
    padding: readonly number[],
    /** Most steps one `encodeGreedy` call may take. */
    readonly maxSteps: number,
    /** Whether small layers may take one dispatch each (decodeLayer); false keeps five per layer. */
    layerKernel = true,
    /** The caller has just found `fusedDecodeUnsupported(model)` null (generate: ~0.4 ms saved per call). */
    checked = false,
  ) {
    const reason = checked ? null : fusedDecodeUnsupported(model);
    if (reason) throw new Error(`FusedDecoder: ${reason}`);
    const { config } = model;
    const device = model.device;
    const p = (name: string) => {
      const tensor = model.getParameterByName(name);
      if (!tensor) throw new Error(`FusedDecoder: ${name} is missing`);
      return tensor;
    };
    // A projection: its base Linear's weight (packed halves where the base is packed, else the f32
    // tensor) and bias, and the LoRA term of its wrapper.
    // (Looked up by path: a map of every module made ~100 KB of garbage per generate call.)
    const moduleAt = (name: string) => model.getSubmodule(name);
    const batch = cache.batch;
    const group = (names: string[]): Group => {
      const projections = names.map((name) => projectionOf(name, moduleAt(name)) as Projection);
      const terms = projections.map((projection) => projection.term);
      const offsets: number[] = [];
      let width = 0;
      for (const term of terms) {
        offsets.push(width);
        width += term ? term.a.shape[0] : 0;
      }
      const hasBias = projections.some((projection) => projection.base.hasBias);
      return {
        weights: projections.map(({ base }) => base.packedParameter('weight') ?? base.parameter('weight')),
        biases: hasBias ? projections.map(({ base }) => base.parameter('bias')) : null,
        terms,
        factors: terms.map((term) => {
          const dora = term?.dora;
          if (!dora) return null;
          return this.keep(device.scope(() => div(dora.magnitude, dora.norm()).keep()));
        }),
        offsets,
        width,
        u: width > 0 ? this.keep(device.empty([batch, width], 'f32')) : null,
      };
    };
    this.features = decodeFeaturesOf(config);
    const norm = (tensor: Tensor) => normWeightOf(device, config, tensor, (t) => this.keep(t));
    this.layers = Array.from({ length: config.numHiddenLayers }, (_, i) => {
      const at = (name: string) => p(`model.layers.${i}.${name}`);
      const names = (...parts: string[]) => parts.map((part) => `model.layers.${i}.${part}`);
      return {
        window: usesSlidingWindow(config, i) ? (config.slidingWindow ?? 0) : 0,
        inputNorm: norm(at('input_layernorm.weight')),
        // Gemma 2/3: the MLP's input norm is pre_feedforward_layernorm; post_attention_layernorm
        // and post_feedforward_layernorm norm the sublayers' outputs.
        postNorm: norm(
          at(config.postNorms ? 'pre_feedforward_layernorm.weight' : 'post_attention_layernorm.weight'),
        ),
        residualNorms: config.postNorms
          ? {
              attention: norm(at('post_attention_layernorm.weight')),
              mlp: norm(at('post_feedforward_layernorm.weight')),
            }
          : null,
        qkNorm: config.qkNorm
          ? { q: norm(at('self_attn.q_norm.weight')), k: norm(at('self_attn.k_norm.weight')) }
          : null,
        // Phi-3 stacks q/k/v in qkv_proj and gate/up in gate_up_proj: one weight per group.
        qkv: group(
          config.fusedProjections
            ? names('self_attn.qkv_proj')
            : names('self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj'),
        ),
        o: group(names('self_attn.o_proj')),
        gateUp: group(
          config.fusedProjections ? names('mlp.gate_up_proj') : names('mlp.gate_proj', 'mlp.up_proj'),
        ),
        down: group(names('mlp.down_proj')),
      };
    });
    this.embedTable =
      model.model.child<Embedding>('embed_tokens').packedParameter('weight') ??
      p('model.embed_tokens.weight');
    this.finalNorm = norm(p('model.norm.weight'));
    const head = moduleAt('lm_head') as Linear;
    this.head = head.packedParameter('weight') ?? head.parameter('weight');
    const keep = <T extends Tensor>(tensor: T): T => this.keep(tensor);
    // Rotary tables for every position the cache can hold (and Gemma 3's local ones): views of the
    // model's kept tables (built once per capacity and config, not per call).
    const tables = model.rotaryTableCache.tablesFor(device, config, cache.capacity);
    this.cos = keep(tables.cos);
    this.sin = keep(tables.sin);
    this.local = tables.local ? { cos: keep(tables.local.cos), sin: keep(tables.local.sin) } : null;
    this.padding = keep(device.fromArray(padding, [batch], 'u32'));
    this.paddingAmounts = [...padding];
    const { hiddenSize, headDim, numAttentionHeads: heads, numKeyValueHeads: kvHeads } = config;
    this.hidden = keep(device.empty([batch, hiddenSize], 'f32'));
    this.qkv = keep(device.empty([batch, (heads + 2 * kvHeads) * headDim], 'f32'));
    this.attended = keep(device.empty([batch, heads * headDim], 'f32'));
    this.activation = keep(device.empty([batch, config.intermediateSize], 'f32'));
    this.projected = config.postNorms ? keep(device.empty([batch, hiddenSize], 'f32')) : null;
    this.logits = keep(device.empty([batch, config.vocabSize], 'f32'));
    this.ids = keep(device.empty([batch], 'i32'));
    this.tokens = keep(device.empty([Math.max(1, maxSteps) * batch], 'i32'));
    this.layerKernel = layerKernel;
  }

  /**
   * Each small layer's parameters in one buffer, made on the first decode step (a prompt-only call
   * never copies them); null where the layers are too large or adapted, and for Gemma (decodeLayer
   * has none of its parts: it keeps five dispatches per layer).
   */
  private get packedLayers(): PackedLayers | null {
    if (this.packed === undefined) {
      this.packed =
        this.layerKernel && !this.model.config.normAddsOne
          ? packDecodeLayers(this.device, this.model.config, this.layers, this.head, (tensor) =>
              this.keep(tensor),
            )
          : null;
    }
    return this.packed;
  }

  /** Packs the small layers for decodeLayer now instead of at the first step (generate calls it before counting decode dispatches). */
  prepareDecode(): void {
    void this.packedLayers;
  }

  /** The final norm's eps. */
  private get finalEps(): number {
    return (this.model.model.child('norm') as RMSNorm).eps;
  }

  get device(): Device {
    return this.model.device;
  }

  /** Why `prefill` cannot run this model's prompt, or null (see prefillUnsupportedOf). */
  get prefillUnsupported(): string | null {
    return prefillUnsupportedOf(this.model.config, this.layers);
  }

  /** Why `prefill(..., tiled)` cannot run this model, or null (see tiledPrefillUnsupportedOf). */
  get tiledPrefillUnsupported(): string | null {
    return tiledPrefillUnsupportedOf(this.model.config, this.layers);
  }

  /**
   * Records one step for the ids in `this.ids` at the cache's next slot `slot`: the logits of the
   * next token land in `this.logits`. With `argmaxAt`, the greedy choice too (into `this.ids` and
   * the token log at that step). Advances nothing; the caller moves the cache.
   */
  encodeLogits(slot: number, argmaxAt?: number): void {
    const { device, model } = this;
    const { config } = model;
    const eps = config.rmsNormEps;
    const scale = config.attentionScale ?? 1 / Math.sqrt(config.headDim);
    const packed = this.packedLayers;
    if (packed) {
      // decodeLayer's first layer reads an f32 table; a packed one is gathered before it.
      const table = this.embedTable instanceof PackedWeight ? null : this.embedTable;
      if (!table) decodeEmbed(device, this.embedTable, this.ids, this.hidden);
      packed.buffers.forEach((weights, index) => {
        decodeLayer(device, {
          shape: packed.shape,
          weights,
          hidden: this.hidden,
          embed: index === 0 && table ? { table, ids: this.ids } : null,
          cos: this.cos,
          sin: this.sin,
          padding: this.padding,
          keys: this.cache.keys[index],
          values: this.cache.values[index],
          slot,
          scale,
          eps,
          window: this.layers[index].window,
          head:
            packed.head && index === packed.buffers.length - 1
              ? {
                  norm: this.finalNorm,
                  eps: this.finalEps,
                  weight: this.head as Tensor,
                  logits: this.logits,
                  argmax:
                    argmaxAt === undefined ? null : { ids: this.ids, tokens: this.tokens, at: argmaxAt },
                }
              : null,
        });
      });
      if (!packed.head) this.encodeHead(argmaxAt);
      return;
    }
    const { features } = this;
    decodeEmbed(device, this.embedTable, this.ids, this.hidden, features.embedScale);
    this.layers.forEach((layer, index) => {
      // Gemma 3's sliding layers rotate with their own (local) tables.
      const rotary = layer.window > 0 && this.local ? this.local : { cos: this.cos, sin: this.sin };
      this.product(layer.qkv, this.hidden, { weight: layer.inputNorm, eps }, 'store', this.qkv, layer.qkv.u);
      decodeAttention(device, {
        qkv: this.qkv,
        cos: rotary.cos,
        sin: rotary.sin,
        padding: this.padding,
        keys: this.cache.keys[index],
        values: this.cache.values[index],
        qkNorm: layer.qkNorm ? { ...layer.qkNorm, eps } : null,
        softcap: features.attentionSoftcap,
        out: this.attended,
        heads: config.numAttentionHeads,
        kvHeads: config.numKeyValueHeads,
        slot,
        scale: config.attentionScale ?? 1 / Math.sqrt(config.headDim),
        window: layer.window,
      });
      this.sublayerOut(layer.o, this.attended, layer.residualNorms?.attention ?? null);
      this.product(
        layer.gateUp,
        this.hidden,
        { weight: layer.postNorm, eps },
        'swiglu',
        this.activation,
        layer.gateUp.u,
      );
      this.sublayerOut(layer.down, this.activation, layer.residualNorms?.mlp ?? null);
    });
    this.encodeHead(argmaxAt);
  }

  /**
   * o_proj or down_proj of x joining the residual stream: added in place, or (Gemma 2/3) stored,
   * normed by its post norm and added. `at`: a prompt's rows (prefill) instead of the step's.
   */
  private sublayerOut(
    group: Group,
    x: Tensor,
    postNorm: Tensor | null,
    at = { hidden: this.hidden, projected: this.projected, u: group.u, tiled: false },
  ): void {
    if (!postNorm || !at.projected) {
      this.product(group, x, null, 'residual', at.hidden, at.u, at.tiled);
      return;
    }
    this.product(group, x, null, 'store', at.projected, at.u, at.tiled);
    const eps = this.model.config.rmsNormEps;
    decodeNormAdd(this.device, { x: at.projected, weight: postNorm, eps, out: at.hidden });
  }

  /**
   * One group's products of rows x: with LoRA terms, first A x of the adapted weights into `u`
   * (same norm), then the products with scale * B u added before the epilogue.
   */
  private product(
    group: Group,
    x: Tensor,
    norm: { weight: Tensor; eps: number } | null,
    epilogue: DecodeEpilogue,
    out: Tensor,
    u: Tensor | null,
    tiled = false,
  ): void {
    const adapted = group.terms.filter((term): term is FusedLowRankTerm => term !== null);
    // A prompt's rows: the register-tiled products (each weight read once per tile of rows).
    const run = tiled ? prefillProduct : decodeMatvec;
    if (u)
      run(this.device, {
        x,
        weights: adapted.map((term) => term.a),
        norm,
        epilogue: 'store',
        out: u,
      });
    run(this.device, {
      x,
      weights: group.weights,
      biases: group.biases,
      norm,
      epilogue,
      ...(epilogue === 'swiglu' && this.features.activation !== 'silu'
        ? { activation: this.features.activation }
        : {}),
      out,
      lowRank: u
        ? {
            u,
            terms: group.terms.map((term, i) =>
              term
                ? { b: term.b, offset: group.offsets[i], scale: term.scale, factor: group.factors[i] }
                : null,
            ),
          }
        : null,
    });
  }

  /** Final norm + head into `this.logits`; with `argmaxAt`, the greedy choice (fused-decode-head.ts). */
  private encodeHead(argmaxAt?: number): void {
    const { hidden, head, finalNorm, finalEps, logits, ids, tokens } = this;
    const parts = { hidden, head, finalNorm, finalEps, logits, ids, tokens };
    encodeFusedHead(this.device, { ...parts, finalSoftcap: this.features.finalSoftcap }, argmaxAt);
  }

  /**
   * Runs the prompts through the fused kernels: `ids` [batch, steps] (left-padded rows, as the
   * cache's padding says) at cache slots start .. start + steps - 1. Per layer: RMSNorm + q/k/v
   * over every position (one dispatch), keys rotated and written straight into the cache (one),
   * causal attention over the cache (one), o_proj + residual (one), RMSNorm + gate/up + SiLU
   * (one), down_proj + residual (one); then each row's last position goes through the final norm
   * and the head into `this.logits` (a small head: decode's matvec with the norm, one dispatch).
   * Greedy (`choose`): the argmax of each row lands in `this.ids` and its values come back;
   * otherwise the logits [batch, vocab] come back.
   * Advances nothing; the caller moves the cache.
   */
  async prefill(
    ids: Int32Array,
    steps: number,
    start: number,
    choose: boolean,
    /** Run the products as register-tiled prefill products (long prompts) instead of decode's matvecs. */
    tiled = false,
  ): Promise<Float32Array | number[]> {
    const { device, model } = this;
    const { config } = model;
    const batch = this.cache.batch;
    if (ids.length !== batch * steps)
      throw new Error(`FusedDecoder.prefill: ${ids.length} ids for ${batch} x ${steps}`);
    if (start + steps > this.cache.capacity)
      throw new Error(
        `FusedDecoder.prefill: ${steps} steps after ${start} exceed the cache (${this.cache.capacity})`,
      );
    const unsupported = tiled ? this.tiledPrefillUnsupported : this.prefillUnsupported;
    if (unsupported) throw new Error(`FusedDecoder.prefill: ${unsupported}`);
    const eps = config.rmsNormEps;
    const { hiddenSize, headDim, numAttentionHeads: heads, numKeyValueHeads: kvHeads } = config;
    const rows = batch * steps;
    return device.scope(async () => {
      const input = device.fromArray(ids, [rows], 'i32');
      const hidden = device.empty([rows, hiddenSize], 'f32');
      const qkv = device.empty([rows, (heads + 2 * kvHeads) * headDim], 'f32');
      const attended = device.empty([rows, heads * headDim], 'f32');
      const activation = device.empty([rows, config.intermediateSize], 'f32');
      const scratch = (group: Group) => (group.width > 0 ? device.empty([rows, group.width], 'f32') : null);
      decodeEmbed(device, this.embedTable, input, hidden, this.features.embedScale);
      // Gemma 2/3: o_proj's and down_proj's rows before their post norms.
      const projected = this.projected ? device.empty([rows, hiddenSize], 'f32') : null;
      // Tiled: the queries rotated beside the cache, then the forward's attention kernel over the cache.
      const queries = tiled ? device.empty([rows, heads * headDim], 'f32') : null;
      const mask =
        tiled && batch > 1 ? leftPaddingMask(device, this.paddingAmounts, this.cache.capacity) : undefined;
      // One group's products over the prompt's rows (its A x into a scratch of its own).
      const run = (group: Group, x: Tensor, norm: Tensor, epilogue: DecodeEpilogue, out: Tensor) =>
        this.product(group, x, { weight: norm, eps }, epilogue, out, scratch(group), tiled);
      this.layers.forEach((layer, index) => {
        run(layer.qkv, hidden, layer.inputNorm, 'store', qkv);
        const where = {
          qkv,
          ...(layer.window > 0 && this.local ? this.local : { cos: this.cos, sin: this.sin }),
          padding: this.padding,
          qkNorm: layer.qkNorm ? { ...layer.qkNorm, eps } : null,
          heads,
          kvHeads,
          start,
          steps,
        };
        const scale = config.attentionScale ?? 1 / Math.sqrt(headDim);
        const attendedRows = queries
          ? tiledPrefillAttention(device, this.cache, index, where, queries, scale, mask, {
              window: layer.window,
              softcap: this.features.attentionSoftcap,
            })
          : attended;
        if (!queries)
          prefillAttention(device, {
            ...where,
            keys: this.cache.keys[index],
            values: this.cache.values[index],
            out: attended,
            scale,
          });
        const rowsOf = (group: Group) => ({ hidden, projected, u: scratch(group), tiled });
        this.sublayerOut(layer.o, attendedRows, layer.residualNorms?.attention ?? null, rowsOf(layer.o));
        run(layer.gateUp, hidden, layer.postNorm, 'swiglu', activation);
        this.sublayerOut(layer.down, activation, layer.residualNorms?.mlp ?? null, rowsOf(layer.down));
        // A long prompt's first layer goes to the device now: it runs while the host records the
        // others (2-3 ms of host time in a 12 ms stories260K prefill on lavapipe). One more submit.
        if (tiled && index === 0 && this.layers.length > 1) device.flush();
      });
      // Each row's last position continues: copy it into the step's hidden state.
      const from = hidden.binding('FusedDecoder.prefill');
      const to = this.hidden.binding('FusedDecoder.prefill');
      const rowBytes = hiddenSize * 4;
      for (let b = 0; b < batch; b++) {
        device.copyBuffer(
          { buffer: from.buffer, offset: from.offset + ((b + 1) * steps - 1) * rowBytes, size: rowBytes },
          { buffer: to.buffer, offset: to.offset + b * rowBytes, size: rowBytes },
        );
      }
      // The last rows' head is decoding's (decodeHead: the streaming head where the tuning has
      // one, with the argmax). Tiled with a large head the streaming head cannot take, the
      // model's own final norm and head (its small-rows matmul read the stories15M shape's
      // 32000 x 288 head faster than decode's matvec on lavapipe: 8 against 32 ms).
      const largeHead =
        tiled &&
        this.head.shape[0] * this.head.shape[1] > DECODE_LAYER_MAX_WEIGHTS &&
        streamingHeadUnsupported(device, this.head, batch) !== null;
      if (largeHead) {
        const logits = modelHead(model, this.hidden);
        if (!choose) return (await logits.toArray()) as Float32Array;
        decodeArgmax(device, logits, this.ids, this.tokens, 0);
        return Array.from(await this.ids.toArray());
      }
      this.encodeHead(choose ? 0 : undefined);
      if (!choose) return (await this.logits.toArray()) as Float32Array;
      return Array.from(await this.ids.toArray());
    });
  }

  /**
   * Records `steps` steps starting at cache slot `slot` (the ids of the first step must be in
   * `this.ids`), each choosing its token on the device and feeding it to the next, and reads the
   * chosen ids back once: [step][row]. Greedy without `sampling`; with it, the host sampler's rules
   * (`decodeSample`) with `draws[step * rows + row]` as the uniform draws. An id of -1 means that
   * row's logits held NaN.
   */
  async decodeSteps(
    slot: number,
    steps: number,
    sampling?: { options: SamplingOptions; draws: Float32Array },
  ): Promise<number[][]> {
    if (steps < 1 || steps > this.maxSteps)
      throw new Error(`FusedDecoder: ${steps} steps (at most ${this.maxSteps})`);
    const batch = this.cache.batch;
    if (sampling) {
      if (!this.seen) throw new Error('FusedDecoder: call startSampling before sampled steps');
      this.draws ??= this.keep(this.device.empty([this.maxSteps * batch], 'f32'));
      const draws = new Float32Array(this.maxSteps * batch);
      draws.set(sampling.draws.subarray(0, Math.min(draws.length, sampling.draws.length)));
      this.device.write(this.draws, draws);
    }
    for (let step = 0; step < steps; step++) {
      this.encodeLogits(slot + step, sampling ? undefined : step);
      if (sampling) {
        const { options } = sampling;
        decodeSample(this.device, {
          logits: this.logits,
          seen: this.seen as Tensor,
          draws: this.draws as Tensor,
          ids: this.ids,
          tokens: this.tokens,
          at: step,
          temperature: options.temperature ?? 0,
          topK: options.topK ?? 0,
          topP: options.topP ?? 1,
          minP: options.minP ?? 0,
          repetitionPenalty: options.repetitionPenalty ?? 1,
        });
      }
    }
    const log = await this.tokens.toArray();
    return Array.from({ length: steps }, (_, step) =>
      Array.from(log.subarray(step * batch, (step + 1) * batch)),
    );
  }

  /**
   * Marks the ids each row has seen so far (prompt and accepted tokens), the repetition penalty's
   * set; sampled steps then mark the ids they choose on the device.
   */
  startSampling(sequences: readonly (readonly number[])[]): void {
    const vocab = this.model.config.vocabSize;
    const marks = new Uint32Array(this.cache.batch * vocab);
    sequences.forEach((ids, row) => {
      for (const id of ids) if (id >= 0 && id < vocab) marks[row * vocab + id] = 1;
    });
    this.seen ??= this.keep(this.device.empty([this.cache.batch, vocab], 'u32'));
    this.device.write(this.seen, marks);
  }

  private keep<T extends Tensor>(tensor: T): T {
    this.owned.push(tensor.keep());
    return tensor;
  }

  /** Sets the ids of the next step (the tokens the host accepted). */
  setIds(ids: ArrayLike<number>): void {
    this.device.write(this.ids, ids);
  }

  dispose(): void {
    for (const tensor of this.owned.reverse()) tensor.dispose();
    this.owned.length = 0;
  }
}
