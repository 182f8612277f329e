import { type ModelConfig, parseModelConfig } from '@webtune/nn';
import { sizeClass } from '@webtune/tensors';
import { describe, expect, it } from 'vitest';
import { layerProjections } from './architecture-shapes.js';
import { planMemory } from './memory-plan.js';

/** The published shapes of each family's small model (config.json fields), with its parameter count. */
const MODELS: Record<string, { config: Record<string, unknown>; parameters: number }> = {
  'gemma-2-2b': {
    config: {
      architectures: ['Gemma2ForCausalLM'],
      hidden_size: 2304,
      intermediate_size: 9216,
      num_hidden_layers: 26,
      num_attention_heads: 8,
      num_key_value_heads: 4,
      head_dim: 256,
      vocab_size: 256000,
      query_pre_attn_scalar: 256,
    },
    parameters: 2_614_341_888,
  },
  'gemma-3-1b': {
    config: {
      architectures: ['Gemma3ForCausalLM'],
      hidden_size: 1152,
      intermediate_size: 6912,
      num_hidden_layers: 26,
      num_attention_heads: 4,
      num_key_value_heads: 1,
      head_dim: 256,
      vocab_size: 262144,
    },
    parameters: 999_885_952,
  },
  'Phi-3-mini-4k': {
    config: {
      architectures: ['Phi3ForCausalLM'],
      hidden_size: 3072,
      intermediate_size: 8192,
      num_hidden_layers: 32,
      num_attention_heads: 32,
      num_key_value_heads: 32,
      vocab_size: 32064,
      tie_word_embeddings: false,
    },
    parameters: 3_821_079_552,
  },
  'Phi-4-mini': {
    config: {
      architectures: ['Phi3ForCausalLM'],
      hidden_size: 3072,
      intermediate_size: 8192,
      num_hidden_layers: 32,
      num_attention_heads: 24,
      num_key_value_heads: 8,
      vocab_size: 200064,
      tie_word_embeddings: true,
      partial_rotary_factor: 0.75,
    },
    parameters: 3_836_021_760,
  },
  'SmolLM3-3B': {
    config: {
      architectures: ['SmolLM3ForCausalLM'],
      hidden_size: 2048,
      intermediate_size: 11008,
      num_hidden_layers: 36,
      num_attention_heads: 16,
      num_key_value_heads: 4,
      vocab_size: 128256,
    },
    parameters: 3_075_098_624,
  },
};

const LIMITS = { maxBufferSize: 2 ** 32 - 1, maxStorageBufferBindingSize: 2 ** 30 };

/** Parameters the plan's shape facts describe: embeddings, head, projections and norms. */
function countedParameters(m: ModelConfig): number {
  const projections = layerProjections(m).reduce((sum, [out, inFeatures]) => sum + out * inFeatures, 0);
  const norms = (m.postNorms ? 4 : 2) * m.hiddenSize + (m.qkNorm ? 2 * m.headDim : 0);
  const embedding = m.vocabSize * m.hiddenSize;
  return embedding * (m.tieWordEmbeddings ? 1 : 2) + m.numHiddenLayers * (projections + norms) + m.hiddenSize;
}

describe('memory plan shape facts of the families', () => {
  for (const [name, { config, parameters }] of Object.entries(MODELS)) {
    it(`${name}: the layers the plan counts hold the published ${parameters.toLocaleString('en')} parameters`, () => {
      const model = parseModelConfig(config);
      expect(countedParameters(model)).toBe(parameters);
      const plan = planMemory({
        model,
        baseFormat: 'f32',
        finetuningType: 'none',
        batchSize: 1,
        sequenceLength: 256,
        gradientCheckpointing: false,
        limits: LIMITS,
      });
      // f32 weights, each tensor in a pooled buffer (at most 25% slack).
      expect(plan.weights).toBeGreaterThanOrEqual(parameters * 4);
      expect(plan.weights).toBeLessThan(parameters * 4 * 1.25);
    });
  }

  it("Phi-3's fused qkv_proj and gate_up_proj: LoRA has 4 targets a layer, each as wide as the fused matrix", () => {
    const model = parseModelConfig(MODELS['Phi-4-mini'].config);
    expect(layerProjections(model)).toEqual([
      [3072 + 2 * 1024, 3072],
      [3072, 3072],
      [2 * 8192, 3072],
      [3072, 8192],
    ]);
    const plan = planMemory({
      model,
      baseFormat: 'q4_0',
      finetuningType: 'lora',
      lora: { r: 8, targetsPerLayer: 7 },
      batchSize: 1,
      sequenceLength: 256,
      gradientCheckpointing: true,
      limits: LIMITS,
    });
    // r (out + in) per target: what PEFT counts for all-linear r 8 on Phi-4-mini.
    const perLayer = 8 * (5120 + 3072) + 8 * (3072 + 3072) + 8 * (16384 + 3072) + 8 * (3072 + 8192);
    expect(plan.trainable).toBe(32 * perLayer * 4);
  });

  it("Gemma 2's soft-capped attention keeps no [seq, seq] scores (the cap is inside the fused kernel)", () => {
    const run = (config: Record<string, unknown>) =>
      planMemory({
        model: parseModelConfig(config),
        baseFormat: 'q4_0',
        finetuningType: 'lora',
        lora: { r: 8, targetsPerLayer: 7 },
        batchSize: 2,
        sequenceLength: 512,
        gradientCheckpointing: false,
        limits: LIMITS,
      });
    const gemma2 = MODELS['gemma-2-2b'].config;
    expect(run(gemma2).activations).toBe(run({ ...gemma2, attn_logit_softcapping: null }).activations);
    // Gemma's post norms keep their two inputs (o's and down's outputs) a token more than a Llama
    // layer, each a [2, 512, 2304] f32 tensor in a 10 MiB buffer of the pool.
    const asLlama = run({ ...gemma2, architectures: ['LlamaForCausalLM'], hidden_activation: undefined });
    expect(run(gemma2).activations - asLlama.activations).toBe(26 * 2 * sizeClass(2 * 512 * 2304 * 4));
    expect(sizeClass(2 * 512 * 2304 * 4)).toBe(10 * 2 ** 20);
  });

  it('tied heads (Gemma, Phi-4-mini, SmolLM3) hold one vocabulary matrix, untied ones (Phi-3-mini) two', () => {
    const weights = (config: Record<string, unknown>) =>
      planMemory({
        model: parseModelConfig(config),
        baseFormat: 'f32',
        finetuningType: 'none',
        batchSize: 1,
        sequenceLength: 16,
        gradientCheckpointing: false,
        limits: LIMITS,
      }).weights;
    const phi3 = MODELS['Phi-3-mini-4k'].config;
    const vocabularyBytes = 32064 * 3072 * 4;
    const difference = weights(phi3) - weights({ ...phi3, tie_word_embeddings: true });
    expect(difference).toBeGreaterThanOrEqual(vocabularyBytes);
    expect(difference).toBeLessThan(vocabularyBytes * 1.25);
  });
});
