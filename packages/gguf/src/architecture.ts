import { GgufError } from './errors.js';
import { familyConfigOf, familyMetadata, fixedFactorsOf, ropeFieldsOf } from './families.js';
import { type GgufValue, gguf } from './metadata.js';
import type { GgufFile } from './read.js';

/** `general.architecture` values webtune loads, with the Hugging Face class each becomes. */
export const GGUF_ARCHITECTURES: Readonly<Record<string, { architecture: string; modelType: string }>> = {
  llama: { architecture: 'LlamaForCausalLM', modelType: 'llama' },
  qwen2: { architecture: 'Qwen2ForCausalLM', modelType: 'qwen2' },
  qwen3: { architecture: 'Qwen3ForCausalLM', modelType: 'qwen3' },
  gemma2: { architecture: 'Gemma2ForCausalLM', modelType: 'gemma2' },
  gemma3: { architecture: 'Gemma3ForCausalLM', modelType: 'gemma3_text' },
  phi3: { architecture: 'Phi3ForCausalLM', modelType: 'phi3' },
  smollm3: { architecture: 'SmolLM3ForCausalLM', modelType: 'smollm3' },
};

/** The GGUF architecture a Hugging Face config.json maps to (Mistral is written as llama, as llama.cpp does). */
export function ggufArchitectureOf(config: Record<string, unknown>): string {
  const name = Array.isArray(config.architectures) ? String(config.architectures[0]) : '';
  const byClass: Record<string, string> = {
    LlamaForCausalLM: 'llama',
    MistralForCausalLM: 'llama',
    Qwen2ForCausalLM: 'qwen2',
    Qwen3ForCausalLM: 'qwen3',
    Gemma2ForCausalLM: 'gemma2',
    Gemma3ForCausalLM: 'gemma3',
    Phi3ForCausalLM: 'phi3',
    SmolLM3ForCausalLM: 'smollm3',
  };
  const byModelType: Record<string, string> = {
    llama: 'llama',
    mistral: 'llama',
    qwen2: 'qwen2',
    qwen3: 'qwen3',
    gemma2: 'gemma2',
    gemma3_text: 'gemma3',
    phi3: 'phi3',
    smollm3: 'smollm3',
  };
  // A config.json without `architectures` names its family by model_type.
  const architecture = name === '' ? byModelType[String(config.model_type)] : byClass[name];
  if (architecture === undefined) {
    throw new GgufError(
      `config.json architecture ${JSON.stringify(name)} has no GGUF export (${Object.keys(byClass).join(', ')} do)`,
    );
  }
  return architecture;
}

/**
 * The Hugging Face config.json of a GGUF model, from `general.architecture` and the
 * `<arch>.*` keys; the vocabulary size and tied head come from the tensors.
 */
export function huggingFaceConfigOf(file: GgufFile): Record<string, unknown> {
  const where = { fileName: file.fileName };
  const architecture = file.string('general.architecture');
  if (architecture === undefined) throw new GgufError('has no general.architecture: not a model file', where);
  const known = GGUF_ARCHITECTURES[architecture];
  if (known === undefined) {
    throw new GgufError(
      `architecture ${JSON.stringify(architecture)} is not supported (${Object.keys(GGUF_ARCHITECTURES).join(', ')} are)`,
      { ...where, key: 'general.architecture' },
    );
  }
  const type = file.string('general.type');
  if (type !== undefined && type !== 'model') {
    throw new GgufError(
      `general.type is ${JSON.stringify(type)}: this is not a model (an adapter is loaded on top of its base)`,
      where,
    );
  }
  const required = (suffix: string): number => {
    const key = `${architecture}.${suffix}`;
    const value = file.number(key);
    if (value === undefined) throw new GgufError('is missing', { ...where, key });
    if (!(value > 0)) throw new GgufError(`must be positive, got ${value}`, { ...where, key });
    return value;
  };
  const optional = (suffix: string) => file.number(`${architecture}.${suffix}`);
  const hiddenSize = required('embedding_length');
  const heads = required('attention.head_count');
  const embedding = file.info('token_embd.weight');
  if (embedding === undefined) throw new GgufError('has no token_embd.weight tensor', where);
  const config: Record<string, unknown> = {
    architectures: [known.architecture],
    model_type: known.modelType,
    hidden_size: hiddenSize,
    intermediate_size: required('feed_forward_length'),
    num_hidden_layers: required('block_count'),
    num_attention_heads: heads,
    num_key_value_heads: optional('attention.head_count_kv') ?? heads,
    head_dim: optional('attention.key_length') ?? hiddenSize / heads,
    vocab_size: embedding.shape[0],
    max_position_embeddings: optional('context_length') ?? 2048,
    rms_norm_eps: optional('attention.layer_norm_rms_epsilon') ?? 1e-6,
    rope_theta: optional('rope.freq_base') ?? 10000,
    rope_scaling: null,
    hidden_act: 'silu',
    tie_word_embeddings: !file.has('output.weight'),
    attention_bias: file.has('blk.0.attn_q.bias') || architecture === 'qwen2',
    torch_dtype: 'float32',
  };
  const scalingType = file.string(`${architecture}.rope.scaling.type`);
  const factor = optional('rope.scaling.factor');
  if (scalingType !== undefined && scalingType !== 'none' && factor !== undefined) {
    if (scalingType !== 'linear' && scalingType !== 'yarn') {
      throw new GgufError(
        `RoPE scaling ${JSON.stringify(scalingType)} is not supported (linear and yarn are)`,
        {
          ...where,
          key: `${architecture}.rope.scaling.type`,
        },
      );
    }
    config.rope_scaling = {
      rope_type: scalingType,
      factor,
      ...(scalingType === 'yarn'
        ? { original_max_position_embeddings: optional('rope.scaling.original_context_length') }
        : {}),
    };
  }
  const window = optional('attention.sliding_window');
  if (window !== undefined) {
    config.sliding_window = window;
    config.use_sliding_window = true;
  }
  familyConfigOf(file, architecture, config);
  const bos = file.number('tokenizer.ggml.bos_token_id');
  const eos = file.number('tokenizer.ggml.eos_token_id');
  if (bos !== undefined) config.bos_token_id = bos;
  if (eos !== undefined) config.eos_token_id = eos;
  return config;
}

/**
 * GGUF metadata describing a Hugging Face config.json (the `<arch>.*` keys llama.cpp reads).
 */
export function ggufArchitectureMetadata(config: Record<string, unknown>): [string, GgufValue][] {
  const architecture = ggufArchitectureOf(config);
  const number = (key: string, fallback?: number): number => {
    const value = config[key] ?? fallback;
    if (typeof value !== 'number') throw new GgufError(`config.json ${key} must be a number to export GGUF`);
    return value;
  };
  const hidden = number('hidden_size');
  const heads = number('num_attention_heads');
  const headDim = number('head_dim', hidden / heads);
  const a = architecture;
  const rope = ropeFieldsOf(config);
  const entries: [string, GgufValue][] = [
    ['general.architecture', gguf.string(a)],
    [`${a}.context_length`, gguf.uint32(number('max_position_embeddings', 2048))],
    [`${a}.embedding_length`, gguf.uint32(hidden)],
    [`${a}.block_count`, gguf.uint32(number('num_hidden_layers'))],
    [`${a}.feed_forward_length`, gguf.uint32(number('intermediate_size'))],
    [`${a}.attention.head_count`, gguf.uint32(heads)],
    [`${a}.attention.head_count_kv`, gguf.uint32(number('num_key_value_heads', heads))],
    [`${a}.attention.key_length`, gguf.uint32(headDim)],
    [`${a}.attention.value_length`, gguf.uint32(headDim)],
    [`${a}.rope.dimension_count`, gguf.uint32(Math.floor(headDim * rope.partialRotaryFactor))],
    [`${a}.rope.freq_base`, gguf.float32(rope.theta)],
    [`${a}.attention.layer_norm_rms_epsilon`, gguf.float32(number('rms_norm_eps', 1e-6))],
    [`${a}.vocab_size`, gguf.uint32(number('vocab_size'))],
  ];
  const scaling = rope.scaling as {
    rope_type?: string;
    factor?: number;
    original_max_position_embeddings?: number;
  } | null;
  // Llama 3's scaling and fixed per-frequency factors are the rope_freqs tensor; Phi-3's LongRoPE
  // tables are the rope_factors_long/short tensors (see ggufRopeTensors).
  const asTensors =
    scaling?.rope_type === 'llama3' ||
    (a === 'phi3' && scaling?.rope_type === 'longrope') ||
    (a === 'llama' && fixedFactorsOf(rope.scaling) !== null);
  if (scaling && !asTensors) {
    const type = scaling.rope_type;
    if (type !== 'linear' && type !== 'yarn') {
      throw new GgufError(
        `RoPE scaling ${JSON.stringify(type)} has no GGUF export for ${a} (linear, yarn and llama3 do; longrope for phi3)`,
      );
    }
    entries.push(
      [`${a}.rope.scaling.type`, gguf.string(type)],
      [`${a}.rope.scaling.factor`, gguf.float32(scaling.factor ?? 1)],
    );
    if (type === 'yarn' && scaling.original_max_position_embeddings) {
      entries.push([
        `${a}.rope.scaling.original_context_length`,
        gguf.uint32(scaling.original_max_position_embeddings),
      ]);
    }
  }
  if (typeof config.sliding_window === 'number' && (config.use_sliding_window ?? true) && a === 'llama') {
    entries.push([`${a}.attention.sliding_window`, gguf.uint32(config.sliding_window)]);
  }
  entries.push(...familyMetadata(a, config));
  return entries;
}
