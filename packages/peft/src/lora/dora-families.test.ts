import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadPretrained, memoryFileSource } from '@webtune/nn';
import { createDevice, type Device } from '@webtune/tensors';
import { expectClose } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadAdapter } from '../files/adapter-files.js';
import { FIXTURES } from '../testing/models.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());

const NAMES = ['gemma2', 'gemma3', 'phi3', 'phi4-mini', 'smollm3'];

describe('DoRA adapters made by PEFT on the families (tools/golden/transformers_families.py)', () => {
  for (const name of NAMES) {
    it(`${name}: PEFT's DoRA adapter loads and gives PEFT's logits, merged too`, async () => {
      const folder = join(FIXTURES, 'transformers', name);
      const files: Record<string, Uint8Array> = {
        'config.json': readFileSync(join(folder, 'config.json')),
        'model.safetensors': readFileSync(join(folder, 'model.safetensors')),
        'adapter_config.json': readFileSync(join(folder, 'dora', 'adapter_config.json')),
        'adapter_model.safetensors': readFileSync(join(folder, 'dora', 'adapter_model.safetensors')),
      };
      const golden = JSON.parse(readFileSync(join(folder, 'dora', 'dora-golden.json'), 'utf8')) as {
        input_ids: number[][];
        adapted_logits: number[];
      };
      const source = memoryFileSource(files, folder);
      const { model } = await loadPretrained(device, source);
      try {
        const [batch, seq] = [golden.input_ids.length, golden.input_ids[0].length];
        const run = () =>
          device.scope(async () =>
            model.forward(device.fromArray(golden.input_ids.flat(), [batch, seq], 'i32')).toArray(),
          );
        const base = await run();
        const peft = await loadAdapter(model, source);
        const magnitudes = peft
          .trainableParameters()
          .filter(([key]) => key.includes('lora_magnitude_vector'));
        expect(magnitudes.length).toBeGreaterThan(0);
        const adapted = await device.scope(async () =>
          peft.model.forward(device.fromArray(golden.input_ids.flat(), [batch, seq], 'i32')).toArray(),
        );
        expectClose(adapted, golden.adapted_logits, { atol: 1e-4, rtol: 0, label: `${name} DoRA` });
        // The adapter moves the logits well beyond that tolerance.
        const moved = Math.max(...Array.from(base, (value, i) => Math.abs(value - golden.adapted_logits[i])));
        expect(moved).toBeGreaterThan(1e-2);
        peft.merge();
        const merged = await device.scope(async () =>
          peft.model.forward(device.fromArray(golden.input_ids.flat(), [batch, seq], 'i32')).toArray(),
        );
        expectClose(merged, golden.adapted_logits, { atol: 1e-4, rtol: 0, label: `${name} DoRA merged` });
      } finally {
        model.dispose();
      }
    });
  }
});
