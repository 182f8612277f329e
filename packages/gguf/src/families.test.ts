import { describe, expect, it } from 'vitest';
import { gemmaQueryFactor, llama3FrequencyFactors, ropeScalingOfFactors } from './families.js';
import { ggufLoraFile } from './lora.js';
import { ggufModelFile, openGgufModel } from './model.js';
import { readGguf } from './read.js';
import { writeGgufBytes } from './write.js';

/** A config.json and seeded tensors of a tiny model, written to GGUF and opened again. */
async function throughGguf(config: Record<string, unknown>, shapes: Record<string, number[]>) {
  let seed = 7;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648 - 0.5;
  };
  const tensors = Object.entries(shapes).map(([name, shape]) => {
    const values = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, random);
    return { name, shape, values: () => values };
  });
  const file = ggufModelFile({ config, tokenizer: null, fileType: 'F32', tensors });
  const gguf = await readGguf(await writeGgufBytes(file.metadata, file.tensors), { fileName: 'tiny.gguf' });
  const model = await openGgufModel(gguf);
  const back = new Map<string, Float32Array>();
  for await (const tensor of model.tensors()) {
    back.set(
      tensor.name,
      new Float32Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength / 4),
    );
  }
  return { gguf, model, tensors: new Map(tensors.map((t) => [t.name, t.values()])), back };
}

const llamaShapes = (hidden: number, layers: number) => {
  const shapes: Record<string, number[]> = {
    'model.embed_tokens.weight': [8, hidden],
    'model.norm.weight': [hidden],
    'lm_head.weight': [8, hidden],
  };
  for (let layer = 0; layer < layers; layer++) {
    for (const name of ['q_proj', 'k_proj', 'v_proj', 'o_proj'])
      shapes[`model.layers.${layer}.self_attn.${name}.weight`] = [hidden, hidden];
    for (const name of ['gate_proj', 'up_proj'])
      shapes[`model.layers.${layer}.mlp.${name}.weight`] = [16, hidden];
    shapes[`model.layers.${layer}.mlp.down_proj.weight`] = [hidden, 16];
    shapes[`model.layers.${layer}.input_layernorm.weight`] = [hidden];
    shapes[`model.layers.${layer}.post_attention_layernorm.weight`] = [hidden];
  }
  return shapes;
};

describe('Llama 3 RoPE factors (rope_freqs)', () => {
  const llama31 = {
    rope_type: 'llama3',
    factor: 8,
    low_freq_factor: 1,
    high_freq_factor: 4,
    original_max_position_embeddings: 8192,
  };

  it("Llama 3.1's factors (theta 500000, head_dim 128) are read back as its rope_scaling", () => {
    const factors = llama3FrequencyFactors(llama31, 500000, 128);
    expect(factors[0]).toBe(1);
    expect(factors[63]).toBe(8);
    expect([...factors].some((value) => value > 1 && value < 8)).toBe(true);
    expect(ropeScalingOfFactors(factors, 500000, 128, 131072)).toEqual(llama31);
  });

  it('other factors become a fixed table (short = long, no switch, no attention factor)', () => {
    const factors = Float32Array.from([1, 1.5, 3, 7]);
    expect(ropeScalingOfFactors(factors, 10000, 8, 2048)).toEqual({
      rope_type: 'longrope',
      factor: 1,
      original_max_position_embeddings: 2048,
      short_factor: [1, 1.5, 3, 7],
      long_factor: [1, 1.5, 3, 7],
    });
  });

  it('a Llama 3 config exports the factors as rope_freqs (no rope.scaling keys) and reads back as llama3', async () => {
    const config = {
      architectures: ['LlamaForCausalLM'],
      hidden_size: 8,
      intermediate_size: 16,
      num_hidden_layers: 1,
      num_attention_heads: 1,
      num_key_value_heads: 1,
      vocab_size: 8,
      rope_theta: 500000,
      max_position_embeddings: 131072,
      rope_scaling: { ...llama31, rope_type: undefined, type: 'llama3' },
    };
    const { gguf, model } = await throughGguf(config, llamaShapes(8, 1));
    expect(gguf.has('rope_freqs.weight')).toBe(true);
    expect(gguf.value('llama.rope.scaling.type')).toBeUndefined();
    expect(await gguf.readFloat32('rope_freqs.weight')).toEqual(llama3FrequencyFactors(llama31, 500000, 8));
    expect(model.config.rope_scaling).toEqual(llama31);
  });
});

describe('Gemma in GGUF', () => {
  const gemma3 = (layerTypes: string[]) => ({
    architectures: ['Gemma3ForCausalLM'],
    model_type: 'gemma3_text',
    hidden_size: 8,
    intermediate_size: 16,
    num_hidden_layers: layerTypes.length,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    head_dim: 4,
    query_pre_attn_scalar: 9,
    vocab_size: 8,
    sliding_window: 4,
    layer_types: layerTypes,
    rope_theta: 1000000,
    rope_local_base_freq: 10000,
  });
  const gemmaShapes = (layers: number) => {
    const shapes: Record<string, number[]> = {
      'model.embed_tokens.weight': [8, 8],
      'model.norm.weight': [8],
    };
    for (let layer = 0; layer < layers; layer++) {
      const at = `model.layers.${layer}`;
      shapes[`${at}.self_attn.q_proj.weight`] = [8, 8];
      shapes[`${at}.self_attn.k_proj.weight`] = [4, 8];
      shapes[`${at}.self_attn.v_proj.weight`] = [4, 8];
      shapes[`${at}.self_attn.o_proj.weight`] = [8, 8];
      shapes[`${at}.self_attn.q_norm.weight`] = [4];
      shapes[`${at}.self_attn.k_norm.weight`] = [4];
      for (const norm of ['input', 'post_attention', 'pre_feedforward', 'post_feedforward'])
        shapes[`${at}.${norm}_layernorm.weight`] = [8];
      for (const name of ['gate_proj', 'up_proj']) shapes[`${at}.mlp.${name}.weight`] = [16, 8];
      shapes[`${at}.mlp.down_proj.weight`] = [8, 16];
    }
    return shapes;
  };

  it("a periodic layer pattern is written as llama.cpp's period, another as a per-layer array; both read back", async () => {
    const periodic = ['sliding_attention', 'full_attention', 'sliding_attention', 'full_attention'];
    const first = await throughGguf(gemma3(periodic), gemmaShapes(4));
    expect(first.gguf.value('gemma3.attention.sliding_window_pattern')).toBe(2);
    expect(first.model.config.layer_types).toEqual(periodic);
    const irregular = ['full_attention', 'sliding_attention', 'sliding_attention', 'full_attention'];
    const second = await throughGguf(gemma3(irregular), gemmaShapes(4));
    expect(second.gguf.value('gemma3.attention.sliding_window_pattern')).toEqual([false, true, true, false]);
    expect(second.model.config.layer_types).toEqual(irregular);
    expect(second.gguf.number('gemma3.rope.freq_base_swa')).toBe(10000);
    expect(second.model.config.rope_local_base_freq).toBe(10000);
  });

  it('norms are stored as 1 + w, and query_pre_attn_scalar is folded into q_norm for llama.cpp', async () => {
    const { gguf, tensors, back, model } = await throughGguf(
      gemma3(['sliding_attention', 'full_attention']),
      gemmaShapes(2),
    );
    const stored = await gguf.readFloat32('blk.0.attn_norm.weight');
    const original = tensors.get('model.layers.0.input_layernorm.weight')!;
    expect(stored[0]).toBeCloseTo(original[0] + 1, 6);
    // llama.cpp scales by 1/sqrt(head_dim) = 1/2; Hugging Face by 1/sqrt(9) = 1/3.
    const factor = 2 / 3;
    const qNorm = await gguf.readFloat32('blk.0.attn_q_norm.weight');
    const originalQNorm = tensors.get('model.layers.0.self_attn.q_norm.weight')!;
    expect(qNorm[1]).toBeCloseTo((originalQNorm[1] + 1) * factor, 6);
    expect(model.config.query_pre_attn_scalar).toBe(4);
    expect(back.get('model.layers.0.input_layernorm.weight')![0]).toBeCloseTo(original[0], 6);
  });

  it("Google's checkpoints need no folding (query_pre_attn_scalar = head_dim; the 27B models' hidden / heads)", () => {
    const gemma2 = (layers: number, hidden: number, heads: number, headDim: number, scalar: number) =>
      gemmaQueryFactor('gemma2', {
        num_hidden_layers: layers,
        hidden_size: hidden,
        num_attention_heads: heads,
        head_dim: headDim,
        query_pre_attn_scalar: scalar,
      });
    expect(gemma2(26, 2304, 8, 256, 256)).toBe(1); // 2B
    expect(gemma2(42, 3584, 16, 256, 256)).toBe(1); // 9B
    expect(gemma2(46, 4608, 32, 128, 144)).toBe(1); // 27B
    expect(gemma2(2, 32, 2, 256, 64)).toBeCloseTo(2, 12); // the Transformers fixture: (1/8) / (1/16)
  });

  it("a Gemma 2 GGUF LoRA adapter carries the query factor in q_proj's lora_B, as the exported q_proj does", async () => {
    const base = {
      architectures: ['Gemma2ForCausalLM'],
      hidden_size: 32,
      num_hidden_layers: 2,
      num_attention_heads: 2,
      num_key_value_heads: 1,
      head_dim: 256,
      query_pre_attn_scalar: 64,
    };
    const values = Float32Array.from({ length: 512 * 4 }, (_, i) => (i % 7) - 3);
    const file = ggufLoraFile({ r: 4, lora_alpha: 8 }, base, [
      {
        name: 'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight',
        shape: [512, 4],
        values: () => values,
      },
      {
        name: 'base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight',
        shape: [256, 4],
        values: () => values.subarray(0, 1024),
      },
    ]);
    const [q, v] = await Promise.all(
      file.tensors.map(async (tensor) => {
        const data = typeof tensor.data === 'function' ? await tensor.data() : tensor.data;
        return new Float32Array(data.slice().buffer);
      }),
    );
    expect(file.tensors[0].name).toBe('blk.0.attn_q.weight.lora_b');
    expect(q[1]).toBeCloseTo(values[1] * 2, 6); // (1/8) / (1/16)
    expect(v[1]).toBe(values[1]);
  });
});
