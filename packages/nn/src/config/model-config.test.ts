import { readFileSync } from 'node:fs';
import { fixturePath, requireFixtures } from '@webtune/test-utils';
import { describe, expect, it } from 'vitest';
import { ModelError } from '../errors.js';
import {
  createModelConfig,
  estimateParameterCount,
  modelConfigToJson,
  parseModelConfig,
  SUPPORTED_ARCHITECTURES,
} from './model-config.js';

const llama3 = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: 2048,
  intermediate_size: 8192,
  num_hidden_layers: 16,
  num_attention_heads: 32,
  num_key_value_heads: 8,
  head_dim: 64,
  vocab_size: 128256,
  max_position_embeddings: 131072,
  rms_norm_eps: 1e-5,
  rope_theta: 500000.0,
  rope_scaling: {
    factor: 32.0,
    high_freq_factor: 4.0,
    low_freq_factor: 1.0,
    original_max_position_embeddings: 8192,
    rope_type: 'llama3',
  },
  tie_word_embeddings: true,
  attention_bias: false,
  mlp_bias: false,
  hidden_act: 'silu',
  torch_dtype: 'bfloat16',
  bos_token_id: 128000,
  eos_token_id: [128001, 128008, 128009],
};

const qwen25 = {
  architectures: ['Qwen2ForCausalLM'],
  model_type: 'qwen2',
  hidden_size: 896,
  intermediate_size: 4864,
  num_hidden_layers: 24,
  num_attention_heads: 14,
  num_key_value_heads: 2,
  vocab_size: 151936,
  max_position_embeddings: 32768,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000.0,
  sliding_window: 32768,
  use_sliding_window: false,
  tie_word_embeddings: true,
  hidden_act: 'silu',
  torch_dtype: 'bfloat16',
  bos_token_id: 151643,
  eos_token_id: 151645,
};

const qwen3 = {
  architectures: ['Qwen3ForCausalLM'],
  model_type: 'qwen3',
  hidden_size: 1024,
  intermediate_size: 3072,
  num_hidden_layers: 28,
  num_attention_heads: 16,
  num_key_value_heads: 8,
  head_dim: 128,
  vocab_size: 151936,
  max_position_embeddings: 40960,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000,
  rope_scaling: null,
  attention_bias: false,
  tie_word_embeddings: true,
  hidden_act: 'silu',
  eos_token_id: 151645,
};

const mistral = {
  architectures: ['MistralForCausalLM'],
  model_type: 'mistral',
  hidden_size: 4096,
  intermediate_size: 14336,
  num_hidden_layers: 32,
  num_attention_heads: 32,
  num_key_value_heads: 8,
  vocab_size: 32000,
  max_position_embeddings: 32768,
  rms_norm_eps: 1e-5,
  rope_theta: 10000.0,
  sliding_window: 4096,
  tie_word_embeddings: false,
  hidden_act: 'silu',
  bos_token_id: 1,
  eos_token_id: 2,
};

describe('parseModelConfig', () => {
  it('reads Llama 3.2 with llama3 rope scaling, GQA, tied head and an eos list', () => {
    const config = parseModelConfig(JSON.stringify(llama3));
    expect(config.architecture).toBe('LlamaForCausalLM');
    expect(config.numKeyValueHeads).toBe(8);
    expect(config.headDim).toBe(64);
    expect(config.tieWordEmbeddings).toBe(true);
    expect(config.ropeScaling).toEqual({
      type: 'llama3',
      factor: 32,
      lowFreqFactor: 1,
      highFreqFactor: 4,
      originalMaxPositionEmbeddings: 8192,
    });
    expect(config.eosTokenIds).toEqual([128001, 128008, 128009]);
    expect(config.qkvBias).toBe(false);
    expect(config.qkNorm).toBe(false);
  });

  it('gives Qwen2 q/k/v bias (without an attention_bias field) and ignores an unused sliding window', () => {
    const config = parseModelConfig(qwen25);
    expect(config.qkvBias).toBe(true);
    expect(config.outputBias).toBe(false);
    expect(config.headDim).toBe(64);
    expect(config.slidingWindow).toBeNull();
    expect(config.eosTokenIds).toEqual([151645]);
  });

  it('gives Qwen3 q/k norms and its explicit head_dim (not hidden / heads)', () => {
    const config = parseModelConfig(qwen3);
    expect(config.qkNorm).toBe(true);
    expect(config.headDim).toBe(128);
    expect(config.hiddenSize / config.numAttentionHeads).toBe(64);
    expect(config.qkvBias).toBe(false);
    expect(config.ropeScaling).toBeNull();
  });

  it('keeps Mistral’s sliding window and an untied head', () => {
    const config = parseModelConfig(mistral);
    expect(config.slidingWindow).toBe(4096);
    expect(config.tieWordEmbeddings).toBe(false);
    expect(config.headDim).toBe(128);
  });

  it('reads every rope_scaling type, old `type` key included', () => {
    const withScaling = (rope_scaling: unknown) => parseModelConfig({ ...mistral, rope_scaling }).ropeScaling;
    expect(withScaling({ type: 'linear', factor: 2 })).toEqual({ type: 'linear', factor: 2 });
    expect(withScaling({ rope_type: 'dynamic', factor: 2 })).toEqual({
      type: 'dynamic',
      factor: 2,
      originalMaxPositionEmbeddings: 32768,
    });
    expect(withScaling({ rope_type: 'yarn', factor: 4, original_max_position_embeddings: 32768 })).toEqual({
      type: 'yarn',
      factor: 4,
      originalMaxPositionEmbeddings: 32768,
    });
    expect(withScaling({ rope_type: 'default' })).toBeNull();
    expect(() => withScaling({ rope_type: 'longrope', factor: 2 })).toThrow(/rope_scaling\.short_factor/);
    expect(() => withScaling({ rope_type: 'ntk-by-parts', factor: 2 })).toThrow(
      /ntk-by-parts.*linear, dynamic, llama3, yarn, longrope/,
    );
  });

  it('names the supported architectures when it meets another one', () => {
    expect(() => parseModelConfig({ ...mistral, architectures: ['GPTNeoXForCausalLM'] })).toThrow(ModelError);
    try {
      parseModelConfig({ ...mistral, architectures: ['GPTNeoXForCausalLM'] });
    } catch (error) {
      const message = (error as Error).message;
      expect(message).toContain('GPTNeoXForCausalLM');
      for (const name of SUPPORTED_ARCHITECTURES) expect(message).toContain(name);
    }
  });

  it('falls back to model_type when architectures is absent', () => {
    const { architectures: _, ...rest } = qwen3;
    expect(parseModelConfig(rest).architecture).toBe('Qwen3ForCausalLM');
  });

  it('names the field that is wrong', () => {
    expect(() => parseModelConfig({ ...mistral, hidden_size: '4096' })).toThrow(
      /hidden_size must be a positive integer/,
    );
    expect(() => parseModelConfig({ ...mistral, num_key_value_heads: 5 })).toThrow(
      /multiple of num_key_value_heads/,
    );
    expect(() => parseModelConfig({ ...mistral, hidden_act: 'gelu' })).toThrow(/hidden_act "gelu"/);
    expect(() => parseModelConfig({ ...mistral, tie_word_embeddings: 'yes' })).toThrow(/tie_word_embeddings/);
    expect(() => parseModelConfig('[1, 2]')).toThrow(/JSON object/);
  });

  it('names the file when the JSON is broken (issue 19: "Unexpected end of JSON input" alone)', () => {
    expect(() => parseModelConfig('{"hidden_size": 4', '/models/x/config.json')).toThrow(
      /^\/models\/x\/config\.json is not valid JSON: /,
    );
    expect(() => parseModelConfig({ ...mistral, hidden_size: 0 }, '/models/x/config.json')).toThrow(
      /^\/models\/x\/config\.json: hidden_size must be a positive integer/,
    );
  });

  it('refuses absurd sizes before anything is allocated (issue 19: num_hidden_layers 10^9)', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ num_hidden_layers: 1_000_000_000 }, /num_hidden_layers 1000000000 is over the limit of 1024/],
      [{ hidden_size: 10_000_000 }, /hidden_size 10000000 is over the limit/],
      [{ vocab_size: 2 ** 30 }, /vocab_size 1073741824 is over the limit/],
      [
        { num_attention_heads: 4096, num_key_value_heads: 4096, hidden_size: 65536 },
        /num_attention_heads 4096/,
      ],
      [{ max_position_embeddings: 2 ** 40 }, /max_position_embeddings .* is over the limit/],
      [{ intermediate_size: 10 ** 9 }, /intermediate_size/],
      // Each within its limit, together a model of 10^13 parameters.
      [
        {
          num_hidden_layers: 1024,
          hidden_size: 65536,
          intermediate_size: 262144,
          num_attention_heads: 64,
          num_key_value_heads: 64,
        },
        /describes about 7\.\d+e\+13 parameters, over the limit of 1e\+12/,
      ],
    ];
    for (const [fields, message] of cases) {
      const started = performance.now();
      expect(() => parseModelConfig({ ...mistral, ...fields })).toThrow(message);
      expect(performance.now() - started).toBeLessThan(1000);
    }
    expect(estimateParameterCount(parseModelConfig(mistral))).toBeGreaterThan(7e9);
    expect(estimateParameterCount(parseModelConfig(mistral))).toBeLessThan(7.5e9);
  });

  it('writes back what it read, with unknown fields kept', () => {
    const original = { ...llama3, custom_field: 'kept' };
    const json = modelConfigToJson(parseModelConfig(original));
    expect(json.custom_field).toBe('kept');
    expect(parseModelConfig(json)).toEqual(parseModelConfig(original));
  });

  it('fills a small config from the essential fields', () => {
    const config = createModelConfig({
      hiddenSize: 64,
      intermediateSize: 172,
      numHiddenLayers: 5,
      numAttentionHeads: 8,
      numKeyValueHeads: 4,
      vocabSize: 512,
    });
    expect(config.headDim).toBe(8);
    expect(config.architecture).toBe('LlamaForCausalLM');
    expect(() => createModelConfig({ ...config, numKeyValueHeads: 3 })).toThrow(ModelError);
  });
});

describe.skipIf(!requireFixtures('models/stories260K-hf/config.json'))('stories260K config', () => {
  it('parses the fixture config', () => {
    const config = parseModelConfig(readFileSync(fixturePath('models/stories260K-hf/config.json'), 'utf8'));
    expect(config).toMatchObject({
      hiddenSize: 64,
      numKeyValueHeads: 4,
      vocabSize: 512,
      tieWordEmbeddings: true,
    });
  });
});
