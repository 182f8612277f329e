import { readFileSync } from 'node:fs';
import { fromFloat32, readSafetensorsBytes, toFloat32 } from '@webtune/safetensors';
import { fixturePath, requireFixtures } from '@webtune/test-utils';
import { Tokenizer } from '@webtune/tokenizers';
import { describe, expect, it } from 'vitest';
import { dequantize } from './dequantize.js';
import { type GgufFileType, ggufModelFile, openGgufModel } from './model.js';
import { quantize } from './quantize.js';
import { readGguf } from './read.js';
import { writeGgufBytes } from './write.js';

const STORIES = 'models/stories260K-hf';

describe.skipIf(!requireFixtures(STORIES))('safetensors -> GGUF -> back (stories260K)', () => {
  const folder = fixturePath(STORIES);
  const config = JSON.parse(readFileSync(`${folder}/config.json`, 'utf8'));
  const tokenizer = {
    tokenizerJson: JSON.parse(readFileSync(`${folder}/tokenizer.json`, 'utf8')),
    tokenizerConfig: JSON.parse(readFileSync(`${folder}/tokenizer_config.json`, 'utf8')),
  };
  const { tensors } = readSafetensorsBytes(new Uint8Array(readFileSync(`${folder}/model.safetensors`)));
  const original = new Map(tensors.map((entry) => [entry.name, toFloat32(entry)]));

  async function roundTrip(fileType: GgufFileType) {
    const file = ggufModelFile({
      config,
      tokenizer,
      fileType,
      name: 'stories260K',
      tensors: tensors.map((entry) => ({
        name: entry.name,
        shape: entry.shape,
        values: () => toFloat32(entry),
      })),
    });
    const bytes = await writeGgufBytes(file.metadata, file.tensors);
    const gguf = await readGguf(bytes, { fileName: `stories260K-${fileType}.gguf` });
    const model = await openGgufModel(gguf);
    const back = new Map<string, { values: Float32Array; storedType: string; shape: number[] }>();
    for await (const tensor of model.tensors()) {
      back.set(tensor.name, {
        values: new Float32Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength / 4),
        storedType: tensor.storedType,
        shape: tensor.shape,
      });
    }
    return { gguf, model, back };
  }

  /** The values a type stores for `values` (a row-major [rows, columns] matrix or a vector). */
  function expected(type: string, values: Float32Array): Float32Array {
    if (type === 'F32') return values;
    if (type === 'F16' || type === 'BF16') return toFloat32({ dtype: type, data: fromFloat32(values, type) });
    return dequantize(type as never, quantize(type as never, values), values.length);
  }

  for (const fileType of ['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_K_M'] as const) {
    it(`${fileType}: every tensor comes back under its name and shape with the values its type stores`, async () => {
      const { back, model } = await roundTrip(fileType);
      expect(model.config).toMatchObject({
        architectures: ['LlamaForCausalLM'],
        hidden_size: 64,
        intermediate_size: 172,
        num_hidden_layers: 5,
        num_attention_heads: 8,
        num_key_value_heads: 4,
        head_dim: 8,
        vocab_size: 512,
        tie_word_embeddings: true,
        rope_theta: 10000,
      });
      expect([...back.keys()].sort()).toEqual(
        [...original.keys()].filter((name) => name !== 'lm_head.weight').sort(),
      );
      const types = new Set<string>();
      for (const [name, { values, storedType, shape }] of back) {
        const source = original.get(name)!;
        expect(shape).toEqual(tensors.find((entry) => entry.name === name)!.shape);
        types.add(storedType);
        // The q/k rows went through llama.cpp's permutation and back: compare in HF layout.
        const want = expected(storedType, source);
        expect(
          Buffer.from(values.buffer, values.byteOffset, values.byteLength).equals(
            Buffer.from(want.buffer, want.byteOffset, want.byteLength),
          ),
          `${name} (${storedType})`,
        ).toBe(true);
      }
      if (fileType === 'F32' || fileType === 'F16' || fileType === 'BF16')
        expect(types).toEqual(new Set(fileType === 'F32' ? ['F32'] : ['F32', fileType]));
      // stories260K's rows (64, 172) are not whole 256-blocks: Q4_K_M falls back to Q5_0/Q8_0, 172 to F16.
      if (fileType === 'Q4_K_M') expect([...types].sort()).toEqual(['F16', 'F32', 'Q5_0', 'Q8_0']);
      if (fileType === 'Q8_0') expect([...types].sort()).toEqual(['F16', 'F32', 'Q8_0']);
    });
  }

  it('the tokenizer survives: the GGUF-rebuilt tokenizer encodes and decodes as the original', async () => {
    const { model, gguf } = await roundTrip('F16');
    expect(gguf.string('tokenizer.ggml.model')).toBe('llama');
    expect(gguf.array('tokenizer.ggml.tokens', 'string')!.slice(0, 4)).toEqual([
      '<unk>',
      '<s>',
      '</s>',
      '<0x00>',
    ]);
    const original = Tokenizer.fromJSON(tokenizer.tokenizerJson, tokenizer.tokenizerConfig);
    const rebuilt = Tokenizer.fromJSON(model.tokenizer!.tokenizerJson, model.tokenizer!.tokenizerConfig);
    const texts = [
      'Once upon a time',
      'Lily and Tom played in the park. "Hello!" said the dog.',
      '  two  spaces\nnew line',
      'café ☕ 東京',
    ];
    for (const text of texts) {
      expect(rebuilt.encode(text), text).toEqual(original.encode(text));
      expect(rebuilt.decode(original.encode(text), { skipSpecialTokens: true })).toBe(
        original.decode(original.encode(text), { skipSpecialTokens: true }),
      );
    }
    expect(rebuilt.bosTokenId).toBe(1);
    expect(rebuilt.eosTokenId).toBe(2);
    expect(rebuilt.addBosToken).toBe(true);
  });
});
