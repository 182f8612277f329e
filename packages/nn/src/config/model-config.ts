import type { RopeScaling } from '@webtune/tensors';
import { ModelError } from '../errors.js';

/** Architectures this package builds, as named in config.json's `architectures`. */
export const SUPPORTED_ARCHITECTURES = [
  'LlamaForCausalLM',
  'MistralForCausalLM',
  'Qwen2ForCausalLM',
  'Qwen3ForCausalLM',
] as const;

export type Architecture = (typeof SUPPORTED_ARCHITECTURES)[number];

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
  /** config.json `model_type` (llama, mistral, qwen2, qwen3). */
  modelType: string;
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
  hiddenAct: 'silu';
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

type Json = Record<string, unknown>;

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
  if (!json || typeof json !== 'object' || Array.isArray(json)) {
    throw new ModelError(`${fileName} must hold a JSON object`);
  }
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

function readModelConfig(json: Json): ModelConfig {
  const architecture = readArchitecture(json);
  const modelType = typeof json.model_type === 'string' ? json.model_type : defaultModelType(architecture);
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
  const hiddenAct = json.hidden_act ?? 'silu';
  if (hiddenAct !== 'silu') {
    throw new ModelError(`config.json: hidden_act "${String(hiddenAct)}" is not supported (only silu)`);
  }
  const maxPositionEmbeddings =
    json.max_position_embeddings == null ? 2048 : positiveInteger(json, 'max_position_embeddings');
  const attentionBias = booleanField(json, 'attention_bias', false);
  const isQwen2 = architecture === 'Qwen2ForCausalLM';
  const slidingWindow = readSlidingWindow(json, architecture);
  const slidingWindowFromLayer =
    architecture === 'MistralForCausalLM' || json.max_window_layers == null
      ? architecture === 'MistralForCausalLM'
        ? 0
        : 28
      : nonNegativeInteger(json.max_window_layers, 'max_window_layers');
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
    hiddenSize,
    intermediateSize: positiveInteger(json, 'intermediate_size'),
    numHiddenLayers: positiveInteger(json, 'num_hidden_layers'),
    numAttentionHeads,
    numKeyValueHeads,
    headDim,
    vocabSize: positiveInteger(json, 'vocab_size'),
    maxPositionEmbeddings,
    rmsNormEps: positiveNumber(json, 'rms_norm_eps', 1e-6),
    ropeTheta: positiveNumber(json, 'rope_theta', 10000),
    ropeScaling: readRopeScaling(json, maxPositionEmbeddings),
    // All four architectures default to an untied head (PretrainedConfig's own default is tied).
    tieWordEmbeddings: booleanField(json, 'tie_word_embeddings', false),
    qkvBias: isQwen2 ? true : architecture === 'MistralForCausalLM' ? false : attentionBias,
    outputBias: isQwen2 || architecture === 'MistralForCausalLM' ? false : attentionBias,
    mlpBias: booleanField(json, 'mlp_bias', false),
    qkNorm: architecture === 'Qwen3ForCausalLM',
    hiddenAct: 'silu',
    slidingWindow,
    slidingWindowFromLayer,
    torchDtype: typeof json.torch_dtype === 'string' ? json.torch_dtype : 'float32',
    bosTokenId: json.bos_token_id == null ? null : tokenId(json.bos_token_id, 'bos_token_id'),
    eosTokenIds,
    padTokenId: json.pad_token_id == null ? null : tokenId(json.pad_token_id, 'pad_token_id'),
    raw: { ...json },
  };
}

/** The config.json object for a config: the original fields with the modelled ones written over. */
export function modelConfigToJson(config: ModelConfig): Json {
  const json: Json = { ...config.raw };
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
  json.rope_theta = config.ropeTheta;
  json.rope_scaling = ropeScalingToJson(config.ropeScaling, config.raw.rope_scaling);
  json.tie_word_embeddings = config.tieWordEmbeddings;
  json.hidden_act = config.hiddenAct;
  if (config.architecture !== 'Qwen2ForCausalLM') json.attention_bias = config.qkvBias;
  if (config.mlpBias || 'mlp_bias' in json) json.mlp_bias = config.mlpBias;
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
  const numKeyValueHeads = fields.numKeyValueHeads ?? fields.numAttentionHeads;
  const config: ModelConfig = {
    architecture,
    modelType: fields.modelType ?? defaultModelType(architecture),
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
    qkNorm: fields.qkNorm ?? architecture === 'Qwen3ForCausalLM',
    hiddenAct: 'silu',
    slidingWindow: fields.slidingWindow ?? null,
    slidingWindowFromLayer: fields.slidingWindowFromLayer ?? 0,
    torchDtype: fields.torchDtype ?? 'float32',
    bosTokenId: fields.bosTokenId ?? null,
    eosTokenIds: fields.eosTokenIds ?? [],
    padTokenId: fields.padTokenId ?? null,
    raw: {},
  };
  // The parser's checks apply to a hand-made config as to a file.
  parseModelConfig(modelConfigToJson(config));
  return config;
}

function readArchitecture(json: Json): Architecture {
  const list = json.architectures;
  const names = Array.isArray(list) ? list.filter((a): a is string => typeof a === 'string') : [];
  const supported = names.find((name) => (SUPPORTED_ARCHITECTURES as readonly string[]).includes(name));
  if (supported) return supported as Architecture;
  // Some configs omit `architectures`; model_type still says what the model is.
  if (names.length === 0 && typeof json.model_type === 'string') {
    const byType: Record<string, Architecture> = {
      llama: 'LlamaForCausalLM',
      mistral: 'MistralForCausalLM',
      qwen2: 'Qwen2ForCausalLM',
      qwen3: 'Qwen3ForCausalLM',
    };
    const found = byType[json.model_type];
    if (found) return found;
  }
  const what =
    names.length > 0
      ? `architecture ${names.join(', ')}`
      : `model_type ${JSON.stringify(json.model_type ?? null)} with no "architectures" field`;
  throw new ModelError(
    `config.json: ${what} is not supported; supported architectures: ${SUPPORTED_ARCHITECTURES.join(', ')}`,
  );
}

function defaultModelType(architecture: Architecture): string {
  switch (architecture) {
    case 'LlamaForCausalLM':
      return 'llama';
    case 'MistralForCausalLM':
      return 'mistral';
    case 'Qwen2ForCausalLM':
      return 'qwen2';
    case 'Qwen3ForCausalLM':
      return 'qwen3';
  }
}

function nonNegativeInteger(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new ModelError(`config.json: ${name} must be a non-negative integer, got ${JSON.stringify(value)}`);
  }
  return value;
}

function readSlidingWindow(json: Json, architecture: Architecture): number | null {
  const window = json.sliding_window;
  if (window == null) return null;
  // Qwen2/Qwen3 configs carry sliding_window but only use it with use_sliding_window: true.
  if (architecture !== 'MistralForCausalLM' && json.use_sliding_window !== true) return null;
  if (typeof window !== 'number' || !Number.isInteger(window) || window <= 0) {
    throw new ModelError(
      `config.json: sliding_window must be a positive integer or null, got ${JSON.stringify(window)}`,
    );
  }
  return window;
}

function readRopeScaling(json: Json, maxPositionEmbeddings: number): RopeScaling | null {
  const scaling = json.rope_scaling;
  if (scaling == null) return null;
  if (typeof scaling !== 'object' || Array.isArray(scaling)) {
    throw new ModelError(
      `config.json: rope_scaling must be an object or null, got ${JSON.stringify(scaling)}`,
    );
  }
  const fields = scaling as Json;
  const type = fields.rope_type ?? fields.type;
  if (type === 'default') return null;
  const factor = positiveNumber(fields, 'factor', undefined, 'rope_scaling.');
  const original = (fallback: number) =>
    fields.original_max_position_embeddings == null
      ? fallback
      : positiveInteger(fields, 'original_max_position_embeddings', 'rope_scaling.');
  switch (type) {
    case 'linear':
      return { type: 'linear', factor };
    case 'dynamic':
      return { type: 'dynamic', factor, originalMaxPositionEmbeddings: original(maxPositionEmbeddings) };
    case 'llama3':
      return {
        type: 'llama3',
        factor,
        lowFreqFactor: positiveNumber(fields, 'low_freq_factor', 1, 'rope_scaling.'),
        highFreqFactor: positiveNumber(fields, 'high_freq_factor', 4, 'rope_scaling.'),
        originalMaxPositionEmbeddings: original(8192),
      };
    case 'yarn': {
      const optional = (key: string) =>
        fields[key] == null ? undefined : positiveNumber(fields, key, undefined, 'rope_scaling.');
      const scaling: RopeScaling = {
        type: 'yarn',
        factor,
        originalMaxPositionEmbeddings: original(maxPositionEmbeddings),
      };
      const extras = {
        betaFast: optional('beta_fast'),
        betaSlow: optional('beta_slow'),
        attentionFactor: optional('attention_factor'),
        mscale: optional('mscale'),
        mscaleAllDim: optional('mscale_all_dim'),
        truncate: fields.truncate == null ? undefined : fields.truncate !== false,
      };
      for (const [key, value] of Object.entries(extras)) {
        if (value !== undefined) (scaling as Record<string, unknown>)[key] = value;
      }
      return scaling;
    }
    default:
      throw new ModelError(
        `config.json: rope_scaling type ${JSON.stringify(type)} is not supported; supported: linear, dynamic, llama3, yarn`,
      );
  }
}

function ropeScalingToJson(scaling: RopeScaling | null, original: unknown): Json | null {
  if (!scaling) return null;
  const base = original && typeof original === 'object' ? { ...(original as Json) } : {};
  base.rope_type = scaling.type;
  base.factor = scaling.factor;
  if ('originalMaxPositionEmbeddings' in scaling) {
    base.original_max_position_embeddings = scaling.originalMaxPositionEmbeddings;
  }
  if (scaling.type === 'llama3') {
    base.low_freq_factor = scaling.lowFreqFactor;
    base.high_freq_factor = scaling.highFreqFactor;
  }
  if (scaling.type === 'yarn') {
    const keys: [keyof typeof scaling, string][] = [
      ['betaFast', 'beta_fast'],
      ['betaSlow', 'beta_slow'],
      ['attentionFactor', 'attention_factor'],
      ['mscale', 'mscale'],
      ['mscaleAllDim', 'mscale_all_dim'],
      ['truncate', 'truncate'],
    ];
    for (const [key, jsonKey] of keys) if (scaling[key] !== undefined) base[jsonKey] = scaling[key];
  }
  return base;
}

function positiveInteger(json: Json, key: string, prefix = ''): number {
  const value = json[key];
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    throw new ModelError(
      `config.json: ${prefix}${key} must be a positive integer, got ${JSON.stringify(value ?? null)}`,
    );
  }
  return value;
}

function positiveNumber(json: Json, key: string, fallback: number | undefined, prefix = ''): number {
  const value = json[key];
  if (value == null && fallback !== undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new ModelError(
      `config.json: ${prefix}${key} must be a positive number, got ${JSON.stringify(value ?? null)}`,
    );
  }
  return value;
}

function booleanField(json: Json, key: string, fallback: boolean): boolean {
  const value = json[key];
  if (value == null) return fallback;
  if (typeof value !== 'boolean') {
    throw new ModelError(`config.json: ${key} must be true or false, got ${JSON.stringify(value)}`);
  }
  return value;
}

function tokenId(value: unknown, key: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new ModelError(`config.json: ${key} must be a non-negative integer, got ${JSON.stringify(value)}`);
  }
  return value;
}
