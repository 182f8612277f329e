import type { RopeScaling } from '@webtune/tensors';
import { ModelError } from '../errors.js';
import {
  booleanField,
  isObject,
  type Json,
  nonNegativeInteger,
  optionalPositiveNumber,
  positiveInteger,
  positiveNumber,
  tokenId,
} from './config-fields.js';
import {
  ARCHITECTURE_OF_MODEL_TYPE,
  type Architecture,
  FAMILIES,
  SUPPORTED_ARCHITECTURES,
  TEXT_PART_OF,
} from './families.js';
import { type RopeSettings, readRopeConfig, ropeScalingToJson } from './rope-config.js';

export { type Architecture, SUPPORTED_ARCHITECTURES };

/** Attention of one layer: every earlier key, or a sliding window of them. */
export type LayerType = 'full_attention' | 'sliding_attention';

/**
 * RoPE frequency scaling (`rope_scaling` in config.json). `linear` divides positions by the factor;
 * `dynamic` (NTK) raises the base once the sequence outgrows `max_position_embeddings`; `llama3`
 * rescales low frequencies band by band; `yarn` blends interpolated and original frequencies and
 * scales cos/sin by an attention factor.
 */
export type { RopeScaling };

/** A decoder-only model's shape and behaviour, read from a Hugging Face config.json. */
export interface ModelConfig {
  architecture: Architecture;
  /** config.json `model_type` (llama, mistral, qwen2, qwen3, gemma2, gemma3_text, phi3, smollm3). */
  modelType: string;
  /**
   * The checkpoint's own architecture when only its text model is built (a
   * Gemma3ForConditionalGeneration: weights under `language_model.`); null otherwise.
   */
  textPartOf: string | null;
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  numKeyValueHeads: number;
  /** Width of one attention head; `hidden_size / num_attention_heads` unless config.json sets it. */
  headDim: number;
  vocabSize: number;
  maxPositionEmbeddings: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  tieWordEmbeddings: boolean;
  /** Bias on the q, k and v projections (Qwen2 always; Llama/Qwen3 when `attention_bias`). */
  qkvBias: boolean;
  /** Bias on the output projection (Llama with `attention_bias`). */
  outputBias: boolean;
  /** Bias on gate, up and down projections (`mlp_bias`). */
  mlpBias: boolean;
  /** RMSNorm on each query and key head before RoPE (Qwen3). */
  qkNorm: boolean;
  /** The gated MLP's activation: SwiGLU (silu) or Gemma's GeGLU (tanh-approximated GELU). */
  hiddenAct: 'silu' | 'gelu_pytorch_tanh';
  /** Gemma: RMSNorm scales by (1 + weight); q/k norms too. */
  normAddsOne: boolean;
  /** Gemma: embeddings are multiplied by this (sqrt(hidden_size)); null elsewhere. */
  embeddingMultiplier: number | null;
  /** Gemma 2/3: a norm after attention and after the MLP, before each residual add. */
  postNorms: boolean;
  /** Attention scale (Gemma: query_pre_attn_scalar^-0.5); null: 1 / sqrt(headDim). */
  attentionScale: number | null;
  /** Attention logits become cap * tanh(logits / cap) before the mask (Gemma 2). */
  attnLogitSoftcapping: number | null;
  /** Output logits become cap * tanh(logits / cap) (Gemma 2). */
  finalLogitSoftcapping: number | null;
  /** Phi-3: one `qkv_proj` (q, k, v rows in that order) and one `gate_up_proj` (gate, then up). */
  fusedProjections: boolean;
  /** Fraction of each head's dims that rotate (Phi-3 `partial_rotary_factor`; 1 elsewhere). */
  partialRotaryFactor: number;
  /** Rotary base and scaling of the sliding-window layers when they differ (Gemma 3); null: the same. */
  localRope: RopeSettings | null;
  /** SmolLM3 `no_rope_layers`: false where a layer has no rotary embedding; null: every layer rotates. */
  ropeLayers: boolean[] | null;
  /**
   * Per-layer attention (`layer_types`: Gemma 2/3's alternating local and global layers, SmolLM3).
   * When set it says which layers use the sliding window; null: slidingWindowFromLayer does.
   */
  layerTypes: LayerType[] | null;
  /**
   * Sliding-window attention (Mistral; Qwen2/Qwen3 with use_sliding_window): the query at position
   * p sees keys p - slidingWindow < j <= p, as Hugging Face masks them. null: every earlier key.
   */
  slidingWindow: number | null;
  /**
   * First layer the sliding window applies to: 0 for Mistral (every layer), max_window_layers
   * for Qwen2/Qwen3 (default 28), whose lower layers attend to every key.
   */
  slidingWindowFromLayer: number;
  torchDtype: string;
  bosTokenId: number | null;
  eosTokenIds: number[];
  padTokenId: number | null;
  /** The config.json this was read from, kept so saving writes back the fields not modelled here. */
  raw: Record<string, unknown>;
}

/**
 * Reads a Hugging Face config.json (an object or its text). Checks every field a forward pass
 * needs and throws a ModelError naming the field; an architecture that is not supported gets an
 * error listing the supported ones.
 */
export function parseModelConfig(source: string | Json, fileName = 'config.json'): ModelConfig {
  let json: Json;
  try {
    json = typeof source === 'string' ? (JSON.parse(source) as Json) : source;
  } catch (error) {
    throw new ModelError(`${fileName} is not valid JSON: ${(error as Error).message}`);
  }
  if (!isObject(json)) throw new ModelError(`${fileName} must hold a JSON object`);
  try {
    const config = readModelConfig(json);
    checkModelConfigLimits(config);
    return config;
  } catch (error) {
    // Name the file on disk when the caller gave its path.
    if (error instanceof ModelError && fileName !== 'config.json' && error.message.startsWith('config.json'))
      throw new ModelError(`${fileName}${error.message.slice('config.json'.length)}`);
    throw error;
  }
}

/**
 * The largest model config.json may describe. Beyond them a file is corrupt or hostile: refused
 * before anything is allocated (a billion layers would otherwise build for minutes and exhaust
 * memory). Each is several times the largest open model of its kind.
 */
export const MODEL_CONFIG_LIMITS = {
  numHiddenLayers: 1024,
  hiddenSize: 65_536,
  intermediateSize: 262_144,
  numAttentionHeads: 1024,
  headDim: 1024,
  vocabSize: 4_194_304,
  maxPositionEmbeddings: 16_777_216,
  /** Parameters in all (the memory plan): 10^12. */
  parameters: 1e12,
} as const;

/** About how many parameters a config describes (embeddings, attention, MLP, norms, head). */
export function estimateParameterCount(config: ModelConfig): number {
  const attention =
    config.hiddenSize * config.headDim * (config.numAttentionHeads * 2 + config.numKeyValueHeads * 2);
  const mlp = 3 * config.hiddenSize * config.intermediateSize;
  const embeddings = config.vocabSize * config.hiddenSize * (config.tieWordEmbeddings ? 1 : 2);
  return embeddings + config.numHiddenLayers * (attention + mlp + 2 * config.hiddenSize) + config.hiddenSize;
}

function checkModelConfigLimits(config: ModelConfig): void {
  const fields: [keyof typeof MODEL_CONFIG_LIMITS & keyof ModelConfig, string][] = [
    ['numHiddenLayers', 'num_hidden_layers'],
    ['hiddenSize', 'hidden_size'],
    ['intermediateSize', 'intermediate_size'],
    ['numAttentionHeads', 'num_attention_heads'],
    ['headDim', 'head_dim'],
    ['vocabSize', 'vocab_size'],
    ['maxPositionEmbeddings', 'max_position_embeddings'],
  ];
  for (const [field, key] of fields) {
    const limit = MODEL_CONFIG_LIMITS[field];
    if ((config[field] as number) > limit) {
      throw new ModelError(
        `config.json: ${key} ${config[field]} is over the limit of ${limit}; the file is corrupt or not a model webtune can hold`,
      );
    }
  }
  const parameters = estimateParameterCount(config);
  if (parameters > MODEL_CONFIG_LIMITS.parameters) {
    throw new ModelError(
      `config.json describes about ${parameters.toExponential(2)} parameters, over the limit of ${MODEL_CONFIG_LIMITS.parameters.toExponential(0)}; the file is corrupt or not a model webtune can hold`,
    );
  }
}

function readModelConfig(outer: Json): ModelConfig {
  const { architecture, json: fields, textPartOf } = readArchitecture(outer);
  const family = FAMILIES[architecture];
  // Fields the config leaves out take the config class's defaults.
  const json: Json = { ...fields };
  for (const [key, value] of Object.entries(family.defaults)) if (json[key] === undefined) json[key] = value;
  const modelType = typeof json.model_type === 'string' ? json.model_type : family.modelType;
  const hiddenSize = positiveInteger(json, 'hidden_size');
  const numAttentionHeads = positiveInteger(json, 'num_attention_heads');
  const numKeyValueHeads =
    json.num_key_value_heads == null ? numAttentionHeads : positiveInteger(json, 'num_key_value_heads');
  if (numAttentionHeads % numKeyValueHeads !== 0) {
    throw new ModelError(
      `config.json: num_attention_heads (${numAttentionHeads}) must be a multiple of num_key_value_heads (${numKeyValueHeads})`,
    );
  }
  let headDim: number;
  if (json.head_dim != null) headDim = positiveInteger(json, 'head_dim');
  else {
    if (hiddenSize % numAttentionHeads !== 0) {
      throw new ModelError(
        `config.json: hidden_size (${hiddenSize}) is not a multiple of num_attention_heads (${numAttentionHeads}) and head_dim is not set`,
      );
    }
    headDim = hiddenSize / numAttentionHeads;
  }
  if (headDim % 2 !== 0) throw new ModelError(`config.json: head_dim ${headDim} must be even for RoPE`);
  const activationKey = json.hidden_activation != null ? 'hidden_activation' : 'hidden_act';
  const hiddenAct = json[activationKey] ?? family.hiddenAct;
  if (hiddenAct !== family.hiddenAct) {
    throw new ModelError(
      `config.json: ${activationKey} "${String(hiddenAct)}" is not supported for ${architecture} (only ${family.hiddenAct})`,
    );
  }
  const numHiddenLayers = positiveInteger(json, 'num_hidden_layers');
  const maxPositionEmbeddings =
    json.max_position_embeddings == null ? 2048 : positiveInteger(json, 'max_position_embeddings');
  const rope = readRopeConfig(json, maxPositionEmbeddings, {
    theta: family.ropeTheta,
    localTheta: family.localRopeTheta,
  });
  const rotaryDim = Math.floor(headDim * rope.partialRotaryFactor);
  if (rotaryDim < 2 || rotaryDim % 2 !== 0) {
    throw new ModelError(
      `config.json: partial_rotary_factor ${rope.partialRotaryFactor} of head_dim ${headDim} gives ${rotaryDim} rotary dims; it must be even and at least 2`,
    );
  }
  const attentionBias = booleanField(json, 'attention_bias', false);
  const isQwen2 = architecture === 'Qwen2ForCausalLM';
  const isMistral = architecture === 'MistralForCausalLM';
  const slidingWindow = readSlidingWindow(json, architecture);
  const slidingWindowFromLayer =
    isMistral || family.gemma || family.fusedProjections
      ? 0
      : json.max_window_layers == null
        ? 28
        : nonNegativeInteger(json.max_window_layers, 'max_window_layers');
  const ropeLayers = readRopeLayers(json, architecture, numHiddenLayers);
  const eos = json.eos_token_id;
  const eosTokenIds =
    eos == null
      ? []
      : Array.isArray(eos)
        ? eos.map((id, i) => tokenId(id, `eos_token_id[${i}]`))
        : [tokenId(eos, 'eos_token_id')];
  return {
    architecture,
    modelType,
    textPartOf,
    hiddenSize,
    intermediateSize: positiveInteger(json, 'intermediate_size'),
    numHiddenLayers,
    numAttentionHeads,
    numKeyValueHeads,
    headDim,
    vocabSize: positiveInteger(json, 'vocab_size'),
    maxPositionEmbeddings,
    rmsNormEps: positiveNumber(json, 'rms_norm_eps', 1e-6),
    ropeTheta: rope.theta,
    ropeScaling: rope.scaling,
    // Llama, Mistral, Qwen and Phi-3 default to an untied head; Gemma and SmolLM3 (family defaults) to a tied one.
    tieWordEmbeddings: booleanField(json, 'tie_word_embeddings', false),
    qkvBias: isQwen2 ? true : isMistral || family.fusedProjections ? false : attentionBias,
    outputBias: isQwen2 || isMistral || family.fusedProjections ? false : attentionBias,
    mlpBias: family.gemma || family.fusedProjections ? false : booleanField(json, 'mlp_bias', false),
    qkNorm: architecture === 'Qwen3ForCausalLM' || architecture === 'Gemma3ForCausalLM',
    hiddenAct: family.hiddenAct,
    normAddsOne: family.gemma,
    embeddingMultiplier: family.gemma ? Math.sqrt(hiddenSize) : null,
    postNorms: family.gemma,
    attentionScale: family.gemma ? positiveNumber(json, 'query_pre_attn_scalar', undefined) ** -0.5 : null,
    attnLogitSoftcapping: family.gemma ? optionalPositiveNumber(json, 'attn_logit_softcapping') : null,
    finalLogitSoftcapping: family.gemma ? optionalPositiveNumber(json, 'final_logit_softcapping') : null,
    fusedProjections: family.fusedProjections,
    partialRotaryFactor: rope.partialRotaryFactor,
    localRope: rope.local,
    ropeLayers,
    layerTypes: readLayerTypes(json, architecture, numHiddenLayers, slidingWindow, ropeLayers),
    slidingWindow,
    slidingWindowFromLayer,
    torchDtype: typeof json.torch_dtype === 'string' ? json.torch_dtype : 'float32',
    bosTokenId: json.bos_token_id == null ? null : tokenId(json.bos_token_id, 'bos_token_id'),
    eosTokenIds,
    padTokenId: json.pad_token_id == null ? null : tokenId(json.pad_token_id, 'pad_token_id'),
    raw: { ...fields, architectures: [architecture], model_type: modelType },
  };
}

/** The width of each head that rotates: headDim * partialRotaryFactor. */
export function rotaryDim(config: ModelConfig): number {
  return Math.floor(config.headDim * config.partialRotaryFactor);
}

/** Whether layer `layerIndex` attends through the sliding window. */
export function usesSlidingWindow(config: ModelConfig, layerIndex: number): boolean {
  if (config.slidingWindow == null) return false;
  if (config.layerTypes) return config.layerTypes[layerIndex] === 'sliding_attention';
  return layerIndex >= config.slidingWindowFromLayer;
}

/** The config.json object for a config: the original fields with the modelled ones written over. */
export function modelConfigToJson(config: ModelConfig): Json {
  const json: Json = { ...config.raw };
  const family = FAMILIES[config.architecture];
  json.architectures = [config.architecture];
  json.model_type = config.modelType;
  json.hidden_size = config.hiddenSize;
  json.intermediate_size = config.intermediateSize;
  json.num_hidden_layers = config.numHiddenLayers;
  json.num_attention_heads = config.numAttentionHeads;
  json.num_key_value_heads = config.numKeyValueHeads;
  json.head_dim = config.headDim;
  json.vocab_size = config.vocabSize;
  json.max_position_embeddings = config.maxPositionEmbeddings;
  json.rms_norm_eps = config.rmsNormEps;
  // transformers 5's rope_parameters (and Gemma 3's two bases) are kept as they were read.
  if (!('rope_parameters' in json) && !config.localRope) {
    json.rope_theta = config.ropeTheta;
    json.rope_scaling = ropeScalingToJson(config.ropeScaling, config.raw.rope_scaling);
    if (config.partialRotaryFactor !== 1) json.partial_rotary_factor = config.partialRotaryFactor;
  }
  json.tie_word_embeddings = config.tieWordEmbeddings;
  if (family.gemma) json.hidden_activation = config.hiddenAct;
  else json.hidden_act = config.hiddenAct;
  if (config.architecture !== 'Qwen2ForCausalLM' && !config.fusedProjections)
    json.attention_bias = config.qkvBias;
  if (config.mlpBias || 'mlp_bias' in json) json.mlp_bias = config.mlpBias;
  if (config.attentionScale != null) json.query_pre_attn_scalar = config.attentionScale ** -2;
  if (family.gemma) {
    json.attn_logit_softcapping = config.attnLogitSoftcapping;
    json.final_logit_softcapping = config.finalLogitSoftcapping;
  }
  if (config.layerTypes) json.layer_types = [...config.layerTypes];
  if (config.ropeLayers) json.no_rope_layers = config.ropeLayers.map((rotates) => (rotates ? 1 : 0));
  if (config.slidingWindow != null) json.sliding_window = config.slidingWindow;
  json.torch_dtype = config.torchDtype;
  if (config.bosTokenId != null) json.bos_token_id = config.bosTokenId;
  if (config.eosTokenIds.length > 0) {
    json.eos_token_id = config.eosTokenIds.length === 1 ? config.eosTokenIds[0] : [...config.eosTokenIds];
  }
  if (config.padTokenId != null) json.pad_token_id = config.padTokenId;
  return json;
}

/** Fills the rest of a config from the fields a small test or llama2.c model sets. */
export function createModelConfig(
  fields: Partial<Omit<ModelConfig, 'raw'>> &
    Pick<
      ModelConfig,
      'hiddenSize' | 'intermediateSize' | 'numHiddenLayers' | 'numAttentionHeads' | 'vocabSize'
    >,
): ModelConfig {
  const architecture = fields.architecture ?? 'LlamaForCausalLM';
  const family = FAMILIES[architecture];
  const numKeyValueHeads = fields.numKeyValueHeads ?? fields.numAttentionHeads;
  const config: ModelConfig = {
    architecture,
    modelType: fields.modelType ?? family.modelType,
    textPartOf: null,
    hiddenSize: fields.hiddenSize,
    intermediateSize: fields.intermediateSize,
    numHiddenLayers: fields.numHiddenLayers,
    numAttentionHeads: fields.numAttentionHeads,
    numKeyValueHeads,
    headDim: fields.headDim ?? fields.hiddenSize / fields.numAttentionHeads,
    vocabSize: fields.vocabSize,
    maxPositionEmbeddings: fields.maxPositionEmbeddings ?? 2048,
    rmsNormEps: fields.rmsNormEps ?? 1e-5,
    ropeTheta: fields.ropeTheta ?? 10000,
    ropeScaling: fields.ropeScaling ?? null,
    tieWordEmbeddings: fields.tieWordEmbeddings ?? false,
    qkvBias: fields.qkvBias ?? architecture === 'Qwen2ForCausalLM',
    outputBias: fields.outputBias ?? false,
    mlpBias: fields.mlpBias ?? false,
    qkNorm: fields.qkNorm ?? (architecture === 'Qwen3ForCausalLM' || architecture === 'Gemma3ForCausalLM'),
    hiddenAct: family.hiddenAct,
    normAddsOne: family.gemma,
    embeddingMultiplier: family.gemma ? Math.sqrt(fields.hiddenSize) : null,
    postNorms: family.gemma,
    attentionScale: fields.attentionScale ?? null,
    attnLogitSoftcapping: fields.attnLogitSoftcapping ?? null,
    finalLogitSoftcapping: fields.finalLogitSoftcapping ?? null,
    fusedProjections: family.fusedProjections,
    partialRotaryFactor: fields.partialRotaryFactor ?? 1,
    localRope: fields.localRope ?? null,
    ropeLayers: fields.ropeLayers ?? null,
    layerTypes: fields.layerTypes ?? null,
    slidingWindow: fields.slidingWindow ?? null,
    slidingWindowFromLayer: fields.slidingWindowFromLayer ?? 0,
    torchDtype: fields.torchDtype ?? 'float32',
    bosTokenId: fields.bosTokenId ?? null,
    eosTokenIds: fields.eosTokenIds ?? [],
    padTokenId: fields.padTokenId ?? null,
    raw: {},
  };
  if (family.gemma && config.attentionScale == null) config.attentionScale = config.headDim ** -0.5;
  // The parser's checks apply to a hand-made config as to a file.
  parseModelConfig(modelConfigToJson(config));
  return config;
}

function readArchitecture(json: Json): { architecture: Architecture; json: Json; textPartOf: string | null } {
  const list = json.architectures;
  const names = Array.isArray(list) ? list.filter((a): a is string => typeof a === 'string') : [];
  const supported = names.find((name) => (SUPPORTED_ARCHITECTURES as readonly string[]).includes(name));
  if (supported) return { architecture: supported as Architecture, json, textPartOf: null };
  const multimodal = names.find((name) => name in TEXT_PART_OF);
  if (multimodal) {
    if (!isObject(json.text_config)) {
      throw new ModelError(`config.json: ${multimodal} needs a "text_config" object for its language model`);
    }
    return { architecture: TEXT_PART_OF[multimodal], json: json.text_config, textPartOf: multimodal };
  }
  // Some configs omit `architectures`; model_type still says what the model is.
  if (names.length === 0 && typeof json.model_type === 'string') {
    const found = ARCHITECTURE_OF_MODEL_TYPE[json.model_type];
    if (found) return { architecture: found, json, textPartOf: null };
  }
  const what =
    names.length > 0
      ? `architecture ${names.join(', ')}`
      : `model_type ${JSON.stringify(json.model_type ?? null)} with no "architectures" field`;
  throw new ModelError(
    `config.json: ${what} is not supported; supported architectures: ${[...SUPPORTED_ARCHITECTURES, ...Object.keys(TEXT_PART_OF).map((name) => `${name} (text)`)].join(', ')}`,
  );
}

function readSlidingWindow(json: Json, architecture: Architecture): number | null {
  const window = json.sliding_window;
  if (window == null) return null;
  // Qwen2/Qwen3 and SmolLM3 carry sliding_window but only use it with use_sliding_window: true.
  const gated = ['Qwen2ForCausalLM', 'Qwen3ForCausalLM', 'LlamaForCausalLM', 'SmolLM3ForCausalLM'];
  if (gated.includes(architecture) && json.use_sliding_window !== true) return null;
  if (typeof window !== 'number' || !Number.isInteger(window) || window <= 0) {
    throw new ModelError(
      `config.json: sliding_window must be a positive integer or null, got ${JSON.stringify(window)}`,
    );
  }
  return window;
}

/** SmolLM3's no_rope_layers (1: rotary, 0: none), or every no_rope_layer_interval-th layer without. */
function readRopeLayers(json: Json, architecture: Architecture, layers: number): boolean[] | null {
  if (architecture !== 'SmolLM3ForCausalLM') return null;
  const list = json.no_rope_layers;
  if (list == null) {
    const interval = positiveInteger(json, 'no_rope_layer_interval');
    return Array.from({ length: layers }, (_, i) => (i + 1) % interval !== 0);
  }
  if (!Array.isArray(list) || list.length !== layers || list.some((v) => v !== 0 && v !== 1)) {
    throw new ModelError(
      `config.json: no_rope_layers must list 0 or 1 for each of the ${layers} layers, got ${JSON.stringify(list)}`,
    );
  }
  return list.map((v) => v === 1);
}

function readLayerTypes(
  json: Json,
  architecture: Architecture,
  layers: number,
  slidingWindow: number | null,
  ropeLayers: boolean[] | null,
): LayerType[] | null {
  const list = json.layer_types;
  if (list != null) {
    if (
      !Array.isArray(list) ||
      list.length !== layers ||
      list.some((t) => t !== 'full_attention' && t !== 'sliding_attention')
    ) {
      throw new ModelError(
        `config.json: layer_types must list "full_attention" or "sliding_attention" for each of the ${layers} layers, got ${JSON.stringify(list)}`,
      );
    }
    return list as LayerType[];
  }
  const each = (sliding: (i: number) => boolean): LayerType[] =>
    Array.from({ length: layers }, (_, i) => (sliding(i) ? 'sliding_attention' : 'full_attention'));
  switch (architecture) {
    case 'Gemma2ForCausalLM':
      return each((i) => (i + 1) % 2 !== 0);
    case 'Gemma3ForCausalLM': {
      const pattern = positiveInteger(json, 'sliding_window_pattern');
      return each((i) => (i + 1) % pattern !== 0);
    }
    case 'SmolLM3ForCausalLM':
      return each((i) => slidingWindow != null && ropeLayers?.[i] === false);
    default:
      return null;
  }
}
