import {
  type CausalLM,
  FusedDecoder,
  fusedDecodeUnsupported,
  generateWithTimings,
  KVCache,
  packFrozenWeights,
} from '@webtune/nn';
import { loadModelDirectory } from '@webtune/nn/node';
import { createDevice, type Device, isQuantized } from '@webtune/tensors';
import { expectClose, fixturePath, requireFixtures } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getPeftModel } from '../peft-model.js';
import { loraConfig } from './lora-config.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());

/**
 * QLoRA decoding on the fused path: stories260K's Q4_0 base (quantized at load; its down_proj
 * stays f16) with a LoRA adapter on every
 * linear layer whose A and B are both random (init_lora_weights: false, so the low-rank terms
 * matter): each fused step gives the forward's logits, and greedy tokens are the unfused path's.
 */
const HF = 'models/stories260K-hf';

describe.skipIf(!requireFixtures(HF))('QLoRA on the fused decode path', () => {
  it('Q4_0 base + LoRA on all linear layers: the forward logits at each step (1e-4), the unfused tokens', async () => {
    const { model: base } = (await loadModelDirectory(device, fixturePath(HF))) as { model: CausalLM };
    await packFrozenWeights(base, 'q4_0');
    const packed = base.getSubmodule('model.layers.0.self_attn.q_proj').packedParameter('weight');
    expect(packed && isQuantized(packed.format)).toBe(true);
    const peft = await getPeftModel(
      base,
      loraConfig({ r: 4, lora_alpha: 8, target_modules: 'all-linear', init_lora_weights: false }),
      { seed: 3 },
    );
    const model = peft.model;
    try {
      expect(fusedDecodeUnsupported(model)).toBeNull();
      const prompt = [1, 5, 9, 14];
      const reference = KVCache.forModel(device, model.config, 1, 12);
      const cache = KVCache.forModel(device, model.config, 1, 12);
      const decoder = new FusedDecoder(model, cache, [0], 1);
      try {
        for (const kv of [reference, cache]) {
          await device.scope(async () => {
            model.forward(device.fromArray(prompt, [1, prompt.length], 'i32'), { cache: kv, logits: 'last' });
            await device.sync();
          });
        }
        for (const id of [7, 30, 2]) {
          const expected = await device.scope(async () =>
            model
              .forward(device.fromArray([id], [1, 1], 'i32'), { cache: reference, logits: 'last' })
              .toArray(),
          );
          decoder.setIds([id]);
          decoder.encodeLogits(cache.length);
          cache.advance(1);
          expectClose(await decoder.logits.toArray(), expected, { atol: 1e-4, rtol: 0, label: `step ${id}` });
        }
      } finally {
        decoder.dispose();
        cache.dispose();
        reference.dispose();
      }
      const options = { maxNewTokens: 16, stopTokens: [] };
      const plain = await generateWithTimings(model, null, [prompt], { ...options, fusedDecode: false });
      const fused = await generateWithTimings(model, null, [prompt], options);
      expect(fused.timings.fused).toBe(true);
      expect(fused.results[0].tokens).toEqual(plain.results[0].tokens);
    } finally {
      model.dispose();
    }
  });

  it("Q8_0 base + LoRA on all linear layers: a 37-token prompt through the tiled prefill gives the forward's last logits (1e-4)", async () => {
    const { model: base } = (await loadModelDirectory(device, fixturePath(HF))) as { model: CausalLM };
    await packFrozenWeights(base, 'q8_0');
    const peft = await getPeftModel(
      base,
      loraConfig({ r: 4, lora_alpha: 8, target_modules: 'all-linear', init_lora_weights: false }),
      { seed: 5 },
    );
    const model = peft.model;
    const prompt = [1, ...Array.from({ length: 36 }, (_, i) => 3 + ((i * 7919) % 500))];
    const cache = KVCache.forModel(device, model.config, 1, prompt.length);
    const decoder = new FusedDecoder(model, cache, [0], 1);
    try {
      expect(decoder.tiledPrefillUnsupported).toBeNull();
      const logits = (await decoder.prefill(
        Int32Array.from(prompt),
        prompt.length,
        0,
        false,
        true,
      )) as Float32Array;
      const expected = await device.scope(async () =>
        model.forward(device.fromArray(prompt, [1, prompt.length], 'i32'), { logits: 'last' }).toArray(),
      );
      expectClose(logits, expected, { atol: 1e-4, rtol: 0, label: 'QLoRA tiled prefill' });
    } finally {
      decoder.dispose();
      cache.dispose();
      model.dispose();
    }
  });
});
