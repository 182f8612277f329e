import { GgufError } from './errors.js';
import { type GgufValue, gguf } from './metadata.js';
import type { GgufFile } from './read.js';

/**
 * What the Gemma 2/3, Phi-3 and SmolLM3 families add to a GGUF file beyond Llama's keys, in both
 * directions, as llama.cpp's converter writes them and llama.cpp reads them.
 */

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** One set of rotary settings as config.json spells them. */
export interface RopeFields {
  theta: number;
  /** rope_scaling (Hub layout) or null. */
  scaling: Json | null;
  partialRotaryFactor: number;
  /** Gemma 3's local (sliding-window) base, when it has one. */
  localTheta: number | undefined;
}

/**
 * The rotary settings of a config.json in either layout Hugging Face writes: `rope_theta` +
 * `rope_scaling` (+ `rope_local_base_freq`), or transformers 5's `rope_parameters`, flat or per
 * layer type. The global (full-attention) settings are the file's `rope.*` keys.
 */
export function ropeFieldsOf(config: Json): RopeFields {
  const parameters = config.rope_parameters;
  let global: Json = {};
  let local: Json | undefined;
  if (
    isObject(parameters) &&
    (isObject(parameters.full_attention) || isObject(parameters.sliding_attention))
  ) {
    global = isObject(parameters.full_attention) ? parameters.full_attention : {};
    local = isObject(parameters.sliding_attention) ? parameters.sliding_attention : undefined;
  } else if (isObject(parameters)) {
    global = parameters;
  } else if (isObject(config.rope_scaling)) {
    global = config.rope_scaling;
  }
  const theta = Number(global.rope_theta ?? config.rope_theta ?? 10000);
  const type = global.rope_type ?? global.type;
  const scaling = type === undefined || type === 'default' ? null : { ...global, rope_type: type };
  const localTheta = local?.rope_theta ?? config.rope_local_base_freq;
  return {
    theta,
    scaling,
    partialRotaryFactor: Number(global.partial_rotary_factor ?? config.partial_rotary_factor ?? 1),
    localTheta: localTheta === undefined || localTheta === null ? undefined : Number(localTheta),
  };
}

/** Which layers use the sliding window (config.json `layer_types`, or Gemma's pattern). */
export function slidingLayersOf(config: Json, layers: number): boolean[] | null {
  if (Array.isArray(config.layer_types))
    return config.layer_types.map((type) => type === 'sliding_attention');
  const pattern = Number(config.sliding_window_pattern ?? config._sliding_window_pattern ?? 0);
  if (pattern > 0) return Array.from({ length: layers }, (_, layer) => (layer + 1) % pattern !== 0);
  return null;
}

/**
 * The attention scale llama.cpp uses for Gemma 2/3: 1/sqrt(head_dim), except for the 27B models
 * (46 layers for Gemma 2, 62 for Gemma 3), where it is 1/sqrt(hidden / heads). It reads no
 * `query_pre_attn_scalar`.
 */
export function llamaCppGemmaScale(
  architecture: string,
  layers: number,
  hidden: number,
  heads: number,
  headDim: number,
): number {
  const is27B = (architecture === 'gemma2' && layers === 46) || (architecture === 'gemma3' && layers === 62);
  return 1 / Math.sqrt(is27B ? hidden / heads : headDim);
}

/**
 * The factor by which export multiplies Gemma's queries so that llama.cpp's fixed attention scale
 * gives Hugging Face's query_pre_attn_scalar^-0.5: applied to q_proj (Gemma 2) or to the stored
 * (1 + w) of q_norm (Gemma 3); 1 when the two scales agree, as they do for Google's checkpoints.
 */
export function gemmaQueryFactor(architecture: string, config: Json): number {
  if (architecture !== 'gemma2' && architecture !== 'gemma3') return 1;
  const hidden = Number(config.hidden_size);
  const heads = Number(config.num_attention_heads);
  const headDim = Number(config.head_dim ?? hidden / heads);
  const scalar = Number(config.query_pre_attn_scalar ?? headDim);
  const wanted = 1 / Math.sqrt(scalar);
  const factor =
    wanted / llamaCppGemmaScale(architecture, Number(config.num_hidden_layers), hidden, heads, headDim);
  return Math.abs(factor - 1) < 1e-7 ? 1 : factor;
}

/** llama.cpp's SmolLM3: every fourth layer (3, 7, ...) has no rotary embedding. */
export function smolLM3RopeLayers(layers: number): number[] {
  return Array.from({ length: layers }, (_, layer) => ((layer + 1) % 4 === 0 ? 0 : 1));
}

/** Llama 3's per-frequency RoPE factors (llama.cpp's rope_freqs): original / scaled frequency. */
export function llama3FrequencyFactors(scaling: Json, theta: number, rotaryDim: number): Float32Array {
  const factor = Number(scaling.factor);
  const low = Number(scaling.low_freq_factor ?? 1);
  const high = Number(scaling.high_freq_factor ?? 4);
  const original = Number(scaling.original_max_position_embeddings ?? 8192);
  const lowWavelength = original / low;
  const highWavelength = original / high;
  const factors = new Float32Array(rotaryDim / 2);
  for (let i = 0; i < factors.length; i++) {
    const frequency = 1 / theta ** ((2 * i) / rotaryDim);
    const wavelength = (2 * Math.PI) / frequency;
    if (wavelength < highWavelength) factors[i] = 1;
    else if (wavelength > lowWavelength) factors[i] = factor;
    else {
      const smooth = (original / wavelength - low) / (high - low);
      factors[i] = 1 / ((1 - smooth) / factor + smooth);
    }
  }
  return factors;
}

/**
 * The rope_scaling of a file's `rope_freqs` factors: Llama 3's own settings when the usual ones
 * (low 1, high 4, original context 8192, factor = the largest factor) reproduce every factor to
 * float32 precision; else the factors themselves as a LongRoPE table that never switches (short
 * and long alike, original context = the model's context: no attention factor).
 */
export function ropeScalingOfFactors(
  factors: Float32Array,
  theta: number,
  rotaryDim: number,
  context: number,
): Json {
  const factor = Math.max(...factors);
  const llama3 = {
    rope_type: 'llama3',
    factor,
    low_freq_factor: 1,
    high_freq_factor: 4,
    original_max_position_embeddings: 8192,
  };
  const expected = llama3FrequencyFactors(llama3, theta, rotaryDim);
  if (expected.every((value, i) => Math.abs(value - factors[i]) <= 1e-6 * Math.abs(factors[i])))
    return llama3;
  const list = [...factors];
  return {
    rope_type: 'longrope',
    factor: 1,
    original_max_position_embeddings: context,
    short_factor: list,
    long_factor: list,
  };
}

/** Whether a LongRoPE table is really fixed per-frequency factors (what `ropeScalingOfFactors` makes). */
export function fixedFactorsOf(scaling: Json | null): number[] | null {
  if (scaling?.rope_type !== 'longrope') return null;
  const short = scaling.short_factor as number[];
  const long = scaling.long_factor as number[];
  if (!Array.isArray(short) || !Array.isArray(long) || short.length !== long.length) return null;
  return short.every((value, i) => value === long[i]) ? short : null;
}

/** The `<arch>.*` keys the Gemma 2/3, Phi-3 and SmolLM3 families add on export. */
export function familyMetadata(architecture: string, config: Json): [string, GgufValue][] {
  const a = architecture;
  const layers = Number(config.num_hidden_layers);
  const entries: [string, GgufValue][] = [];
  const rope = ropeFieldsOf(config);
  if (a === 'gemma2' || a === 'gemma3') {
    const sliding = slidingLayersOf(config, layers);
    if (typeof config.sliding_window === 'number' && sliding?.some(Boolean)) {
      entries.push([`${a}.attention.sliding_window`, gguf.uint32(config.sliding_window)]);
      // llama.cpp reads the pattern as a period (every n-th layer global); other patterns go as a
      // per-layer array, which webtune reads back.
      const period = sliding.indexOf(false) + 1;
      const periodic = period > 0 && sliding.every((local, layer) => local === ((layer + 1) % period !== 0));
      entries.push([
        `${a}.attention.sliding_window_pattern`,
        periodic ? gguf.uint32(period) : gguf.array('BOOL', sliding),
      ]);
    }
    for (const key of ['attn_logit_softcapping', 'final_logit_softcapping']) {
      if (typeof config[key] === 'number') entries.push([`${a}.${key}`, gguf.float32(config[key] as number)]);
    }
    if (a === 'gemma3' && rope.localTheta !== undefined) {
      entries.push([`${a}.rope.freq_base_swa`, gguf.float32(rope.localTheta)]);
    }
  }
  if (a === 'phi3') {
    const scaling = rope.scaling;
    const original = Number(
      scaling?.original_max_position_embeddings ??
        config.original_max_position_embeddings ??
        config.max_position_embeddings,
    );
    entries.push([`${a}.rope.scaling.original_context_length`, gguf.uint32(original)]);
    if (scaling) {
      const factor = Number(config.max_position_embeddings) / original;
      const attention =
        scaling.attention_factor !== undefined
          ? Number(scaling.attention_factor)
          : factor <= 1
            ? 1
            : Math.sqrt(1 + Math.log(factor) / Math.log(original));
      entries.push([`${a}.rope.scaling.attn_factor`, gguf.float32(attention)]);
    }
    if (typeof config.sliding_window === 'number') {
      entries.push([`${a}.attention.sliding_window`, gguf.uint32(config.sliding_window)]);
    }
  }
  if (a === 'smollm3') {
    const ropeLayers = Array.isArray(config.no_rope_layers) ? config.no_rope_layers.map(Number) : null;
    const expected = smolLM3RopeLayers(layers);
    if (ropeLayers?.some((value, layer) => value !== expected[layer])) {
      throw new GgufError(
        `config.json no_rope_layers ${JSON.stringify(ropeLayers)} has no GGUF export: llama.cpp's SmolLM3 leaves out the rotary embedding on every fourth layer only (${JSON.stringify(expected)})`,
      );
    }
  }
  return entries;
}

/**
 * The config.json fields the family keys of a GGUF file stand for (Gemma's layers and caps,
 * Phi-3's rotary settings, SmolLM3's NoPE layers), written into `config`. Rotary factors stored
 * as tensors (Phi-3's LongRoPE tables, Llama 3's rope_freqs) are read by `openGgufModel`.
 */
export function familyConfigOf(file: GgufFile, architecture: string, config: Json): void {
  const a = architecture;
  const optional = (suffix: string) => file.number(`${a}.${suffix}`);
  const layers = Number(config.num_hidden_layers);
  if (a === 'gemma2' || a === 'gemma3') {
    config.hidden_activation = 'gelu_pytorch_tanh';
    delete config.hidden_act;
    config.attention_bias = false;
    const headDim = Number(config.head_dim);
    const scale = llamaCppGemmaScale(
      a,
      layers,
      Number(config.hidden_size),
      Number(config.num_attention_heads),
      headDim,
    );
    config.query_pre_attn_scalar = 1 / scale ** 2;
    config.attn_logit_softcapping = optional('attn_logit_softcapping') ?? (a === 'gemma2' ? 50 : null);
    config.final_logit_softcapping = optional('final_logit_softcapping') ?? (a === 'gemma2' ? 30 : null);
    // llama.cpp gives Gemma 2 a 4096-token window when the file names none.
    const window = optional('attention.sliding_window') ?? (a === 'gemma2' ? 4096 : undefined);
    const patternKey = `${a}.attention.sliding_window_pattern`;
    const pattern = file.value(patternKey);
    let sliding: boolean[];
    if (Array.isArray(pattern)) {
      if (pattern.length !== layers) {
        throw new GgufError(`must hold ${layers} entries (one per layer), got ${pattern.length}`, {
          fileName: file.fileName,
          key: patternKey,
        });
      }
      sliding = pattern.map(Boolean);
    } else {
      // llama.cpp's defaults: every other layer (Gemma 2), five local layers to a global one (Gemma 3).
      const every = typeof pattern === 'number' && pattern > 0 ? pattern : a === 'gemma2' ? 2 : 6;
      sliding = Array.from({ length: layers }, (_, layer) => (layer + 1) % every !== 0);
    }
    if (window !== undefined && window > 0) {
      config.sliding_window = window;
      config.layer_types = sliding.map((local) => (local ? 'sliding_attention' : 'full_attention'));
    } else {
      config.sliding_window = null;
      config.layer_types = sliding.map(() => 'full_attention');
    }
    delete config.use_sliding_window;
    if (a === 'gemma3') config.rope_local_base_freq = optional('rope.freq_base_swa') ?? 10000;
  }
  if (a === 'phi3') {
    config.original_max_position_embeddings =
      optional('rope.scaling.original_context_length') ?? config.max_position_embeddings;
    const dims = optional('rope.dimension_count');
    if (dims !== undefined) config.partial_rotary_factor = dims / Number(config.head_dim);
    config.attention_bias = false;
  }
  if (a === 'smollm3') {
    config.no_rope_layers = smolLM3RopeLayers(layers);
    config.no_rope_layer_interval = 4;
    config.attention_bias = false;
  }
}
