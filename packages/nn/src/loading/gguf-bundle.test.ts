import { readGguf } from '@webtune/gguf';
import { writeSafetensors } from '@webtune/safetensors';
import { createDevice, type Device } from '@webtune/tensors';
import { fixturePath, requireFixtures } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelError } from '../errors.js';
import { loadModelDirectory } from '../node.js';
import { ggufAdapterChunks, ggufBundle, ollamaStopTokens } from './gguf-bundle.js';
import type { PretrainedModel } from './pretrained.js';

const HF = 'models/stories260K-hf';

async function bytesOf(chunks: AsyncGenerator<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return new Uint8Array(Buffer.concat(parts));
}

/** A PEFT LoRA adapter on v_proj of stories260K (r 2), with known lora_B values. */
function adapter(extra: Record<string, unknown> = {}) {
  const tensors = [];
  const loraB: Float32Array[] = [];
  for (let layer = 0; layer < 5; layer++) {
    const prefix = `base_model.model.model.layers.${layer}.self_attn.v_proj`;
    const b = Float32Array.from({ length: 32 * 2 }, (_, i) => (i - 32 + layer) / 64);
    loraB.push(b);
    tensors.push({
      name: `${prefix}.lora_A.weight`,
      dtype: 'F32' as const,
      shape: [2, 64],
      data: new Float32Array(128).fill(0.5),
    });
    tensors.push({ name: `${prefix}.lora_B.weight`, dtype: 'F32' as const, shape: [32, 2], data: b });
  }
  const config = { peft_type: 'LORA', r: 2, lora_alpha: 4, target_modules: ['v_proj'], ...extra };
  return { config: JSON.stringify(config), weights: writeSafetensors(tensors), loraB };
}

describe.skipIf(!requireFixtures(HF))('the GGUF export bundle (CLI and web app)', () => {
  let device: Device;
  let loaded: PretrainedModel;

  beforeAll(async () => {
    device = await createDevice();
    loaded = await loadModelDirectory(device, fixturePath(HF));
  });
  afterAll(() => {
    loaded?.model.dispose();
    device?.destroy();
  });

  it('names the model, the LoRA file and the Modelfile, and writes each', async () => {
    const lora = adapter();
    const bundle = ggufBundle({
      model: loaded.model,
      tokenizer: loaded.tokenizer!,
      tokenizerFiles: loaded.tokenizerFiles,
      fileType: 'Q8_0',
      name: 'My Stories',
      adapter: { config: lora.config, weights: lora.weights },
      system: 'Tell short stories.',
    });
    expect(bundle.files.map((file) => file.name)).toEqual([
      'My Stories-q8_0.gguf',
      'My Stories-lora.gguf',
      'Modelfile',
    ]);
    expect(bundle.ollamaName).toBe('my-stories');
    expect(bundle.commands('/out/')).toEqual([
      'ollama create my-stories -f /out/Modelfile',
      'ollama run my-stories',
    ]);
    const [model, loraFile, modelfile] = await Promise.all(
      bundle.files.map((file) => bytesOf(file.chunks())),
    );
    expect(new TextDecoder().decode(modelfile)).toBe(
      'FROM ./My Stories-q8_0.gguf\nADAPTER ./My Stories-lora.gguf\nPARAMETER stop "</s>"\nSYSTEM """Tell short stories."""\n',
    );
    const base = await readGguf(model);
    expect(base.value('general.name')).toBe('My Stories');
    expect(base.info('blk.0.attn_v.weight')?.typeName).toBe('Q8_0');
    const written = await readGguf(loraFile);
    expect(written.value('general.type')).toBe('adapter');
    expect(written.value('adapter.lora.alpha')).toBe(4);
    for (const layer of [0, 4]) {
      expect(await written.readFloat32(`blk.${layer}.attn_v.weight.lora_b`)).toEqual(lora.loraB[layer]);
    }
  });

  it('gives Ollama the EOS token as its stop string', () => {
    expect(ollamaStopTokens(loaded.model, loaded.tokenizer!)).toEqual(['</s>']);
  });

  it('refuses an adapter llama.cpp cannot load, naming it', () => {
    const dora = adapter({ use_dora: true });
    expect(() => ggufAdapterChunks(dora.config, dora.weights, loaded.model, 'run-7')).toThrow(ModelError);
    expect(() => ggufAdapterChunks(dora.config, dora.weights, loaded.model, 'run-7')).toThrow(
      /^cannot write run-7 as a GGUF LoRA adapter: .*DoRA/i,
    );
  });
});
