import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadPretrained, memoryFileSource } from '@webtune/nn';
import { autograd, backward, createDevice, type Device, gradOf, requiresGrad } from '@webtune/tensors';
import { expectClose } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadAdapter } from '../files/adapter-files.js';
import { FIXTURES } from '../testing/models.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());

/** lora-golden.json written by tools/golden/transformers_families.py with PEFT itself. */
interface LoraGolden {
  input_ids: number[][];
  loss: number;
  /** Logits of the adapted model, float64 in PEFT. */
  adapted_logits: number[];
  largest_gradient: number;
  target_modules: string[];
  gradients: Record<string, { shape: number[]; values: number[] }>;
}

const NAMES = ['llama', 'mistral', 'qwen2', 'qwen3', 'gemma2', 'gemma3', 'phi3', 'phi4-mini', 'smollm3'];

describe('one LoRA step against PEFT + Transformers (tools/golden/transformers_families.py)', () => {
  for (const name of NAMES) {
    it(`${name}: PEFT's adapter loads, gives PEFT's logits (merged too) and its lora_A / lora_B gradients`, async () => {
      const folder = join(FIXTURES, 'transformers', name);
      const files: Record<string, Uint8Array> = {};
      for (const file of [
        'config.json',
        'model.safetensors',
        'adapter_config.json',
        'adapter_model.safetensors',
      ]) {
        files[file] = readFileSync(join(folder, file));
      }
      const golden = JSON.parse(readFileSync(join(folder, 'lora-golden.json'), 'utf8')) as LoraGolden;
      const source = memoryFileSource(files, folder);
      const { model } = await loadPretrained(device, source);
      const peft = await loadAdapter(model, source);
      try {
        const trainable = peft.trainableParameters();
        // PEFT's names without the adapter name: model.layers.0.self_attn.qkv_proj.lora_A.weight.
        const byName = new Map(trainable.map(([key, tensor]) => [key.replace('.default', ''), tensor]));
        expect([...byName.keys()].sort()).toEqual(Object.keys(golden.gradients).sort());
        for (const [, tensor] of trainable) requiresGrad(tensor);
        const [batch, seq] = [golden.input_ids.length, golden.input_ids[0].length];
        let adaptedLogits: Float32Array | null = null;
        const loss = await device.scope(async () => {
          // Transformers' causal LM loss: mean over every next-token prediction.
          const ids = device.fromArray(golden.input_ids.flat(), [batch, seq], 'i32');
          const logits = peft.model.forward(ids);
          adaptedLogits = (await logits.toArray()) as Float32Array;
          const vocab = logits.shape[2];
          const shifted = autograd.reshape(autograd.slice(logits, [0, 0, 0], [batch, seq - 1, vocab]), [
            batch * (seq - 1),
            vocab,
          ]);
          const targets = device.fromArray(
            golden.input_ids.flatMap((row) => row.slice(1)),
            [batch * (seq - 1)],
            'i32',
          );
          const result = autograd.crossEntropy(shifted, targets, { reduction: 'mean' });
          backward(result.loss);
          return result.loss.item();
        });
        expect(Math.abs(loss - golden.loss)).toBeLessThan(1e-5);
        // Every gradient within 1e-5 of the largest one.
        const bound = 1e-5 * golden.largest_gradient;
        let worst = 0;
        for (const [key, expected] of Object.entries(golden.gradients)) {
          const tensor = byName.get(key)!;
          expect(tensor.shape, key).toEqual(expected.shape);
          const grad = gradOf(tensor);
          expect(grad, key).not.toBeNull();
          const values = (await grad!.toArray()) as Float32Array;
          let here = 0;
          for (let i = 0; i < values.length; i++)
            here = Math.max(here, Math.abs(values[i] - expected.values[i]));
          worst = Math.max(worst, here);
        }
        expect(
          worst,
          `largest gradient difference (largest gradient ${golden.largest_gradient})`,
        ).toBeLessThan(bound);
        for (const [, tensor] of trainable) requiresGrad(tensor, false);
        // The adapted model's logits are PEFT's, before and after merging the adapter into the weights.
        expectClose(adaptedLogits!, golden.adapted_logits, { atol: 1e-4, rtol: 0, label: `${name} adapted` });
        peft.merge();
        const merged = await device.scope(async () => {
          const ids = device.fromArray(golden.input_ids.flat(), [batch, seq], 'i32');
          return peft.model.forward(ids).toArray();
        });
        expectClose(merged, golden.adapted_logits, { atol: 1e-4, rtol: 0, label: `${name} merged` });
      } finally {
        model.dispose();
      }
    });
  }
});
