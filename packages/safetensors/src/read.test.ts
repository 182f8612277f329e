import { readFile } from 'node:fs/promises';
import { fixturePath, requireFixtures } from '@webtune/test-utils';
import { describe, expect, it } from 'vitest';
import { toFloat32 } from './convert.js';
import { openSafetensorsFile } from './node.js';
import { readSafetensors, readSafetensorsBytes, type SafetensorsEntry } from './read.js';
import { writeSafetensors } from './write.js';

const modelPath = fixturePath('models/stories260K-hf/model.safetensors');

describe.skipIf(
  !requireFixtures('models/stories260K-hf/model.safetensors', 'models/stories260K-llama2c/stories260K.bin'),
)('stories260K-hf/model.safetensors', () => {
  it('lists the 47 Llama tensors with their dtypes and shapes', async () => {
    const file = await openSafetensorsFile(modelPath);
    try {
      expect(file.tensors).toHaveLength(47);
      expect(file.metadata).toEqual({ format: 'pt' });
      expect(file.header.headerLength).toBe(4856);
      expect(file.info('model.embed_tokens.weight')).toMatchObject({ dtype: 'F32', shape: [512, 64] });
      expect(file.info('model.layers.3.self_attn.k_proj.weight')).toMatchObject({
        dtype: 'F32',
        shape: [32, 64],
      });
      expect(file.info('model.layers.4.mlp.down_proj.weight')).toMatchObject({
        dtype: 'F32',
        shape: [64, 172],
      });
      expect(file.info('model.norm.weight')).toMatchObject({ dtype: 'F32', shape: [64] });
      expect(file.has('lm_head.weight')).toBe(false);
      for (let layer = 0; layer < 5; layer++) {
        for (const part of ['q_proj', 'k_proj', 'v_proj', 'o_proj']) {
          expect(file.has(`model.layers.${layer}.self_attn.${part}.weight`)).toBe(true);
        }
      }
    } finally {
      await file.close();
    }
  });

  it('holds the same embedding and norm weights as the llama2.c checkpoint', async () => {
    // llama2.c layout: 7 int32 header, then token_embedding_table [512, 64], then rms_att_weight [5, 64].
    const llama2c = await readFile(fixturePath('models/stories260K-llama2c/stories260K.bin'));
    const floats = new Float32Array(
      llama2c.buffer.slice(llama2c.byteOffset + 28, llama2c.byteOffset + llama2c.byteLength),
    );
    const file = await openSafetensorsFile(modelPath);
    try {
      const embedding = toFloat32(await file.read('model.embed_tokens.weight'));
      expect(embedding).toEqual(floats.subarray(0, 512 * 64));
      const norm = toFloat32(await file.read('model.layers.2.input_layernorm.weight'));
      expect(norm).toEqual(floats.subarray(512 * 64 + 2 * 64, 512 * 64 + 3 * 64));
    } finally {
      await file.close();
    }
  });

  it('reads the same tensors from bytes, a Blob and a file reader, one at a time', async () => {
    const bytes = new Uint8Array(await readFile(modelPath));
    const fromBytes = readSafetensorsBytes(bytes).tensors;
    const fromBlob = [];
    for await (const entry of await readSafetensors(new Blob([bytes]))) fromBlob.push(entry);
    const fromFile = [];
    const file = await openSafetensorsFile(modelPath);
    for await (const entry of file) fromFile.push(entry);
    await file.close();
    expect(fromBytes.map((entry) => entry.name)).toEqual(fromFile.map((entry) => entry.name));
    const same = (a: SafetensorsEntry, b: SafetensorsEntry) =>
      a.name === b.name &&
      a.dtype === b.dtype &&
      a.shape.join() === b.shape.join() &&
      Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength).equals(
        Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength),
      );
    expect(fromBlob.every((entry, index) => same(entry, fromBytes[index]))).toBe(true);
    expect(fromFile.every((entry, index) => same(entry, fromBytes[index]))).toBe(true);
    // Entries from in-memory bytes are views, not copies.
    expect(fromBytes[0].data.buffer).toBe(bytes.buffer);
  });

  it('rewrites the file byte for byte like the reference writer', async () => {
    const bytes = new Uint8Array(await readFile(modelPath));
    const { tensors, metadata } = readSafetensorsBytes(bytes);
    const rewritten = writeSafetensors(tensors.reverse(), metadata);
    expect(rewritten.length).toBe(bytes.length);
    expect(Buffer.from(rewritten).equals(Buffer.from(bytes))).toBe(true);
  });
});
