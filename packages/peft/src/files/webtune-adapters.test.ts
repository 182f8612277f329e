import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensorsBytes } from '@webtune/safetensors';
import { createDevice, type Device } from '@webtune/tensors';
import { expectClose } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LoraConfig, loraConfig } from '../lora/lora-config.js';
import { getPeftModel } from '../peft-model.js';
import { FIXTURES, ids, loadBase, logitsOf, memoryFolder, readGolden } from '../testing/models.js';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, saveAdapter } from './adapter-files.js';

/**
 * Adapters saved by webtune, loaded by PEFT + Transformers.
 *
 * This test builds each adapter on a fixture base model, moves every trainable tensor off its
 * initial value (as training would) and saves it. With WEBTUNE_WRITE_GOLDENS=1 it writes the
 * folders and webtune's logits to __fixtures__/webtune-adapters/; then
 * tools/golden/webtune_adapters_in_peft.py loads each folder with PeftModel.from_pretrained and
 * writes the largest logit difference per case to peft-check.json. Without the variable the test
 * checks that webtune still writes those same files and logits, and that PEFT's differences are small.
 */
const CASES: Record<string, { base: 'llama' | 'qwen2'; config: Partial<LoraConfig> }> = {
  lora: { base: 'llama', config: { r: 4, lora_alpha: 8, target_modules: ['q_proj', 'v_proj', 'o_proj'] } },
  rslora: {
    base: 'qwen2',
    config: { r: 4, lora_alpha: 4, use_rslora: true, target_modules: ['k_proj', 'up_proj', 'down_proj'] },
  },
  dora: {
    base: 'llama',
    config: { r: 2, lora_alpha: 4, use_dora: true, target_modules: ['q_proj', 'v_proj', 'gate_proj'] },
  },
  'modules-to-save': {
    base: 'qwen2',
    config: { r: 2, lora_alpha: 2, target_modules: ['q_proj'], modules_to_save: ['embed_tokens', 'lm_head'] },
  },
};

const FOLDER = join(FIXTURES, 'webtune-adapters');
const WRITE = Boolean(process.env.WEBTUNE_WRITE_GOLDENS);

interface PeftCheck {
  peft_version: string;
  transformers_version: string;
  cases: Record<string, { max_abs_difference: number; max_change_from_base: number; tensors: number }>;
}

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());

/** Moves a tensor off its initial value by a fixed pattern (the same on every machine). */
function trained(name: string, values: Float32Array): Float32Array {
  return values.map((v, i) => {
    const wave = Math.sin(0.37 * i + name.length);
    if (name.endsWith('lora_magnitude_vector')) return v * (1 + 0.2 * wave);
    if (name.includes('lora_')) return v + 0.2 * wave;
    return v + 0.1 * wave;
  });
}

describe('adapters saved by webtune, loaded by PEFT + Transformers (tools/golden/webtune_adapters_in_peft.py)', () => {
  const check = existsSync(join(FOLDER, 'peft-check.json'))
    ? (JSON.parse(readFileSync(join(FOLDER, 'peft-check.json'), 'utf8')) as PeftCheck)
    : null;

  it('PEFT ran every case and got webtune logits back', () => {
    expect(check, 'peft-check.json is missing: run the script named above').not.toBeNull();
    expect(Object.keys(check!.cases).sort()).toEqual(Object.keys(CASES).sort());
    for (const [name, result] of Object.entries(check!.cases)) {
      // float32 on the GPU against float64 in PyTorch.
      expect(result.max_abs_difference, name).toBeLessThan(1e-4);
      // And the adapter really changed the model.
      expect(result.max_change_from_base, name).toBeGreaterThan(0.1);
    }
  });

  for (const [name, { base, config }] of Object.entries(CASES)) {
    it(`${name}: webtune still writes the files and logits PEFT checked`, async () => {
      const golden = readGolden('base', base);
      const peft = await getPeftModel(await loadBase(device, base), loraConfig(config));
      for (const [key, tensor] of peft.adapterStateDict()) {
        device.write(tensor, trained(key, (await tensor.toArray()) as Float32Array));
      }
      const folder = memoryFolder();
      await saveAdapter(peft, folder.sink);
      const logits = await logitsOf(peft, ids(device, golden.input_ids));
      const target = join(FOLDER, name);
      if (WRITE) {
        mkdirSync(target, { recursive: true });
        for (const file of [ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE])
          writeFileSync(join(target, file), folder.files.get(file)!);
        const rounded = Array.from(logits, (v) => Number(v.toPrecision(8)));
        writeFileSync(
          join(target, 'webtune-logits.json'),
          `${JSON.stringify({ base, input_ids: golden.input_ids, shape: [...golden.shape], logits: rounded })}\n`,
        );
      }
      const committedConfig = JSON.parse(readFileSync(join(target, ADAPTER_CONFIG_FILE), 'utf8'));
      const savedConfig = JSON.parse(new TextDecoder().decode(folder.files.get(ADAPTER_CONFIG_FILE)!));
      expect(savedConfig).toEqual(committedConfig);
      const committed = readSafetensorsBytes(readFileSync(join(target, ADAPTER_WEIGHTS_FILE)));
      const saved = readSafetensorsBytes(folder.files.get(ADAPTER_WEIGHTS_FILE)!);
      expect(saved.tensors.map((t) => t.name)).toEqual(committed.tensors.map((t) => t.name));
      expect(saved.tensors.length).toBe(check?.cases[name]?.tensors);
      for (let i = 0; i < saved.tensors.length; i++) {
        const view = (t: (typeof saved.tensors)[number]) =>
          new Float32Array(t.data.buffer, t.data.byteOffset, t.data.byteLength / 4);
        expect(saved.tensors[i].dtype).toBe('F32');
        expectClose(view(saved.tensors[i]), view(committed.tensors[i]), {
          atol: 1e-6,
          label: saved.tensors[i].name,
        });
      }
      const expected = JSON.parse(readFileSync(join(target, 'webtune-logits.json'), 'utf8'));
      expectClose(logits, expected.logits, { atol: 1e-5, label: `${name} logits` });
      peft.model.dispose();
    });
  }
});
