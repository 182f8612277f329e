import type { Json } from './config-fields.js';

/** Architectures this package builds, as named in config.json's `architectures`. */
export const SUPPORTED_ARCHITECTURES = [
  'LlamaForCausalLM',
  'MistralForCausalLM',
  'Qwen2ForCausalLM',
  'Qwen3ForCausalLM',
  'Gemma2ForCausalLM',
  'Gemma3ForCausalLM',
  'Phi3ForCausalLM',
  'SmolLM3ForCausalLM',
] as const;

export type Architecture = (typeof SUPPORTED_ARCHITECTURES)[number];

/**
 * Checkpoints whose text model is one of the above: the config's `text_config` and the weights
 * under `language_model.` are read; the vision tower is left out.
 */
export const TEXT_PART_OF: Record<string, Architecture> = {
  Gemma3ForConditionalGeneration: 'Gemma3ForCausalLM',
};

/** What sets one family apart, and the defaults of its Hugging Face config class. */
export interface Family {
  modelType: string;
  /** Activation of the gated MLP. */
  hiddenAct: 'silu' | 'gelu_pytorch_tanh';
  /**
   * Gemma's layout: RMSNorm scales by (1 + weight), embeddings are multiplied by sqrt(hidden),
   * attention is scaled by query_pre_attn_scalar^-0.5, and Gemma 2/3 add a norm after attention
   * and after the MLP (pre_feedforward_layernorm / post_feedforward_layernorm).
   */
  gemma: boolean;
  /** Fused `qkv_proj` and `gate_up_proj` (Phi-3). */
  fusedProjections: boolean;
  /** Config-class defaults for fields a config.json may leave out. */
  defaults: Json;
  /** Base of the local (sliding-window) layers' rotary tables when it differs (Gemma 3). */
  localRopeTheta?: number;
  ropeTheta: number;
}

const LLAMA_LIKE = { hiddenAct: 'silu', gemma: false, fusedProjections: false, ropeTheta: 10000 } as const;

export const FAMILIES: Record<Architecture, Family> = {
  LlamaForCausalLM: { ...LLAMA_LIKE, modelType: 'llama', defaults: {} },
  MistralForCausalLM: { ...LLAMA_LIKE, modelType: 'mistral', defaults: {} },
  Qwen2ForCausalLM: { ...LLAMA_LIKE, modelType: 'qwen2', defaults: {} },
  Qwen3ForCausalLM: { ...LLAMA_LIKE, modelType: 'qwen3', defaults: {} },
  SmolLM3ForCausalLM: {
    ...LLAMA_LIKE,
    modelType: 'smollm3',
    ropeTheta: 2000000,
    defaults: { tie_word_embeddings: true, no_rope_layer_interval: 4 },
  },
  Phi3ForCausalLM: {
    ...LLAMA_LIKE,
    fusedProjections: true,
    modelType: 'phi3',
    defaults: { original_max_position_embeddings: 4096 },
  },
  Gemma2ForCausalLM: {
    modelType: 'gemma2',
    hiddenAct: 'gelu_pytorch_tanh',
    gemma: true,
    fusedProjections: false,
    ropeTheta: 10000,
    defaults: {
      head_dim: 256,
      query_pre_attn_scalar: 256,
      sliding_window: 4096,
      final_logit_softcapping: 30.0,
      attn_logit_softcapping: 50.0,
      tie_word_embeddings: true,
      max_position_embeddings: 8192,
    },
  },
  Gemma3ForCausalLM: {
    modelType: 'gemma3_text',
    hiddenAct: 'gelu_pytorch_tanh',
    gemma: true,
    fusedProjections: false,
    ropeTheta: 1000000,
    localRopeTheta: 10000,
    defaults: {
      // Gemma3TextConfig's defaults: a Gemma3ForConditionalGeneration's text_config sets few fields.
      vocab_size: 262208,
      num_attention_heads: 8,
      num_key_value_heads: 4,
      head_dim: 256,
      max_position_embeddings: 131072,
      rms_norm_eps: 1e-6,
      query_pre_attn_scalar: 256,
      sliding_window: 4096,
      sliding_window_pattern: 6,
      final_logit_softcapping: null,
      attn_logit_softcapping: null,
      tie_word_embeddings: true,
      bos_token_id: 2,
      eos_token_id: 1,
      pad_token_id: 0,
    },
  },
};

/** model_type -> architecture, for configs without an `architectures` list. */
export const ARCHITECTURE_OF_MODEL_TYPE: Record<string, Architecture> = {
  llama: 'LlamaForCausalLM',
  mistral: 'MistralForCausalLM',
  qwen2: 'Qwen2ForCausalLM',
  qwen3: 'Qwen3ForCausalLM',
  gemma2: 'Gemma2ForCausalLM',
  gemma3_text: 'Gemma3ForCausalLM',
  phi3: 'Phi3ForCausalLM',
  smollm3: 'SmolLM3ForCausalLM',
};
