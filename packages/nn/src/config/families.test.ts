import { describe, expect, it } from 'vitest';
import { modelConfigToJson, parseModelConfig, rotaryDim, usesSlidingWindow } from './model-config.js';

// Shapes of the Hub's config.json files (values as published, trimmed to what is read).
const gemma2 = {
  architectures: ['Gemma2ForCausalLM'],
  model_type: 'gemma2',
  hidden_size: 2304,
  intermediate_size: 9216,
  num_hidden_layers: 26,
  num_attention_heads: 8,
  num_key_value_heads: 4,
  head_dim: 256,
  hidden_act: 'gelu_pytorch_tanh',
  hidden_activation: 'gelu_pytorch_tanh',
  query_pre_attn_scalar: 256,
  sliding_window: 4096,
  final_logit_softcapping: 30.0,
  attn_logit_softcapping: 50.0,
  vocab_size: 256000,
  rope_theta: 10000.0,
  rms_norm_eps: 1e-6,
  max_position_embeddings: 8192,
};

// google/gemma-3-4b-it: the text model's few fields sit in text_config.
const gemma3Multimodal = {
  architectures: ['Gemma3ForConditionalGeneration'],
  model_type: 'gemma3',
  text_config: {
    hidden_size: 2560,
    intermediate_size: 10240,
    model_type: 'gemma3_text',
    num_hidden_layers: 34,
    rope_scaling: { factor: 8.0, rope_type: 'linear' },
    sliding_window: 1024,
  },
  vision_config: { hidden_size: 1152 },
};

const phi4mini = {
  architectures: ['Phi3ForCausalLM'],
  model_type: 'phi3',
  hidden_size: 3072,
  intermediate_size: 8192,
  num_hidden_layers: 32,
  num_attention_heads: 24,
  num_key_value_heads: 8,
  partial_rotary_factor: 0.75,
  max_position_embeddings: 131072,
  original_max_position_embeddings: 4096,
  rope_theta: 10000.0,
  rope_scaling: {
    type: 'longrope',
    short_factor: Array.from({ length: 48 }, (_, i) => 1 + i / 48),
    long_factor: Array.from({ length: 48 }, (_, i) => 1 + i),
  },
  sliding_window: 262144,
  tie_word_embeddings: true,
  vocab_size: 200064,
  hidden_act: 'silu',
};

const smollm3 = {
  architectures: ['SmolLM3ForCausalLM'],
  model_type: 'smollm3',
  hidden_size: 2048,
  intermediate_size: 11008,
  num_hidden_layers: 8,
  num_attention_heads: 16,
  num_key_value_heads: 4,
  no_rope_layer_interval: 4,
  rope_theta: 5000000.0,
  sliding_window: null,
  use_sliding_window: false,
  vocab_size: 128256,
};

describe('parseModelConfig: the other families', () => {
  it('reads Gemma 2: (1 + w) norms, embedding scale, soft-caps, alternating local/global layers', () => {
    const config = parseModelConfig(gemma2);
    expect(config).toMatchObject({
      architecture: 'Gemma2ForCausalLM',
      hiddenAct: 'gelu_pytorch_tanh',
      normAddsOne: true,
      postNorms: true,
      embeddingMultiplier: Math.sqrt(2304),
      attentionScale: 1 / 16,
      attnLogitSoftcapping: 50,
      finalLogitSoftcapping: 30,
      tieWordEmbeddings: true,
      slidingWindow: 4096,
      qkNorm: false,
    });
    expect(config.layerTypes?.slice(0, 3)).toEqual([
      'sliding_attention',
      'full_attention',
      'sliding_attention',
    ]);
    expect([0, 1, 2].map((i) => usesSlidingWindow(config, i))).toEqual([true, false, true]);
    expect(() => parseModelConfig({ ...gemma2, hidden_activation: 'silu' })).toThrow(
      /hidden_activation "silu" is not supported for Gemma2ForCausalLM/,
    );
  });

  it('reads the text model of a Gemma3ForConditionalGeneration with Gemma3TextConfig defaults', () => {
    const config = parseModelConfig(gemma3Multimodal);
    expect(config).toMatchObject({
      architecture: 'Gemma3ForCausalLM',
      modelType: 'gemma3_text',
      textPartOf: 'Gemma3ForConditionalGeneration',
      numAttentionHeads: 8,
      numKeyValueHeads: 4,
      headDim: 256,
      vocabSize: 262208,
      qkNorm: true,
      attnLogitSoftcapping: null,
      finalLogitSoftcapping: null,
      ropeTheta: 1000000,
      ropeScaling: { type: 'linear', factor: 8 },
      localRope: { theta: 10000, scaling: null },
      slidingWindow: 1024,
    });
    // sliding_window_pattern 6: five local layers, then a global one.
    expect(config.layerTypes?.slice(0, 6)).toEqual([...Array(5).fill('sliding_attention'), 'full_attention']);
    // Saved as the text model alone.
    const json = modelConfigToJson(config);
    expect(json.architectures).toEqual(['Gemma3ForCausalLM']);
    expect(parseModelConfig(json)).toMatchObject({ ...config, textPartOf: null, raw: expect.anything() });
    expect(() => parseModelConfig({ ...gemma3Multimodal, text_config: undefined })).toThrow(/text_config/);
  });

  it('reads transformers 5 rope_parameters per layer type', () => {
    const config = parseModelConfig({
      ...gemma3Multimodal.text_config,
      architectures: ['Gemma3ForCausalLM'],
      layer_types: ['sliding_attention', 'full_attention'],
      num_hidden_layers: 2,
      rope_parameters: {
        full_attention: { rope_type: 'linear', factor: 4, rope_theta: 1e6 },
        sliding_attention: { rope_type: 'default', rope_theta: 1e4 },
      },
    });
    expect(config.ropeScaling).toEqual({ type: 'linear', factor: 4 });
    expect(config.localRope).toEqual({ theta: 1e4, scaling: null });
  });

  it('reads Phi-4-mini: fused projections, LongRoPE, partial rotary, tied head', () => {
    const config = parseModelConfig(phi4mini);
    expect(config).toMatchObject({
      fusedProjections: true,
      partialRotaryFactor: 0.75,
      tieWordEmbeddings: true,
      qkvBias: false,
      slidingWindow: 262144,
    });
    expect(rotaryDim(config)).toBe(96);
    expect(config.ropeScaling).toMatchObject({
      type: 'longrope',
      factor: 32,
      originalMaxPositionEmbeddings: 4096,
    });
    expect(parseModelConfig(modelConfigToJson(config)).ropeScaling).toEqual(config.ropeScaling);
    expect(() =>
      parseModelConfig({ ...phi4mini, rope_scaling: { ...phi4mini.rope_scaling, long_factor: 'x' } }),
    ).toThrow(/rope_scaling\.long_factor must be a list of positive numbers/);
    expect(() => parseModelConfig({ ...phi4mini, partial_rotary_factor: 0.31 })).toThrow(/rotary dims/);
  });

  it('reads SmolLM3: every fourth layer without rotary', () => {
    const config = parseModelConfig(smollm3);
    expect(config.ropeLayers).toEqual([true, true, true, false, true, true, true, false]);
    expect(config.ropeTheta).toBe(5000000);
    expect(config.tieWordEmbeddings).toBe(true);
    expect(parseModelConfig({ ...smollm3, no_rope_layers: [1, 0, 1, 1, 1, 1, 1, 1] }).ropeLayers?.[1]).toBe(
      false,
    );
    expect(() => parseModelConfig({ ...smollm3, no_rope_layers: [1, 0] })).toThrow(
      /no_rope_layers must list/,
    );
    expect(parseModelConfig(modelConfigToJson(config)).ropeLayers).toEqual(config.ropeLayers);
  });

  it('round-trips every family through config.json', () => {
    for (const source of [gemma2, gemma3Multimodal, phi4mini, smollm3]) {
      const config = parseModelConfig(source);
      const again = parseModelConfig(modelConfigToJson(config));
      expect({ ...again, raw: null, textPartOf: null }).toEqual({ ...config, raw: null, textPartOf: null });
    }
  });

  it('lists every supported architecture for another one', () => {
    expect(() => parseModelConfig({ ...gemma2, architectures: ['GemmaForCausalLM'] })).toThrow(
      /GemmaForCausalLM is not supported; supported architectures: .*Gemma2ForCausalLM, Gemma3ForCausalLM, Phi3ForCausalLM, SmolLM3ForCausalLM, Gemma3ForConditionalGeneration \(text\)/,
    );
  });
});
