import { readSafetensorsBytes, writeSafetensors } from '@webtune/safetensors';
import { createDevice, type Device } from '@webtune/tensors';
import { expectClose } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPretrained, memoryFileSource } from '../loading/pretrained.js';
import { saveModel } from '../loading/save.js';
import { loadTransformersFixture, transformersFixtureFiles } from '../testing/fixtures.js';
import type { CausalLM } from './llama.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());

async function firstRowLogits(model: CausalLM, ids: number[]): Promise<Float32Array> {
  return device.scope(
    async () =>
      (await model.forward(device.fromArray(ids, [1, ids.length], 'i32')).toArray()) as Float32Array,
  );
}

describe('the new families load and save as Hugging Face checkpoints', () => {
  it('reads the text model of a Gemma3ForConditionalGeneration checkpoint (language_model. names, vision tower left out)', async () => {
    const { model: reference, golden } = await loadTransformersFixture(device, 'gemma3');
    const files = transformersFixtureFiles('gemma3');
    const text = JSON.parse(new TextDecoder().decode(files['config.json'])) as Record<string, unknown>;
    const config = {
      architectures: ['Gemma3ForConditionalGeneration'],
      model_type: 'gemma3',
      text_config: text,
      vision_config: { hidden_size: 8 },
    };
    const weights = readSafetensorsBytes(files['model.safetensors']).tensors.map((tensor) => ({
      ...tensor,
      name: tensor.name.replace(/^model\./, 'language_model.model.'),
    }));
    weights.push({
      name: 'vision_tower.patch_embedding.weight',
      dtype: 'F32',
      shape: [2],
      data: new Uint8Array(8),
    });
    const source = memoryFileSource({
      'config.json': new TextEncoder().encode(JSON.stringify(config)),
      'model.safetensors': writeSafetensors(weights, { format: 'pt' }),
    });
    const { model } = await loadPretrained(device, source);
    try {
      expect(model.config.textPartOf).toBe('Gemma3ForConditionalGeneration');
      const seq = golden.shape[1];
      const logits = await firstRowLogits(model, golden.input_ids[0]);
      expectClose(logits, golden.logits.slice(0, seq * golden.shape[2]), { atol: 1e-4, rtol: 0 });
    } finally {
      model.dispose();
      reference.dispose();
    }
  });

  for (const name of ['gemma2', 'phi3', 'smollm3']) {
    it(`${name}: saves under Hugging Face's names and loads back to the same logits`, async () => {
      const { model, golden } = await loadTransformersFixture(device, name);
      const files = new Map<string, Uint8Array>();
      const encoder = new TextEncoder();
      try {
        await saveModel(model, {
          writeFile: async (fileName, contents) => {
            files.set(fileName, typeof contents === 'string' ? encoder.encode(contents) : contents);
          },
        });
        const original = readSafetensorsBytes(transformersFixtureFiles(name)['model.safetensors']);
        const saved = readSafetensorsBytes(files.get('model.safetensors')!);
        expect(saved.tensors.map((t) => t.name).sort()).toEqual(original.tensors.map((t) => t.name).sort());
        const { model: again } = await loadPretrained(device, memoryFileSource(Object.fromEntries(files)));
        try {
          expect(again.config.architecture).toBe(model.config.architecture);
          const ids = golden.input_ids[0];
          expectClose(await firstRowLogits(again, ids), await firstRowLogits(model, ids), {
            atol: 1e-6,
            rtol: 0,
          });
        } finally {
          again.dispose();
        }
      } finally {
        model.dispose();
      }
    });
  }
});
