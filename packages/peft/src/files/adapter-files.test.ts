import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ModelFileSource } from '@webtune/nn';
import { directorySink, directorySource } from '@webtune/nn/node';
import { readSafetensorsBytes } from '@webtune/safetensors';
import { createDevice, type Device } from '@webtune/tensors';
import { expectClose } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PeftError } from '../errors.js';
import { loraConfig } from '../lora/lora-config.js';
import { getPeftModel } from '../peft-model.js';
import {
  FIXTURES,
  fixtureSource,
  ids,
  loadBase,
  logitsOf,
  memoryFolder,
  readGolden,
} from '../testing/models.js';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, loadAdapter, saveAdapter } from './adapter-files.js';

const CASES = [
  'lora-qv',
  'lora-regex-patterns',
  'lora-layers-exclude',
  'dora-all-linear',
  'lora-modules-to-save',
  'pissa-converted',
];

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());

describe('adapters made and saved by PEFT itself (tools/golden/peft_adapters.py)', () => {
  for (const base of ['llama', 'qwen2'] as const) {
    it(`base model ${base} reproduces Transformers' logits`, async () => {
      const golden = readGolden('base', base);
      const model = await loadBase(device, base);
      const logits = await logitsOf(model, ids(device, golden.input_ids));
      expectClose(logits, golden.logits, { atol: 2e-4, rtol: 1e-4, label: base });
      model.dispose();
    });
  }

  for (const name of CASES) {
    it(`${name}: base + PEFT's adapter gives PEFT's logits`, async () => {
      const golden = readGolden('adapters', name);
      const model = await loadBase(device, golden.base as 'llama' | 'qwen2');
      const baseLogits = await logitsOf(model, ids(device, golden.input_ids));
      const peft = await loadAdapter(model, fixtureSource('adapters', name));
      const adapted = peft
        .adapterLayers()
        .filter(({ layer }) => layer.constructor.name === 'LoraLinear')
        .map(({ name }) => name)
        .sort();
      expect(adapted).toEqual(golden.adapted_modules);
      const logits = await logitsOf(peft, ids(device, golden.input_ids));
      expectClose(logits, golden.logits, { atol: 3e-4, rtol: 1e-4, label: name });
      // The adapter changes the output, and switching it off gives the base model back.
      expect(Math.max(...logits.map((v, i) => Math.abs(v - baseLogits[i])))).toBeGreaterThan(0.1);
      const disabled = await peft.withAdaptersDisabled(() => logitsOf(peft, ids(device, golden.input_ids)));
      expectClose(disabled, baseLogits, { atol: 1e-6, label: `${name} disabled` });
      peft.model.dispose();
    });
  }

  it('saving a loaded adapter writes the same names, shapes and values as the PEFT file', async () => {
    const name = 'dora-all-linear';
    const model = await loadBase(device, 'qwen2');
    const peft = await loadAdapter(model, fixtureSource('adapters', name));
    const folder = memoryFolder();
    await saveAdapter(peft, folder.sink);
    const original = readSafetensorsBytes(
      readFileSync(join(FIXTURES, 'adapters', name, ADAPTER_WEIGHTS_FILE)),
    );
    const saved = readSafetensorsBytes(folder.files.get(ADAPTER_WEIGHTS_FILE)!);
    expect(saved.metadata).toEqual({ format: 'pt' });
    expect(saved.tensors.map((t) => [t.name, t.shape]).sort()).toEqual(
      original.tensors.map((t) => [t.name, t.shape]).sort(),
    );
    const savedByName = new Map(saved.tensors.map((t) => [t.name, t]));
    for (const tensor of original.tensors) {
      expect(savedByName.get(tensor.name)!.dtype).toBe(tensor.dtype);
      expect(Buffer.from(savedByName.get(tensor.name)!.data)).toEqual(Buffer.from(tensor.data));
    }
    const config = JSON.parse(new TextDecoder().decode(folder.files.get(ADAPTER_CONFIG_FILE)!));
    expect(config).toMatchObject({
      peft_type: 'LORA',
      r: 4,
      lora_alpha: 8,
      use_dora: true,
      inference_mode: true,
    });
    // PEFT 0.21 resolves all-linear to the full module names; the saved config keeps PEFT's list.
    const originalConfig = JSON.parse(
      readFileSync(join(FIXTURES, 'adapters', name, ADAPTER_CONFIG_FILE), 'utf8'),
    );
    expect([...config.target_modules].sort()).toEqual([...originalConfig.target_modules].sort());
    expect(config.target_modules).toHaveLength(14);
    peft.model.dispose();
  });

  it('an adapter for another model is refused with the tensor, its shape and the expected one', async () => {
    const model = await loadBase(device, 'llama');
    const folder = memoryFolder();
    const other = await loadBase(device, 'llama');
    const peft = await getPeftModel(other, loraConfig({ r: 4, target_modules: ['q_proj'] }));
    await saveAdapter(peft, folder.sink);
    // Claim rank 2 in the config: every lora_A then has the wrong shape.
    const config = JSON.parse(new TextDecoder().decode(folder.files.get(ADAPTER_CONFIG_FILE)!));
    folder.files.set(ADAPTER_CONFIG_FILE, new TextEncoder().encode(JSON.stringify({ ...config, r: 2 })));
    await expect(loadAdapter(model, folder.source())).rejects.toThrow(
      /model\.layers\.0\.self_attn\.q_proj\.lora_A\.weight has shape \[4, 16\], the model and config need \[2, 16\]/,
    );
    // Targets that match nothing.
    folder.files.set(
      ADAPTER_CONFIG_FILE,
      new TextEncoder().encode(JSON.stringify({ ...config, target_modules: ['c_attn'] })),
    );
    await expect(loadAdapter(model, folder.source())).rejects.toThrow(
      /target_modules \["c_attn"\] matched no module/,
    );
    // Tensors the config does not account for.
    folder.files.set(
      ADAPTER_CONFIG_FILE,
      new TextEncoder().encode(JSON.stringify({ ...config, layers_to_transform: [0] })),
    );
    await expect(loadAdapter(model, folder.source())).rejects.toThrow(
      /layers\.1\.self_attn\.q_proj\.lora_A\.weight.*match no adapted module/,
    );
    // The model was left as it was: no adapter layers were injected.
    expect([...model.namedModules()].some(([, m]) => m.constructor.name === 'LoraLinear')).toBe(false);
    await expect(loadAdapter(model, fixtureSource('base', 'llama'))).rejects.toThrow(PeftError);
    model.dispose();
    other.dispose();
  });

  it('loadAdapter closes the file source it opened, when it loads and when it refuses', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'webtune-peft-close-'));
    try {
      const other = await loadBase(device, 'llama');
      await saveAdapter(
        await getPeftModel(other, loraConfig({ r: 4, target_modules: ['q_proj'] })),
        directorySink(folder),
      );
      other.dispose();
      // Counts opens and closes of a real directory source (a file handle per open).
      const counted = () => {
        const inner = directorySource(folder);
        const counts = { opened: 0, closed: 0 };
        const source: ModelFileSource = {
          ...inner,
          open: async (name) => {
            counts.opened++;
            return inner.open(name);
          },
          close: async () => {
            counts.closed++;
            await inner.close?.();
          },
        };
        return { source, counts };
      };
      const loaded = counted();
      const model = await loadBase(device, 'llama');
      const peft = await loadAdapter(model, loaded.source);
      expect(peft.adapterNames).toEqual(['default']);
      expect(loaded.counts).toEqual({ opened: 1, closed: 1 });
      // A refused load (the adapter is already there under that name) closes it too.
      const refused = counted();
      await expect(loadAdapter(peft, refused.source)).rejects.toThrow(PeftError);
      expect(refused.counts.opened).toBe(1);
      expect(refused.counts.closed).toBe(1);
      peft.model.dispose();
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });
});
