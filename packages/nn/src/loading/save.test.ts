import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSafetensorsBytes } from '@webtune/safetensors';
import { createDevice, type Device } from '@webtune/tensors';
import { fixturePath, requireFixtures } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CausalLM } from '../models/llama.js';
import { loadModelDirectory, saveModelDirectory } from '../node.js';
import { loadArchitectureFixture, maxAbsDifference } from '../testing/fixtures.js';
import type { PretrainedModel } from './pretrained.js';

const HF = 'models/stories260K-hf';

async function logitsOf(device: Device, model: CausalLM, ids: number[]): Promise<Float32Array> {
  return device.scope(
    async () =>
      (await model.forward(device.fromArray(ids, [1, ids.length], 'i32')).toArray()) as Float32Array,
  );
}

describe.skipIf(!requireFixtures(HF))('saving a Hugging Face folder', () => {
  let device: Device;
  let loaded: PretrainedModel;
  let directory: string;
  const ids = [1, 403, 407, 261, 378, 432];

  beforeAll(async () => {
    device = await createDevice();
    loaded = await loadModelDirectory(device, fixturePath(HF));
    directory = await mkdtemp(join(tmpdir(), 'webtune-save-'));
  });
  afterAll(async () => {
    loaded?.model.dispose();
    device?.destroy();
    await rm(directory, { recursive: true, force: true });
  });

  it('writes shards with an index, config and tokenizer files, and loads back to the same logits', async () => {
    const target = join(directory, 'sharded');
    const written = await saveModelDirectory(loaded.model, target, {
      maxShardBytes: 300_000,
      extraFiles: loaded.tokenizerFiles,
      generationConfig: loaded.generationConfig,
    });
    const files = (await readdir(target)).sort();
    expect(files).toEqual([...written].sort());
    const shards = files.filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f));
    expect(shards.length).toBeGreaterThan(2);
    expect(files).toEqual(
      expect.arrayContaining([
        'config.json',
        'generation_config.json',
        'model.safetensors.index.json',
        'tokenizer.json',
      ]),
    );
    const index = JSON.parse(await readFile(join(target, 'model.safetensors.index.json'), 'utf8'));
    expect(index.weight_map['lm_head.weight']).toBeUndefined(); // tied: not written
    expect(Object.keys(index.weight_map)).toHaveLength([...loaded.model.namedParameters()].length);
    for (const shard of shards) {
      const { metadata } = readSafetensorsBytes(new Uint8Array(await readFile(join(target, shard))));
      expect(metadata).toEqual({ format: 'pt' });
    }
    const config = JSON.parse(await readFile(join(target, 'config.json'), 'utf8'));
    expect(config).toMatchObject({
      architectures: ['LlamaForCausalLM'],
      hidden_size: 64,
      tie_word_embeddings: true,
      torch_dtype: 'float32',
    });
    expect(await readFile(join(target, 'tokenizer.json'))).toEqual(
      await readFile(fixturePath(HF, 'tokenizer.json')),
    );

    const reloaded = await loadModelDirectory(device, target);
    try {
      expect(
        maxAbsDifference(
          await logitsOf(device, reloaded.model, ids),
          await logitsOf(device, loaded.model, ids),
        ),
      ).toBe(0);
      expect(reloaded.tokenizer?.encode('Once upon a time')).toEqual([1, 403, 407, 261, 378]);
    } finally {
      reloaded.model.dispose();
    }
  });

  it('writes BF16 and F16 that load back within their rounding', async () => {
    for (const dtype of ['BF16', 'F16'] as const) {
      const target = join(directory, dtype);
      await saveModelDirectory(loaded.model, target, { dtype });
      const { tensors } = readSafetensorsBytes(
        new Uint8Array(await readFile(join(target, 'model.safetensors'))),
      );
      expect(new Set(tensors.map((t) => t.dtype))).toEqual(new Set([dtype]));
      const reloaded = await loadModelDirectory(device, target);
      try {
        const original = await loaded.model
          .getParameterByName('model.layers.2.mlp.up_proj.weight')!
          .toArray();
        const rounded = await reloaded.model
          .getParameterByName('model.layers.2.mlp.up_proj.weight')!
          .toArray();
        const relative = dtype === 'BF16' ? 2 ** -8 : 2 ** -11;
        for (let i = 0; i < original.length; i++) {
          expect(Math.abs(rounded[i] - original[i])).toBeLessThanOrEqual(
            Math.abs(original[i]) * relative + 1e-7,
          );
        }
        expect(JSON.parse(await readFile(join(target, 'config.json'), 'utf8')).torch_dtype).toBe(
          dtype === 'BF16' ? 'bfloat16' : 'float16',
        );
      } finally {
        reloaded.model.dispose();
      }
    }
  });

  it('writes an untied head and Qwen2 biases under their names', async () => {
    for (const name of ['llama', 'qwen2']) {
      const fixture = await loadArchitectureFixture(device, name);
      const target = join(directory, name);
      try {
        await saveModelDirectory(fixture.model, target);
        const { tensors } = readSafetensorsBytes(
          new Uint8Array(await readFile(join(target, 'model.safetensors'))),
        );
        const names = tensors.map((t) => t.name);
        expect(names.includes('lm_head.weight')).toBe(name === 'llama');
        expect(names.includes('model.layers.0.self_attn.k_proj.bias')).toBe(name === 'qwen2');
        const reloaded = await loadModelDirectory(device, target);
        const batch = fixture.golden.input_ids[0];
        expect(
          maxAbsDifference(
            await logitsOf(device, reloaded.model, batch),
            await logitsOf(device, fixture.model, batch),
          ),
        ).toBe(0);
        reloaded.model.dispose();
      } finally {
        fixture.model.dispose();
      }
    }
  });
});
