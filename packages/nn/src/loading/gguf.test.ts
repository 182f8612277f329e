import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dequantize, type GgufFileType, ggufModelFile, quantize, writeGgufBytes } from '@webtune/gguf';
import { readSafetensorsBytes, toFloat32 } from '@webtune/safetensors';
import {
  createDevice,
  type Device,
  decodeRows,
  packedMatmul,
  packedWeightFromBytes,
  unpackWeight,
} from '@webtune/tensors';
import { expectClose, Rng } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES } from '../testing/fixtures.js';
import { loadGguf } from './gguf.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());

const GGUF_FIXTURES = join(FIXTURES, 'gguf');

/** Exports an architecture fixture (config.json + safetensors) to GGUF bytes, without a tokenizer. */
async function exportFixture(
  name: string,
  fileType: GgufFileType,
  set = 'architectures',
): Promise<Uint8Array> {
  const folder = join(FIXTURES, set, name);
  const config = JSON.parse(readFileSync(join(folder, 'config.json'), 'utf8'));
  const golden = JSON.parse(readFileSync(join(folder, 'golden.json'), 'utf8'));
  const { tensors } = readSafetensorsBytes(new Uint8Array(readFileSync(join(folder, golden.weights))));
  const file = ggufModelFile({
    config,
    tokenizer: null,
    fileType,
    tensors: tensors.map((entry) => ({
      name: entry.name,
      shape: entry.shape,
      values: () => toFloat32(entry),
    })),
  });
  return writeGgufBytes(file.metadata, file.tensors);
}

describe('GGUF models in webtune', () => {
  // Each architecture goes Hugging Face -> GGUF (llama.cpp names, q/k rows interleaved for llama)
  // -> webtune, and must give the PyTorch logits of the original.
  for (const name of ['llama', 'mistral', 'qwen2', 'qwen3', 'llama-linear-rope']) {
    it(`${name}: exported as F32 GGUF and loaded back, logits match the PyTorch golden`, async () => {
      const bytes = await exportFixture(name, 'F32');
      const golden = JSON.parse(readFileSync(join(FIXTURES, 'architectures', name, 'golden.json'), 'utf8'));
      const { model } = await loadGguf(device, bytes, { fileName: `${name}.gguf` });
      try {
        const [batch, seq] = golden.shape;
        const logits = await device.scope(async () =>
          model.forward(device.fromArray(golden.input_ids.flat(), [batch, seq], 'i32')).toArray(),
        );
        expectClose(logits, golden.logits, { atol: 1e-4, rtol: 1e-4, label: name });
      } finally {
        model.dispose();
      }
    });
  }

  // The families' Transformers models with every feature on (see tools/golden/transformers_families.py).
  // Gemma's query_pre_attn_scalar (64 and 24 here, not head_dim) is folded into q_proj / q_norm,
  // since llama.cpp reads no such key; its layer pattern, caps and local RoPE base are GGUF keys;
  // Phi-3's LongRoPE tables are the rope_factors_long/short tensors.
  for (const name of ['gemma2', 'gemma3', 'phi3', 'phi4-mini']) {
    it(`${name}: exported as F32 GGUF and loaded back, logits match Transformers`, async () => {
      const bytes = await exportFixture(name, 'F32', 'transformers');
      const golden = JSON.parse(readFileSync(join(FIXTURES, 'transformers', name, 'golden.json'), 'utf8'));
      const { model, config } = await loadGguf(device, bytes, { fileName: `${name}.gguf` });
      try {
        const original = JSON.parse(
          readFileSync(join(FIXTURES, 'transformers', name, 'config.json'), 'utf8'),
        );
        expect(config.modelType).toBe(original.model_type);
        if (original.layer_types) expect(config.layerTypes).toEqual(original.layer_types);
        const [batch, seq] = golden.shape;
        const logits = await device.scope(async () =>
          model.forward(device.fromArray(golden.input_ids.flat(), [batch, seq], 'i32')).toArray(),
        );
        expectClose(logits, golden.logits, { atol: 1e-4, rtol: 1e-4, label: name });
      } finally {
        model.dispose();
      }
    });
  }

  it("smollm3: no_rope_layers other than llama.cpp's every-fourth-layer pattern are refused on export", async () => {
    await expect(exportFixture('smollm3', 'F32', 'transformers')).rejects.toThrow(
      /no_rope_layers \[1,0,1,0\]/,
    );
  });

  it('a GGUF written by the gguf Python package (stories260K, F16) gives the Hugging Face logits and tokens', async () => {
    const bytes = new Uint8Array(readFileSync(join(GGUF_FIXTURES, 'stories260K-python.gguf')));
    const golden = JSON.parse(readFileSync(join(GGUF_FIXTURES, 'stories260K-python-logits.json'), 'utf8'));
    const loaded = await loadGguf(device, bytes, { fileName: 'stories260K-python.gguf' });
    try {
      expect(loaded.config).toMatchObject({
        architecture: 'LlamaForCausalLM',
        hiddenSize: 64,
        numKeyValueHeads: 4,
      });
      expect(loaded.tokenizer!.encode(golden.text)).toEqual(golden.text_ids);
      expect(loaded.tokenizer!.decode(golden.text_ids, { skipSpecialTokens: true })).toBe(golden.text);
      const logits = await device.scope(async () =>
        loaded.model.forward(device.fromArray(golden.ids, [1, golden.ids.length], 'i32')).toArray(),
      );
      expectClose(logits, golden.logits.flat(), { atol: 1e-4, rtol: 1e-4, label: 'stories260K-python' });
    } finally {
      loaded.model.dispose();
    }
  });
});

describe('GGUF files with Llama 3 RoPE factors (rope_freqs)', () => {
  // Written by gguf-py as convert_hf_to_gguf.py writes Llama 3 models (tools/golden/gguf_fixtures.py):
  // the factors are the rope_freqs tensor. Its original context (32) is not Llama 3's 8192, so the
  // factors are applied as they are (a LongRoPE table that never switches).
  it('loads with the factors applied: logits match Transformers with rope_scaling llama3', async () => {
    const bytes = new Uint8Array(readFileSync(join(GGUF_FIXTURES, 'llama3-rope-freqs-python.gguf')));
    const golden = JSON.parse(
      readFileSync(join(GGUF_FIXTURES, 'llama3-rope-freqs-python-logits.json'), 'utf8'),
    );
    const loaded = await loadGguf(device, bytes, { fileName: 'llama3-rope-freqs-python.gguf' });
    try {
      expect(loaded.config.ropeScaling).toMatchObject({ type: 'longrope', factor: 1 });
      const run = (model: typeof loaded.model) =>
        device.scope(async () =>
          model.forward(device.fromArray(golden.ids, [1, golden.ids.length], 'i32')).toArray(),
        );
      const logits = await run(loaded.model);
      expectClose(logits, golden.logits.flat(), { atol: 1e-4, rtol: 1e-4, label: 'llama3 rope_freqs' });
      // Without the factors the logits are far off: the test sees the scaling.
      const plain = await loadGguf(device, bytes, { fileName: 'x.gguf' });
      try {
        plain.model.config.ropeScaling = null;
        const unscaled = await run(plain.model);
        const gap = Math.max(...unscaled.map((value, i) => Math.abs(value - golden.logits.flat()[i])));
        expect(gap).toBeGreaterThan(1e-2);
      } finally {
        plain.model.dispose();
      }
    } finally {
      loaded.model.dispose();
    }
  });
});

describe('GGUF projections kept in their blocks', () => {
  it('Q8_0 and Q4_0 projections load packed and give the logits of the dequantized model', async () => {
    for (const fileType of ['Q8_0', 'Q4_0'] as const) {
      const bytes = await exportFixture('qwen3', fileType);
      const golden = JSON.parse(
        readFileSync(join(FIXTURES, 'architectures', 'qwen3', 'golden.json'), 'utf8'),
      );
      const packed = await loadGguf(device, bytes);
      const plain = await loadGguf(device, bytes, { keepQuantized: false });
      try {
        expect(packed.packedTensors).toBeGreaterThan(0);
        expect(plain.packedTensors).toBe(0);
        // The token table is kept packed too; the tied head shares it (listed under both names).
        expect([...packed.model.namedPackedParameters()].length).toBe(packed.packedTensors + 1);
        expect(packed.model.getSubmodule('lm_head').packedParameter('weight')).toBe(
          packed.model.getSubmodule('model.embed_tokens').packedParameter('weight'),
        );
        const [batch, seq] = golden.shape;
        const run = (model: typeof packed.model) =>
          device.scope(async () =>
            model.forward(device.fromArray(golden.input_ids.flat(), [batch, seq], 'i32')).toArray(),
          );
        const fromPacked = await run(packed.model);
        const fromPlain = await run(plain.model);
        expectClose(fromPacked, fromPlain, {
          atol: 1e-4,
          rtol: 1e-4,
          label: `${fileType} packed vs dequantized`,
        });
      } finally {
        packed.model.dispose();
        plain.model.dispose();
      }
    }
  });
});

describe('Q4_K blocks from @webtune/gguf in the packed kernels', () => {
  it('a Q4_K_M file keeps its Q4_K projections packed (Q6_K ones decoded) with the logits of the dequantized model', async () => {
    // One Qwen3 layer with rows of 256 and 512 values (whole super-blocks), random weights.
    const config = {
      architectures: ['Qwen3ForCausalLM'],
      model_type: 'qwen3',
      hidden_size: 256,
      intermediate_size: 512,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      num_key_value_heads: 1,
      head_dim: 128,
      vocab_size: 64,
      rms_norm_eps: 1e-6,
      rope_theta: 1e6,
      max_position_embeddings: 64,
      tie_word_embeddings: true,
    };
    const shapes: Record<string, number[]> = {
      'model.embed_tokens.weight': [64, 256],
      'model.layers.0.input_layernorm.weight': [256],
      'model.layers.0.self_attn.q_proj.weight': [256, 256],
      'model.layers.0.self_attn.k_proj.weight': [128, 256],
      'model.layers.0.self_attn.v_proj.weight': [128, 256],
      'model.layers.0.self_attn.o_proj.weight': [256, 256],
      'model.layers.0.self_attn.q_norm.weight': [128],
      'model.layers.0.self_attn.k_norm.weight': [128],
      'model.layers.0.post_attention_layernorm.weight': [256],
      'model.layers.0.mlp.gate_proj.weight': [512, 256],
      'model.layers.0.mlp.up_proj.weight': [512, 256],
      'model.layers.0.mlp.down_proj.weight': [256, 512],
      'model.norm.weight': [256],
    };
    const rng = new Rng(9);
    const file = ggufModelFile({
      config,
      tokenizer: null,
      fileType: 'Q4_K_M',
      tensors: Object.entries(shapes).map(([name, shape]) => {
        const size = shape.reduce((a, b) => a * b, 1);
        const values = shape.length === 1 ? new Float32Array(size).fill(1) : rng.normal(size, 0.05);
        return { name, shape, values: () => values };
      }),
    });
    const bytes = await writeGgufBytes(file.metadata, file.tensors);
    const packed = await loadGguf(device, bytes);
    const plain = await loadGguf(device, bytes, { keepQuantized: false });
    try {
      const formats = [...packed.model.namedPackedParameters()].map(
        ([name, weight]) => `${name} ${weight.format}`,
      );
      expect(formats.sort()).toEqual([
        'model.layers.0.mlp.gate_proj.weight q4_k',
        'model.layers.0.mlp.up_proj.weight q4_k',
        'model.layers.0.self_attn.k_proj.weight q4_k',
        'model.layers.0.self_attn.o_proj.weight q4_k',
        'model.layers.0.self_attn.q_proj.weight q4_k',
      ]);
      const ids = Array.from({ length: 2 * 9 }, (_, i) => (i * 7) % 64);
      const run = (model: typeof packed.model) =>
        device.scope(async () => model.forward(device.fromArray(ids, [2, 9], 'i32')).toArray());
      expectClose(await run(packed.model), await run(plain.model), { atol: 1e-4, rtol: 1e-4 });
    } finally {
      packed.model.dispose();
      plain.model.dispose();
    }
  });

  it("decode bit for bit as gguf's dequantizer does, on the host and in the kernels", async () => {
    const rng = new Rng(3);
    const [rows, cols, M] = [7, 512, 3];
    // A spread of magnitudes per row, so the super-blocks' 6-bit scales and mins all differ.
    const values = Float32Array.from(rng.normal(rows * cols), (v, i) => v * (1 + (i % 97) / 13));
    const bytes = quantize('Q4_K', values);
    const expected = dequantize('Q4_K', bytes, rows * cols);
    expect(decodeRows(bytes, rows, cols, 'q4_k')).toEqual(Float64Array.from(expected));
    await device.scope(async () => {
      const weight = packedWeightFromBytes(device, 'q4_k', [rows, cols], bytes);
      try {
        // The kernel's d * scale * q - dmin * min may be fused into one rounding: within 1 ulp.
        expectClose(await unpackWeight(weight).toArray(), expected, { atol: 1e-6, rtol: 1e-6 });
        const x = rng.uniform(M * cols);
        const reference = new Float64Array(M * rows);
        for (let m = 0; m < M; m++)
          for (let n = 0; n < rows; n++)
            for (let k = 0; k < cols; k++)
              reference[m * rows + n] += x[m * cols + k] * expected[n * cols + k];
        expectClose(await packedMatmul(device.fromArray(x, [M, cols], 'f32'), weight).toArray(), reference, {
          atol: 1e-4,
          rtol: 1e-4,
        });
      } finally {
        weight.dispose();
      }
    });
  });
});
